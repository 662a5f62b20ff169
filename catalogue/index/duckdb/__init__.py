"""CohortIndex on DuckDB on disk: one columnar row per series, exact counts by SQL.

A query compiles to one statement (compiler.py); a small planner (planner.py) picks the level to
start from with per-value subject counts kept after each write.

Each write also renews, in its transaction, dense integer keys of cells, studies and subjects and
roll-ups of the rows by them (`_KEYS`), which the statements read instead of the rows; a file
written by an older version is renewed when opened. A count reads in one transaction, so that
its keys and roll-ups are those of one write.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalogue.config import IndexSettings
from catalogue.domain.cohort import (
    CellEvidence,
    CohortQuery,
    Criterion,
    ExactCounts,
    ExactResult,
    ExactSummary,
    SeriesCriteria,
    StrataTable,
    Stratum,
    StratumCell,
)
from catalogue.domain.linkage import HllSketch
from catalogue.exceptions import QueryError, StoreError
from catalogue.imaging.features import SERIES_SCHEMA, as_series_batch
from catalogue.index.duckdb.compiler import ANNOTATION_KINDS, Scope, compile_count
from catalogue.index.duckdb.planner import Statistics, data_domains, strata_domain
from catalogue.ontology.curie import is_curie

_DDL = """
CREATE TABLE IF NOT EXISTS series (
    provider VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    subject BIGINT NOT NULL,
    study BIGINT NOT NULL,
    series BIGINT NOT NULL,
    sex VARCHAR NOT NULL,
    age SMALLINT,
    study_year SMALLINT,
    modality VARCHAR,
    body_part VARCHAR,
    manufacturer VARCHAR,
    instances INTEGER,
    subject_sex VARCHAR
);
CREATE TABLE IF NOT EXISTS diagnoses (
    provider VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    subject BIGINT NOT NULL,
    code VARCHAR NOT NULL
)
"""

_VALUE_CONCEPTS_DDL = """
CREATE TABLE IF NOT EXISTS value_concepts (
    provider VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    concept VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS value_concept_versions (
    provider VARCHAR PRIMARY KEY,
    version BIGINT NOT NULL
)
"""
VALUE_FIELDS = ("body_part", "modality", "manufacturer")
"""The series columns whose raw values get concepts (`value_concepts`)."""

_DIAGNOSES_CHUNK = 65_536
_INSERT_DIAGNOSES = """
INSERT INTO diagnoses (provider, source, subject, code)
SELECT DISTINCT $1, $2, i.subject, i.code FROM incoming AS i
WHERE i.code IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM diagnoses AS d
    WHERE d.provider = $1 AND d.source = $2 AND d.subject = i.subject AND d.code = i.code
)
"""

_COLUMNS = ", ".join(SERIES_SCHEMA.names)
_EXPORT_BATCH = 100_000
_SQL_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "int16": "SMALLINT",
    "float": "FLOAT",
    "bool": "BOOLEAN",
}

_SUBJECT_SEX = """
UPDATE series SET subject_sex = derived.sx
FROM (
    SELECT subject,
           CASE WHEN count(DISTINCT sex) FILTER (WHERE sex <> 'U') = 1
                THEN any_value(sex) FILTER (WHERE sex <> 'U') ELSE 'U' END AS sx
    FROM series WHERE provider = $provider GROUP BY subject
) AS derived
WHERE series.provider = $provider AND series.subject = derived.subject
"""


_KINDS = tuple(k.value for k in ANNOTATION_KINDS)


def _annotation_bits() -> str:
    """The `annotated` bitmask of a row `r` (joined with its study's unknown-target
    annotations `u` and the kinds of the annotations naming it `d`): bit m - 1 set when a
    `hasAnnotation` of the kinds in bitmask m holds on the row (docs/feasibility.md)."""
    terms = []
    for mask in range(1, 1 << len(_KINDS)):
        chosen = [i for i in range(len(_KINDS)) if mask >> i & 1]
        total = " + ".join(f"coalesce(u.n{i}, 0)" for i in chosen)
        one = "coalesce(" + ", ".join(f"CASE WHEN u.n{i} = 1 THEN u.o{i} END" for i in chosen)
        one += ")" if len(chosen) > 1 else ", NULL)"
        hit = (
            f"coalesce(d.kinds & {mask}, 0) <> 0 OR ({total}) > 1 "
            f"OR (({total}) = 1 AND {one} <> r.series)"
        )
        terms.append(f"CASE WHEN {hit} THEN {1 << (mask - 1)} ELSE 0 END")
    return "(" + " + ".join(terms) + ")::INTEGER"


_FACT_COLUMNS = (
    "subject_sex",
    "age",
    "study_year",
    "modality",
    "body_part",
    "manufacturer",
    "model",
    "slice_thickness",
    "field_strength",
    "contrast",
)
"""The row columns a criterion or a strata dimension reads."""

_FACTS = ", ".join(_FACT_COLUMNS)
_KIND_LIST = ", ".join(f"'{k}'" for k in _KINDS)
_UNKNOWN_TARGETS = ", ".join(
    f"count(*) FILTER (WHERE modality = '{k}') AS n{i}, "
    f"any_value(series) FILTER (WHERE modality = '{k}') AS o{i}"
    for i, k in enumerate(_KINDS)
)
_KIND_BIT = "CASE modality " + " ".join(f"WHEN '{k}' THEN {1 << i}" for i, k in enumerate(_KINDS))

_KEYS = (
    """
