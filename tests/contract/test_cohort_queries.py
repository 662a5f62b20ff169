"""The DuckDB cohort index against the reference evaluator (tests/reference/cohort_reference.py):
random series tables and random query trees, strata and scopes (docs/feasibility.md); and small
hand-worked cases that check the reference itself."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from catalogue.domain.cohort import (
    AnnotationKind,
    CohortQuery,
    Criterion,
    DatasetScope,
    ExactCounts,
    ExactResult,
    SeriesCriteria,
    Stratum,
    StudyCriteria,
    SubjectCriteria,
)
from catalogue.domain.linkage import MAX_RANK, RANK_BITS, HllSketch
from catalogue.imaging.features import ANNOTATION_MODALITIES, SERIES_SCHEMA
from catalogue.index.duckdb import DuckDBCohortIndex
from tests.reference.cohort_reference import evaluate

Row = dict[str, Any]
Diagnoses = dict[tuple[str, int], set[str]]

DATASETS = {"p1": ("a", "b"), "p2": ("a", "c")}
"""Two providers, three dataset identifiers; `a` is a dataset of both (two distinct pairs)."""
MODALITIES = ["CT", "MR", "PT", "SEG", "RTSTRUCT", "SR"]
BODY_PARTS = [None, "CHEST", "BREAST", "HEAD NECK"]
MANUFACTURERS = [None, "ge medical systems", "siemens", "philips"]
MODELS = [None, "lightspeed 16", "skyra", "achieva"]
THICKNESSES = [None, 1.0, 2.5, 5.0]
FIELD_STRENGTHS = [None, 1.5, 3.0]
YEARS = [None, 1999, 2005, 2010, 2020]

CODES = ["C50", " c34 ", "C61", "D00"]
"""Diagnosis codes a query asks for; providers supply some of C50, C34 and C61."""

MAX_POSITIVE_STUDY_LEAVES = 4
"""What the index pre-aggregates counted rows for (it refuses more, as a QueryError)."""


def batch(rows: Sequence[Row]) -> pa.RecordBatch:
    """Row dicts as one SERIES_SCHEMA batch (missing columns empty, not annotations)."""
    data: dict[str, list[object]] = {name: [] for name in SERIES_SCHEMA.names}
    for row in rows:
        for name in SERIES_SCHEMA.names:
            data[name].append(row.get(name, False if name == "is_annotation" else None))
    return pa.RecordBatch.from_pydict(data, schema=SERIES_SCHEMA)


def load(index: DuckDBCohortIndex, rows: Sequence[Row], diagnoses: Diagnoses | None = None) -> None:
    """Replace every provider's rows and diagnoses of the index with these."""
    for provider in DATASETS:
        mine = [r for r in rows if r["provider"] == provider]
        index.replace_source(provider, "s", [batch(mine)] if mine else [])
        codes = [
            (subject, code)
            for (p, subject), found in (diagnoses or {}).items()
            if p == provider
            for code in sorted(found)
        ]
        index.replace_diagnoses(provider, "s", codes)


def strata_of(result: ExactResult) -> list[tuple[tuple[Stratum, ...], dict[Any, ExactCounts]]]:
    return [(t.dimensions, {c.values: c.counts for c in t.cells}) for t in result.strata]


def assert_same(got: ExactResult, expected: ExactResult) -> None:
    assert got.total == expected.total
    assert got.by_provider == expected.by_provider
    assert got.by_dataset == expected.by_dataset
    assert strata_of(got) == strata_of(expected)


# -- random series tables ------------------------------------------------------------------------


