"""The Elasticsearch cohort index against the reference evaluator (tests/reference/), on the real
node the tests start: the random tables, queries, strata and scopes of test_cohort_queries.py
(fewer examples: each one rewrites the documents), its hand-worked cases (imported, run here on
this backend through the `tiny_index` fixture), and the evidence (fingerprints, sketches) and
linkage registers checked against sets the reference's own functions select."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator, Sequence
from typing import Any
from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from catalogue.config import ElasticsearchSettings
from catalogue.domain.cohort import CohortQuery, Criterion, Stratum
from catalogue.domain.linkage import RANK_BITS, HllSketch
from catalogue.exceptions import QueryError
from catalogue.imaging.features import SERIES_SCHEMA
from catalogue.index.elasticsearch import cohort as cohort_module
from catalogue.index.elasticsearch.client import EsClient
from catalogue.index.elasticsearch.cohort import ElasticsearchCohortIndex
from tests.contract.test_cohort_queries import (  # noqa: F401 (the hand-worked tests run here)
    DATASETS,
    MAX_POSITIVE_STUDY_LEAVES,
    TINY,
    Diagnoses,
    Row,
    assert_same,
    batch,
    diagnoses,
    explicit_scopes,
    linkage_code,
    parse_table,
    positive_study_leaves,
    queries,
    strata_tables,
    tables,
    test_hand_worked_counts,
    test_hand_worked_diagnoses,
    test_hand_worked_explicit_scopes,
    test_hand_worked_strata,
    test_hand_worked_strata_listing,
    trees,
)
from tests.reference import cohort_reference as ref
from tests.services.elasticsearch import ElasticsearchNode

pytestmark = pytest.mark.service

EXAMPLES = int(os.environ.get("CATALOGUE_TEST_ES_EXAMPLES", "60"))
"""Examples per property (the DuckDB suite runs 150): each example rewrites the documents of
two providers, about a third of a second on the test node."""


def _drop(client: EsClient) -> None:
    """Delete the indexes of the client's prefix (wildcard deletes are refused)."""
    pattern = f"{client.prefix}-*"

    async def work(es: Any) -> None:
        found = await es.indices.get(index=pattern, allow_no_indices=True)
        for name in found.body:
            await es.indices.delete(index=name)

    client.call(work)


def open_index(node: ElasticsearchNode) -> tuple[EsClient, ElasticsearchCohortIndex]:
    client = EsClient(
        ElasticsearchSettings(url=node.url, index_prefix=f"cohort-test-{secrets.token_hex(4)}")
    )
    return client, ElasticsearchCohortIndex(client, owned=False)


@pytest.fixture
def es_index(elasticsearch_node: ElasticsearchNode) -> Iterator[ElasticsearchCohortIndex]:
    """One index per test function; each example replaces its rows."""
    client, index = open_index(elasticsearch_node)
    try:
        yield index
    finally:
        _drop(client)
        client.close()


@pytest.fixture(scope="module")
def _tiny(elasticsearch_node: ElasticsearchNode) -> Iterator[ElasticsearchCohortIndex]:
    client, index = open_index(elasticsearch_node)
    for provider in ("P", "Q"):
        index.replace_source(provider, "s", [batch([r for r in TINY if r["provider"] == provider])])
    try:
        yield index
    finally:
        _drop(client)
        client.close()


@pytest.fixture
def tiny_index(_tiny: ElasticsearchCohortIndex) -> ElasticsearchCohortIndex:
    """The hand-worked table (the imported hand-worked tests take this fixture), without
    diagnoses."""
    for provider in ("P", "Q"):
        _tiny.replace_diagnoses(provider, "s", [])
    return _tiny


def load(
    index: ElasticsearchCohortIndex, rows: Sequence[Row], codes: Diagnoses | None = None
) -> None:
    """Replace every provider's rows and diagnoses of the index with these."""
    for provider in DATASETS:
        mine = [r for r in rows if r["provider"] == provider]
        index.replace_source(provider, "s", [batch(mine)] if mine else [])
        index.replace_diagnoses(
            provider,
            "s",
            [
                (subject, code)
                for (p, subject), found in (codes or {}).items()
                if p == provider
                for code in sorted(found)
            ],
        )


