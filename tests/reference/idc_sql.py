"""Reference feasibility counts in plain DuckDB SQL straight over idc_index.parquet.

Independent of the catalogue's harvest, pseudonyms and cohort index: it reads the raw IDC
series table and the demo's collections.csv, and shares only the query model. Semantics:

- The provider of a row is the collections.csv mapping of its collection_id; rows whose
  collection is not mapped, and rows with a NULL or empty PatientID, StudyInstanceUID,
  SeriesInstanceUID or collection_id, are ignored.
- A subject is (provider, PatientID), a study is (provider, StudyInstanceUID); each row is one
  series.
- Row sex is upper(trim(PatientSex)) when F, M or O, else U. Subject sex is the one distinct
  non-U sex of all the subject's rows in the provider (whatever the query scope), else U.
- Row age is whole years from PatientAge matching ^\\s*(\\d{1,3})\\s*([DWMYdwmy])\\s*$:
  Y -> n, M -> n // 12, W -> floor(n * 7 / 365.25), D -> floor(n / 365.25); above 150, or
  not matching, it is NULL.
- Modality and body part are compared with whitespace runs collapsed and upper-cased,
  manufacturer with whitespace collapsed and lower-cased (the query is normalised first).
- Scope: provider in datasets.providers and collection_id in datasets.datasets (each only when
  non-empty).
- A subject matches when its subject sex is in subject.sex (if non-empty); when an age bound is
  given, one in-scope row has a non-NULL age within [age_min, age_max] (None is open); and for
  every series item one in-scope row matches all the item's non-empty fields.
- Studies are distinct studies and series are rows, among the in-scope rows of matching
  subjects that match at least one series item (every in-scope row when there are no items).
- by_provider has every provider with in-scope rows (zeros included); total is their sum.
- by_dataset has every in-scope (provider, collection) with rows, each evaluated with the scope
  narrowed to that one collection (subject sex stays the provider-level one).

Formulation: every in-scope row is listed once per "cell" it counts in (its provider, with the
empty string as the cell, and its collection); each criterion yields the set of
(provider, cell, patient) meeting it, and the matching subjects are the INTERSECT of those sets.
Whitespace is RE2's \\s (ASCII), which is what the IDC values need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from catalogue.domain.cohort import CohortQuery, ExactCounts, ExactResult, SeriesCriteria

_ROWS = r"""
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
        CASE WHEN upper(trim(s.PatientSex)) IN ('F', 'M', 'O') THEN upper(trim(s.PatientSex))
             ELSE 'U' END AS sex,
        regexp_extract(
            s.PatientAge, '^\s*(\d{1,3})\s*([DWMYdwmy])\s*$', ['number', 'unit']
        ) AS age_text,
        upper(trim(regexp_replace(s.Modality, '\s+', ' ', 'g'))) AS modality,
        upper(trim(regexp_replace(s.BodyPartExamined, '\s+', ' ', 'g'))) AS body_part,
        lower(trim(regexp_replace(s.Manufacturer, '\s+', ' ', 'g'))) AS manufacturer
    FROM read_parquet($parquet) AS s
    JOIN provider_of AS p ON p.collection_id = s.collection_id
    WHERE coalesce(s.PatientID, '') <> ''
      AND coalesce(s.StudyInstanceUID, '') <> ''
      AND coalesce(s.SeriesInstanceUID, '') <> ''
      AND coalesce(s.collection_id, '') <> ''
),
aged AS (
    SELECT
        * EXCLUDE (age_text),
        CASE upper(age_text.unit)
            WHEN 'Y' THEN try_cast(age_text.number AS INTEGER)
            WHEN 'M' THEN try_cast(age_text.number AS INTEGER) // 12
            WHEN 'W' THEN CAST(floor(try_cast(age_text.number AS INTEGER) * 7 / 365.25) AS INTEGER)
            WHEN 'D' THEN CAST(floor(try_cast(age_text.number AS INTEGER) / 365.25) AS INTEGER)
        END AS age_years
    FROM parsed
),
series_rows AS {materialized}(
    SELECT * EXCLUDE (age_years), CASE WHEN age_years <= 150 THEN age_years END AS age
    FROM aged
)"""


class _Sql:
    """Accumulates named parameters while the query text is put together."""

    def __init__(self, parquet: Path, collections_csv: Path) -> None:
        self.params: dict[str, Any] = {
            "parquet": str(parquet),
            "collections": str(collections_csv),
        }

    def bind(self, name: str, value: Any) -> str:
        self.params[name] = value
        return f"${name}"

    def one_of(self, column: str, name: str, values: tuple[str, ...]) -> str:
        return f"{column} IN (SELECT unnest({self.bind(name, list(values))}))"


def _item_predicate(sql: _Sql, index: int, item: SeriesCriteria, alias: str) -> str:
    """The row predicate of one series item: every non-empty field holds."""
    parts = []
    for field, values in (
        ("modality", item.modality),
        ("body_part", item.body_part),
        ("manufacturer", item.manufacturer),
    ):
        if values:
            parts.append(sql.one_of(f"{alias}.{field}", f"item{index}_{field}", values))
    return "(" + " AND ".join(parts) + ")"


def build_reference_sql(
    parquet: Path, collections_csv: Path, query: CohortQuery
) -> tuple[str, dict[str, Any]]:
    """The reference SQL and its named parameters for a normalised query."""
    sql = _Sql(parquet, collections_csv)
    scope = query.datasets
    in_scope = ["TRUE"]
    provider_only = ["TRUE"]
    if scope.providers:
        in_scope.append(sql.one_of("provider", "providers", scope.providers))
        provider_only.append(in_scope[-1])
    if scope.datasets:
        in_scope.append(sql.one_of("dataset", "datasets", scope.datasets))

    # Subject sex reads beyond the dataset scope, so the parsed rows are then used twice.
    materialized = "MATERIALIZED " if query.subject.sex else ""
    ctes = [
        _ROWS.replace("{materialized}", materialized),
        f"""