@st.composite
def tables(draw: st.DrawFn) -> list[Row]:
    """Up to 12 subjects (ids shared across providers: distinct subjects there), a few
    studies each, a few series per study; study and series ids are unique."""
    rows: list[Row] = []
    study_ids = itertools.count(100)
    series_ids = itertools.count(1000)
    for _ in range(draw(st.integers(1, 12))):
        provider = draw(st.sampled_from(sorted(DATASETS)))
        subject = draw(st.integers(1, 6))
        home = draw(st.sampled_from(DATASETS[provider]))
        sex = draw(st.sampled_from("FMOU"))
        age = draw(st.one_of(st.none(), st.integers(0, 105)))
        for _ in range(draw(st.integers(1, 3))):
            study = next(study_ids)
            year = draw(st.sampled_from(YEARS))
            study_rows: list[Row] = []
            for _ in range(draw(st.integers(1, 4))):
                modality = draw(st.sampled_from(MODALITIES))
                study_rows.append(
                    {
                        "provider": provider,
                        "dataset": draw(st.sampled_from([home, home, *DATASETS[provider]])),
                        "subject": subject,
                        "study": study,
                        "series": next(series_ids),
                        "sex": draw(st.sampled_from([sex, sex, sex, "F", "M", "U"])),
                        "age": draw(st.sampled_from([age, age, None])),
                        "study_year": draw(st.sampled_from([year, year, None])),
                        "modality": modality,
                        "body_part": draw(st.sampled_from(BODY_PARTS)),
                        "manufacturer": draw(st.sampled_from(MANUFACTURERS)),
                        "model": draw(st.sampled_from(MODELS)),
                        "slice_thickness": draw(st.sampled_from(THICKNESSES)),
                        "field_strength": draw(st.sampled_from(FIELD_STRENGTHS)),
                        "contrast": draw(st.sampled_from([None, None, True])),
                        "is_annotation": modality in ANNOTATION_MODALITIES,
                        "annotated_series": None,
                    }
                )
            for row in study_rows:
                if row["is_annotation"]:
                    targets = [None, 999_999, *(r["series"] for r in study_rows if r is not row)]
                    row["annotated_series"] = draw(st.sampled_from(targets))
            rows.extend(study_rows)
    return rows


diagnoses = st.dictionaries(
    st.tuples(st.sampled_from(sorted(DATASETS)), st.integers(1, 6)),
    st.sets(st.sampled_from(["C50", "C34", "C61"]), min_size=1, max_size=2),
    max_size=6,
)
"""Diagnosis codes (as the index stores them: normalised) of some subjects, with series rows
or not."""


# -- random queries ------------------------------------------------------------------------------

SPELLINGS = {
    "modality": ["CT", "MR", "PT", "SEG", "RTSTRUCT", "SR", " ct", "Mr "],
    "body_part": ["CHEST", "BREAST", "HEAD NECK", "head  neck"],
    "manufacturer": ["GE Medical Systems", "siemens", "PHILIPS"],
    "model": ["LightSpeed 16", "skyra", "Achieva"],
}
"""Query values, some spelt otherwise than the (normalised) rows."""


def sometimes(draw: st.DrawFn, odds: int = 3) -> bool:
    """True one time in `odds`."""
    return draw(st.sampled_from([True] + [False] * (odds - 1)))


def bounds(draw: st.DrawFn, values: Sequence[float]) -> tuple[float | None, float | None]:
    low, high = (draw(st.sampled_from([None, *values])) for _ in range(2))
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


@st.composite
def series_criteria(draw: st.DrawFn) -> SeriesCriteria:
    fields: dict[str, Any] = {}
    for name, values in SPELLINGS.items():
        if sometimes(draw, 4 if name == "modality" else 6):
            fields[name] = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
    if sometimes(draw, 8):
        low, high = bounds(draw, [0.5, 1.0, 2.5, 5.0])
        fields |= {"slice_thickness_min": low, "slice_thickness_max": high}
    if sometimes(draw, 8):
        low, high = bounds(draw, [1.0, 1.5, 3.0])
        fields |= {"field_strength_min": low, "field_strength_max": high}
    if sometimes(draw, 8):
        fields["contrast"] = draw(st.booleans())
    if sometimes(draw, 6):
        kinds = st.lists(st.sampled_from(list(AnnotationKind)), min_size=1, max_size=2)
        fields["has_annotation"] = draw(kinds)
    return SeriesCriteria.model_validate(fields)


@st.composite
def study_criteria(draw: st.DrawFn) -> StudyCriteria:
    low, high = bounds(draw, [1999, 2005, 2010, 2020]) if sometimes(draw) else (None, None)
    modalities = st.lists(st.sampled_from(SPELLINGS["modality"]), max_size=2)
    return StudyCriteria(
        year_min=None if low is None else int(low),
        year_max=None if high is None else int(high),
        modalities=tuple(draw(modalities)) if sometimes(draw, 2) else (),
        series=tuple(draw(st.lists(series_criteria(), max_size=2))) if sometimes(draw, 2) else (),
    )


