"""Reference feasibility counts over the raw idc_index.parquet: plain DuckDB SQL per leaf,
then Python set algebra (docs/feasibility.md).

Independent of the catalogue's harvest, pseudonyms and cohort index: it reads the raw IDC
series table and the demo's collections.csv, and shares only the query model.

The rows (parsed once per connection into a TEMP table):

- The provider of a row is the collections.csv mapping of its collection_id; rows whose
  collection is not mapped, and rows with a NULL or empty PatientID, StudyInstanceUID,
  SeriesInstanceUID or collection_id, are ignored.
- A subject is (provider, PatientID), a study (provider, StudyInstanceUID) and a study of a
  subject its rows of that study; each row is one series.
- Row sex is upper(trim(PatientSex)) when F, M or O, else U. Subject sex is the one distinct
  non-U sex of all the subject's rows in the provider (whatever the query scope), else U.
- Row age is whole years from PatientAge matching ^\\s*(\\d{1,3})\\s*([DWMYdwmy])\\s*$:
  Y -> n, M -> n // 12, W -> floor(n * 7 / 365.25), D -> floor(n / 365.25); above 150, or
  not matching, it is NULL.
- The study year is the first four characters of StudyDate when they are digits and make a
  year in 1800..2200, else NULL.
- Modality and body part have whitespace runs collapsed and are upper-cased, manufacturer and
  model (ManufacturerModelName) have whitespace collapsed and are lower-cased; empty is NULL.
  An annotation row is one of modality SEG, RTSTRUCT or SR.
- IDC has no ReferencedSeriesUID, SliceThickness, MagneticFieldStrength or ContrastBolusAgent:
  an annotation's annotated series is unknown (so it annotates every other row of its study
  and collection),
  slice-thickness and field-strength bounds never hold, and no contrast is ever recorded
  (`contrast: false` holds for every row, `contrast: true` for none). IDC supplies no
  diagnoses (a diagnosis leaf holds for nobody).

Formulation: every in-scope row is listed once per cell it belongs to: its provider (the cell
'') and its collection (the cell is the collection_id). Each leaf of the normalised tree is one
SQL query giving the set of (provider, cell, patient) it holds for; the tree is then evaluated
with Python sets: allOf is the intersection, anyOf the union, not the in-scope subjects of the
cell minus the child. Counted rows are, likewise, the union of the (row, cell) sets each
positive leaf selects by SQL (or every row when there is none), restricted to the matching
subjects; studies, series and strata are counted over them by SQL. A strata table lists all
sexes, all age bands and, for modality, body part and year, the values at least
`strata_min_subjects` subjects hold in scope, then '(other)' for the rest, then unknown
(docs/privacy.md, "Strata listings").
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalogue.domain.cohort import (
    CohortQuery,
    Criterion,
    ExactCounts,
    ExactResult,
    SeriesCriteria,
    StrataTable,
    Stratum,
    StratumCell,
    StudyCriteria,
    SubjectCriteria,
)
from tests.reference.cohort_reference import AGE_BANDS, OTHER, SEXES

Key = tuple[str, str, str]
"""(provider, cell, patient): a subject in a cell; the cell is '' for the provider cell."""

IDC_ROWS = r"""
provider_of AS (
    SELECT collection_id, provider_id
    FROM read_csv($collections, header = true, all_varchar = true)
),
parsed AS (
    SELECT
        p.provider_id AS provider,
        s.collection_id AS dataset,
        s.PatientID AS patient,
        s.StudyInstanceUID AS study,
        s.SeriesInstanceUID AS series,
        CASE WHEN upper(trim(s.PatientSex)) IN ('F', 'M', 'O') THEN upper(trim(s.PatientSex))
             ELSE 'U' END AS sex,
        regexp_extract(
            s.PatientAge, '^\s*(\d{1,3})\s*([DWMYdwmy])\s*$', ['number', 'unit']
        ) AS age_text,
        CASE WHEN regexp_matches(trim(s.StudyDate), '^[0-9]{4}')
             THEN CAST(substr(trim(s.StudyDate), 1, 4) AS INTEGER) END AS year_number,
        nullif(upper(trim(regexp_replace(s.Modality, '\s+', ' ', 'g'))), '') AS modality,
        nullif(upper(trim(regexp_replace(s.BodyPartExamined, '\s+', ' ', 'g'))), '')
            AS body_part,
        nullif(lower(trim(regexp_replace(s.Manufacturer, '\s+', ' ', 'g'))), '')
            AS manufacturer,
        nullif(lower(trim(regexp_replace(s.ManufacturerModelName, '\s+', ' ', 'g'))), '')
            AS model
    FROM read_parquet($parquet) AS s
    JOIN provider_of AS p ON p.collection_id = s.collection_id
    WHERE coalesce(s.PatientID, '') <> ''
      AND coalesce(s.StudyInstanceUID, '') <> ''
      AND coalesce(s.SeriesInstanceUID, '') <> ''
      AND coalesce(s.collection_id, '') <> ''
),
aged AS (
    SELECT
        * EXCLUDE (age_text, year_number),
        CASE upper(age_text.unit)
            WHEN 'Y' THEN try_cast(age_text.number AS INTEGER)
            WHEN 'M' THEN try_cast(age_text.number AS INTEGER) // 12
            WHEN 'W' THEN CAST(floor(try_cast(age_text.number AS INTEGER) * 7 / 365.25) AS INTEGER)
            WHEN 'D' THEN CAST(floor(try_cast(age_text.number AS INTEGER) / 365.25) AS INTEGER)
        END AS age_years,
        CASE WHEN year_number BETWEEN 1800 AND 2200 THEN year_number END AS study_year
    FROM parsed
),
idc_rows AS (
    SELECT * EXCLUDE (age_years), CASE WHEN age_years <= 150 THEN age_years END AS age
    FROM aged
)
"""
"""The WITH list (without WITH) whose last query, `idc_rows`, is the rows parsed as above, one
per series: provider, dataset, patient, study, series, sex, modality, body_part, manufacturer,
model, study_year, age. Parameters: $parquet (idc_index.parquet), $collections (the CSV).
bench/feasibility_sql.py parses with it too."""

_PARSE = f"""
CREATE TEMP TABLE {{rows}} AS
WITH {IDC_ROWS}
SELECT
    CAST(row_number() OVER () AS BIGINT) AS rid,
    *,
    coalesce(modality IN ('SEG', 'RTSTRUCT', 'SR'), FALSE) AS is_annotation
