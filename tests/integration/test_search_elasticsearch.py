"""The Elasticsearch datasets index on the test node gives the answers the tantivy index gives:
the same matches, totals, pages and facet counts for words, phrases, OR, NOT, concepts,
other languages, filters and both orders, the same score for every match (to float precision)
and so the same relevance order but among datasets of equal scores; writes are seen whole, a
failed write changes nothing, an index of an older mapping is replaced by an empty one. The
GraphQL search tests of test_semantic_search run again here on a catalogue whose datasets
index is on Elasticsearch (the behaviour tests there run on both backends through their
parametrised `index` fixture)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from catalogue.config import ElasticsearchSettings, IndexSettings, Settings
from catalogue.domain.models import Dataset
from catalogue.exceptions import StoreError
from catalogue.index.base import SearchFilters
from catalogue.index.elasticsearch.datasets import ElasticsearchDatasetIndex
from catalogue.index.tantivy import TantivyDatasetIndex
from catalogue.index.tantivy_analysis import is_stop_word
from catalogue.index.text_query import parse
from catalogue.ontology.annotate import Annotator
from catalogue.ontology.vocabulary import Vocabulary
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.integration import test_semantic_search as semantic
from tests.services.elasticsearch import ElasticsearchNode, delete_indices

pytestmark = pytest.mark.service

LICENCES, PUBLIC, dataset = semantic.LICENCES, semantic.PUBLIC, semantic.dataset
# the fixtures of test_semantic_search, and its GraphQL tests, run here on an Elasticsearch
# catalogue (this module's `catalogue` fixture)
vocabulary, corpus, client = semantic.vocabulary, semantic.corpus, semantic.client
test_graphql_filters = semantic.test_graphql_filters
test_graphql_search_facets_and_concepts = semantic.test_graphql_search_facets_and_concepts


def elasticsearch_index(
    url: str, label: str, vocabulary: Vocabulary | None = None
) -> ElasticsearchDatasetIndex:
    """A datasets index on the node under an index prefix of its own."""
    settings = ElasticsearchSettings(url=url, index_prefix=f"{label}-{uuid.uuid4().hex[:12]}")
    return ElasticsearchDatasetIndex(settings, vocabulary=vocabulary)


WORDS = (
    "lung",
    "tumour",
    "screening",
    "archive",
    "contrast",
    "perfusion",
    "radiomics",
    "segmentation",
    "follow-up",
    "cohort",
)


@pytest.fixture(scope="module")
def texts(vocabulary: Vocabulary) -> list[Dataset]:
    """Datasets with English text of varied lengths and repetitions, so that BM25 orders them,
    beside their concepts."""
    annotator = Annotator(vocabulary)
    found = []
    for i in range(40):
        words = [WORDS[(i * k + k) % len(WORDS)] for k in range(1, 2 + i % 7)]
        found.append(
            dataset(
                annotator,
                f"t{i % 2}",
                f"t{i:02d}",
                " ".join(words[: 1 + i % 3]).capitalize() + f" study {i}",
                description=" ".join(words * (1 + i % 4)),
                keywords=tuple(words[:2]),
                cancer_types=(("NSCLC",), ("Breast Carcinoma",), ("Lung Carcinoma", "GBM"))[i % 3],
                modalities=(("CT",), ("MR",), ("CT", "MR"))[i % 3],
                license=LICENCES[i % 2],
                access_rights=PUBLIC if i % 3 else None,
            )
        )
    return found


@pytest.fixture(scope="module")
def both(
    elasticsearch_node: ElasticsearchNode,
    tmp_path_factory: pytest.TempPathFactory,
    vocabulary: Vocabulary,
    corpus: list[Dataset],
    texts: list[Dataset],
) -> Iterator[tuple[TantivyDatasetIndex, ElasticsearchDatasetIndex, list[Dataset]]]:
    """The same datasets in a tantivy index and on Elasticsearch."""
    everything = corpus + texts
    tantivy = TantivyDatasetIndex(tmp_path_factory.mktemp("tantivy"), vocabulary=vocabulary)
    elastic = elasticsearch_index(elasticsearch_node.url, "same", vocabulary)
    for provider in sorted({d.provider_id for d in everything}):
        mine = [d for d in everything if d.provider_id == provider]
        tantivy.replace_provider(provider, mine)
        elastic.replace_provider(provider, mine)
    yield tantivy, elastic, everything
    elastic.delete()
    elastic.close()
    tantivy.close()


QUERIES = [
    "lung",
    "lungs",
    "tumours screening",
    "perfusion contrast radiomics",
    '"contrast perfusion"',
    "contrast OR segmentation",
    "cohort -lung",
    "NOT archive",
    "lung cancer",
    "NSCLC",
    "Lungenkarzinome",
    "carcinomes pulmonaires",
    "Computertomographie",
    "Lungenkrebs Computertomographie",
    "MRI study",
    "breast cancer CT",
    "zebra",
    "NSCLC zebra",
    "the",
    "...",
    "segmentation follow-up radiomics archive perfusion screening",
]
FILTERS = [
    SearchFilters(),
    SearchFilters(providers=("t0", "p1")),
    SearchFilters(concepts=(frozenset({"NCIT:C4878"}),), licenses=LICENCES[:1]),
    SearchFilters(access_rights=(PUBLIC,), concepts=(frozenset({"DCM:MR", "DCM:CT"}),)),
]


SCORE_TOLERANCE = 1e-4
"""Relative difference allowed between the two engines' scores of a dataset (float32 sums in
another order). Measured: under 1e-5 for every query here."""


def scores(
    index: TantivyDatasetIndex | ElasticsearchDatasetIndex,
    text: str | None,
    filters: SearchFilters,
    expand: bool,
) -> dict[tuple[str, str], float] | None:
    """Each match's score as the engine computes it, for the query `search` runs (any clause
    when all find nothing), or None when the text has no clause to rank by. Reaches into the
    backends: the port returns no scores."""
    vocabulary = index.vocabulary if expand else None
    parsed = parse(text, vocabulary, is_stop_word) if text else None
    if parsed is None or not parsed.clauses:
        return None
    found: dict[tuple[str, str], float] = {}
    for required in (None, 1):
        if isinstance(index, TantivyDatasetIndex):
            query = index._query(parsed, filters, expand, required)
            searcher = index._index.searcher()
            for score, address in searcher.search(query, limit=1000).hits:
                payload = Dataset.model_validate_json(searcher.doc(address)["payload"][0])
                found[payload.key] = score
        else:
            body = {"query": index._query(parsed, filters, expand, required), "size": 1000}
            url = f"{index.client.settings.url}/{index.alias}/_search"
            for hit in (
                httpx.post(url, json=body, timeout=30).raise_for_status().json()["hits"]["hits"]
            ):
                payload = Dataset.model_validate_json(hit["_source"]["payload"])
                found[payload.key] = float(hit["_score"])
        if found or parsed.required() <= 1:
            return found
    return found


def in_score_order(ranked: list[Dataset], score: dict[tuple[str, str], float]) -> bool:
    """Whether a ranking is by descending `score` (equal scores in any order)."""
    values = [score[d.key] for d in ranked]
    return all(b <= a * (1 + SCORE_TOLERANCE) for a, b in pairwise(values))


def assert_same_ranking(
    tantivy: TantivyDatasetIndex,
    elastic: ElasticsearchDatasetIndex,
    text: str | None,
    filters: SearchFilters,
    expand: bool,
    got: list[Dataset],
    want: list[Dataset],
) -> None:
    """Both engines score every match alike, and each ranks by the other's scores: the same
    order but for datasets of equal scores (which comes first among them is each engine's
    choice: tantivy's document order, Elasticsearch's title order)."""
    want_scores = scores(tantivy, text, filters, expand)
    got_scores = scores(elastic, text, filters, expand)
    if want_scores is None or got_scores is None:  # nothing to rank by: title order
        assert want_scores is got_scores is None
        assert [d.title.casefold() for d in got] == [d.title.casefold() for d in want]
        return
    assert got_scores.keys() == want_scores.keys()
    for k, value in want_scores.items():
        assert got_scores[k] == pytest.approx(value, rel=SCORE_TOLERANCE), (text, k)
    assert in_score_order(got, want_scores), (text, expand)
    assert in_score_order(want, got_scores), (text, expand)


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
@pytest.mark.parametrize("text", [None, *QUERIES])
def test_same_answers_as_tantivy(
    both: tuple[TantivyDatasetIndex, ElasticsearchDatasetIndex, list[Dataset]],
    text: str | None,
    filters: SearchFilters,
) -> None:
    tantivy, elastic, _ = both
    for expand in (True, False):
        want = tantivy.search(text, 0, 200, filters, facets=True, expand=expand)
        got = elastic.search(text, 0, 200, filters, facets=True, expand=expand)
        assert got.total == want.total == len(want.datasets)
        assert {d.key for d in got.datasets} == {d.key for d in want.datasets}
        assert got.facets == want.facets
        assert_same_ranking(tantivy, elastic, text, filters, expand, got.datasets, want.datasets)
        by_title = elastic.search(text, 0, 200, filters, order="title", expand=expand)
        titles = [d.title.casefold() for d in by_title.datasets]
        assert titles == sorted(titles)
        assert titles == [
            d.title.casefold()
            for d in tantivy.search(text, 0, 200, filters, order="title", expand=expand).datasets
        ]


@pytest.fixture(scope="module")
def texts_both(
    elasticsearch_node: ElasticsearchNode,
    tmp_path_factory: pytest.TempPathFactory,
    vocabulary: Vocabulary,
    texts: list[Dataset],
) -> Iterator[tuple[TantivyDatasetIndex, ElasticsearchDatasetIndex]]:
    """Datasets that all hold a title, description, keywords and terms, in both indexes."""
    tantivy = TantivyDatasetIndex(tmp_path_factory.mktemp("texts"), vocabulary=vocabulary)
    elastic = elasticsearch_index(elasticsearch_node.url, "texts", vocabulary)
    for provider in ("t0", "t1"):
        tantivy.replace_provider(provider, [d for d in texts if d.provider_id == provider])
        elastic.replace_provider(provider, [d for d in texts if d.provider_id == provider])
    yield tantivy, elastic
    elastic.delete()
    elastic.close()
    tantivy.close()


@pytest.mark.parametrize("text", QUERIES)
def test_same_ranking_where_every_field_is_held(
    texts_both: tuple[TantivyDatasetIndex, ElasticsearchDatasetIndex], text: str
) -> None:
    tantivy, elastic = texts_both
    for expand in (True, False):
        want = tantivy.search(text, 0, 200, expand=expand)
        got = elastic.search(text, 0, 200, expand=expand)
        assert got.total == want.total
        filters = SearchFilters()
        assert_same_ranking(tantivy, elastic, text, filters, expand, got.datasets, want.datasets)


@pytest.mark.parametrize("text", [None, "lung", "imaging", "cohort"])
def test_pages_are_the_whole_in_order(
    both: tuple[TantivyDatasetIndex, ElasticsearchDatasetIndex, list[Dataset]], text: str | None
) -> None:
    _, elastic, _ = both
    whole = elastic.search(text, 0, 200)
    pages = [elastic.search(text, offset, 7) for offset in range(0, whole.total + 7, 7)]
    assert all(p.total == whole.total for p in pages)
    assert [d for p in pages for d in p.datasets] == whole.datasets
    assert elastic.search(text, 0, 0, facets=True).datasets == []


def test_get_all_and_updates(
    elasticsearch_node: ElasticsearchNode, vocabulary: Vocabulary, corpus: list[Dataset]
) -> None:
    index = elasticsearch_index(elasticsearch_node.url, "writes", vocabulary)
    try:
        for provider in ("p0", "p1", "p2"):
            index.replace_provider(provider, [d for d in corpus if d.provider_id == provider])
        assert index.all() == sorted(corpus, key=lambda d: d.key)
        first, second = corpus[0], corpus[1]
        assert index.get(*first.key) == first
        renamed = first.model_copy(update={"title": "Renamed zebra cohort"})
        index.update([renamed], [second.key, ("p9", "never-there")])
        assert index.get(*first.key) == renamed
        assert index.get(*second.key) is None
        assert [d.key for d in index.search("zebra", 0, 10).datasets] == [first.key]
        providers = index.search(None, 0, 0, facets=True).facets["provider"]
        assert dict(providers) == {"p0": 20, "p1": 19, "p2": 20}  # second was p1's
        index.replace_provider("p2", [])
        assert {d.provider_id for d in index.all()} == {"p0", "p1"}
        assert index.search(None, 0, 0, SearchFilters(providers=("p2",))).total == 0
    finally:
        index.delete()
        index.close()


def test_searches_go_on_while_writes_recalibrate_the_index(
    elasticsearch_node: ElasticsearchNode, vocabulary: Vocabulary, corpus: list[Dataset]
) -> None:
    """Every write that changes the fields' statistics closes and reopens the index to set its
    similarities: searches meanwhile wait and are answered, never failed, and each sees a
    provider whole (all of its datasets or none)."""
    index = elasticsearch_index(elasticsearch_node.url, "busy", vocabulary)
    mine = [d for d in corpus if d.provider_id == "p0"]
    index.replace_provider("p0", mine)
    failures: list[BaseException] = []
    seen: set[int] = set()
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            try:
                seen.add(index.search(None, 0, 0, SearchFilters(providers=("p0",))).total)
            except BaseException as exc:
                failures.append(exc)
                return

    reader = threading.Thread(target=search)
    reader.start()
    try:
        for size in (5, len(mine), 1, len(mine), 12, len(mine)):
            index.replace_provider("p0", mine[:size])
    finally:
        done.set()
        reader.join(60)
        index.delete()
        index.close()
    assert not failures, failures
    assert seen <= {0, 1, 5, 12, len(mine)} and len(seen) >= 2


def test_a_failed_write_changes_nothing(
    elasticsearch_node: ElasticsearchNode, vocabulary: Vocabulary, corpus: list[Dataset]
) -> None:
    index = elasticsearch_index(elasticsearch_node.url, "failed", vocabulary)
    try:
        mine = [d for d in corpus if d.provider_id == "p0"]
        index.replace_provider("p0", mine)
        before = index.all()
        refused = corpus[3].model_copy(update={"license": "x" * 40_000})  # over a term's size
        changed = [d.model_copy(update={"title": "Changed"}) for d in mine[:5]]
        new = corpus[1].model_copy(update={"provider_id": "p0", "identifier": "new"})
        with pytest.raises(StoreError):
            index.replace_provider("p0", [*changed, new, refused])
        assert index.all() == before
        with pytest.raises(StoreError):
            index.update([*changed, new, refused], [mine[6].key])
        assert index.all() == before
        assert index.search("Changed", 0, 10, expand=False).total == 0
        assert index.get("p0", "new") is None
    finally:
        index.delete()
        index.close()


def test_an_index_of_an_older_mapping_serves_until_a_rebuild_replaces_it(
    elasticsearch_node: ElasticsearchNode, vocabulary: Vocabulary
) -> None:
    """An index of an older mapping is reported `emptied` (the catalogue then rebuilds it with
    replace_all) and keeps serving until the new one, built beside it, takes the alias."""
    prefix = f"older-{uuid.uuid4().hex[:12]}"
    old = f"{prefix}-datasets-0000000000"
    url = elasticsearch_node.url
    httpx.put(f"{url}/{old}", json={"aliases": {f"{prefix}-datasets": {}}}).raise_for_status()
    httpx.put(f"{url}/{old}/_doc/1?refresh=true", json={"key": "p\x1fd"}).raise_for_status()
    settings = IndexSettings(
        datasets="elasticsearch",
        elasticsearch=ElasticsearchSettings(url=url, index_prefix=prefix),
    )
    try:
        index = ElasticsearchDatasetIndex.open(Path("unused"), settings)
        assert index.emptied
        assert httpx.head(f"{url}/{old}").status_code == 200  # still behind the alias
        index.replace_all({"p": [dataset(Annotator(vocabulary), "p", "d", "NSCLC cohort")]})
        assert httpx.head(f"{url}/{old}").status_code == 404
        assert [d.key for d in index.all()] == [("p", "d")]
        index.close()
        again = ElasticsearchDatasetIndex(settings.elasticsearch, vocabulary=vocabulary)
        assert not again.emptied
        assert [d.identifier for d in again.search("NSCLC", 0, 10).datasets] == ["d"]
        again.close()
    finally:
        delete_indices(elasticsearch_node, prefix)


@pytest.fixture
def catalogue(settings: Settings, elasticsearch_node: ElasticsearchNode) -> Iterator[Catalogue]:
    """A catalogue whose datasets index is on the node (for the GraphQL tests rerun here)."""
    prefix = f"graphql-{uuid.uuid4().hex[:12]}"
    on_node = settings.model_copy(
        update={
            "index": IndexSettings(
                datasets="elasticsearch",
                elasticsearch=ElasticsearchSettings(
                    url=elasticsearch_node.url, index_prefix=prefix
                ),
            )
        }
    )
    try:
        with open_catalogue(on_node) as opened:
            assert isinstance(opened.datasets, ElasticsearchDatasetIndex)
            yield opened
    finally:
        delete_indices(elasticsearch_node, prefix)


def test_new_indexes_take_the_deployment_shards_and_replicas(
    elasticsearch_node: ElasticsearchNode,
) -> None:
    prefix = f"shards-{uuid.uuid4().hex[:12]}"
    settings = ElasticsearchSettings(
        url=elasticsearch_node.url, index_prefix=prefix, shards=3, replicas=0
    )
    index = ElasticsearchDatasetIndex(settings)
    try:
        found = httpx.get(f"{elasticsearch_node.url}/{prefix}-datasets/_settings", timeout=30)
        (chosen,) = found.raise_for_status().json().values()
        assert chosen["settings"]["index"]["number_of_shards"] == "3"
        assert chosen["settings"]["index"]["number_of_replicas"] == "0"
        index.close()
        index = ElasticsearchDatasetIndex(settings)  # the same layout: the same index, kept
        assert not index.emptied
    finally:
        index.close()
        delete_indices(elasticsearch_node, prefix)