@st.composite
def subject_criteria(draw: st.DrawFn) -> SubjectCriteria:
    low, high = bounds(draw, [0, 18, 40, 55, 70, 100]) if sometimes(draw) else (None, None)
    sexes = st.lists(st.sampled_from(["F", "M", "O", "U"]), max_size=3)
    return SubjectCriteria(
        sex=tuple(draw(sexes)) if sometimes(draw, 2) else (),
        age_min=None if low is None else int(low),
        age_max=None if high is None else int(high),
        diagnosis=tuple(draw(st.lists(st.sampled_from(CODES), max_size=2)))
        if sometimes(draw, 4)
        else (),
    )


leaves = st.one_of(
    subject_criteria().map(lambda s: Criterion(subject=s)),
    series_criteria().map(lambda s: Criterion(series=s)),
    study_criteria().map(lambda s: Criterion(study=s)),
)


def trees(depth: int) -> st.SearchStrategy[Criterion]:
    """Trees of at most `depth` + 1 levels."""
    if depth == 0:
        return leaves
    below = trees(depth - 1)
    return st.one_of(
        leaves,
        st.lists(below, max_size=3).map(lambda c: Criterion(all_of=tuple(c))),
        st.lists(below, max_size=3).map(lambda c: Criterion(any_of=tuple(c))),
        below.map(lambda c: Criterion(not_=c)),
    )


scopes = st.builds(
    DatasetScope,
    providers=st.lists(st.sampled_from(["p1", "p2", "p3"]), max_size=2).map(tuple),
    datasets=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2).map(tuple),
)


@st.composite
def queries(draw: st.DrawFn) -> CohortQuery:
    """A scope, now and then flat criteria, mostly a tree."""
    return CohortQuery(
        datasets=draw(scopes) if sometimes(draw) else DatasetScope(),
        subject=draw(subject_criteria()) if sometimes(draw, 4) else SubjectCriteria(),
        series=tuple(draw(st.lists(series_criteria(), max_size=2))) if sometimes(draw) else (),
        same_study=draw(st.booleans()),
        studies=(draw(study_criteria()),) if sometimes(draw, 5) else (),
        where=draw(trees(2)) if not sometimes(draw, 5) else None,
    )


strata_tables = st.lists(
    st.lists(st.sampled_from(list(Stratum)), min_size=1, max_size=2, unique=True).map(tuple),
    max_size=2,
).map(tuple)
PAIRS = [(p, d) for p, ds in DATASETS.items() for d in ds]
explicit_scopes = st.one_of(st.none(), st.frozensets(st.sampled_from(PAIRS), max_size=len(PAIRS)))


def positive_study_leaves(query: CohortQuery) -> int:
    return sum(
        1 for leaf, positive in query.criterion().leaves() if positive and leaf.study is not None
    )


@pytest.fixture
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBCohortIndex]:
    """One index per test function; each example replaces its rows."""
    index = DuckDBCohortIndex(tmp_path_factory.mktemp("cohort"))
    yield index
    index.close()


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(
    rows=tables(),
    codes=diagnoses,
    query=queries(),
    strata=strata_tables,
    pairs=explicit_scopes,
    listing=st.sampled_from([1, 1, 2, 3]),
)
def test_index_counts_equal_the_reference(
    shared_index: DuckDBCohortIndex,
    rows: list[Row],
    codes: Diagnoses,
    query: CohortQuery,
    strata: tuple[tuple[Stratum, ...], ...],
    pairs: frozenset[tuple[str, str]] | None,
    listing: int,
) -> None:
    assume(positive_study_leaves(query) <= MAX_POSITIVE_STUDY_LEAVES)
    load(shared_index, rows, codes)
    got = shared_index.count(query, strata=strata, scopes=pairs, strata_min_subjects=listing)
    expected = evaluate(
        rows, query, strata=strata, scopes=pairs, diagnoses=codes, strata_min_subjects=listing
    )
    assert_same(got, expected)