CREATE OR REPLACE TABLE cells AS
SELECT (row_number() OVER (ORDER BY provider, dataset) - 1)::INTEGER AS cell,
       (dense_rank() OVER (ORDER BY provider) - 1)::INTEGER AS pid, provider, dataset
FROM (SELECT DISTINCT provider, dataset FROM series)
""",
    f"""
CREATE OR REPLACE TEMP TABLE keyed_rows AS
SELECT c.cell, c.pid, s.subject, s.study, s.series, s.is_annotation, s.annotated_series, {_FACTS}
FROM series AS s JOIN cells AS c USING (provider, dataset)
""",
    """
CREATE OR REPLACE TABLE studies AS
WITH g AS (
    SELECT cell, pid, subject, study, count(*) AS n, bit_xor(series) AS x
    FROM keyed_rows GROUP BY cell, pid, subject, study
), spans AS (
    SELECT pid, subject, count(DISTINCT cell) > 1 AS multi,
           count(*) OVER (PARTITION BY subject) = 1 AS s_one
    FROM g GROUP BY pid, subject
)
SELECT (row_number() OVER (ORDER BY g.cell, g.subject, g.study) - 1)::INTEGER AS dst,
       (dense_rank() OVER (ORDER BY g.cell, g.subject) - 1)::INTEGER AS dsub,
       (dense_rank() OVER (ORDER BY g.pid, g.subject) - 1)::INTEGER AS psub,
       g.cell, g.pid, g.subject, g.study, spans.multi, spans.s_one,
       count(*) OVER (PARTITION BY g.cell, g.study) = 1 AS d_one,
       count(*) OVER (PARTITION BY g.pid, g.study) = 1 AS p_one,
       count(*) OVER (PARTITION BY g.study) = 1 AS v_one,
       g.n, g.x
FROM g JOIN spans USING (pid, subject)
ORDER BY dst
""",
    f"""
CREATE OR REPLACE TABLE facts AS
WITH u AS (
    SELECT cell, study, {_UNKNOWN_TARGETS}
    FROM keyed_rows
    WHERE is_annotation AND annotated_series IS NULL AND modality IN ({_KIND_LIST})
    GROUP BY cell, study
), d AS (
    SELECT cell, study, annotated_series AS target, bit_or({_KIND_BIT} END) AS kinds
    FROM keyed_rows
    WHERE is_annotation AND annotated_series IS NOT NULL AND modality IN ({_KIND_LIST})
    GROUP BY cell, study, annotated_series
), a AS (
    SELECT r.*, {_annotation_bits()} AS annotated
    FROM keyed_rows AS r
    LEFT JOIN u ON u.cell = r.cell AND u.study = r.study
    LEFT JOIN d ON d.cell = r.cell AND d.study = r.study AND d.target = r.series
)
SELECT t.dst, t.cell, t.pid, t.dsub, t.psub, t.subject, t.multi, {_FACTS}, annotated,
       count(*) AS n, bit_xor(series) AS x
