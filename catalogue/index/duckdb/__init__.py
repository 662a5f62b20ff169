"""CohortIndex on DuckDB on disk: one columnar row per series, exact counts by SQL.

A query compiles to one statement (compiler.py); a small planner (planner.py) picks the level to
start from with per-value subject counts kept after each write.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalogue.domain.cohort import (
    CellEvidence,
    CohortQuery,
    ExactCounts,
    ExactResult,
    ExactSummary,
    StrataTable,
    Stratum,
    StratumCell,
)
from catalogue.exceptions import QueryError, StoreError
from catalogue.imaging.features import SERIES_SCHEMA
from catalogue.index.duckdb.compiler import Scope, compile_count
from catalogue.index.duckdb.planner import Statistics, data_domains, strata_domain

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


class DuckDBCohortIndex:
    """A DuckDB database file with one `series` table; writes are serialised by a lock."""

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
        self._scope_cache: list[tuple[str, str]] | None = None
        self._stats_cache: Statistics | None = None

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

    def replace_source(
        self, provider_id: str, source_id: str, batches: Iterable[pa.RecordBatch]
    ) -> int:
        with self._lock:
            con = self._con.cursor()
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    "DELETE FROM series WHERE provider = ? AND source = ?", [provider_id, source_id]
                )
                rows = 0
                for batch in batches:
                    if batch.schema != SERIES_SCHEMA:
                        batch = pa.Table.from_batches([batch]).cast(SERIES_SCHEMA).to_batches()[0]
                    con.register("incoming", batch)
                    con.execute(
                        f"INSERT INTO series (provider, source, {_COLUMNS}) "
                        f"SELECT $1, $2, {_COLUMNS} FROM incoming",
                        [provider_id, source_id],
                    )
                    con.unregister("incoming")
                    rows += batch.num_rows
                con.execute(_SUBJECT_SEX, {"provider": provider_id})
                con.execute("COMMIT")
                self._scope_cache = None
                self._stats_cache = None
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()
            return rows

    def replace_diagnoses(
        self, provider_id: str, source_id: str, rows: Iterable[tuple[int, str]]
    ) -> int:
        with self._lock:
            con = self._con.cursor()
            con.execute("BEGIN TRANSACTION")
            try:
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
                con.execute("COMMIT")
                self._scope_cache = None
                self._stats_cache = None
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()
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
    ) -> ExactResult:
        query = query.normalised()
        tree = query.criterion()
        con = self._con.cursor()
        try:
            pairs = self._pairs_in_scope(con, query, scopes)
            scope = self._scope(con, pairs)
            listed = data_domains(con, strata, scope, strata_min_subjects)
            domains = [strata_domain(dims, listed) for dims in strata]
            cells = sum(len(d) for d in domains)
            if cells > max_strata_cells:
                raise QueryError(
                    f"the strata asked for have {cells} cells; at most "
                    f"{max_strata_cells} are allowed (ask for fewer dimensions)"
                )
            statistics = self._statistics(con)
            compiled = compile_count(
                tree,
                scope,
                strata,
                sketches=evidence,
                selectivity=statistics.share,
                domains=listed,
            )
            try:
                rows = con.execute(compiled.sql, compiled.params).fetchall()
            except duckdb.Error as exc:
                raise StoreError(f"the cohort index could not answer the query: {exc}") from exc
        finally:
            con.close()
        return _assemble(rows, pairs, strata, domains, "; ".join(compiled.plan))

    def _pairs_in_scope(
        self,
        con: duckdb.DuckDBPyConnection,
        query: CohortQuery,
        scopes: frozenset[tuple[str, str]] | None,
    ) -> list[tuple[str, str]]:
        scope = query.datasets
        if scope.by_metadata and scopes is None:
            raise QueryError(
                "cancer types, access rights and licences are resolved from the catalogue's "
                "metadata: ask through the feasibility service"
            )
        return [
            s
            for s in self._all_scopes(con)
            if (not scope.providers or s[0] in scope.providers)
            and (not scope.datasets or s[1] in scope.datasets)
            and (scopes is None or s in scopes)
        ]

    def _scope(self, con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> Scope:
        """The cheapest row filters selecting exactly `pairs`."""
        every = self._all_scopes(con)
        if len(pairs) == len(every):
            return Scope()
        if not pairs:
            return Scope(empty=True)
        providers = tuple(sorted({p for p, _ in pairs}))
        whole = [s for s in every if s[0] in providers]
        if len(whole) == len(pairs):
            return Scope(providers=providers)
        datasets = tuple(sorted({d for _, d in pairs}))
        covered = [s for s in whole if s[1] in datasets]
        if len(covered) == len(pairs):
            return Scope(providers=providers, datasets=datasets)
        return Scope(providers=providers, pairs=tuple(pairs))

    def _statistics(self, con: duckdb.DuckDBPyConnection) -> Statistics:
        cached = self._stats_cache
        if cached is None:
            cached = self._stats_cache = Statistics.read(con)
        return cached

    def _all_scopes(self, con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
        cached = self._scope_cache
        if cached is None:
            rows = con.execute(
                "SELECT DISTINCT provider, dataset FROM series ORDER BY provider, dataset"
            ).fetchall()
            cached = self._scope_cache = [(str(p), str(d)) for p, d in rows]
        return cached

    def summaries(self, provider_id: str) -> dict[str, ExactSummary]:
        con = self._con.cursor()
        try:
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
        finally:
            con.close()
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
        con = self._con.cursor()
        try:
            return self._all_scopes(con)
        finally:
            con.close()

    def distinct_values(self, provider_id: str, field: str) -> dict[str, tuple[int, int]]:
        """Raw value of a series column -> (series, subjects) holding it, for one provider."""
        if field not in VALUE_FIELDS:
            raise QueryError(f"unknown field {field!r} (known: {', '.join(VALUE_FIELDS)})")
        con = self._con.cursor()
        try:
            rows = con.execute(
                f"SELECT {field}, count(*), count(DISTINCT subject) FROM series "
                f"WHERE provider = $1 AND {field} IS NOT NULL GROUP BY {field}",
                [provider_id],
            ).fetchall()
        finally:
            con.close()
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
        with self._lock:
            con = self._con.cursor()
            con.execute("BEGIN TRANSACTION")
            try:
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
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()

    def concept_values(self, field: str, concepts: Collection[str]) -> frozenset[tuple[str, str]]:
        """(provider, raw value) pairs of `field` whose concepts (closure) hold any of
        `concepts`."""
        if not concepts:
            return frozenset()
        con = self._con.cursor()
        try:
            rows = con.execute(
                "SELECT DISTINCT provider, value FROM value_concepts "
                "WHERE field = $1 AND list_contains($2, concept)",
                [field, sorted(concepts)],
            ).fetchall()
        finally:
            con.close()
        return frozenset((str(p), str(v)) for p, v in rows)

    def mapping_version(self, provider_id: str | None = None) -> int | None:
        """The mapping set version the value concepts were computed with: the provider's, or
        the oldest over every provider; None before any."""
        con = self._con.cursor()
        try:
            if provider_id is None:
                row = con.execute("SELECT min(version) FROM value_concept_versions").fetchone()
            else:
                row = con.execute(
                    "SELECT version FROM value_concept_versions WHERE provider = ?", [provider_id]
                ).fetchone()
        finally:
            con.close()
        return None if row is None or row[0] is None else int(row[0])

    def close(self) -> None:
        self._con.close()


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
) -> ExactResult:
    """The statement's rows as an ExactResult; cells in scope without matches are zeros."""
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
    )