@PROPERTY
@given(rows=tables(), tree=trees(2), strata=strata_tables)
def test_equivalent_forms_count_alike(
    shared_index: DuckDBCohortIndex,
    rows: list[Row],
    tree: Criterion,
    strata: tuple[tuple[Stratum, ...], ...],
) -> None:
    """A tree, its double negation and its De Morgan dual count the same, in the index and in
    the reference."""
    plain = CohortQuery(where=tree)
    assume(positive_study_leaves(plain) <= MAX_POSITIVE_STUDY_LEAVES)
    load(shared_index, rows)
    expected = evaluate(rows, plain, strata=strata)
    assert_same(shared_index.count(plain, strata=strata), expected)
    for other in (
        CohortQuery(where=Criterion(not_=Criterion(not_=tree))),
        CohortQuery(where=Criterion(all_of=(tree, Criterion(any_of=(tree,))))),
    ):
        assert_same(evaluate(rows, other, strata=strata), expected)
        assert_same(shared_index.count(other, strata=strata), expected)
    if tree.any_of:
        dual = CohortQuery(
            where=Criterion(not_=Criterion(all_of=tuple(Criterion(not_=c) for c in tree.any_of)))
        )
        assert_same(evaluate(rows, dual, strata=strata), expected)
        assert_same(shared_index.count(dual, strata=strata), expected)


def linkage_code(subject: int) -> int:
    """A subject id's linkage code here: register = the id, so that each register is one
    subject's, and a rank drawn from the id."""
    return subject << RANK_BITS | (subject * 7 % MAX_RANK + 1)


@PROPERTY
@given(
    rows=tables(),
    query=queries(),
    pairs=explicit_scopes,
    linked=st.sets(st.sampled_from(["p1", "p2"])),
)
def test_linkage_registers_hold_exactly_the_matching_subjects(
    shared_index: DuckDBCohortIndex,
    rows: list[Row],
    query: CohortQuery,
    pairs: frozenset[tuple[str, str]] | None,
    linked: set[str],
) -> None:
    """With one register per subject id, a linked provider's registers are set exactly for
    as many subjects as the reference counts there, each with its subject's rank; providers
    harvested without linkage codes get no registers."""
    assume(positive_study_leaves(query) <= MAX_POSITIVE_STUDY_LEAVES)
    coded = [
        {**r, "linkage": linkage_code(r["subject"]) if r["provider"] in linked else None}
        for r in rows
    ]
    load(shared_index, coded)
    got = shared_index.count(query, scopes=pairs, linkage=True)
    expected = evaluate(rows, query, scopes=pairs)
    assert_same(got, expected)
    assert set(got.linkage) == linked & set(expected.by_provider)
    ranks = {linkage_code(s) >> RANK_BITS: linkage_code(s) & 63 for s in range(1, 7)}
    for provider, registers in got.linkage.items():
        sketch = HllSketch(registers)
        held = {i: rank for i, rank in enumerate(sketch.registers) if rank}
        assert len(held) == expected.by_provider[provider].subjects
        assert all(ranks[i] == rank for i, rank in held.items())
        assert round(sketch.estimate()) == expected.by_provider[provider].subjects


# -- hand-worked cases ---------------------------------------------------------------------------

TINY_TABLE = """
provider dataset subject study series sex age study_year modality body_part manufacturer model slice_thickness field_strength contrast is_annotation annotated_series
# P 1: F (its U row notwithstanding); study 10 spans d1 and d2
P  d1  1  10  100  F  55  2001  CT   CHEST   ge       lightspeed_16  2.5  -    True  False  -
P  d1  1  10  101  F  55  2001  SEG  CHEST   -        -              -    -    -     True   100
P  d1  1  11  102  F  57  2003  PT   CHEST   siemens  -              -    -    -     False  -
P  d2  1  12  103  U  -   -     MR   BREAST  siemens  skyra          -    3.0  -     False  -
P  d2  1  10  104  F  55  2001  SR   CHEST   -        -              -    -    -     True   -
# P 2: M and F rows, so U
P  d1  2  20  200  M  70  2001  CT   CHEST   ge       -              5.0  -    -     False  -
P  d2  2  21  201  F  71  2002  MR   BRAIN   philips  -              -    1.5  -     False  -
P  d2  2  21  202  U  71  2002  SR   BRAIN   -        -              -    -    -     True   -
# Q 1: M, another subject than P 1; its SEG refers to a series elsewhere
Q  d1  1  30  300  M  40  2010  MR   HEAD    philips  achieva        -    3.0  True  False  -
Q  d1  1  30  301  M  40  2010  SEG  HEAD    -        -              -    -    -     True   999
"""  # noqa: E501