FROM a JOIN studies AS t USING (cell, subject, study)
GROUP BY t.dst, t.cell, t.pid, t.dsub, t.psub, t.subject, t.multi, {_FACTS}, annotated
ORDER BY t.dst
""",
    """
CREATE OR REPLACE TABLE subjects AS
WITH d AS (
    SELECT t.dsub, any_value(t.cell) AS cell, any_value(t.pid) AS pid,
           any_value(t.psub) AS psub, any_value(t.subject) AS subject,
           any_value(t.multi) AS multi, any_value(f.subject_sex) AS sex,
           list_sort(list(DISTINCT f.age) FILTER (WHERE f.age IS NOT NULL)) AS ages
    FROM facts AS f JOIN studies AS t USING (dst) GROUP BY t.dsub
)
SELECT d.*, c.provider FROM d JOIN cells AS c USING (cell) ORDER BY d.dsub
""",
    "CREATE OR REPLACE TABLE spanners AS SELECT * FROM subjects WHERE multi",
    """
CREATE OR REPLACE TABLE linkage AS
SELECT c.pid, s.subject, max(s.linkage) AS code
FROM series AS s JOIN cells AS c USING (provider, dataset)
WHERE s.linkage IS NOT NULL GROUP BY c.pid, s.subject
""",
    "DROP TABLE keyed_rows",
)
"""Renew the keys and roll-ups from the rows (every write, in its transaction): `cells`
(cell, pid, provider, dataset); `studies` (one row per dst: its keys, whether its subject
spans datasets of the provider, whether it is the only study with its id in its cell (d_one),
in its provider (p_one) and at all (v_one), its row count n and series fingerprint x); `facts`
(the rows grouped by study and every column a criterion reads, with `annotated`, n and x); and
`subjects` (one row per dsub: keys, provider, subject, sex, distinct known ages, multi),
`spanners`, those of subjects spanning datasets, and `linkage`, each subject's linkage code
(catalogue.domain.linkage) where it has one."""

_GENERATION = "CREATE OR REPLACE TABLE cohort_layout AS SELECT $1 AS layout, $2 AS generation"
"""Marks the roll-ups with their layout and a new generation (cached readings of them are
kept per generation)."""

_LAYOUT = hashlib.sha256("\n".join((*_KEYS, _GENERATION)).encode()).hexdigest()[:16]
"""Names the roll-ups' layout: a file whose roll-ups were written otherwise renews them."""

_KEYS_STALE = """
SELECT (SELECT count(*) FROM cohort_layout WHERE layout = $1) = 0
    OR (SELECT coalesce(sum(n), 0) FROM studies) <> (SELECT count(*) FROM series)
    OR (SELECT coalesce(sum(n), 0) FROM facts) <> (SELECT count(*) FROM series)
"""


