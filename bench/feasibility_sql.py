"""The SQL baselines of bench/feasibility.py: the IDC rows parsed once, and portable SQL per query.

The rows are parsed from idc_index.parquet with DuckDB into a TEMP table, with the
normalisation of tests/reference/idc_sql.py (provider from the demo's collections.csv; sex,
age, collapsed upper-case modality and body part, collapsed case-folded manufacturer and model;
the study year from StudyDate). Identifiers become integer surrogate keys, as a row store of
the i2b2 kind keeps them (patient_num, encounter_num): `patient` is unique per (provider,
PatientID), `study` per (provider, StudyInstanceUID), `series` per row. The subject's sex (the
one known sex of its rows, else U) sits in a `subjects` table, the patient dimension.

`compile_sql` turns a CohortQuery (normalised, with its `where` tree) into one SQL statement an
analyst could have written: a correlated EXISTS subquery over the rows per leaf, correlated on
(provider, patient), combined with AND / OR / NOT, then GROUP BY for the counts. The text is
portable: the same statement runs on DuckDB and on SQLite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from catalogue.domain.cohort import (
    CohortQuery,
    Criterion,
    DatasetScope,
    SeriesCriteria,
    Stratum,
    StudyCriteria,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script (bench/ on the path), find tests/ too
    sys.path.insert(0, str(ROOT))
from tests.reference.idc_sql import IDC_ROWS  # noqa: E402  (the parsing of the IDC rows)

Triple = tuple[int, int, int]
StrataKey = tuple[Stratum, ...]
StrataCells = dict[tuple[str | None, ...], Triple]

ROW_COLUMNS = (
    ("provider", "TEXT"),
    ("dataset", "TEXT"),
    ("patient", "INTEGER"),
    ("study", "INTEGER"),
    ("series", "INTEGER"),
    ("age", "INTEGER"),
    ("study_year", "INTEGER"),
    ("modality", "TEXT"),
    ("body_part", "TEXT"),
    ("manufacturer", "TEXT"),
    ("model", "TEXT"),
    ("slice_thickness", "REAL"),
    ("field_strength", "REAL"),
    ("contrast", "INTEGER"),
    ("annotated_series", "INTEGER"),
)
"""The rows table, one row per series (the same in DuckDB and SQLite). IDC's index has no slice
thickness, field strength, contrast agent or referenced series: those columns are NULL."""

SCHEMA_VERSION = "4"

_PARSE = f"""
CREATE TEMP TABLE parsed AS
WITH {IDC_ROWS}
SELECT
    i.provider, i.dataset, i.sex AS row_sex,
    CAST(dense_rank() OVER (ORDER BY i.provider, i.patient) AS INTEGER) AS patient,
    CAST(dense_rank() OVER (ORDER BY i.provider, i.study) AS INTEGER) AS study,
    CAST(row_number() OVER (ORDER BY i.provider, i.patient, i.study, i.series) AS INTEGER)
        AS series,
    i.age, i.study_year, i.modality, i.body_part, i.manufacturer, i.model
FROM idc_rows AS i
"""
"""The rows of tests/reference/idc_sql.py, identifiers replaced by integer surrogate keys."""

_ROWS = """
CREATE TEMP TABLE rows AS
SELECT provider, dataset, patient, study, series, age, study_year, modality, body_part,
       manufacturer, model, CAST(NULL AS DOUBLE) AS slice_thickness,
       CAST(NULL AS DOUBLE) AS field_strength, CAST(NULL AS INTEGER) AS contrast,
       CAST(NULL AS INTEGER) AS annotated_series
FROM parsed ORDER BY provider, patient, study, series
"""

_SUBJECTS = """
CREATE TEMP TABLE subjects AS
SELECT provider, patient,
       CASE WHEN count(DISTINCT row_sex) FILTER (WHERE row_sex <> 'U') = 1
            THEN max(row_sex) FILTER (WHERE row_sex <> 'U') ELSE 'U' END AS sex
