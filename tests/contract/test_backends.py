"""Contract of the ports, run against every registered backend in temporary folders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from rdflib import RDF, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.compare import isomorphic

from catalogue import plugins
from catalogue.config import ElasticsearchSettings, IndexSettings, StoreSettings
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.models import Dataset
from catalogue.exceptions import StoreError
from catalogue.imaging.features import SERIES_SCHEMA
from tests.services.elasticsearch import delete_indices

REMOTE_STORES = {"sparql": "virtuoso"}
"""Graph stores on a server, and the fixture that starts one and gives its StoreSettings."""


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.service] if name in REMOTE_STORES else [])
        for name in plugins.available(plugins.GRAPH_STORES)
    ]
)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens the graph store under test, as often as asked, on the same data; a server-backed
    store is emptied before and after the test (one server serves the session)."""
    name: str = request.param
    settings = StoreSettings(backend=name)
    if name in REMOTE_STORES:
        settings = request.getfixturevalue(REMOTE_STORES[name]).store_settings()
    cls = plugins.load(plugins.GRAPH_STORES, name)
    opened: list[Any] = []

    def open_() -> Any:
        opened.append(cls.open(tmp_path / "store", settings))
        return opened[-1]

    if name in REMOTE_STORES:
        open_().replace_graphs({}, drop_prefix="")
    yield open_
    if name in REMOTE_STORES:
        open_().replace_graphs({}, drop_prefix="")
    for backend in opened:
        backend.close()


@pytest.fixture
def store(open_store: Callable[[], Any]) -> Any:
    return open_store()


REMOTE_INDEXES = {"elasticsearch": "elasticsearch_node"}
"""Dataset indexes on a server, and the fixture that starts one (it has a `.url`)."""


def _index_params(group: str) -> list[Any]:
    return [
        pytest.param(name, marks=[pytest.mark.service] if name in REMOTE_INDEXES else [])
        for name in plugins.available(group)
    ]


def _index_under_test(request: pytest.FixtureRequest, group: str, folder: Path) -> Iterator[Any]:
    """The index of `group` under test; a server-backed one gets indices of its own (a prefix
    unique to the test), deleted after it."""
    name: str = request.param
    cls = plugins.load(group, name)
    if name not in REMOTE_INDEXES:
        backend = cls(folder)
        yield backend
        backend.close()
        return
    node = request.getfixturevalue(REMOTE_INDEXES[name])
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    settings = IndexSettings(
        backend=name, elasticsearch=ElasticsearchSettings(url=node.url, index_prefix=prefix)
    )
    backend = cls.open(folder, settings)
    try:
        yield backend
    finally:
        backend.close()
        delete_indices(node, prefix)


@pytest.fixture(params=_index_params(plugins.DATASET_INDEXES))
def dataset_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _index_under_test(request, plugins.DATASET_INDEXES, tmp_path / "datasets")


@pytest.fixture(params=_index_params(plugins.COHORT_INDEXES))
def cohort_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from _index_under_test(request, plugins.COHORT_INDEXES, tmp_path / "cohort")


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


def test_store_persists(open_store: Callable[[], Any]) -> None:
    first = open_store()
    first.replace_graphs({"urn:g:1": small_graph("kept")})
    first.close()
    second = open_store()
    assert second.graph("urn:g:1").isomorphic(small_graph("kept"))
    second.close()


EX = "http://example.org/"


def xsd(name: str) -> URIRef:
    """An XML Schema datatype (rdflib's XSD namespace object warns when pytest inspects it)."""
    return URIRef(f"http://www.w3.org/2001/XMLSchema#{name}")


ODD_GRAPH_NAMES = [
    "http://example.org/catalogue/graph?x=1&y=two#frag",
    "urn:g:odd:ümlaut-日本語-😀",
    "urn:g:odd:percent%20encoded%2Fslash",
    "urn:g:odd:it's;(x)=y!,$*+~",
    "urn:g:odd:" + "long-" * 300,
    "tag:example.org,2024:g/odd",
    "https://[2001:db8::1]:8443/g/odd",
]


def test_store_keeps_odd_graph_names(store) -> None:  # type: ignore[no-untyped-def]
    graphs = {name: small_graph(f"odd-{i}") for i, name in enumerate(ODD_GRAPH_NAMES)}
    store.replace_graphs(graphs)
    assert store.graph_names() == sorted(ODD_GRAPH_NAMES)
    for prefix in ("urn:g:odd:", "urn:g:odd:ü", "urn:g:odd:it's;", "http"):
        expected = sorted(n for n in ODD_GRAPH_NAMES if n.startswith(prefix))
        assert expected, prefix
        assert store.graph_names(prefix) == expected
    for name, graph in graphs.items():
        assert isomorphic(store.graph(name), graph), name
    store.replace_graphs({}, drop_prefix="urn:g:odd:")
    assert store.graph_names() == sorted(n for n in ODD_GRAPH_NAMES if "urn:g:odd:" not in n)