PROPERTY = settings(
    max_examples=EXAMPLES,
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
    es_index: ElasticsearchCohortIndex,
    rows: list[Row],
    codes: Diagnoses,
    query: CohortQuery,
    strata: tuple[tuple[Stratum, ...], ...],
    pairs: frozenset[tuple[str, str]] | None,
    listing: int,
) -> None:
    assume(positive_study_leaves(query) <= MAX_POSITIVE_STUDY_LEAVES)
    load(es_index, rows, codes)
    got = es_index.count(query, strata=strata, scopes=pairs, strata_min_subjects=listing)
    expected = ref.evaluate(
        rows, query, strata=strata, scopes=pairs, diagnoses=codes, strata_min_subjects=listing
    )
    assert_same(got, expected)


@PROPERTY
@given(rows=tables(), tree=trees(2), strata=strata_tables)
def test_equivalent_forms_count_alike(
    es_index: ElasticsearchCohortIndex,
    rows: list[Row],
    tree: Criterion,
    strata: tuple[tuple[Stratum, ...], ...],
) -> None:
    """A tree, its double negation and its De Morgan dual count as the reference counts."""
    plain = CohortQuery(where=tree)
    assume(positive_study_leaves(plain) <= MAX_POSITIVE_STUDY_LEAVES)
    load(es_index, rows)
    expected = ref.evaluate(rows, plain, strata=strata)
    assert_same(es_index.count(plain, strata=strata), expected)
    doubled = CohortQuery(where=Criterion(not_=Criterion(not_=tree)))
    assert_same(es_index.count(doubled, strata=strata), expected)
    if tree.any_of:
        dual = CohortQuery(
            where=Criterion(not_=Criterion(all_of=tuple(Criterion(not_=c) for c in tree.any_of)))
        )
        assert_same(es_index.count(dual, strata=strata), expected)


# -- evidence and linkage ------------------------------------------------------------------------

Sets = tuple[set[int], set[int], set[int]]


def reference_sets(
    rows: Sequence[Row],
    query: CohortQuery,
    scopes: frozenset[tuple[str, str]] | None,
) -> dict[str, Sets]:
    """Per cell ('provider:p', 'dataset:p/d'), the ids of the matching subjects and of the
    studies and series of their counted rows, by the reference's own functions."""
    query = query.normalised()
    tree = query.where if query.where is not None else Criterion(all_of=())
    table = [ref._row(n, r) for n, r in enumerate(rows)]
    known: dict[tuple[str, Any], set[str]] = {}
    for row in table:
        known.setdefault((row.provider, row.subject), set()).update({row.sex} - {"U"})
    sex_of = {k: next(iter(v)) if len(v) == 1 else "U" for k, v in known.items()}
    scope = query.datasets
    pairs = {
        (r.provider, r.dataset)
        for r in table
        if (not scope.providers or r.provider in scope.providers)
        and (not scope.datasets or r.dataset in scope.datasets)
        and (scopes is None or (r.provider, r.dataset) in scopes)
    }
    leaves = ref.positive_leaves(tree)
    cells: dict[str, list[Any]] = {}
    for row in table:
        if (row.provider, row.dataset) in pairs:
            cells.setdefault(f"provider:{row.provider}", []).append(row)
            cells.setdefault(f"dataset:{row.provider}/{row.dataset}", []).append(row)
    out: dict[str, Sets] = {}
    for key, cell_rows in cells.items():
        by_subject: dict[tuple[str, Any], list[Any]] = {}
        for row in cell_rows:
            by_subject.setdefault((row.provider, row.subject), []).append(row)
        subjects, studies, series = set(), set(), set()
        for (provider, subject), mine in by_subject.items():
            ctx = ref._Context(provider, subject, mine, sex_of[(provider, subject)], frozenset())
            if ref.holds(tree, ctx):
                subjects.add(int(subject))
                for row in ref.counted_rows(leaves, ctx):
                    studies.add(int(row.study))
                    series.add(int(row.series))
        out[key] = (subjects, studies, series)
    return out