FROM parsed GROUP BY provider, patient ORDER BY provider, patient
"""


@dataclass
class Answer:
    """Counts of one answer, whichever path produced it."""

    providers: dict[str, Triple]
    """(subjects, studies, series) per provider; providers with all zeros may be left out."""
    strata: dict[StrataKey, StrataCells] = field(default_factory=dict)
    """Per strata table, its non-zero cells."""

    @property
    def total(self) -> Triple:
        cells = self.providers.values()
        return (
            sum(c[0] for c in cells),
            sum(c[1] for c in cells),
            sum(c[2] for c in cells),
        )

    def nonzero(self) -> Answer:
        return Answer(
            providers={p: c for p, c in self.providers.items() if c != (0, 0, 0)},
            strata={
                k: {v: c for v, c in cells.items() if c != (0, 0, 0)}
                for k, cells in self.strata.items()
            },
        )


# --- loading ---------------------------------------------------------------------------------


def load_duckdb(parquet: Path, collections_csv: Path, collections_parquet: Path) -> Any:
    """A DuckDB connection with the TEMP tables rows, subjects and dataset_meta."""
    con = duckdb.connect()
    con.execute(_PARSE, {"parquet": str(parquet), "collections": str(collections_csv)})
    con.execute(_ROWS)
    con.execute(_SUBJECTS)
    con.execute("DROP TABLE parsed")
    con.execute(
        "CREATE TEMP TABLE dataset_meta (provider TEXT, dataset TEXT, kind TEXT, value TEXT)"
    )
    con.executemany(
        "INSERT INTO dataset_meta VALUES (?, ?, ?, ?)",
        dataset_meta(collections_csv, collections_parquet),
    )
    return con


def dataset_meta(collections_csv: Path, collections_parquet: Path) -> list[tuple[str, ...]]:
    """(provider, dataset, kind, value) of the datasets' catalogue metadata the scope matches:
    cancer types, access rights, licence; values case-folded, an IRI also by its last segment.
    The metadata is derived as the demo's catalogues are (examples/demo/idc.py)."""
    from examples.demo.idc import _dataset  # the demo's own derivation of the metadata

    con = duckdb.connect()
    try:
        providers = dict(
            con.execute(
                "SELECT collection_id, provider_id FROM read_csv($1, all_varchar = true)",
                [str(collections_csv)],
            ).fetchall()
        )
        rows = con.execute("SELECT * FROM read_parquet($1)", [str(collections_parquet)])
        names = [d[0] for d in rows.description or []]
        records = [dict(zip(names, r, strict=True)) for r in rows.fetchall()]
    finally:
        con.close()
    out: set[tuple[str, ...]] = set()
    for record in records:
        provider = providers.get(record["collection_id"])
        if provider is None:
            continue
        dataset = _dataset(record, provider)
        values = [("cancer_type", v) for v in dataset.cancer_types]
        if dataset.access_rights:
            values.append(("access_rights", dataset.access_rights))
        if dataset.license:
            values.append(("license", dataset.license))
        for kind, value in values:
            for form in _forms(value):
                out.add((provider, dataset.identifier, kind, form))
    return sorted(out)


def _forms(value: str) -> set[str]:
    text = " ".join(value.split()).casefold()
    forms = {text}
    if "://" in text:
        last = text.rstrip("/").rsplit("/", 1)[-1]
        if last:
            forms.add(last)
    return forms


# --- the compiler ----------------------------------------------------------------------------


def _literal(value: str | int | float) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _in(column: str, values: Sequence[str]) -> str:
    if len(values) == 1:
        return f"{column} = {_literal(values[0])}"
    return f"{column} IN ({', '.join(_literal(v) for v in values)})"


def _and(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p != "1 = 1"]
    if not parts:
        return "1 = 1"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _or(parts: Sequence[str]) -> str:
    if not parts:
        return "1 = 0"
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _indent(text: str, by: str = "    ") -> str:
    return text.replace("\n", "\n" + by)


def _modality_is(modality: str, r: str) -> list[str]:
    return [f"{r}.modality = {_literal(modality)}"]


