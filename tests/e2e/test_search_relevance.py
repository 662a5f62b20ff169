"""Search relevance over the IDC demo: nDCG@10 of the GraphQL dataset search against a labelled
set of queries (tests/data/relevance/idc-queries.tsv, judged by hand from the collections'
metadata and descriptions, independently of the engine; how: tests/data/relevance/README.md).

Each query runs through `datasets(search: ..., first: 10)`; the gain of the dataset at rank i is
2^grade - 1 (grade 2 highly, 1 partially relevant, 0 unjudged), discounted by log2(i + 1), and
divided by the same sum over the ideal ranking of the judgments. The per-query table and the
means are printed in the pytest output (and recorded as junit properties); the mean must reach
TARGET, with the datasets index on tantivy and on Elasticsearch (the same datasets reindexed
into an index on the test node). When `datasets` has a Boolean argument that switches concept
expansion off (found by introspection, e.g. `expandConcepts`), the same queries also run
without it: the plain baseline, printed beside each figure.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import ElasticsearchSettings
from catalogue.services.ingest import reindex_all
from catalogue.services.runtime import Catalogue
from tests.conftest import IdcDemo

QUERIES_TSV = Path(__file__).resolve().parents[1] / "data" / "relevance" / "idc-queries.tsv"
K = 10
TARGET = 0.85
SEARCH = """query($q: String!, $k: Int!) {
  datasets(search: $q, first: $k) { edges { node { identifier } } }
}"""
EXPANSION_SWITCH = re.compile(r"expan|concept|semantic|ontolog", re.IGNORECASE)
"""Names a Boolean argument of `datasets` may have that turns concept expansion on or off."""
KINDS = ("topic", "synonym", "translation")
"""What a query tests: a topic in English, a synonym or abbreviation, another language."""


@dataclass(frozen=True)
class Judged:
    id: str
    language: str
    kind: str
    text: str
    grades: dict[str, int]
    """collection_id -> 2 (highly) or 1 (partially relevant); unlisted collections are 0."""


def load_queries(path: Path = QUERIES_TSV) -> list[Judged]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    queries = []
    for row in rows:
        grades = {c: 1 for c in _ids(row["partially_relevant"])}
        grades.update({c: 2 for c in _ids(row["highly_relevant"])})
        queries.append(Judged(row["id"], row["language"], row["kind"], row["query"], grades))
    return queries


def _ids(cell: str | None) -> list[str]:
    return [c.strip() for c in (cell or "").split(",") if c.strip()]


def dcg(gains: Sequence[int], k: int = K) -> float:
    return sum((2.0**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = K) -> float:
    """nDCG@k of a ranking against graded judgments (0 when nothing is judged relevant)."""
    ideal = dcg(sorted(grades.values(), reverse=True), k)
    return dcg([grades.get(c, 0) for c in ranked], k) / ideal if ideal else 0.0


# -- the judgments and the metric, without the demo


def test_judgments_are_well_formed() -> None:
    queries = load_queries()
    assert len(queries) >= 36
    assert len({q.id for q in queries}) == len(queries)
    assert len({q.text.casefold() for q in queries}) == len(queries)
    other = [q for q in queries if q.language != "en"]
    assert len(other) >= 8 and len({q.language for q in other}) >= 5
    for q in queries:
        assert 2 in q.grades.values(), f"{q.id} has no highly relevant collection"
        assert q.kind in KINDS
    try:
        from examples.demo.idc import idc_paths

        _, collections, _ = idc_paths()
    except Exception:  # the optional demo dependency: the ids are checked where it is installed
        return
    import duckdb

    known = {
        str(r[0])
        for r in duckdb.connect()
        .execute("SELECT collection_id FROM read_parquet($1)", [str(collections)])
        .fetchall()
    }
    unknown = {c for q in queries for c in q.grades if c not in known}
    assert not unknown, f"judged collections not in idc-index-data: {sorted(unknown)}"


def test_ndcg() -> None:
    grades = {"a": 2, "b": 1, "c": 1}
    assert ndcg(["a", "b", "c"], grades) == pytest.approx(1.0)
    assert ndcg(["x", "y"], grades) == 0.0
    # gains 1, 3 against the ideal 3, 1, 1
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3) + 1 / 2)
    assert ndcg(["b", "a"], grades) == pytest.approx(expected)
    assert ndcg(["a"] + ["x"] * K + ["b"], grades) < 1.0  # rank 12 is past the cut-off


# -- the search over the demo


@pytest.fixture(
    scope="module",
    params=["tantivy", pytest.param("elasticsearch", marks=pytest.mark.service)],
)
def searched(request: pytest.FixtureRequest, idc_demo: IdcDemo) -> Iterator[Catalogue]:
    """The demo catalogue with its datasets index on each backend: the harvested tantivy
    index, or the same datasets reindexed from the store into an index on the test
    Elasticsearch node."""
    if request.param == "tantivy":
        yield idc_demo.catalogue
        return
    from catalogue.index.elasticsearch.datasets import ElasticsearchDatasetIndex

    node = request.getfixturevalue("elasticsearch_node")
    settings = ElasticsearchSettings(url=node.url, index_prefix=f"idc-{uuid.uuid4().hex[:12]}")
    index = ElasticsearchDatasetIndex(settings)
    try:
        counts = reindex_all(idc_demo.catalogue, into=index)
        assert sum(counts.values()) == len(idc_demo.catalogue.datasets.all()) > 0
        yield dataclasses.replace(idc_demo.catalogue, datasets=index)
    finally:
        index.delete()
        index.close()


@pytest.fixture(scope="module")
def client(searched: Catalogue) -> Iterator[TestClient]:
    with TestClient(create_app(searched.settings, catalogue=searched)) as c:
        yield c


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]  # type: ignore[no-any-return]


def expansion_switch(client: TestClient) -> str | None:
    """The Boolean argument of `datasets` that switches concept expansion, if the API has one."""
    data = gql(
        client,
        '{ __type(name: "Query") { fields { name args { name type { name ofType { name } } } } } }',
    )
    for field in data["__type"]["fields"]:
        if field["name"] != "datasets":
            continue
        for arg in field["args"]:
            kind = arg["type"]["name"] or (arg["type"]["ofType"] or {}).get("name")
            if kind == "Boolean" and EXPANSION_SWITCH.search(arg["name"]):
                return str(arg["name"])
    return None


def run(client: TestClient, queries: list[Judged], switch: str | None = None) -> dict[str, float]:
    """nDCG@K per query id; `switch` (an argument name) is set to false when given."""
    scores = {}
    for q in queries:
        if switch is None:
            data = gql(client, SEARCH, q=q.text, k=K)
        else:
            search = SEARCH.replace("$k: Int!", "$k: Int!, $off: Boolean!").replace(
                "first: $k", f"first: $k, {switch}: $off"
            )
            data = gql(client, search, q=q.text, k=K, off=False)
        ranked = [e["node"]["identifier"] for e in data["datasets"]["edges"]]
        scores[q.id] = ndcg(ranked, q.grades)
    return scores


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def report(queries: list[Judged], scores: dict[str, float], base: dict[str, float] | None) -> str:
    lines = [f"\nSearch relevance over the IDC demo: nDCG@{K} per query"]
    header = f"  {'id':<4} {'lang':<4} {'kind':<11} {'nDCG':>6}"
    lines.append(header + (f" {'plain':>6}" if base else "") + "  query")
    for q in queries:
        row = f"  {q.id:<4} {q.language:<4} {q.kind:<11} {scores[q.id]:>6.3f}"
        lines.append(row + (f" {base[q.id]:>6.3f}" if base else "") + f"  {q.text}")
    groups: list[tuple[str, list[Judged]]] = [("all", queries)]
    groups += [(kind, [q for q in queries if q.kind == kind]) for kind in sorted(KINDS)]
    groups += [("English", [q for q in queries if q.language == "en"])]
    groups += [("other languages", [q for q in queries if q.language != "en"])]
    for name, members in groups:
        ids = [q.id for q in members]
        line = f"  mean nDCG@{K} ({name}, {len(ids)} queries): {mean([scores[i] for i in ids]):.3f}"
        if base:
            line += f"  plain (no concept expansion): {mean([base[i] for i in ids]):.3f}"
        lines.append(line)
    if base is None:
        lines.append("  plain baseline skipped: `datasets` has no concept-expansion switch")
    return "\n".join(lines)


@pytest.mark.idc
def test_search_relevance(
    searched: Catalogue,
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    queries = load_queries()
    scores = run(client, queries)
    switch = expansion_switch(client)
    base = run(client, queries, switch) if switch else None
    overall = mean(list(scores.values()))
    record_property("ndcg_at_10", round(overall, 4))
    if base:
        record_property("ndcg_at_10_plain", round(mean(list(base.values())), 4))
    with capsys.disabled():
        print(f"\ndatasets index: {type(searched.datasets).__name__}", end="")
        print(report(queries, scores, base))
    assert overall >= TARGET, f"mean nDCG@{K} {overall:.3f} < {TARGET}"