def xor(values: set[int]) -> int:
    out = 0
    for v in values:
        out ^= v
    return out


@PROPERTY
@given(
    rows=tables(),
    query=queries(),
    pairs=explicit_scopes,
    linked=st.sets(st.sampled_from(["p1", "p2"])),
)
def test_evidence_and_linkage_hold_exactly_the_counted_sets(
    es_index: ElasticsearchCohortIndex,
    rows: list[Row],
    query: CohortQuery,
    pairs: frozenset[tuple[str, str]] | None,
    linked: set[str],
) -> None:
    """Each cell's fingerprints are the XOR of the ids of its matching subjects and of its
    counted studies and series, its sketch counts those subjects per low byte, the total's are
    the providers' combined; a linked provider's registers hold one rank per matching subject
    (one register per subject id here) and unlinked providers get none."""
    assume(positive_study_leaves(query) <= MAX_POSITIVE_STUDY_LEAVES)
    assume(not query.subject.diagnosis)
    assume(
        not any(leaf.subject and leaf.subject.diagnosis for leaf, _ in query.criterion().leaves())
    )
    coded = [
        {**r, "linkage": linkage_code(r["subject"]) if r["provider"] in linked else None}
        for r in rows
    ]
    load(es_index, coded)
    got = es_index.count(query, scopes=pairs, evidence=True, linkage=True)
    expected = reference_sets(rows, query, pairs)
    assert_same(got, ref.evaluate(rows, query, scopes=pairs))
    total = [0, 0, 0]
    total_sketch: dict[int, int] = {}
    for key, (subjects, studies, series) in expected.items():
        found = got.evidence[key]
        assert (found.subject_fp, found.study_fp, found.series_fp) == (
            xor(subjects),
            xor(studies),
            xor(series),
        ), key
        buckets: dict[int, int] = {}
        for subject in subjects:
            buckets[subject & 255] = buckets.get(subject & 255, 0) + 1
        assert found.sketch == tuple(sorted(buckets.items())), key
        if key.startswith("provider:"):
            total = [total[0] ^ xor(subjects), total[1] ^ xor(studies), total[2] ^ xor(series)]
            for bucket, n in buckets.items():
                total_sketch[bucket] = total_sketch.get(bucket, 0) + n
    if expected:
        overall = got.evidence["total"]
        assert [overall.subject_fp, overall.study_fp, overall.series_fp] == total
        assert overall.sketch == tuple(sorted(total_sketch.items()))
    in_scope = {key.split(":", 1)[1] for key in expected if key.startswith("provider:")}
    assert set(got.linkage) == linked & in_scope
    for provider, registers in got.linkage.items():
        held = {i: rank for i, rank in enumerate(HllSketch(registers).registers) if rank}
        subjects = expected[f"provider:{provider}"][0]
        assert held == {
            linkage_code(s) >> RANK_BITS: linkage_code(s) & ((1 << RANK_BITS) - 1) for s in subjects
        }


# -- writes and reads besides counts -------------------------------------------------------------