def parse_table(text: str) -> list[Row]:
    """A whitespace-separated table: '-' is None, '_' a space, numbers and booleans typed."""
    lines = [line.split() for line in text.strip().splitlines() if not line.startswith("#")]
    rows = []
    for values in lines[1:]:
        row: Row = {}
        for column, value in zip(lines[0], values, strict=True):
            if value == "-":
                row[column] = None
            elif value in ("True", "False"):
                row[column] = value == "True"
            elif column in ("slice_thickness", "field_strength"):
                row[column] = float(value)
            elif value.isdigit():
                row[column] = int(value)
            else:
                row[column] = value.replace("_", " ")
        rows.append(row)
    return rows


TINY = parse_table(TINY_TABLE)


def c(subjects: int, studies: int, series: int) -> ExactCounts:
    return ExactCounts(subjects=subjects, studies=studies, series=series)


ZERO = c(0, 0, 0)

# query, total, by provider, by (provider, dataset); worked out by hand from TINY
HAND: list[tuple[dict[str, Any], ExactCounts, dict[str, ExactCounts], dict[Any, ExactCounts]]] = [
    (
        {},
        c(3, 6, 10),
        {"P": c(2, 5, 8), "Q": c(1, 1, 2)},
        {("P", "d1"): c(2, 3, 4), ("P", "d2"): c(2, 3, 4), ("Q", "d1"): c(1, 1, 2)},
    ),
    (
        {"subject": {"sex": ["F"]}},
        c(1, 3, 5),
        {"P": c(1, 3, 5), "Q": ZERO},
        {("P", "d1"): c(1, 2, 3), ("P", "d2"): c(1, 2, 2), ("Q", "d1"): ZERO},
    ),
    (  # subject sex is read over the whole provider, whatever the scope
        {"datasets": {"datasets": ["d2"]}, "subject": {"sex": ["U"]}},
        c(1, 1, 2),
        {"P": c(1, 1, 2)},
        {("P", "d2"): c(1, 1, 2)},
    ),
    (
        {"series": [{"has_annotation": ["SEG"]}]},
        c(1, 1, 1),
        {"P": c(1, 1, 1), "Q": ZERO},
        {("P", "d1"): c(1, 1, 1), ("P", "d2"): ZERO, ("Q", "d1"): ZERO},
    ),
    (  # the SR of study 10 is in another dataset than its CT
        {"series": [{"modality": ["CT"], "has_annotation": ["SR"]}]},
        ZERO,
        {"P": ZERO, "Q": ZERO},
        {("P", "d1"): ZERO, ("P", "d2"): ZERO, ("Q", "d1"): ZERO},
    ),
    (
        {"series": [{"has_annotation": ["SR"]}]},
        c(1, 1, 1),
        {"P": c(1, 1, 1), "Q": ZERO},
        {("P", "d1"): ZERO, ("P", "d2"): c(1, 1, 1), ("Q", "d1"): ZERO},
    ),
    (  # per cell: in d2 neither P subject has a CT
        {"where": {"not": {"series": {"modality": ["CT"]}}}},
        c(1, 1, 2),
        {"P": ZERO, "Q": c(1, 1, 2)},
        {("P", "d1"): ZERO, ("P", "d2"): c(2, 3, 4), ("Q", "d1"): c(1, 1, 2)},
    ),
    (
        {"studies": [{"modalities": ["CT", "SEG"]}]},
        c(1, 1, 2),
        {"P": c(1, 1, 2), "Q": ZERO},
        {("P", "d1"): c(1, 1, 2), ("P", "d2"): ZERO, ("Q", "d1"): ZERO},
    ),
    (
        {"studies": [{"year_min": 2001, "year_max": 2002, "series": [{"modality": ["MR"]}]}]},
        c(1, 1, 1),
        {"P": c(1, 1, 1), "Q": ZERO},
        {("P", "d1"): ZERO, ("P", "d2"): c(1, 1, 1), ("Q", "d1"): ZERO},
    ),
    (  # Q s1 matches by sex and has no counted row
        {"where": {"any_of": [{"subject": {"sex": ["M"]}}, {"series": {"model": ["Skyra"]}}]}},
        c(2, 1, 1),
        {"P": c(1, 1, 1), "Q": c(1, 0, 0)},
        {("P", "d1"): ZERO, ("P", "d2"): c(1, 1, 1), ("Q", "d1"): c(1, 0, 0)},
    ),
    (
        {"subject": {"age_min": 56, "age_max": 60}},
        c(1, 3, 5),
        {"P": c(1, 3, 5), "Q": ZERO},
        {("P", "d1"): c(1, 2, 3), ("P", "d2"): ZERO, ("Q", "d1"): ZERO},
    ),
    (
        {"series": [{"slice_thickness_min": 2, "slice_thickness_max": 3}]},
        c(1, 1, 1),
        {"P": c(1, 1, 1), "Q": ZERO},
        {("P", "d1"): c(1, 1, 1), ("P", "d2"): ZERO, ("Q", "d1"): ZERO},
    ),
    (
        {"series": [{"field_strength_min": 3}]},
        c(2, 2, 2),
        {"P": c(1, 1, 1), "Q": c(1, 1, 1)},
        {("P", "d1"): ZERO, ("P", "d2"): c(1, 1, 1), ("Q", "d1"): c(1, 1, 1)},
    ),
    (
        {"series": [{"contrast": True}]},
        c(2, 2, 2),
        {"P": c(1, 1, 1), "Q": c(1, 1, 1)},
        {("P", "d1"): c(1, 1, 1), ("P", "d2"): ZERO, ("Q", "d1"): c(1, 1, 1)},
    ),
    (
        {"series": [{"contrast": False}]},
        c(3, 6, 8),
        {"P": c(2, 5, 7), "Q": c(1, 1, 1)},
        {("P", "d1"): c(2, 3, 3), ("P", "d2"): c(2, 3, 4), ("Q", "d1"): c(1, 1, 1)},
    ),
    (
        {"series": [{"modality": ["MR"]}, {"modality": ["SEG"]}]},
        c(2, 3, 4),
        {"P": c(1, 2, 2), "Q": c(1, 1, 2)},
        {("P", "d1"): ZERO, ("P", "d2"): ZERO, ("Q", "d1"): c(1, 1, 2)},
    ),
    (
        {"series": [{"modality": ["MR"]}, {"modality": ["SEG"]}], "same_study": True},
        c(1, 1, 2),
        {"P": ZERO, "Q": c(1, 1, 2)},
        {("P", "d1"): ZERO, ("P", "d2"): ZERO, ("Q", "d1"): c(1, 1, 2)},
    ),
]