def test_store_refuses_invalid_names_and_terms_and_changes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    before = {"urn:g:v:1": small_graph("one"), "urn:g:v:2": small_graph("two")}
    store.replace_graphs(before)
    bad_term = small_graph("bad")
    bad_term.add((URIRef("urn:not an iri"), URIRef(f"{EX}p"), Literal("x")))
    attempts = [
        {"urn:g:v:1": small_graph("uno"), "urn:g:v:3": bad_term},  # the last graph fails
        {"urn:g:v:1": Graph(), "urn:g:v:not a name": small_graph("x")},
        {"urn:g:v:1": small_graph("uno"), "relative/name": small_graph("x")},
        {"urn:g:v:1": Graph(), "urn:a> ; DROP ALL ; DROP SILENT GRAPH <urn:b": small_graph("x")},
    ]
    for attempt in attempts:
        with pytest.raises(StoreError):
            store.replace_graphs(attempt, drop_prefix="urn:g:v:")
        assert store.graph_names("urn:g:") == sorted(before)
        for name, graph in before.items():
            assert isomorphic(store.graph(name), graph)
        assert store.triple_count() == sum(len(g) for g in before.values())


def typed(value: str, datatype: URIRef) -> Literal:
    """A typed literal of exactly this lexical form (rdflib would otherwise rewrite some, such
    as "01" to "1" or a dateTime's Z to +00:00)."""
    return Literal(value, datatype=datatype, normalize=False)


def literal_graph() -> tuple[Graph, Graph]:
    """Literals of every kind in lexical forms a store keeps, and what a store gives back: the
    same, with the same lexical forms, but xsd:string literals as simple literals and language
    tags in lower case (RDF 1.1: the same terms)."""
    literals = [
        Literal('line\nbreak, "quotes", back\\slash, tab\t, return\r, é, 😀, \u2028, \x01'),
        Literal(""),
        Literal("  padded  "),
        Literal("long " * 20_000 + "é"),
        Literal("Hello", lang="en-GB"),
        Literal("Grüße", lang="de"),
        Literal("日本語のテキスト", lang="ja"),
        Literal("multi\nline", lang="fr"),
        typed("42", xsd("integer")),
        typed("-7", xsd("integer")),
        typed("3.5", xsd("decimal")),
        typed("0.1", xsd("double")),
        typed("1.5", xsd("float")),
        typed("true", xsd("boolean")),
        typed("false", xsd("boolean")),
        typed("2024-01-02", xsd("date")),
        typed("2024-01-02Z", xsd("date")),
        typed("2024-01-02+02:00", xsd("date")),
        typed("2024-01-02T03:04:05Z", xsd("dateTime")),
        typed("2024-01-02T03:04:05", xsd("dateTime")),
        typed("2024-01-02T03:04:05+02:00", xsd("dateTime")),
        typed("03:04:05Z", xsd("time")),
        typed("2024", xsd("gYear")),
        typed("2024Z", xsd("gYear")),
        typed("https://example.org/a", xsd("anyURI")),
        typed("plain as xsd:string", xsd("string")),
        typed('custom "typed"', URIRef(f"{EX}datatype#custom")),
        typed("<p>html</p>", RDF.HTML),
    ]
    given, expected = Graph(), Graph()
    for i, literal in enumerate(literals):
        subject, predicate = URIRef(f"{EX}s/{i}"), URIRef(f"{EX}p")
        given.add((subject, predicate, literal))
        back = literal
        if literal.datatype == xsd("string"):
            back = Literal(str(literal))
        elif literal.language:
            back = Literal(str(literal), lang=literal.language.lower())
        expected.add((subject, predicate, back))
    return given, expected


CANONICALISED = [
    typed("01", xsd("integer")),
    typed("+7", xsd("integer")),
    typed("1.50", xsd("decimal")),
    typed("1.5E3", xsd("double")),
    typed("1", xsd("boolean")),
    typed("2024-01-02T03:04:05.000Z", xsd("dateTime")),
]
"""Typed literals in forms a store may rewrite to another of the same value (Oxigraph and
Virtuoso keep numbers and booleans as values, not text)."""


def test_store_round_trips_literals(store) -> None:  # type: ignore[no-untyped-def]
    given, expected = literal_graph()
    store.replace_graphs({"urn:g:literals": given})
    back = store.graph("urn:g:literals")
    assert isomorphic(back, expected)
    by_subject = {s: o for s, _, o in back}
    for s, _, o in expected:
        stored = by_subject[s]
        assert isinstance(stored, Literal) and isinstance(o, Literal)
        assert (str(stored), stored.datatype, stored.language) == (str(o), o.datatype, o.language)


def test_store_keeps_the_values_of_literals_it_rewrites(store) -> None:  # type: ignore[no-untyped-def]
    graph = Graph()
    for i, literal in enumerate(CANONICALISED):
        graph.add((URIRef(f"{EX}s/{i}"), URIRef(f"{EX}p"), literal))
    store.replace_graphs({"urn:g:canonical": graph})
    back = {s: o for s, _, o in store.graph("urn:g:canonical")}
    assert len(back) == len(CANONICALISED)
    for i, literal in enumerate(CANONICALISED):
        stored = back[URIRef(f"{EX}s/{i}")]
        assert isinstance(stored, Literal)
        assert stored.datatype == literal.datatype, literal
        assert stored.value is not None and stored.value == literal.value, (stored, literal)