def test_sources_replace_their_own_rows(es_index: ElasticsearchCohortIndex) -> None:
    """A provider's two sources: replacing one keeps the other's rows; the subject's sex and
    annotation bits span them; diagnoses of a source are replaced; summaries, values, scopes."""
    one = [r for r in TINY if r["provider"] == "P" and r["dataset"] == "d1"]
    two = [r for r in TINY if r["provider"] == "P" and r["dataset"] == "d2"]
    assert es_index.replace_source("P", "one", [batch(one)]) == len(one)
    assert es_index.replace_source("P", "two", [batch(two)]) == len(two)
    everything = CohortQuery()
    assert_same(es_index.count(everything), ref.evaluate(one + two, everything))
    # P 2 is M in d1 and F in d2: U over the provider, whichever source holds which row
    male = CohortQuery.model_validate({"subject": {"sex": ["M"]}})
    assert es_index.count(male).total.subjects == 0
    es_index.replace_source("P", "two", [])
    assert es_index.count(male).total.subjects == 1
    assert es_index.scopes() == [("P", "d1")]
    assert es_index.replace_diagnoses("P", "dx", [(1, "C50"), (1, "C50"), (2, "C34")]) == 2
    c50 = CohortQuery.model_validate({"subject": {"diagnosis": ["C50"]}})
    assert es_index.count(c50).total.subjects == 1
    es_index.replace_diagnoses("P", "dx", [(2, "C50")])
    assert es_index.count(c50).by_dataset[("P", "d1")].series == 1
    summary = es_index.summaries("P")["d1"]
    assert (summary.subjects, summary.studies, summary.age_min, summary.age_max) == (2, 3, 55, 70)
    assert summary.subjects_by_modality == {"CT": 2, "SEG": 1, "PT": 1}
    assert es_index.distinct_values("P", "manufacturer") == {"ge": (2, 2), "siemens": (1, 1)}


