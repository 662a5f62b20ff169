"""CohortIndex on DuckDB on disk: one columnar row per series, exact counts by SQL.

Exists-semantics are evaluated in one grouped pass: each row carries a flag per criterion, rolled
up with `bool_or` per study, then per (subject, dataset); a subject matches when every flag holds
on at least one of its rows, and studies and series are counted by a semi-join of the matching
subjects back onto the per-study roll-up (which carries the number of matching series).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from catalogue.domain.cohort import (
    CohortQuery,
    ExactCounts,
    ExactResult,
    ExactSummary,
    SeriesCriteria,
)
from catalogue.exceptions import StoreError
from catalogue.imaging.features import SERIES_SCHEMA

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


def _in(column: str, values: tuple[Any, ...], params: list[Any]) -> str:
    params.append(list(values))
    return f"list_contains(${len(params)}, {column})"


def _item_expr(item: SeriesCriteria, params: list[Any]) -> str:
    parts = []
    if item.modality:
        parts.append(_in("modality", item.modality, params))
    if item.body_part:
        parts.append(_in("body_part", item.body_part, params))
    if item.manufacturer:
        parts.append(_in("manufacturer", item.manufacturer, params))
    return "(" + " AND ".join(parts) + ")" if parts else "TRUE"


def build_count_sql(query: CohortQuery) -> tuple[str, list[Any]]:
    """The SQL and positional parameters answering a normalised query."""
    params: list[Any] = []
    where = ["TRUE"]
    if query.datasets.providers:
        where.append(_in("provider", query.datasets.providers, params))
    if query.datasets.datasets:
        where.append(_in("dataset", query.datasets.datasets, params))
    if query.subject.sex:
        where.append(_in("subject_sex", tuple(s.value for s in query.subject.sex), params))

    flags: list[str] = []
    subject = query.subject
    if subject.age_min is not None or subject.age_max is not None:
        low = subject.age_min if subject.age_min is not None else 0
        high = subject.age_max if subject.age_max is not None else 32767
        params.extend([low, high])
        flags.append(f"(age BETWEEN ${len(params) - 1} AND ${len(params)})")
    items = [_item_expr(item, params) for item in query.series]
    flags.extend(items)
    hit = " OR ".join(items) if items else "TRUE"

    columns = "".join(f", {expr} AS f{i}" for i, expr in enumerate(flags))
    rolled = "".join(f", bool_or(f{i}) AS f{i}" for i in range(len(flags)))
    having = " AND ".join(f"bool_or(f{i})" for i in range(len(flags))) or "TRUE"
    every = " AND ".join(f"f{i}" for i in range(len(flags))) or "TRUE"
    sql = f"""
WITH scoped AS (
    SELECT provider, dataset, subject, study, ({hit}) AS hit{columns}
    FROM series WHERE {" AND ".join(where)}
),
per_study AS (
    SELECT provider, dataset, subject, study, count(*) FILTER (WHERE hit) AS hits{rolled}
    FROM scoped GROUP BY provider, dataset, subject, study
),
per_dataset AS (
    SELECT provider, dataset, subject{rolled} FROM per_study GROUP BY provider, dataset, subject
),
subj AS (SELECT provider, subject FROM per_dataset GROUP BY provider, subject HAVING {having}),
subj_ds AS (SELECT provider, dataset, subject FROM per_dataset WHERE {every}),
p_subjects AS (SELECT provider, count(*) AS n FROM subj GROUP BY provider),
p_rows AS (
    SELECT provider, count(DISTINCT study) FILTER (WHERE hits > 0) AS studies,
           sum(hits) AS series
    FROM per_study SEMI JOIN subj USING (provider, subject) GROUP BY provider
),
d_subjects AS (SELECT provider, dataset, count(*) AS n FROM subj_ds GROUP BY provider, dataset),
d_rows AS (
    SELECT provider, dataset, count(DISTINCT study) FILTER (WHERE hits > 0) AS studies,
           sum(hits) AS series
    FROM per_study SEMI JOIN subj_ds USING (provider, dataset, subject)
    GROUP BY provider, dataset
)
SELECT provider, NULL AS dataset, coalesce(s.n, 0), coalesce(r.studies, 0), coalesce(r.series, 0)
FROM p_subjects s FULL JOIN p_rows r USING (provider)
UNION ALL
SELECT provider, dataset, coalesce(s.n, 0), coalesce(r.studies, 0), coalesce(r.series, 0)
FROM d_subjects s FULL JOIN d_rows r USING (provider, dataset)
"""
    return sql, params


class DuckDBCohortIndex:
    """A DuckDB database file with one `series` table; writes are serialised by a lock."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path / "cohort.duckdb"))
        except duckdb.Error as exc:
            raise StoreError.cannot_open("DuckDB cohort index", path, exc) from exc
        self._con.execute(_DDL)
        self._migrate()
        self._lock = threading.Lock()
        self._scope_cache: list[tuple[str, str]] | None = None

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
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()
            return rows

    def count(self, query: CohortQuery) -> ExactResult:
        query = query.normalised()
        sql, params = build_count_sql(query)
        con = self._con.cursor()
        try:
            rows = con.execute(sql, params).fetchall()
            scopes = self._scopes(con, query)
        finally:
            con.close()
        by_provider = {p: ExactCounts() for p in sorted({p for p, _ in scopes})}
        by_dataset = {scope: ExactCounts() for scope in scopes}
        for provider, dataset, subjects, studies, series in rows:
            counts = ExactCounts(subjects=subjects, studies=studies, series=series)
            if dataset is None:
                by_provider[provider] = counts
            else:
                by_dataset[(provider, dataset)] = counts
        total = ExactCounts(
            subjects=sum(c.subjects for c in by_provider.values()),
            studies=sum(c.studies for c in by_provider.values()),
            series=sum(c.series for c in by_provider.values()),
        )
        return ExactResult(total=total, by_provider=by_provider, by_dataset=by_dataset)

    def _scopes(self, con: duckdb.DuckDBPyConnection, query: CohortQuery) -> list[tuple[str, str]]:
        scope = query.datasets
        return [
            s
            for s in self._all_scopes(con)
            if (not scope.providers or s[0] in scope.providers)
            and (not scope.datasets or s[1] in scope.datasets)
        ]

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

    def close(self) -> None:
        self._con.close()