FROM idc_rows
"""

_SUBJECT_SEX = """
CREATE TEMP TABLE {sexes} AS
SELECT provider, patient,
       CASE WHEN len(known) = 1 THEN known[1] ELSE 'U' END AS sex
FROM (
    SELECT provider, patient, list_distinct(list(sex) FILTER (WHERE sex <> 'U')) AS known
    FROM {rows} GROUP BY provider, patient
)
"""

_CELLS = """
CREATE OR REPLACE TEMP VIEW ref_cells AS
SELECT r.*, '' AS cell FROM {rows} AS r JOIN ref_scope USING (provider, dataset)
UNION ALL
SELECT r.*, r.dataset AS cell FROM {rows} AS r JOIN ref_scope USING (provider, dataset)
"""


class _Tables:
    """The names of one connection's parsed tables of one (parquet, collections) pair."""

    def __init__(self, con: duckdb.DuckDBPyConnection, parquet: Path, csv: Path) -> None:
        digest = hashlib.sha1(f"{parquet}\0{csv}".encode()).hexdigest()[:12]
        self.rows = f"ref_rows_{digest}"
        self.sexes = f"ref_sexes_{digest}"
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = $name",
            {"name": self.sexes},
        ).fetchone()
        if not found or not found[0]:
            params = {"parquet": str(parquet), "collections": str(csv)}
            con.execute(_PARSE.replace("{rows}", self.rows), params)
            con.execute(_SUBJECT_SEX.replace("{rows}", self.rows).replace("{sexes}", self.sexes))
        rows = con.execute(f"SELECT DISTINCT provider, dataset FROM {self.rows}").fetchall()
        self.pairs = sorted((str(p), str(d)) for p, d in rows)


