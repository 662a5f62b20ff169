"""The real Elasticsearch node the tests start (tests/services/elasticsearch.py), through the
official async client: what an Elasticsearch backend relies on (the `english` analyzer, nested
fields and queries, terms, nested and composite aggregations, exact counts, an atomic alias swap)
works, with the expected answers computed here from the documents."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from elasticsearch import AsyncElasticsearch

from tests.services.elasticsearch import ElasticsearchNode

pytestmark = pytest.mark.service

T = TypeVar("T")
INDEX = "smoke-datasets"
COLLECTIONS = ("lung", "brain", "breast")
MODALITIES = ("CT", "MR", "PT")
BODY_PARTS = ("CHEST", "HEAD", "ABDOMEN")
TITLES = (
    "Imaging of lung tumours",
    "The tumor board archive",
    "Brain images of running subjects",
    "A breast tumour cohort",
    "The imaged abdomen",
)
TUMOUR_WORDS = {"tumour", "tumours"}
"""What the english analyzer makes `tumour` of: its plural, not the American spelling."""

MAPPINGS: dict[str, Any] = {
    "properties": {
        "collection": {"type": "keyword"},
        "year": {"type": "integer"},
        "title": {
            "type": "text",
            "analyzer": "english",
            "fields": {"standard": {"type": "text", "analyzer": "standard"}},
        },
        "series": {
            "type": "nested",
            "properties": {
                "modality": {"type": "keyword"},
                "body_part": {"type": "keyword"},
                "instances": {"type": "integer"},
            },
        },
    }
}
SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def documents() -> dict[str, dict[str, Any]]:
    """Twelve datasets with one to three series each, by id."""
    docs: dict[str, dict[str, Any]] = {}
    for number in range(12):
        series = [
            {
                "modality": MODALITIES[(number + k) % 3],
                "body_part": BODY_PARTS[(number // 2 + 2 * k) % 3],
                "instances": number + k,
            }
            for k in range(1 + number % 3)
        ]
        docs[f"d{number:02}"] = {
            "collection": COLLECTIONS[number % 3],
            "year": 2018 + number // 3 % 3,
            "title": TITLES[number % len(TITLES)],
            "series": series,
        }
    return docs


DOCS = documents()


def run(node: ElasticsearchNode, work: Callable[[AsyncElasticsearch], Awaitable[T]]) -> T:
    """Run `work` with a fresh async client on the node."""

    async def main() -> T:
        client = AsyncElasticsearch(node.url, request_timeout=60)
        try:
            return await work(client)
        finally:
            await client.close()

    # in a thread of its own: the test thread may hold a running event loop (an earlier
    # test's, such as Playwright's), under which asyncio.run refuses to start
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def create_index(client: AsyncElasticsearch, name: str, ids: list[str]) -> None:
    await client.indices.create(index=name, settings=SETTINGS, mappings=MAPPINGS)
    operations: list[dict[str, Any]] = []
    for doc_id in ids:
        operations += [{"index": {"_index": name, "_id": doc_id}}, DOCS[doc_id]]
    answer = await client.bulk(operations=operations, refresh=True)
    assert not answer["errors"], answer


@pytest.fixture(scope="module")
def index(elasticsearch_node: ElasticsearchNode) -> Iterator[str]:
    """The index of `DOCS`, deleted afterwards."""
    run(elasticsearch_node, lambda client: create_index(client, INDEX, sorted(DOCS)))
    yield INDEX
    run(elasticsearch_node, lambda client: client.indices.delete(index=INDEX))


def hit_ids(answer: Any) -> set[str]:
    return {hit["_id"] for hit in answer["hits"]["hits"]}


def test_info_names_the_server_version(elasticsearch_node: ElasticsearchNode) -> None:
    info = run(elasticsearch_node, lambda client: client.info())
    assert info["version"]["number"] == elasticsearch_node.version
    assert run(elasticsearch_node, lambda client: client.ping())


def test_english_analyzer_stems_and_drops_stop_words(
    elasticsearch_node: ElasticsearchNode, index: str
) -> None:
    async def work(client: AsyncElasticsearch) -> tuple[Any, Any, Any, Any]:
        tokens = await client.indices.analyze(
            analyzer="english", text="The running tumours are imaged"
        )
        tumour = await client.search(index=index, query={"match": {"title": "tumour"}}, size=20)
        english_the = await client.count(index=index, query={"match": {"title": "the"}})
        standard_the = await client.count(index=index, query={"match": {"title.standard": "the"}})
        return tokens, tumour, english_the, standard_the

    tokens, tumour, english_the, standard_the = run(elasticsearch_node, work)
    assert [token["token"] for token in tokens["tokens"]] == ["run", "tumour", "imag"]
    expected = {
        doc_id for doc_id, doc in DOCS.items() if TUMOUR_WORDS & set(doc["title"].lower().split())
    }
    assert expected and hit_ids(tumour) == expected
    assert english_the["count"] == 0  # a stop word in English
    assert standard_the["count"] == sum(
        "the" in doc["title"].lower().split() for doc in DOCS.values()
    )


def test_nested_query_matches_within_one_series(
    elasticsearch_node: ElasticsearchNode, index: str
) -> None:
    wanted = {"modality": "CT", "body_part": "CHEST"}
    same_series = {
        doc_id
        for doc_id, doc in DOCS.items()
        if any(all(s[key] == value for key, value in wanted.items()) for s in doc["series"])
    }
    across_series = {
        doc_id
        for doc_id, doc in DOCS.items()
        if all(any(s[key] == value for s in doc["series"]) for key, value in wanted.items())
    }
    assert same_series and same_series < across_series  # the data tells nested from flat
    query = {
        "nested": {
            "path": "series",
            "query": {
                "bool": {"filter": [{"term": {f"series.{k}": v}} for k, v in wanted.items()]}
            },
        }
    }
    answer = run(
        elasticsearch_node, lambda client: client.search(index=index, query=query, size=20)
    )
    assert hit_ids(answer) == same_series


def test_terms_and_nested_aggregations_count_exactly(
    elasticsearch_node: ElasticsearchNode, index: str
) -> None:
    aggs: dict[str, Any] = {
        "collections": {"terms": {"field": "collection", "size": 10}},
        "series": {
            "nested": {"path": "series"},
            "aggs": {
                "modality": {
                    "terms": {"field": "series.modality", "size": 10},
                    "aggs": {"datasets": {"reverse_nested": {}}},
                }
            },
        },
    }
    answer = run(elasticsearch_node, lambda client: client.search(index=index, size=0, aggs=aggs))[
        "aggregations"
    ]
    collections = Counter(doc["collection"] for doc in DOCS.values())
    assert {b["key"]: b["doc_count"] for b in answer["collections"]["buckets"]} == collections
    series = Counter(s["modality"] for doc in DOCS.values() for s in doc["series"])
    datasets = Counter(m for doc in DOCS.values() for m in {s["modality"] for s in doc["series"]})
    buckets = answer["series"]["modality"]["buckets"]
    assert answer["series"]["doc_count"] == sum(series.values())
    assert {b["key"]: b["doc_count"] for b in buckets} == series
    assert {b["key"]: b["datasets"]["doc_count"] for b in buckets} == datasets


def test_composite_aggregation_pages_through_every_pair(
    elasticsearch_node: ElasticsearchNode, index: str
) -> None:
    async def work(client: AsyncElasticsearch) -> list[Any]:
        buckets: list[Any] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 2,
                "sources": [
                    {"collection": {"terms": {"field": "collection"}}},
                    {"year": {"terms": {"field": "year"}}},
                ],
            }
            if after is not None:
                composite["after"] = after
            answer = await client.search(
                index=index, size=0, aggs={"pairs": {"composite": composite}}
            )
            page = answer["aggregations"]["pairs"]
            buckets += page["buckets"]
            if not page["buckets"]:
                return buckets
            after = page["after_key"]

    buckets = run(elasticsearch_node, work)
    pairs = Counter((doc["collection"], doc["year"]) for doc in DOCS.values())
    assert len(pairs) > 2  # more than one page
    got = [((b["key"]["collection"], b["key"]["year"]), b["doc_count"]) for b in buckets]
    assert got == sorted(pairs.items())


def test_count_is_exact(elasticsearch_node: ElasticsearchNode, index: str) -> None:
    query = {
        "bool": {"filter": [{"range": {"year": {"gte": 2020}}}, {"term": {"collection": "lung"}}]}
    }
    answer = run(elasticsearch_node, lambda client: client.count(index=index, query=query))
    expected = sum(doc["year"] >= 2020 and doc["collection"] == "lung" for doc in DOCS.values())
    assert expected and answer["count"] == expected


def test_alias_swaps_atomically(elasticsearch_node: ElasticsearchNode) -> None:
    old, new, alias = "smoke-alias-v1", "smoke-alias-v2", "smoke-alias"
    newer = sorted(doc_id for doc_id, doc in DOCS.items() if doc["year"] == 2020)

    async def work(client: AsyncElasticsearch) -> tuple[int, int, Any]:
        try:
            await create_index(client, old, sorted(DOCS))
            await create_index(client, new, newer)
            await client.indices.update_aliases(actions=[{"add": {"index": old, "alias": alias}}])
            before = (await client.count(index=alias))["count"]
            await client.indices.update_aliases(
                actions=[
                    {"remove": {"index": old, "alias": alias}},
                    {"add": {"index": new, "alias": alias}},
                ]
            )
            after = (await client.count(index=alias))["count"]
            holders = await client.indices.get_alias(name=alias)
            return before, after, holders
        finally:
            await client.indices.delete(index=[old, new], ignore_unavailable=True)

    before, after, holders = run(elasticsearch_node, work)
    assert (before, after) == (len(DOCS), len(newer))
    assert set(holders) == {new}