scoped AS MATERIALIZED (
    SELECT provider, dataset, patient, study, age, modality, body_part, manufacturer
    FROM series_rows WHERE {" AND ".join(in_scope)}
),
in_scope AS (SELECT DISTINCT provider, dataset, patient FROM scoped)""",
    ]
    sets = ["in_scope"]

    if query.subject.sex:
        sexes = tuple(s.value for s in query.subject.sex)
        ctes.append(f"""
subject_sex AS (
    SELECT provider, patient,
           CASE WHEN len(known) = 1 THEN known[1] ELSE 'U' END AS sex
    FROM (
        SELECT provider, patient, list_distinct(list(sex) FILTER (WHERE sex <> 'U')) AS known
        FROM series_rows WHERE {" AND ".join(provider_only)}
        GROUP BY provider, patient
    )
),
sex_ok AS (
    SELECT c.provider, c.dataset, c.patient
    FROM in_scope AS c
    JOIN subject_sex AS x ON x.provider = c.provider AND x.patient = c.patient
    WHERE {sql.one_of("x.sex", "sexes", sexes)}
)""")
        sets.append("sex_ok")

    age_min, age_max = query.subject.age_min, query.subject.age_max
    if age_min is not None or age_max is not None:
        bounds = ["age IS NOT NULL"]
        if age_min is not None:
            bounds.append(f"age >= {sql.bind('age_min', age_min)}")
        if age_max is not None:
            bounds.append(f"age <= {sql.bind('age_max', age_max)}")
        ctes.append(f"""
age_ok AS (
    SELECT DISTINCT provider, dataset, patient FROM scoped WHERE {" AND ".join(bounds)}
)""")
        sets.append("age_ok")

    hits = []
    for index, item in enumerate(query.series):
        predicate = _item_predicate(sql, index, item, "u")
        hits.append(predicate)
        ctes.append(f"""
item{index}_ok AS (
    SELECT DISTINCT provider, dataset, patient FROM scoped AS u WHERE {predicate}
)""")
        sets.append(f"item{index}_ok")

    # A subject qualifies in a collection when every criterion holds on that collection's
    # rows, and in its provider when every criterion holds on any of the provider's rows.
    in_dataset = "\nINTERSECT\n".join(f"SELECT provider, dataset, patient FROM {s}" for s in sets)
    in_provider = "\nINTERSECT\n".join(f"SELECT DISTINCT provider, patient FROM {s}" for s in sets)
    hit = " OR ".join(hits) if hits else "TRUE"
    ctes.append(f"""
dataset_subjects AS ({in_dataset}),
provider_subjects AS ({in_provider}),
hit_rows AS (SELECT * FROM scoped AS u WHERE {hit}),
provider_rows AS (
    SELECT provider, count(DISTINCT study) AS studies, count(*) AS series
    FROM hit_rows AS u
    WHERE EXISTS (
        SELECT 1 FROM provider_subjects AS m
        WHERE m.provider = u.provider AND m.patient = u.patient
    )
    GROUP BY provider
),
dataset_rows AS (
    SELECT provider, dataset, count(DISTINCT study) AS studies, count(*) AS series
    FROM hit_rows AS u
    WHERE EXISTS (
        SELECT 1 FROM dataset_subjects AS m
        WHERE m.provider = u.provider AND m.dataset = u.dataset AND m.patient = u.patient
    )
    GROUP BY provider, dataset
),
cells AS (SELECT DISTINCT provider, dataset FROM scoped)""")
    text = (
        "WITH"
        + ",".join(ctes)
        + """
SELECT p.provider, '' AS cell,
       (SELECT count(*) FROM provider_subjects AS m WHERE m.provider = p.provider),
       coalesce(r.studies, 0), coalesce(r.series, 0)
FROM (SELECT DISTINCT provider FROM cells) AS p
LEFT JOIN provider_rows AS r ON r.provider = p.provider
UNION ALL
SELECT c.provider, c.dataset,
       (SELECT count(*) FROM dataset_subjects AS m
        WHERE m.provider = c.provider AND m.dataset = c.dataset),
       coalesce(r.studies, 0), coalesce(r.series, 0)
FROM cells AS c
LEFT JOIN dataset_rows AS r ON r.provider = c.provider AND r.dataset = c.dataset
"""
    )
    return text, sql.params


def reference_counts(
    con: duckdb.DuckDBPyConnection, parquet: Path, collections_csv: Path, query: CohortQuery
) -> ExactResult:
    """Exact counts of `query` over the raw IDC table, per provider and per collection."""
    query = query.normalised()
    text, params = build_reference_sql(parquet, collections_csv, query)
    by_provider: dict[str, ExactCounts] = {}
    by_dataset: dict[tuple[str, str], ExactCounts] = {}
    for provider, cell, subjects, studies, series in con.execute(text, params).fetchall():
        counts = ExactCounts(subjects=subjects, studies=studies, series=series)
        if cell == "":
            by_provider[str(provider)] = counts
        else:
            by_dataset[(str(provider), str(cell))] = counts
    total = ExactCounts(
        subjects=sum(c.subjects for c in by_provider.values()),
        studies=sum(c.studies for c in by_provider.values()),
        series=sum(c.series for c in by_provider.values()),
    )
    return ExactResult(total=total, by_provider=by_provider, by_dataset=by_dataset)