class _Sql:
    """Accumulates named parameters while a query text is put together."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def one_of(self, column: str, values: Iterable[Any]) -> str:
        return f"list_contains({self.bind(list(values))}, {column})"


def _bounds(sql: _Sql, column: str, low: float | None, high: float | None) -> list[str]:
    parts = [f"{column} IS NOT NULL"]
    if low is not None:
        parts.append(f"{column} >= {sql.bind(low)}")
    if high is not None:
        parts.append(f"{column} <= {sql.bind(high)}")
    return parts


def _series_predicate(sql: _Sql, item: SeriesCriteria, u: str) -> str:
    """Whether row `u` (of ref_cells) meets a series item."""
    parts = ["TRUE"]
    for column, values in (
        ("modality", item.modality),
        ("body_part", item.body_part),
        ("manufacturer", item.manufacturer),
        ("model", item.model),
    ):
        if values:
            parts.append(sql.one_of(f"{u}.{column}", values))
    # No slice thickness, field strength or contrast agent in IDC.
    measured = (
        item.slice_thickness_min,
        item.slice_thickness_max,
        item.field_strength_min,
        item.field_strength_max,
    )
    if any(v is not None for v in measured) or item.contrast is True:
        parts.append("FALSE")
    if item.has_annotation:
        kinds = sql.one_of("a.modality", (k.value for k in item.has_annotation))
        parts.append(f"""EXISTS (
            SELECT 1 FROM ref_cells AS a
            WHERE a.provider = {u}.provider AND a.cell = {u}.cell AND a.patient = {u}.patient
              AND a.study = {u}.study AND a.dataset = {u}.dataset AND a.rid <> {u}.rid
              AND a.is_annotation AND {kinds}
        )""")
    return "(" + " AND ".join(parts) + ")"


def _study_grouped(sql: _Sql, leaf: StudyCriteria) -> str:
    """Per (provider, cell, patient, study) of ref_cells, whether that study meets the leaf."""
    flags = []
    if leaf.year_min is not None or leaf.year_max is not None:
        year = " AND ".join(_bounds(sql, "u.study_year", leaf.year_min, leaf.year_max))
        flags.append(f"bool_or({year})")
    for modality in leaf.modalities:
        flags.append(f"bool_or(u.modality = {sql.bind(modality)})")
    for item in leaf.series:
        flags.append(f"bool_or({_series_predicate(sql, item, 'u')})")
    met = " AND ".join(flags) or "TRUE"
    return f"""
        SELECT u.provider, u.cell, u.patient, u.study, {met} AS met
        FROM ref_cells AS u GROUP BY u.provider, u.cell, u.patient, u.study"""


def _leaf_subjects(con: duckdb.DuckDBPyConnection, tables: _Tables, leaf: Criterion) -> set[Key]:
    """The (provider, cell, patient) a leaf holds for."""
    sql = _Sql()
    if leaf.subject is not None:
        subject: SubjectCriteria = leaf.subject
        parts = ["TRUE"]
        if subject.sex:
            parts.append(sql.one_of("x.sex", (s.value for s in subject.sex)))
        if subject.age_min is not None or subject.age_max is not None:
            parts.extend(_bounds(sql, "u.age", subject.age_min, subject.age_max))
        if subject.diagnosis:
            parts.append("FALSE")  # IDC supplies no diagnoses
        text = f"""
            SELECT DISTINCT u.provider, u.cell, u.patient
            FROM ref_cells AS u JOIN {tables.sexes} AS x USING (provider, patient)
            WHERE {" AND ".join(parts)}"""
    elif leaf.series is not None:
        text = f"""
            SELECT DISTINCT u.provider, u.cell, u.patient FROM ref_cells AS u
            WHERE {_series_predicate(sql, leaf.series, "u")}"""
    else:
        assert leaf.study is not None
        text = f"""
            SELECT DISTINCT provider, cell, patient
            FROM ({_study_grouped(sql, leaf.study)}) WHERE met"""
    return {(str(p), str(c), str(s)) for p, c, s in con.execute(text, sql.params).fetchall()}


def _leaf_rows(con: duckdb.DuckDBPyConnection, leaf: Criterion) -> set[int]:
    """The rows a positive leaf counts, as rid * 2 + (1 in the dataset cell, 0 in the
    provider cell)."""
    sql = _Sql()
    key = "u.rid * 2 + CAST(u.cell <> '' AS BIGINT)"
    if leaf.series is not None:
        text = f"SELECT {key} FROM ref_cells AS u WHERE {_series_predicate(sql, leaf.series, 'u')}"
    else:
        assert leaf.study is not None
        study = leaf.study
        chosen = [sql.one_of("u.modality", study.modalities)] if study.modalities else []
        chosen.extend(_series_predicate(sql, item, "u") for item in study.series)
        text = f"""
            SELECT {key} FROM ref_cells AS u
            JOIN ({_study_grouped(sql, study)}) AS t USING (provider, cell, patient, study)
            WHERE t.met AND ({" OR ".join(chosen) or "TRUE"})"""
    found = con.sql(text, params=sql.params).to_arrow_table()
    return set(found.column(0).to_pylist())


def _evaluate(
    con: duckdb.DuckDBPyConnection,
    tables: _Tables,
    node: Criterion,
    universe: set[Key],
    memo: dict[str, set[Key]],
) -> set[Key]:
    if node.all_of is not None:
        both = set(universe)
        for child in node.all_of:
            both &= _evaluate(con, tables, child, universe, memo)
        return both
    if node.any_of is not None:
        either: set[Key] = set()
        for child in node.any_of:
            either |= _evaluate(con, tables, child, universe, memo)
        return either
    if node.not_ is not None:
        return universe - _evaluate(con, tables, node.not_, universe, memo)
    text = str(node.to_json())
    if text not in memo:
        memo[text] = _leaf_subjects(con, tables, node)
    return memo[text]


def _positive(node: Criterion, negations: int = 0) -> list[Criterion]:
    """The series and study leaves under an even number of `not`s."""
    children = node.all_of if node.all_of is not None else node.any_of
    if children is not None:
        return [leaf for child in children for leaf in _positive(child, negations)]
    if node.not_ is not None:
        return _positive(node.not_, negations + 1)
    if node.subject is None and negations % 2 == 0:
        return [node]
    return []


def _dimension(stratum: Stratum) -> str:
    """The SQL value of a dimension for a row `h` of the counted rows (with its subject sex)."""
    return {
        Stratum.SEX: "h.subject_sex",
        Stratum.AGE_BAND: (
            "CASE WHEN h.age IS NULL THEN NULL WHEN h.age >= 100 THEN '100+' "
            "ELSE CAST(h.age // 10 * 10 AS VARCHAR) || '-' "
            "|| CAST(h.age // 10 * 10 + 9 AS VARCHAR) END"
        ),
        Stratum.MODALITY: "h.modality",
        Stratum.BODY_PART: "h.body_part",
        Stratum.YEAR: "CAST(h.study_year AS VARCHAR)",
    }[stratum]


def _listed(con: duckdb.DuckDBPyConnection, stratum: Stratum, min_subjects: int) -> list[str]:
    """The values of a data-valued dimension that at least `min_subjects` subjects hold in the
    scope."""
    rows = con.execute(
        f"""SELECT v FROM (
            SELECT {_dimension(stratum)} AS v, count(DISTINCT (h.provider, h.patient)) AS n
            FROM ref_cells AS h WHERE h.cell = '' GROUP BY v
        ) WHERE v IS NOT NULL AND n >= $min ORDER BY v""",
        {"min": min_subjects},
    ).fetchall()
    return [str(v) for (v,) in rows]


def reference_counts(
    con: duckdb.DuckDBPyConnection,
    parquet: Path,
    collections_csv: Path,
    query: CohortQuery,
    strata: Sequence[Sequence[Stratum]] = (),
    scopes: Iterable[tuple[str, str]] | None = None,
    strata_min_subjects: int = 1,
) -> ExactResult:
    """Exact counts of `query` over the raw IDC table, per provider and per collection, with
    its strata tables; `scopes` (provider, collection) pairs narrow the scope further (what the
    service resolves the metadata criteria of a scope to)."""
    query = query.normalised()
    tables = _Tables(con, parquet, collections_csv)
    pairs, matched = _matched(con, tables, query, scopes)
    tree = query.where if query.where is not None else Criterion(all_of=())

    leaves = _positive(tree)
    con.register(
        "ref_matched",
        pa.table(
            {
                "provider": pa.array([k[0] for k in matched], pa.string()),
                "cell": pa.array([k[1] for k in matched], pa.string()),
                "patient": pa.array([k[2] for k in matched], pa.string()),
            }
        ),
    )
    counted_filter = ""
    if leaves:
        keys: set[int] = set()
        for leaf in leaves:
            keys |= _leaf_rows(con, leaf)
        con.register("ref_counted", pa.table({"key": pa.array(list(keys), pa.int64())}))
        counted_filter = "JOIN ref_counted AS k ON k.key = u.rid * 2 + CAST(u.cell <> '' AS BIGINT)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ref_hits AS
        SELECT u.*, x.sex AS subject_sex FROM ref_cells AS u
        JOIN ref_matched AS m USING (provider, cell, patient)
        JOIN {tables.sexes} AS x USING (provider, patient)
        {counted_filter}""")
    con.unregister("ref_matched")
    if leaves:
        con.unregister("ref_counted")

    row_counts = {
        (str(p), str(c)): (int(studies), int(series))
        for p, c, studies, series in con.execute(
            "SELECT provider, cell, count(DISTINCT study), count(*) FROM ref_hits "
            "GROUP BY provider, cell"
        ).fetchall()
    }
    subjects: dict[tuple[str, str], int] = {}
    for provider, cell, _ in matched:
        subjects[(provider, cell)] = subjects.get((provider, cell), 0) + 1

    def counts(provider: str, cell: str) -> ExactCounts:
        studies, series = row_counts.get((provider, cell), (0, 0))
        return ExactCounts(
            subjects=subjects.get((provider, cell), 0), studies=studies, series=series
        )

    by_provider = {p: counts(p, "") for p in sorted({p for p, _ in pairs})}
    by_dataset = {(p, d): counts(p, d) for p, d in pairs}

    tables_out = []
    for dimensions in strata:
        dims = tuple(dimensions)
        sql = _Sql()
        columns = []
        domains: list[list[str | None]] = []
        for dim in dims:
            if dim is Stratum.SEX:
                domains.append(list(SEXES))
                columns.append(_dimension(dim))
            elif dim is Stratum.AGE_BAND:
                domains.append(list(AGE_BANDS))
                columns.append(_dimension(dim))
            else:
                listed = _listed(con, dim, strata_min_subjects)
                domains.append([*listed, OTHER, None])
                value = _dimension(dim)
                columns.append(
                    f"CASE WHEN {value} IS NULL THEN NULL "
                    f"WHEN {sql.one_of(value, listed)} THEN {value} ELSE '{OTHER}' END"
                )
        found = con.execute(
            f"""
            SELECT {", ".join(columns)}, count(DISTINCT (h.provider, h.patient)),
                   count(DISTINCT (h.provider, h.study)), count(*)
            FROM ref_hits AS h WHERE h.cell = '' GROUP BY ALL""",
            sql.params,
        ).fetchall()
        cells = {
            tuple(None if v is None else str(v) for v in row[: len(dims)]): ExactCounts(
                subjects=row[-3], studies=row[-2], series=row[-1]
            )
            for row in found
        }
        every = list(itertools.product(*domains))
        assert set(cells) <= set(every), set(cells) - set(every)
        tables_out.append(
            StrataTable(
                dimensions=dims,
                cells=tuple(
                    StratumCell(values=values, counts=cells.get(values, ExactCounts()))
                    for values in every
                ),
            )
        )

    total = ExactCounts(
        subjects=sum(c.subjects for c in by_provider.values()),
        studies=sum(c.studies for c in by_provider.values()),
        series=sum(c.series for c in by_provider.values()),
    )
    return ExactResult(
        total=total, by_provider=by_provider, by_dataset=by_dataset, strata=tuple(tables_out)
    )