class _Compiler:
    def __init__(self, scope: DatasetScope) -> None:
        self.scope = scope
        self.aliases = 0

    def alias(self, stem: str) -> str:
        self.aliases += 1
        return f"{stem}{self.aliases}"

    def in_scope(self, r: str) -> str:
        """The scope's row predicate on rows alias `r`."""
        scope = self.scope
        parts = []
        if scope.providers:
            parts.append(_in(f"{r}.provider", scope.providers))
        if scope.datasets:
            parts.append(_in(f"{r}.dataset", scope.datasets))
        for kind, values in (
            ("cancer_type", scope.cancer_types),
            ("access_rights", scope.access_rights),
            ("license", scope.licenses),
        ):
            if values:
                forms = sorted({" ".join(v.split()).casefold() for v in values})
                parts.append(
                    f"{r}.dataset IN (SELECT dataset FROM dataset_meta WHERE kind = "
                    f"{_literal(kind)} AND {_in('value', forms)})"
                )
        return _and(parts)

    @property
    def restricts_rows(self) -> bool:
        """Whether the scope selects rows within a provider (not only whole providers)."""
        scope = self.scope
        return bool(scope.datasets or scope.by_metadata)

    def rows_of(self, r: str, s: str, where: Sequence[str]) -> str:
        """EXISTS over the subject's (alias `s`) in-scope rows (alias `r`) meeting `where`."""
        conditions = [f"{r}.provider = {s}.provider", f"{r}.patient = {s}.patient"]
        conditions += [self.in_scope(r), *where]
        body = "\n  AND ".join(c for c in conditions if c != "1 = 1")
        return f"EXISTS (\n    SELECT 1 FROM rows AS {r}\n    WHERE {_indent(body, '    ')}\n)"

    def same_study(self, r: str, t: str, where: Sequence[str]) -> str:
        """EXISTS over the in-scope rows (alias `r`) of the study of row `t`, meeting `where`."""
        conditions = [
            f"{r}.provider = {t}.provider",
            f"{r}.patient = {t}.patient",
            f"{r}.study = {t}.study",
            self.in_scope(r),
            *where,
        ]
        body = "\n  AND ".join(c for c in conditions if c != "1 = 1")
        return f"EXISTS (\n    SELECT 1 FROM rows AS {r}\n    WHERE {_indent(body, '    ')}\n)"

    def series(self, item: SeriesCriteria, r: str) -> list[str]:
        """The row predicates of a series item on rows alias `r` (all must hold)."""
        parts = []
        for column, values in (
            ("modality", item.modality),
            ("body_part", item.body_part),
            ("manufacturer", item.manufacturer),
            ("model", item.model),
        ):
            if values:
                parts.append(_in(f"{r}.{column}", values))
        for column, low, high in (
            ("slice_thickness", item.slice_thickness_min, item.slice_thickness_max),
            ("field_strength", item.field_strength_min, item.field_strength_max),
        ):
            if low is not None:
                parts.append(f"{r}.{column} >= {_literal(low)}")
            if high is not None:
                parts.append(f"{r}.{column} <= {_literal(high)}")
        if item.contrast is True:
            parts.append(f"{r}.contrast = 1")
        elif item.contrast is False:
            parts.append(f"({r}.contrast IS NULL OR {r}.contrast = 0)")
        if item.has_annotation:
            a = self.alias("a")
            kinds = [k.value for k in item.has_annotation]
            parts.append(
                self.same_study(
                    a,
                    r,
                    [
                        _in(f"{a}.modality", kinds),
                        f"{a}.dataset = {r}.dataset",
                        f"{a}.series <> {r}.series",
                        f"({a}.annotated_series IS NULL OR {a}.annotated_series = {r}.series)",
                    ],
                )
            )
        return parts

    def study_conditions(self, study: StudyCriteria) -> list[Callable[[str], list[str]]]:
        """Each condition of a study leaf, as row predicates on a rows alias; the study meets
        the leaf when every condition holds on one of its rows."""
        out: list[Callable[[str], list[str]]] = []
        low, high = study.year_min, study.year_max
        if low is not None or high is not None:

            def year(r: str) -> list[str]:
                parts = []
                if low is not None:
                    parts.append(f"{r}.study_year >= {low}")
                if high is not None:
                    parts.append(f"{r}.study_year <= {high}")
                return parts

            out.append(year)
        for modality in study.modalities:
            out.append(partial(_modality_is, modality))
        for item in study.series:
            out.append(partial(self.series, item))
        return out

    def criterion(self, node: Criterion, s: str) -> str:
        """The subject predicate (subjects alias `s`) of a normalised tree."""
        if node.all_of is not None:
            return _and([self.criterion(c, s) for c in node.all_of])
        if node.any_of is not None:
            return _or([self.criterion(c, s) for c in node.any_of])
        if node.not_ is not None:
            return f"NOT {self.criterion(node.not_, s)}"
        if node.subject is not None:
            subject = node.subject
            if subject.sex:
                return _in(f"{s}.sex", [x.value for x in subject.sex])
            if subject.diagnosis:
                return "1 = 0"  # the IDC demo supplies no diagnosis codes
            r = self.alias("r")
            bounds = []
            if subject.age_min is not None:
                bounds.append(f"{r}.age >= {subject.age_min}")
            if subject.age_max is not None:
                bounds.append(f"{r}.age <= {subject.age_max}")
            return self.rows_of(r, s, bounds or [f"{r}.age IS NOT NULL"])
        if node.series is not None:
            r = self.alias("r")
            return self.rows_of(r, s, self.series(node.series, r))
        assert node.study is not None
        conditions = self.study_conditions(node.study)
        t = self.alias("t")
        where = conditions[0](t) if conditions else []
        for condition in conditions[1:]:
            u = self.alias("u")
            where.append(self.same_study(u, t, condition(u)))
        return self.rows_of(t, s, where)

    def counted(self, tree: Criterion, r: str) -> str:
        """Whether in-scope row `r` of a matching subject counts (docs/feasibility.md)."""
        positive = []
        seen: set[str] = set()
        for leaf, is_positive in tree.leaves():
            if not is_positive or leaf.kind not in ("series", "study"):
                continue
            key = leaf.model_dump_json()
            if key in seen:
                continue
            seen.add(key)
            if leaf.series is not None:
                positive.append(_and(self.series(leaf.series, r)))
                continue
            assert leaf.study is not None
            study = leaf.study
            meets = []
            for condition in self.study_conditions(study):
                u = self.alias("u")
                meets.append(self.same_study(u, r, condition(u)))
            own = []
            if study.modalities:
                own.append(_in(f"{r}.modality", study.modalities))
            own += [_and(self.series(item, r)) for item in study.series]
            positive.append(_and([*meets, _or(own) if own else "1 = 1"]))
        return _or(positive) if positive else "1 = 1"