@pytest.fixture
def tiny_index(tmp_path: Path) -> Iterator[DuckDBCohortIndex]:
    index = DuckDBCohortIndex(tmp_path / "cohort")
    for provider in ("P", "Q"):
        index.replace_source(provider, "s", [batch([r for r in TINY if r["provider"] == provider])])
    yield index
    index.close()


@pytest.mark.parametrize(
    ("raw", "total", "by_provider", "by_dataset"), HAND, ids=[f"h{i:02d}" for i in range(len(HAND))]
)
def test_hand_worked_counts(
    tiny_index: DuckDBCohortIndex,
    raw: dict[str, Any],
    total: ExactCounts,
    by_provider: dict[str, ExactCounts],
    by_dataset: dict[Any, ExactCounts],
) -> None:
    query = CohortQuery.model_validate(raw)
    for result in (evaluate(TINY, query), tiny_index.count(query)):
        assert (result.total, result.by_provider, result.by_dataset) == (
            total,
            by_provider,
            by_dataset,
        )


def test_hand_worked_explicit_scopes(tiny_index: DuckDBCohortIndex) -> None:
    pairs = frozenset({("P", "d1")})
    for result in (
        evaluate(TINY, CohortQuery(), scopes=pairs),
        tiny_index.count(CohortQuery(), scopes=pairs),
    ):
        assert result.total == c(2, 3, 4)
        assert result.by_provider == {"P": c(2, 3, 4)}
        assert result.by_dataset == {("P", "d1"): c(2, 3, 4)}