class DuckDBCohortIndex:
    """A DuckDB database file with one `series` table; writes are serialised by a lock."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> DuckDBCohortIndex:
        """The index in the `path` folder (`settings` name no server)."""
        return cls(path)

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path / "cohort.duckdb"))
        except duckdb.Error as exc:
            raise StoreError.cannot_open("DuckDB cohort index", path, exc) from exc
        self._con.execute(_DDL)
        self._con.execute(_VALUE_CONCEPTS_DDL)
        self._migrate()
        self._lock = threading.Lock()
        self._layout_cache: _Layout | None = None
        self._stats_cache: tuple[int, Statistics] | None = None
        self._ensure_keys()

    def _migrate(self) -> None:
        """Add feature columns that a newer SERIES_SCHEMA has and the file lacks."""
        present = {
            row[0]
            for row in self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'series'"
            ).fetchall()
        }
        for field in SERIES_SCHEMA:
            if field.name not in present:
                sql_type = _SQL_TYPES[str(field.type)]
                self._con.execute(f"ALTER TABLE series ADD COLUMN {field.name} {sql_type}")

    def _ensure_keys(self) -> None:
        """Renew the keys of a file written without them (or by an older version)."""
        tables = {
            row[0]
            for row in self._con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_name IN "
                "('cells', 'studies', 'subjects', 'spanners', 'facts', 'linkage', "
                "'cohort_layout')"
            ).fetchall()
        }
        stale = len(tables) < 7
        if not stale:
            row = self._con.execute(_KEYS_STALE, [_LAYOUT]).fetchone()
            stale = bool(row and row[0])
        if stale:
            with self._write() as con:
                self._renew_keys(con)

    @staticmethod
    def _renew_keys(con: duckdb.DuckDBPyConnection) -> None:
        for statement in _KEYS:
            con.execute(statement)
        con.execute(_GENERATION, [_LAYOUT, secrets.randbits(62)])

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for the block; with `snapshot`, every reading of it is of one
        transaction (the keys and roll-ups of one write)."""
        con = self._con.cursor()
        try:
            if not snapshot:
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            finally:
                con.execute("ROLLBACK")
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor in a transaction of its own under the write lock: committed when the block
        ends, rolled back when it raises."""
        with self._lock:
            con = self._con.cursor()
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()

    def replace_source(
        self, provider_id: str, source_id: str, batches: Iterable[pa.RecordBatch]
    ) -> int:
        with self._write() as con:
            con.execute(
                "DELETE FROM series WHERE provider = ? AND source = ?", [provider_id, source_id]
            )
            rows = 0
            for batch in batches:
                batch = as_series_batch(batch)
                con.register("incoming", batch)
                con.execute(
                    f"INSERT INTO series (provider, source, {_COLUMNS}) "
                    f"SELECT $1, $2, {_COLUMNS} FROM incoming",
                    [provider_id, source_id],
                )
                con.unregister("incoming")
                rows += batch.num_rows
            con.execute(_SUBJECT_SEX, {"provider": provider_id})
            self._renew_keys(con)
        return rows

    def replace_diagnoses(
        self, provider_id: str, source_id: str, rows: Iterable[tuple[int, str]]
    ) -> int:
        with self._write() as con:
            con.execute(
                "DELETE FROM diagnoses WHERE provider = ? AND source = ?",
                [provider_id, source_id],
            )
            pending = iter(rows)
            while chunk := list(islice(pending, _DIAGNOSES_CHUNK)):
                subjects, codes = zip(*chunk, strict=True)
                incoming = pa.table(
                    {
                        "subject": pa.array(subjects, pa.int64()),
                        "code": pa.array(codes, pa.string()),
                    }
                )
                con.register("incoming", incoming)
                con.execute(_INSERT_DIAGNOSES, [provider_id, source_id])
                con.unregister("incoming")
            stored = con.execute(
                "SELECT count(*) FROM diagnoses WHERE provider = ? AND source = ?",
                [provider_id, source_id],
            ).fetchone()
        return int(stored[0]) if stored else 0

    def count(
        self,
        query: CohortQuery,
        *,
        strata: tuple[tuple[Stratum, ...], ...] = (),
        scopes: frozenset[tuple[str, str]] | None = None,
        evidence: bool = False,
        strata_min_subjects: int = 1,
        max_strata_cells: int = 5000,
        linkage: bool = False,
    ) -> ExactResult:
        query = query.normalised()
        tree = query.criterion()
        with self._read(snapshot=True) as con:
            layout = self._layout(con)
            pairs = _pairs_in_scope(layout, query, scopes)
            scope = _scope(layout, pairs)
            listed = data_domains(con, strata, scope, strata_min_subjects)
            domains = [strata_domain(dims, listed) for dims in strata]
            cells = sum(len(d) for d in domains)
            if cells > max_strata_cells:
                raise QueryError(
                    f"the strata asked for have {cells} cells; at most "
                    f"{max_strata_cells} are allowed (ask for fewer dimensions)"
                )
            statistics = self._statistics(con, layout)
            compiled = compile_count(
                tree,
                scope,
                strata,
                sketches=evidence,
                selectivity=statistics.share,
                domains=listed,
                expansions=self._expansions(tree),
                providers=layout.pids,
                spanning=layout.spanning(scope),
                shared=layout.sharing(scope),
                shared_subjects=layout.sharing_subjects(scope),
                linkage=linkage and bool(layout.linked),
            )
            try:
                rows = con.execute(compiled.sql, compiled.params).fetchall()
            except duckdb.Error as exc:
                raise StoreError(f"the cohort index could not answer the query: {exc}") from exc
        linked = {p for p, _ in pairs if layout.pids[p] in layout.linked} if linkage else set()
        return _assemble(
            layout.named(rows), pairs, strata, domains, "; ".join(compiled.plan), linked
        )

    def _expansions(self, tree: Criterion) -> dict[str, frozenset[tuple[str, str]]]:
        """Concept values (CURIEs) of body part and modality criteria -> the (provider, raw
        value) pairs whose concepts hold them, i.e. mapped to the concept or a descendant."""
        out: dict[str, frozenset[tuple[str, str]]] = {}
        for leaf, _ in tree.leaves():
            items: tuple[SeriesCriteria, ...] = (leaf.series,) if leaf.series else ()
            if leaf.study is not None:
                items = leaf.study.series
            for item in items:
                for field_name, values in (
                    ("body_part", item.body_part),
                    ("modality", item.modality),
                ):
                    for value in values:
                        if value not in out and is_curie(value):
                            out[value] = self.concept_values(field_name, [value])
        return out

    def _layout(self, con: duckdb.DuckDBPyConnection) -> _Layout:
        """The keys of the roll-ups `con` sees (cached per generation of the roll-ups)."""
        row = con.execute("SELECT generation FROM cohort_layout").fetchone()
        generation = int(row[0]) if row else 0
        cached = self._layout_cache
        if cached is None or cached.generation != generation:
            cells = con.execute("SELECT cell, pid, provider, dataset FROM cells ORDER BY cell")
            rows = cells.fetchall()
            spans = con.execute("SELECT DISTINCT cell FROM subjects WHERE multi").fetchall()
            shares = con.execute(
                "SELECT DISTINCT cell FROM studies WHERE NOT (d_one AND p_one AND v_one)"
            ).fetchall()
            namesakes = con.execute("SELECT DISTINCT cell FROM studies WHERE NOT s_one")
            linked = con.execute("SELECT DISTINCT pid FROM linkage").fetchall()
            cached = self._layout_cache = _Layout(
                generation=generation,
                cells=[(str(p), str(d)) for _, _, p, d in rows],
                providers={int(pid): str(p) for _, pid, p, _ in rows},
                spanned=frozenset(int(c) for (c,) in spans),
                shared=frozenset(int(c) for (c,) in shares),
                namesakes=frozenset(int(c) for (c,) in namesakes.fetchall()),
                linked=frozenset(int(p) for (p,) in linked),
            )
        return cached

    def _statistics(self, con: duckdb.DuckDBPyConnection, layout: _Layout) -> Statistics:
        cached = self._stats_cache
        if cached is None or cached[0] != layout.generation:
            cached = self._stats_cache = (layout.generation, Statistics.read(con))
        return cached[1]

    def summaries(self, provider_id: str) -> dict[str, ExactSummary]:
        with self._read() as con:
            totals = con.execute(
                "SELECT dataset, count(DISTINCT subject), count(DISTINCT study), "
                "min(age), max(age) FROM series WHERE provider = $1 GROUP BY dataset",
                [provider_id],
            ).fetchall()
            by_value: dict[str, dict[str, dict[str, int]]] = {}
            for column in ("modality", "body_part", "manufacturer"):
                rows = con.execute(
                    f"SELECT dataset, {column}, count(DISTINCT subject) FROM series "
                    f"WHERE provider = $1 AND {column} IS NOT NULL GROUP BY dataset, {column}",
                    [provider_id],
                ).fetchall()
                for dataset, value, n in rows:
                    by_value.setdefault(dataset, {}).setdefault(column, {})[value] = n
        out = {}
        for dataset, subjects, studies, age_min, age_max in totals:
            values = by_value.get(dataset, {})
            out[str(dataset)] = ExactSummary(
                subjects=subjects,
                studies=studies,
                age_min=age_min,
                age_max=age_max,
                subjects_by_modality=values.get("modality", {}),
                subjects_by_body_part=values.get("body_part", {}),
                subjects_by_manufacturer=values.get("manufacturer", {}),
            )
        return out

    def scopes(self) -> list[tuple[str, str]]:
        with self._read(snapshot=True) as con:
            return self._layout(con).cells

    def distinct_values(self, provider_id: str, field: str) -> dict[str, tuple[int, int]]:
        """Raw value of a series column -> (series, subjects) holding it, for one provider."""
        if field not in VALUE_FIELDS:
            raise QueryError(f"unknown field {field!r} (known: {', '.join(VALUE_FIELDS)})")
        with self._read() as con:
            rows = con.execute(
                f"SELECT {field}, count(*), count(DISTINCT subject) FROM series "
                f"WHERE provider = $1 AND {field} IS NOT NULL GROUP BY {field}",
                [provider_id],
            ).fetchall()
        return {str(value): (int(series), int(subjects)) for value, series, subjects in rows}

    def replace_value_concepts(
        self, provider_id: str, rows: Iterable[tuple[str, str, str]], version: int
    ) -> None:
        """Make (field, raw value, concept) rows the provider's value concepts, computed with
        mapping set `version`, in one transaction."""
        fields, values, concepts = [], [], []
        for field, value, concept in rows:
            fields.append(field)
            values.append(value)
            concepts.append(concept)
        incoming = pa.table(
            {
                "field": pa.array(fields, pa.string()),
                "value": pa.array(values, pa.string()),
                "concept": pa.array(concepts, pa.string()),
            }
        )
        with self._write() as con:
            con.execute("DELETE FROM value_concepts WHERE provider = ?", [provider_id])
            con.register("incoming", incoming)
            con.execute(
                "INSERT INTO value_concepts SELECT DISTINCT $1, field, value, concept "
                "FROM incoming",
                [provider_id],
            )
            con.unregister("incoming")
            con.execute(
                "INSERT OR REPLACE INTO value_concept_versions VALUES (?, ?)",
                [provider_id, version],
            )

    def sources(self) -> list[tuple[str, str]]:
        """Every (provider, source) holding series rows or diagnoses."""
        with self._read() as con:
            rows = con.execute(
                "SELECT provider, source FROM series UNION SELECT provider, source "
                "FROM diagnoses ORDER BY ALL"
            ).fetchall()
        return [(str(p), str(s)) for p, s in rows]

    def export(self, provider_id: str, source_id: str) -> Iterator[pa.RecordBatch]:
        """A source's series rows as SERIES_SCHEMA batches (to load into another backend)."""
        with self._read(snapshot=True) as con:
            reader = con.sql(
                f"SELECT {_COLUMNS} FROM series WHERE provider = $1 AND source = $2 "
                "ORDER BY subject, study, series",
                params=[provider_id, source_id],
            ).to_arrow_reader(_EXPORT_BATCH)
            for batch in reader:
                yield as_series_batch(batch)

    def export_diagnoses(self, provider_id: str, source_id: str) -> list[tuple[int, str]]:
        """A source's (subject pseudonym, normalised code) pairs."""
        with self._read() as con:
            rows = con.execute(
                "SELECT subject, code FROM diagnoses WHERE provider = $1 AND source = $2 "
                "ORDER BY ALL",
                [provider_id, source_id],
            ).fetchall()
        return [(int(s), str(c)) for s, c in rows]

    def value_concepts(self, provider_id: str) -> list[tuple[str, str, str]]:
        """A provider's (field, raw value, concept) rows (see `replace_value_concepts`)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT field, value, concept FROM value_concepts WHERE provider = $1 ORDER BY ALL",
                [provider_id],
            ).fetchall()
        return [(str(f), str(v), str(c)) for f, v, c in rows]

    def concept_values(self, field: str, concepts: Collection[str]) -> frozenset[tuple[str, str]]:
        """(provider, raw value) pairs of `field` whose concepts (closure) hold any of
        `concepts`."""
        if not concepts:
            return frozenset()
        with self._read() as con:
            rows = con.execute(
                "SELECT DISTINCT provider, value FROM value_concepts "
                "WHERE field = $1 AND list_contains($2, concept)",
                [field, sorted(concepts)],
            ).fetchall()
        return frozenset((str(p), str(v)) for p, v in rows)

    def mapping_version(self, provider_id: str | None = None) -> int | None:
        """The mapping set version the value concepts were computed with: the provider's, or
        the oldest over every provider; None before any."""
        with self._read() as con:
            if provider_id is None:
                row = con.execute("SELECT min(version) FROM value_concept_versions").fetchone()
            else:
                row = con.execute(
                    "SELECT version FROM value_concept_versions WHERE provider = ?", [provider_id]
                ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def close(self) -> None:
        self._con.close()


@dataclass(frozen=True)
class _Layout:
    """The dense keys of cells and providers, and where subjects span datasets."""

    generation: int
    """The write whose roll-ups these are."""
    cells: list[tuple[str, str]]
    providers: dict[int, str]
    spanned: frozenset[int]
    """Cells holding a subject whose rows lie in more than one dataset of its provider."""
    shared: frozenset[int]
    """Cells holding a study whose id has rows of another subject, dataset or provider."""
    namesakes: frozenset[int]
    """Cells holding a subject whose id is also a subject of another provider."""
    linked: frozenset[int]
    """Providers (pid) whose subjects have linkage codes."""

    def spanning(self, scope: Scope) -> bool:
        """Whether a subject in scope may match differently at provider level."""
        return _meets(self.spanned, scope)

    def sharing(self, scope: Scope) -> bool:
        """Whether a study in scope may need de-duplicating."""
        return _meets(self.shared, scope)

    def sharing_subjects(self, scope: Scope) -> bool:
        """Whether a subject id in scope may need de-duplicating (in strata fingerprints)."""
        return _meets(self.namesakes, scope)

    @property
    def pids(self) -> dict[str, int]:
        return {p: pid for pid, p in self.providers.items()}

    def named(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The statement's rows with (provider, dataset) in place of their keys."""
        out = []
        for row in rows:
            kind, key = row[0], row[1]
            if kind in ("p", "kp", "hp"):
                out.append((kind, self.providers[key], None, *row[2:]))
            elif kind in ("d", "kd"):
                out.append((kind, *self.cells[key], *row[2:]))
            else:
                out.append((kind, None, None, *row[2:]))
        return out