_DIMENSIONS = {
    Stratum.SEX: "c.sex",
    Stratum.AGE_BAND: (
        "CASE WHEN c.age IS NULL THEN NULL WHEN c.age >= 100 THEN '100+' "
        "ELSE CAST(c.age - c.age % 10 AS TEXT) || '-' || CAST(c.age - c.age % 10 + 9 AS TEXT) END"
    ),
    Stratum.MODALITY: "c.modality",
    Stratum.BODY_PART: "c.body_part",
    Stratum.YEAR: "CAST(c.study_year AS TEXT)",
}


def compile_sql(query: CohortQuery, strata: Sequence[StrataKey] = ()) -> str:
    """One portable SQL statement for the query's counts per provider (and strata tables).

    Its rows are (tab, v0, v1, ..., subjects, studies, series): tab '' gives a provider (v0),
    tab 'i' a cell of the i-th strata table (its values in v0...)."""
    query = query.normalised()
    tree = query.where if query.where is not None else Criterion(all_of=())
    compiler = _Compiler(query.datasets)
    s, r = "s", "r"
    subject_where = []
    if query.datasets.providers:
        subject_where.append(_in(f"{s}.provider", query.datasets.providers))
    if compiler.restricts_rows:
        subject_where.append(compiler.rows_of(compiler.alias("r"), s, []))
    subject_where.append(compiler.criterion(tree, s))
    matched_where = "\n  AND ".join(p for p in subject_where if p != "1 = 1") or "1 = 1"
    counted_where = "\n  AND ".join(
        p for p in (compiler.in_scope(r), compiler.counted(tree, r)) if p != "1 = 1"
    )
    width = max((len(k) for k in strata), default=1)
    pad = "".join(f", NULL AS v{i}" for i in range(1, width))
    selects = [
        f"""SELECT '' AS tab, m.provider AS v0{pad}, m.subjects,
       coalesce(c.studies, 0) AS studies, coalesce(c.series, 0) AS series
FROM (SELECT provider, count(*) AS subjects FROM matched GROUP BY provider) AS m
LEFT JOIN (
    SELECT provider, count(DISTINCT study) AS studies, count(*) AS series
    FROM counted GROUP BY provider
) AS c ON c.provider = m.provider"""
    ]
    for index, dims in enumerate(strata):
        values = [f"{_DIMENSIONS[d]} AS v{i}" for i, d in enumerate(dims)]
        keys = ", ".join(f"v{i}" for i in range(len(dims)))
        padding = "".join(f", NULL AS v{i}" for i in range(len(dims), width))
        selects.append(
            f"""SELECT '{index}' AS tab, {keys}{padding},
       count(DISTINCT patient) AS subjects, count(DISTINCT study) AS studies,
       count(*) AS series
FROM (SELECT {", ".join(values)}, c.patient, c.study FROM counted AS c) AS x
GROUP BY {keys}"""
        )
    body = "\nUNION ALL\n".join(selects)
    return f"""WITH matched AS MATERIALIZED (
    SELECT {s}.provider, {s}.patient, {s}.sex
    FROM subjects AS {s}
    WHERE {_indent(matched_where, "    ")}
),
counted AS {"MATERIALIZED " if strata else ""}(
    SELECT {r}.provider, {r}.patient, {r}.study, {r}.age, {r}.study_year, {r}.modality,
           {r}.body_part, m.sex
    FROM rows AS {r}
    JOIN matched AS m ON m.provider = {r}.provider AND m.patient = {r}.patient
    WHERE {_indent(counted_where or "1 = 1", "    ")}
)
{body}
"""


def answer_of(rows: Sequence[Sequence[Any]], strata: Sequence[StrataKey]) -> Answer:
    """An Answer from the rows of a compile_sql statement."""
    out = Answer(providers={}, strata={k: {} for k in strata})
    for row in rows:
        tab, *values = row
        subjects, studies, series = (int(v) for v in values[-3:])
        triple = (subjects, studies, series)
        if tab == "":
            out.providers[str(values[0])] = triple
        else:
            dims = strata[int(tab)]
            key = tuple(None if v is None else str(v) for v in values[: len(dims)])
            out.strata[dims][key] = triple
    return out