def test_hand_worked_strata(tiny_index: DuckDBCohortIndex) -> None:
    bands = {f"{low}-{low + 9}": ZERO for low in range(0, 100, 10)} | {"100+": ZERO, None: ZERO}
    by_age = bands | {
        "50-59": c(1, 2, 4),
        None: c(1, 1, 1),
        "70-79": c(1, 2, 3),
        "40-49": c(1, 1, 2),
    }
    everything = CohortQuery()
    ct_or_mr = CohortQuery.model_validate({"series": [{"modality": ["CT", "MR"]}]})
    strata = ((Stratum.SEX,), (Stratum.AGE_BAND,), (Stratum.MODALITY,))
    for result in (
        evaluate(TINY, everything, strata=strata),
        tiny_index.count(everything, strata=strata),
    ):
        sex, age, _ = strata_of(result)
        assert sex == (
            (Stratum.SEX,),
            {("F",): c(1, 3, 5), ("M",): c(1, 1, 2), ("U",): c(1, 2, 3), ("O",): ZERO},
        )
        assert age == ((Stratum.AGE_BAND,), {(band,): n for band, n in by_age.items()})
    for result in (
        evaluate(TINY, ct_or_mr, strata=strata),
        tiny_index.count(ct_or_mr, strata=strata),
    ):
        _, _, modality = strata_of(result)
        assert modality == (
            (Stratum.MODALITY,),
            {
                ("CT",): c(2, 2, 2),
                ("MR",): c(3, 3, 3),
                ("PT",): ZERO,
                ("SEG",): ZERO,
                ("SR",): ZERO,
                ("(other)",): ZERO,
                (None,): ZERO,
            },
        )


def test_hand_worked_strata_listing(tiny_index: DuckDBCohortIndex) -> None:
    """Values fewer than `strata_min_subjects` subjects hold in scope are counted as
    '(other)' (here PT, which only P 1 holds); the listing is made over the scope."""
    strata = ((Stratum.MODALITY,), (Stratum.MODALITY, Stratum.SEX))
    everything = CohortQuery()
    for result in (
        evaluate(TINY, everything, strata=strata, strata_min_subjects=2),
        tiny_index.count(everything, strata=strata, strata_min_subjects=2),
    ):
        modality, by_sex = strata_of(result)
        assert modality == (
            (Stratum.MODALITY,),
            {
                ("CT",): c(2, 2, 2),
                ("MR",): c(3, 3, 3),
                ("SEG",): c(2, 2, 2),
                ("SR",): c(2, 2, 2),
                ("(other)",): c(1, 1, 1),
                (None,): ZERO,
            },
        )
        assert len(by_sex[1]) == 6 * 4
        assert by_sex[1][("(other)", "F")] == c(1, 1, 1)
        assert by_sex[1][("SR", "U")] == c(1, 1, 1)
        assert by_sex[1][("SR", "F")] == c(1, 1, 1)
    in_d2 = CohortQuery.model_validate({"datasets": {"datasets": ["d2"]}})
    for result in (
        evaluate(TINY, in_d2, strata=strata[:1], strata_min_subjects=2),
        tiny_index.count(in_d2, strata=strata[:1], strata_min_subjects=2),
    ):
        # d2 rows: P 1 MR, SR; P 2 MR, SR
        assert strata_of(result) == [
            (
                (Stratum.MODALITY,),
                {("MR",): c(2, 2, 2), ("SR",): c(2, 2, 2), ("(other)",): ZERO, (None,): ZERO},
            )
        ]


def test_hand_worked_diagnoses(tiny_index: DuckDBCohortIndex) -> None:
    query = CohortQuery.model_validate({"subject": {"diagnosis": [" c50 "]}})
    assert evaluate(TINY, query).total == ZERO
    assert tiny_index.count(query).total == ZERO
    # Q's subject 1 is another subject than P's: its C50 is not P 1's
    codes = {("P", 2): {"C50", "C34"}, ("Q", 1): {"C50"}, ("P", 9): {"C50"}}
    tiny_index.replace_diagnoses("P", "s", [(2, "C50"), (2, "C34"), (9, "C50")])
    tiny_index.replace_diagnoses("Q", "s", [(1, "C50")])
    for found in (evaluate(TINY, query, diagnoses=codes), tiny_index.count(query)):
        assert found.total == c(2, 3, 5)
        assert found.by_provider == {"P": c(1, 2, 3), "Q": c(1, 1, 2)}
        assert found.by_dataset == {
            ("P", "d1"): c(1, 1, 1),
            ("P", "d2"): c(1, 1, 2),
            ("Q", "d1"): c(1, 1, 2),
        }