def blank_node_graph() -> Graph:
    """Nested, shared and cyclic blank nodes, and a list."""
    graph = Graph()
    p = URIRef(f"{EX}p")
    top, inner, deepest, shared = BNode(), BNode(), BNode(), BNode()
    graph.add((URIRef(f"{EX}a"), p, top))
    graph.add((top, p, inner))
    graph.add((inner, p, deepest))
    graph.add((deepest, URIRef(f"{EX}label"), Literal("deep", lang="en")))
    graph.add((URIRef(f"{EX}b"), p, shared))
    graph.add((URIRef(f"{EX}c"), p, shared))
    graph.add((shared, URIRef(f"{EX}label"), Literal("shared")))
    one, two = BNode(), BNode()
    graph.add((one, URIRef(f"{EX}next"), two))
    graph.add((two, URIRef(f"{EX}next"), one))
    head = BNode()
    Collection(graph, head, [Literal(i) for i in range(30)])
    graph.add((URIRef(f"{EX}d"), URIRef(f"{EX}list"), head))
    return graph


def test_store_round_trips_blank_nodes(store) -> None:  # type: ignore[no-untyped-def]
    graph = blank_node_graph()
    store.replace_graphs({"urn:g:blank:1": graph, "urn:g:blank:2": graph})
    for name in ("urn:g:blank:1", "urn:g:blank:2"):
        back = store.graph(name)
        assert isomorphic(back, graph), name
        blanks = {n for t in back for n in t if isinstance(n, BNode)}
        assert len(blanks) == len({n for t in graph for n in t if isinstance(n, BNode)})
    assert store.triple_count() == 2 * len(graph)
    again = store.graph("urn:g:blank:1")
    store.replace_graphs({"urn:g:blank:3": again})  # blank nodes read back can be written again
    assert isomorphic(store.graph("urn:g:blank:3"), graph)


def test_store_keeps_one_blank_node_with_many_triples(store) -> None:  # type: ignore[no-untyped-def]
    """More triples on one blank node than a backend may write in one block stay on one node."""
    wide, items = BNode(), {Literal(f"item {i}") for i in range(2500)}
    graph = Graph()
    graph.add((URIRef(f"{EX}e"), URIRef(f"{EX}p"), wide))
    graph.add((wide, URIRef(f"{EX}p"), URIRef(f"{EX}e")))
    for item in items:
        graph.add((wide, URIRef(f"{EX}item"), item))
    store.replace_graphs({"urn:g:wide": graph})
    back = store.graph("urn:g:wide")
    assert len(back) == len(graph)
    (node,) = set(back.objects(URIRef(f"{EX}e"), URIRef(f"{EX}p")))
    assert isinstance(node, BNode)
    assert set(back.objects(node, URIRef(f"{EX}item"))) == items
    assert set(back.subjects(URIRef(f"{EX}p"), URIRef(f"{EX}e"))) == {node}


def test_store_replaces_many_graphs_and_large_ones_at_once(store) -> None:  # type: ignore[no-untyped-def]
    many = {f"urn:g:many:{i:05d}": small_graph(f"m{i}") for i in range(1200)}
    big = Graph()
    for i in range(11_000):
        big.add((URIRef(f"{EX}big/{i % 7}"), URIRef(f"{EX}n"), Literal(i)))
    store.replace_graphs({**many, "urn:g:big": big})
    assert store.graph_names("urn:g:many:") == sorted(many)
    assert store.triple_count() == 3 * len(many) + len(big)
    assert isomorphic(store.graph("urn:g:big"), big)
    assert isomorphic(store.graph("urn:g:many:00777"), many["urn:g:many:00777"])
    store.replace_graphs({"urn:g:many:x": small_graph("x")}, drop_prefix="urn:g:")
    assert store.graph_names() == ["urn:g:many:x"]
    assert store.triple_count() == 3


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


def test_dataset_index_replace_all_makes_these_every_dataset(dataset_index) -> None:  # type: ignore[no-untyped-def]
    first = [dataset("a", f"a-{i}", f"Prostate MRI {i}") for i in range(3)]
    dataset_index.replace_provider("a", first)
    dataset_index.replace_provider("b", [dataset("b", "b-1", "Brain MRI")])
    again = [dataset("a", "a-9", "Prostate biopsy MRI"), dataset("c", "c-1", "Colon CT")]
    dataset_index.replace_all({"a": again[:1], "c": again[1:], "d": []})
    assert sorted(d.key for d in dataset_index.all()) == [("a", "a-9"), ("c", "c-1")]
    assert dataset_index.search("mri", 0, 10).datasets == again[:1]
    assert dataset_index.search(None, 0, 10, providers=("b",)).total == 0
    dataset_index.replace_all({})
    assert dataset_index.all() == []


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