@settings(PROPERTY, max_examples=max(EXAMPLES // 3, 5))
@given(
    rows=tables(),
    codes=diagnoses,
    query=queries(),
    placing=st.data(),
)
def test_sources_written_a_few_subjects_at_a_time_count_as_the_reference(
    es_index: ElasticsearchCohortIndex,
    rows: list[Row],
    codes: Diagnoses,
    query: CohortQuery,
    placing: st.DataObject,
) -> None:
    """Writes go a group of whole subjects at a time (here at most 2 subjects or 2 rows):
    rows of two sources per provider, sent in shuffled batches that split subjects, then one
    source rewritten without some of its rows, and diagnoses of two sources of which one is
    emptied, count as the reference counts what remains."""
    assume(positive_study_leaves(query) <= MAX_POSITIVE_STUDY_LEAVES)
    source = [placing.draw(st.sampled_from(["s1", "s2"])) for _ in rows]
    kept = [s == "s2" or placing.draw(st.booleans()) for s in source]
    late = [placing.draw(st.booleans()) for _ in sorted(codes)]
    with (
        patch.object(cohort_module, "ROWS_PER_WRITE", 2),
        patch.object(cohort_module, "SUBJECTS_PER_WRITE", 2),
    ):
        for provider in DATASETS:
            for name in ("s1", "s2"):
                mine = [
                    r
                    for r, s in zip(rows, source, strict=True)
                    if (r["provider"], s) == (provider, name)
                ]
                mine = placing.draw(st.permutations(mine))
                sizes = placing.draw(st.integers(1, 3))
                es_index.replace_source(
                    provider, name, [batch(mine[i : i + sizes]) for i in range(0, len(mine), sizes)]
                )
            for name, wanted in (("dx", False), ("late", True)):
                es_index.replace_diagnoses(
                    provider,
                    name,
                    [
                        (subject, code)
                        for ((p, subject), found), is_late in zip(
                            sorted(codes.items()), late, strict=True
                        )
                        if p == provider and is_late == wanted
                        for code in sorted(found)
                    ],
                )
        for provider in DATASETS:
            remaining = [
                r
                for r, s, k in zip(rows, source, kept, strict=True)
                if (r["provider"], s) == (provider, "s1") and k
            ]
            es_index.replace_source(provider, "s1", [batch(remaining)] if remaining else [])
            es_index.replace_diagnoses(provider, "late", [])
    left = [r for r, k in zip(rows, kept, strict=True) if k]
    early = {
        key: found
        for (key, found), is_late in zip(sorted(codes.items()), late, strict=True)
        if not is_late
    }
    assert_same(es_index.count(query), ref.evaluate(left, query, diagnoses=early))


def test_value_concepts(es_index: ElasticsearchCohortIndex) -> None:
    """Concept values and mapping versions per provider; a body part criterion naming a
    concept counts the rows of the raw values mapped to it, per provider."""
    load_tiny = [r for r in TINY if r["provider"] in ("P", "Q")]
    for provider in ("P", "Q"):
        es_index.replace_source(
            provider, "s", [batch([r for r in load_tiny if r["provider"] == provider])]
        )
    assert es_index.mapping_version() is None
    es_index.replace_value_concepts("P", [("body_part", "CHEST", "SCT:51185008")], 3)
    es_index.replace_value_concepts("Q", [("body_part", "HEAD", "SCT:69536005")], 4)
    assert es_index.mapping_version() == 3
    assert es_index.mapping_version("Q") == 4
    assert es_index.concept_values("body_part", ["SCT:51185008", "SCT:69536005"]) == {
        ("P", "CHEST"),
        ("Q", "HEAD"),
    }
    chest = CohortQuery.model_validate({"series": [{"body_part": ["SCT:51185008"]}]})
    result = es_index.count(chest)
    assert (result.by_provider["P"].subjects, result.by_provider["P"].series) == (2, 5)
    assert result.by_provider["Q"].series == 0


SHARED_TABLE = """
provider dataset subject study series sex age study_year modality body_part
# study 7 is named by two subjects of P (in two datasets) and by a subject of Q
P  d1  1  7  70  F  50  2001  CT  CHEST
P  d1  1  8  80  F  50  2002  MR  CHEST
P  d2  2  7  71  M  60  2001  CT  CHEST
P  d2  2  7  72  M  60  2001  SEG CHEST
Q  d1  1  7  73  F  40  2001  CT  HEAD
"""


def test_shared_study_ids_are_counted_once_per_provider(
    es_index: ElasticsearchCohortIndex,
) -> None:
    """A study id two subjects name counts once in its provider's cells and strata cells, and
    once more for another provider (the reference keys studies by provider)."""
    rows = parse_table(SHARED_TABLE)
    for provider in ("P", "Q"):
        es_index.replace_source(
            provider, "s", [batch([r for r in rows if r["provider"] == provider])]
        )
    strata = ((Stratum.MODALITY,), (Stratum.SEX, Stratum.YEAR))
    for raw in ({}, {"series": [{"modality": ["CT"]}]}, {"studies": [{"modalities": ["CT"]}]}):
        query = CohortQuery.model_validate(raw)
        got = es_index.count(query, strata=strata)
        assert_same(got, ref.evaluate(rows, query, strata=strata))
    everything = es_index.count(CohortQuery(), strata=strata)
    assert everything.by_provider["P"].studies == 2
    assert everything.total.studies == 3
    assert dict((c.values, c.counts.studies) for c in everything.strata[0].cells)[("CT",)] == 2


def test_sources_export_as_they_were_loaded(es_index: ElasticsearchCohortIndex) -> None:
    """What `catalogue reindex --to` copies out of this backend: each source's rows, its
    diagnoses and the value concepts, as they went in."""
    rows = [r for r in TINY if r["provider"] == "P"]
    es_index.replace_source("P", "one", [batch(rows[:3])])
    es_index.replace_source("P", "two", [batch(rows[3:])])
    es_index.replace_diagnoses("Q", "dx", [(5, "C61")])
    es_index.replace_value_concepts("P", [("modality", "CT", "DCM:CT")], 2)
    assert es_index.sources() == [("P", "one"), ("P", "two"), ("Q", "dx")]
    exported = pa.Table.from_batches(list(es_index.export("P", "two")), schema=SERIES_SCHEMA)
    ordered = sorted(rows[3:], key=lambda r: (r["subject"], r["study"], r["series"]))
    assert exported.to_pylist() == pa.Table.from_batches([batch(ordered)]).to_pylist()
    assert es_index.export_diagnoses("Q", "dx") == [(5, "C61")]
    assert es_index.value_concepts("P") == [("modality", "CT", "DCM:CT")]


def test_refusals(tiny_index: ElasticsearchCohortIndex) -> None:
    """More counted study criteria than counted rows are kept for, more strata cells than
    allowed, and a metadata scope without its resolved pairs are QueryErrors."""
    studies = [{"yearMin": 1990 + i} for i in range(MAX_POSITIVE_STUDY_LEAVES + 1)]
    with pytest.raises(QueryError, match="study criteria"):
        tiny_index.count(CohortQuery.model_validate({"studies": studies}))
    with pytest.raises(QueryError, match="cells"):
        tiny_index.count(
            CohortQuery(), strata=((Stratum.SEX, Stratum.AGE_BAND),), max_strata_cells=47
        )
    assert (
        len(
            tiny_index.count(
                CohortQuery(), strata=((Stratum.SEX, Stratum.AGE_BAND),), max_strata_cells=48
            )
            .strata[0]
            .cells
        )
        == 48
    )
    with pytest.raises(QueryError, match="metadata"):
        tiny_index.count(CohortQuery.model_validate({"datasets": {"licenses": ["cc-by"]}}))


def _partitions(node: object) -> list[tuple[int, int]]:
    """The (partition, num_partitions) of every terms aggregation in a request body."""
    if isinstance(node, dict):
        include = node.get("include")
        found = (
            [(int(include["partition"]), int(include["num_partitions"]))]
            if isinstance(include, dict) and "partition" in include
            else []
        )
        return found + [p for value in node.values() for p in _partitions(value)]
    if isinstance(node, list):
        return [p for value in node for p in _partitions(value)]
    return []


def _shared_rows() -> list[Row]:
    """Six subjects at both providers (each pseudonym held by two providers), each with a study
    whose id the next subject of its provider also holds: 6 shared subjects and 10 shared
    studies, more than the 2 identifiers per terms aggregation the test allows."""
    rows: list[Row] = []
    series = itertools.count(1000)
    for provider, base in (("P", 100), ("Q", 200)):
        for subject in range(1, 7):
            for study in {base + subject, base + subject + 1} - {base + 7}:
                rows.append(
                    {
                        "provider": provider,
                        "dataset": "d1" if subject % 2 else "d2",
                        "subject": subject,
                        "study": study,
                        "series": next(series),
                        "sex": "F" if subject < 4 else "M",
                        "age": 40 + subject,
                        "study_year": 2000 + subject % 3,
                        "modality": "CT" if study % 2 else "MR",
                    }
                )
    return rows


def test_identifiers_listed_in_partitions_give_the_same_answer(
    es_index: ElasticsearchCohortIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a terms aggregation cannot list every identifier in one request, the answer is
    asked for in partitions of the identifiers: the same counts and evidence."""
    from catalogue.index.elasticsearch import cohort

    rows = _shared_rows()
    for provider in ("P", "Q"):
        es_index.replace_source(
            provider, "s", [batch([r for r in rows if r["provider"] == provider])]
        )
    strata = ((Stratum.MODALITY, Stratum.SEX), (Stratum.YEAR,))
    query = CohortQuery.model_validate(
        {"where": {"anyOf": [{"series": {"modality": ["CT", "MR"]}}, {"study": {}}]}}
    )
    whole = es_index.count(query, strata=strata, evidence=True)
    monkeypatch.setattr(cohort, "TERMS_SIZE", 2)
    monkeypatch.setattr(cohort, "IDS_PER_REQUEST", 5)
    requests: list[dict[str, Any]] = []
    search = es_index._search

    def counted_search(body: dict[str, Any]) -> dict[str, Any]:
        requests.append(body)
        return search(body)

    monkeypatch.setattr(es_index, "_search", counted_search)
    parts = es_index.count(query, strata=strata, evidence=True)
    assert parts == whole
    partitions = [found for body in requests for found in _partitions(body)]
    assert partitions, "no request listed its identifiers in partitions"
    for n in {n for _, n in partitions}:  # each partitioning asked for every one of its parts
        assert n > 1
        assert {i for i, m in partitions if m == n} == set(range(n))
    assert whole.evidence["total"].series_fp == xor({r["series"] for r in rows})
    assert_same(whole, ref.evaluate(rows, query, strata=strata))