def matching_patients(
    con: duckdb.DuckDBPyConnection,
    parquet: Path,
    collections_csv: Path,
    query: CohortQuery,
    scopes: Iterable[tuple[str, str]] | None = None,
) -> set[tuple[str, str]]:
    """The (provider, PatientID) pairs whose subject matches `query` at provider level."""
    tables = _Tables(con, parquet, collections_csv)
    _, matched = _matched(con, tables, query.normalised(), scopes)
    return {(provider, patient) for provider, cell, patient in matched if cell == ""}


def _matched(
    con: duckdb.DuckDBPyConnection,
    tables: _Tables,
    query: CohortQuery,
    scopes: Iterable[tuple[str, str]] | None,
) -> tuple[list[tuple[str, str]], set[Key]]:
    """The (provider, collection) pairs in scope, and the (provider, cell, patient) matching a
    normalised query (cell '' the provider, else the collection); leaves `ref_cells`."""
    scope = query.datasets
    if scope.by_metadata and scopes is None:
        raise ValueError("the metadata criteria of the scope need an explicit set of scopes")
    allowed = None if scopes is None else set(scopes)
    pairs = [
        (p, d)
        for p, d in tables.pairs
        if (not scope.providers or p in scope.providers)
        and (not scope.datasets or d in scope.datasets)
        and (allowed is None or (p, d) in allowed)
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ref_scope AS "
        "SELECT unnest($providers) AS provider, unnest($datasets) AS dataset",
        {"providers": [p for p, _ in pairs] or [""], "datasets": [d for _, d in pairs] or [""]},
    )
    if not pairs:
        con.execute("DELETE FROM ref_scope")
    con.execute(_CELLS.replace("{rows}", tables.rows))

    universe: set[Key] = {
        (str(p), str(c), str(s))
        for p, c, s in con.execute(
            "SELECT DISTINCT provider, cell, patient FROM ref_cells"
        ).fetchall()
    }
    tree = query.where if query.where is not None else Criterion(all_of=())
    return pairs, _evaluate(con, tables, tree, universe, {})
