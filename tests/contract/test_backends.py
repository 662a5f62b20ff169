"""Contract of the ports, run against every registered backend in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from rdflib import BNode, Graph, Literal, URIRef

from catalogue import plugins
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.models import Dataset
from catalogue.imaging.features import SERIES_SCHEMA


@pytest.fixture(params=plugins.available(plugins.GRAPH_STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    backend = plugins.load(plugins.GRAPH_STORES, request.param)(tmp_path / "store")
    yield backend
    backend.close()


@pytest.fixture(params=plugins.available(plugins.DATASET_INDEXES))
def dataset_index(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    backend = plugins.load(plugins.DATASET_INDEXES, request.param)(tmp_path / "datasets")
    yield backend
    backend.close()


@pytest.fixture(params=plugins.available(plugins.COHORT_INDEXES))
def cohort_index(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    backend = plugins.load(plugins.COHORT_INDEXES, request.param)(tmp_path / "cohort")
    yield backend
    backend.close()


def small_graph(label: str) -> Graph:
    graph = Graph()
    node, blank = URIRef(f"http://example.org/{label}"), BNode()
    graph.add((node, URIRef("http://purl.org/dc/terms/title"), Literal(label, lang="en")))
    graph.add((node, URIRef("http://example.org/p"), blank))
    graph.add((blank, URIRef("http://example.org/q"), Literal('quote " and \\ slash')))
    return graph


def test_store_replaces_graphs_atomically(store) -> None:  # type: ignore[no-untyped-def]
    store.replace_graphs({"urn:g:a:1": small_graph("one"), "urn:g:a:2": small_graph("two")})
    assert store.graph_names("urn:g:a:") == ["urn:g:a:1", "urn:g:a:2"]
    assert store.graph("urn:g:a:1").isomorphic(small_graph("one"))
    store.replace_graphs({"urn:g:a:1": small_graph("uno")})
    assert store.graph("urn:g:a:1").isomorphic(small_graph("uno"))
    assert store.graph("urn:g:a:2").isomorphic(small_graph("two"))
    store.replace_graphs({"urn:g:a:3": small_graph("three")}, drop_prefix="urn:g:a:")
    assert store.graph_names("urn:g:") == ["urn:g:a:3"]
    assert store.triple_count() == 3
    assert len(store.graph("urn:g:absent")) == 0


def test_store_persists(tmp_path: Path) -> None:
    for name in plugins.available(plugins.GRAPH_STORES):
        cls = plugins.load(plugins.GRAPH_STORES, name)
        first = cls(tmp_path / name)
        first.replace_graphs({"urn:g:1": small_graph("kept")})
        first.close()
        second = cls(tmp_path / name)
        assert second.graph("urn:g:1").isomorphic(small_graph("kept"))
        second.close()


def dataset(provider: str, identifier: str, title: str, **extra: object) -> Dataset:
    return Dataset.model_validate(
        {
            "provider_id": provider,
            "identifier": identifier,
            "iri": f"http://x/{identifier}",
            "title": title,
            **extra,
        }
    )


def test_dataset_index_search_and_paging(dataset_index) -> None:  # type: ignore[no-untyped-def]
    lung = [
        dataset(
            "a",
            f"lung-{i}",
            f"Lung screening cohort {i}",
            description="Low-dose CT of smokers",
            cancer_types=["Lung Cancer"],
        )
        for i in range(5)
    ]
    other = [dataset("b", "breast-1", "Breast MRI", description="Dynamic contrast MRI")]
    dataset_index.replace_provider("a", lung)
    dataset_index.replace_provider("b", other)
    page = dataset_index.search("lungs", 0, 3)  # stemmed
    assert page.total == 5
    assert len(page.datasets) == 3
    rest = dataset_index.search("lungs", 3, 3)
    assert {d.identifier for d in page.datasets + rest.datasets} == {d.identifier for d in lung}
    assert dataset_index.search("mri", 0, 10).datasets == other
    assert dataset_index.search(None, 0, 10, providers=("b",)).datasets == other
    # bad syntax is not an error: the lenient parser keeps the valid terms
    assert dataset_index.search('lung AND ("', 0, 10).total == 5
    assert dataset_index.get("b", "breast-1") == other[0]
    assert dataset_index.get("b", "nope") is None
    dataset_index.replace_provider("a", lung[:1])
    assert [d.identifier for d in dataset_index.all()] == ["lung-0", "breast-1"]


def batch(rows: list[tuple[object, ...]]) -> pa.RecordBatch:
    """Rows give the first columns of SERIES_SCHEMA; the rest are empty (not annotations)."""
    names = SERIES_SCHEMA.names
    data: dict[str, list[object]] = {name: [] for name in names}
    for row in rows:
        for i, name in enumerate(names):
            data[name].append(
                row[i] if i < len(row) else (False if name == "is_annotation" else None)
            )
    return pa.RecordBatch.from_pydict(data, schema=SERIES_SCHEMA)


# dataset, subject, study, series, sex, age, year, modality, body_part, manufacturer, instances
ROWS = [
    ("d1", 1, 10, 100, "F", 55, 2001, "CT", "CHEST", "ge", 10),
    ("d1", 1, 10, 101, "F", 55, 2001, "SEG", "CHEST", "ge", 1),
    ("d1", 1, 11, 102, "F", 57, 2003, "PT", "CHEST", "siemens", 200),
    ("d2", 1, 12, 103, "U", None, None, "MR", "BREAST", "siemens", 80),
    ("d1", 2, 20, 200, "M", 70, 2001, "CT", "CHEST", "ge", 10),
    ("d2", 3, 30, 300, "F", 40, 2002, "MR", "BREAST", "philips", 90),
    ("d2", 4, 40, 400, "M", 30, 2002, "MR", "BRAIN", "philips", 90),
    ("d2", 4, 41, 401, "F", 31, 2003, "MR", "BRAIN", "philips", 90),
]


def test_cohort_counts_exists_semantics(cohort_index) -> None:  # type: ignore[no-untyped-def]
    assert cohort_index.replace_source("p", "s", [batch(ROWS)]) == len(ROWS)

    def count(**query: object) -> tuple[int, int, int]:
        total = cohort_index.count(CohortQuery.model_validate(query)).total
        return total.subjects, total.studies, total.series

    assert count() == (4, 7, 8)
    assert count(subject={"sex": ["F"]}) == (2, 4, 5)  # subject 4 has conflicting sexes: U
    assert count(subject={"sex": ["U"]}) == (1, 2, 2)
    assert count(subject={"age_min": 56, "age_max": 60}) == (1, 3, 4)
    assert count(series=[{"modality": ["CT"]}]) == (2, 2, 2)
    assert count(series=[{"modality": ["CT"]}, {"modality": ["MR"]}]) == (1, 2, 2)
    assert count(series=[{"modality": ["MR"], "body_part": ["BREAST", "BRAIN"]}]) == (3, 4, 4)
    assert count(series=[{"manufacturer": [" GE "]}]) == (2, 2, 3)
    assert count(datasets={"datasets": ["d2"]}, series=[{"modality": ["CT"]}]) == (0, 0, 0)
    result = cohort_index.count(CohortQuery.model_validate({"series": [{"modality": ["MR"]}]}))
    assert result.by_dataset[("p", "d1")].subjects == 0
    assert result.by_dataset[("p", "d2")].subjects == 3
    assert result.by_provider["p"] == result.total


def test_cohort_replace_is_per_source_and_atomic(cohort_index) -> None:  # type: ignore[no-untyped-def]
    cohort_index.replace_source("p", "s1", [batch(ROWS[:3])])
    cohort_index.replace_source("p", "s2", [batch(ROWS[4:])])
    assert cohort_index.count(CohortQuery()).total.series == 7

    def failing():  # type: ignore[no-untyped-def]
        yield batch(ROWS[:1])
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        cohort_index.replace_source("p", "s1", failing())
    assert cohort_index.count(CohortQuery()).total.series == 7
    cohort_index.replace_source("p", "s1", [])
    assert cohort_index.count(CohortQuery()).total.series == 4
    assert cohort_index.scopes() == [("p", "d1"), ("p", "d2")]


def test_a_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    cls = plugins.load(plugins.GRAPH_STORES, "oxigraph")
    holder = cls(tmp_path / "store")
    try:
        probe = (
            "import sys; from pathlib import Path; from catalogue.exceptions import StoreError\n"
            "from catalogue.store.oxigraph import OxigraphGraphStore\n"
            "try:\n    OxigraphGraphStore(Path(sys.argv[1]))\n"
            "except StoreError as exc:\n    print(exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / "store")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    finally:
        holder.close()
    assert "cannot open the Oxigraph store" in out
    assert "another catalogue process" in out


def test_cohort_file_from_an_older_schema_is_migrated(tmp_path: Path) -> None:
    import duckdb

    folder = tmp_path / "cohort"
    folder.mkdir()
    con = duckdb.connect(str(folder / "cohort.duckdb"))
    con.execute(
        "CREATE TABLE series (provider VARCHAR NOT NULL, source VARCHAR NOT NULL, "
        "dataset VARCHAR NOT NULL, subject BIGINT NOT NULL, study BIGINT NOT NULL, "
        "series BIGINT NOT NULL, sex VARCHAR NOT NULL, age SMALLINT, study_year SMALLINT, "
        "modality VARCHAR, body_part VARCHAR, manufacturer VARCHAR, instances INTEGER, "
        "subject_sex VARCHAR)"
    )
    con.execute("INSERT INTO series VALUES ('p','s','d',1,1,1,'F',50,2001,'CT','CHEST','ge',1,'F')")
    con.close()
    index = plugins.load(plugins.COHORT_INDEXES, "duckdb")(folder)
    try:
        assert index.count(CohortQuery()).total.series == 1
        index.replace_source("p", "s2", [batch(ROWS)])
        assert index.count(CohortQuery()).total.series == 1 + len(ROWS)
    finally:
        index.close()