def _pairs_in_scope(
    layout: _Layout, query: CohortQuery, scopes: frozenset[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    scope = query.datasets
    if scope.by_metadata and scopes is None:
        raise QueryError(
            "cancer types, access rights and licences are resolved from the catalogue's "
            "metadata: ask through the feasibility service"
        )
    return [
        s
        for s in layout.cells
        if (not scope.providers or s[0] in scope.providers)
        and (not scope.datasets or s[1] in scope.datasets)
        and (scopes is None or s in scopes)
    ]


def _scope(layout: _Layout, pairs: list[tuple[str, str]]) -> Scope:
    """The cells of `pairs` (None when every cell is in scope)."""
    if len(pairs) == len(layout.cells):
        return Scope()
    chosen = set(pairs)
    return Scope(cells=tuple(i for i, pair in enumerate(layout.cells) if pair in chosen))


def _merged(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Partial rows of one cell (kinds p, d and s<n>) added up: counts summed, fingerprints
    XOR-ed (the statement counts disjoint parts of a cell's sets separately)."""
    out: list[tuple[Any, ...]] = []
    parts: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        kind = row[0]
        if kind not in ("p", "d") and not kind.startswith("s"):
            out.append(row)
            continue
        key = (kind, row[1], row[2], None if row[9] is None else tuple(row[9]))
        found = parts.get(key)
        if found is None:
            parts[key] = list(row)
            continue
        for i in (3, 4, 5):
            found[i] = int(found[i] or 0) + int(row[i] or 0)
        for i in (6, 7, 8):
            if row[i] is not None:
                found[i] = int(found[i] or 0) ^ int(row[i])
    return [tuple(r) for r in parts.values()] + out


def _meets(cells: frozenset[int], scope: Scope) -> bool:
    return bool(cells if scope.cells is None else cells & set(scope.cells))


def _evidence(row: tuple[Any, ...]) -> CellEvidence:
    return CellEvidence(
        subject_fp=int(row[6] or 0), study_fp=int(row[7] or 0), series_fp=int(row[8] or 0)
    )


def _assemble(
    rows: list[tuple[Any, ...]],
    pairs: list[tuple[str, str]],
    strata: tuple[tuple[Stratum, ...], ...],
    domains: list[list[tuple[str | None, ...]]],
    plan: str,
    linked: set[str],
) -> ExactResult:
    """The statement's rows as an ExactResult; cells in scope without matches are zeros; the
    `linked` providers get their HyperLogLog registers (empty when no subject matches)."""
    ranks: dict[str, list[tuple[int, int]]] = {p: [] for p in linked}
    rows = _merged(rows)
    by_provider = {p: ExactCounts() for p in sorted({p for p, _ in pairs})}
    by_dataset = {pair: ExactCounts() for pair in pairs}
    evidence: dict[str, CellEvidence] = {}
    sketches: dict[str, list[tuple[int, int]]] = {}
    found: list[dict[tuple[str | None, ...], StratumCell]] = [{} for _ in strata]
    cell_sketches: dict[tuple[int, tuple[str | None, ...]], list[tuple[int, int]]] = {}
    for row in rows:
        kind, provider, dataset = row[0], row[1], row[2]
        if kind in ("p", "d"):
            counts = ExactCounts(subjects=row[3], studies=row[4], series=row[5])
            if kind == "p":
                by_provider[provider] = counts
                evidence[f"provider:{provider}"] = _evidence(row)
            else:
                by_dataset[(provider, dataset)] = counts
                evidence[f"dataset:{provider}/{dataset}"] = _evidence(row)
        elif kind == "hp":
            ranks[provider].append((int(row[3]), int(row[4])))
        elif kind in ("kp", "kd"):
            key = f"provider:{provider}" if kind == "kp" else f"dataset:{provider}/{dataset}"
            sketches.setdefault(key, []).append((int(row[3]), int(row[4])))
        elif kind.startswith("q"):
            cell_sketches.setdefault((int(kind[1:]), tuple(row[9])), []).append(
                (int(row[3]), int(row[4]))
            )
        else:
            values = tuple(row[9])
            found[int(kind[1:])][values] = StratumCell(
                values=values,
                counts=ExactCounts(subjects=row[3], studies=row[4], series=row[5]),
                evidence=_evidence(row),
            )
    total_sketch: dict[int, int] = {}
    for key, buckets in sketches.items():
        buckets.sort()
        if key.startswith("provider:"):
            for bucket, n in buckets:
                total_sketch[bucket] = total_sketch.get(bucket, 0) + n
        evidence[key] = evidence.get(key, CellEvidence()).model_copy(
            update={"sketch": tuple(buckets)}
        )
    total_fp = [0, 0, 0]
    for key, cell in evidence.items():
        if key.startswith("provider:"):
            total_fp = [
                total_fp[0] ^ cell.subject_fp,
                total_fp[1] ^ cell.study_fp,
                total_fp[2] ^ cell.series_fp,
            ]
    evidence["total"] = CellEvidence(
        subject_fp=total_fp[0],
        study_fp=total_fp[1],
        series_fp=total_fp[2],
        sketch=tuple(sorted(total_sketch.items())),
    )
    total = ExactCounts(
        subjects=sum(c.subjects for c in by_provider.values()),
        studies=sum(c.studies for c in by_provider.values()),
        series=sum(c.series for c in by_provider.values()),
    )
    for (number, values), buckets in cell_sketches.items():
        stratum_cell = found[number][values]
        sketched = stratum_cell.evidence.model_copy(update={"sketch": tuple(sorted(buckets))})
        found[number][values] = stratum_cell.model_copy(update={"evidence": sketched})
    tables = tuple(
        StrataTable(
            dimensions=dims,
            cells=tuple(
                cells.get(values) or StratumCell(values=values, counts=ExactCounts())
                for values in domain
            ),
        )
        for dims, domain, cells in zip(strata, domains, found, strict=True)
    )
    return ExactResult(
        total=total,
        by_provider=by_provider,
        by_dataset=by_dataset,
        strata=tables,
        evidence=evidence,
        plan=plan,
        linkage={p: HllSketch.from_ranks(found).registers for p, found in sorted(ranks.items())},
    )
