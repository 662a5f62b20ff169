"""The replacement request of the sparql graph store, applied to an in-memory Oxigraph: it is
standard SPARQL 1.1 Update, it does what it should, and its size in operations is fixed."""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from rdflib import BNode, Graph, Literal, URIRef

from catalogue.exceptions import StoreError
from catalogue.store.sparql_update import BLOCK, REGISTRY, replace_request

EX = "http://example.org/"
DURATION = "http://www.w3.org/2001/XMLSchema#duration"


def graph_of(label: str, size: int) -> Graph:
    graph, node = Graph(), BNode()
    graph.add((URIRef(f"{EX}{label}"), URIRef(f"{EX}p"), node))
    for i in range(size - 1):
        graph.add((node, URIRef(f"{EX}n"), Literal(f"{label} {i}")))
    return graph


def quads(store: ox.Store, name: str) -> set[tuple[str, str, str]]:
    return {
        (str(q.subject), str(q.predicate), str(q.object))
        for q in store.quads_for_pattern(None, None, None, ox.NamedNode(name))
    }


def test_the_request_replaces_and_registers_graphs_in_a_fixed_number_of_operations() -> None:
    store = ox.Store()
    store.update(
        f'INSERT DATA {{ GRAPH <urn:g:old> {{ <{EX}a> <{EX}b> "old" }} '
        f'GRAPH <urn:g:kept> {{ <{EX}a> <{EX}b> "kept" }} '
        f'GRAPH <{REGISTRY}> {{ <urn:g:old> <urn:catalogue:store:key> "x" }} }}'
    )
    graphs = {f"urn:g:new:{i}": graph_of(f"g{i}", 5) for i in range(40)}
    graphs["urn:g:big"] = graph_of("big", 2 * BLOCK + 5)
    graphs["urn:g:big"].add(
        (URIRef(f"{EX}big"), URIRef(f"{EX}d"), Literal("P1D", datatype=DURATION))
    )
    request = replace_request(graphs, clear=["urn:g:old"])
    assert request is not None
    operations = request.text.count(" ;\n") + 1
    assert operations == 7  # probe, its drop, manifest, two deletes, one insert, manifest drop
    assert request.text.count("GRAPH <urn:g:big> {") == 3  # blocks of at most BLOCK triples
    assert f'"P1D"^^<{DURATION}>' in request.text.split(" ;\n")[0]  # probed first

    store.update(request.text)
    assert quads(store, "urn:g:old") == set()
    assert len(quads(store, "urn:g:kept")) == 1
    for name, graph in graphs.items():
        assert len(quads(store, name)) == len(graph)
    big = quads(store, "urn:g:big")
    assert len({s for s, p, _ in big if p == f"<{EX}n>"}) == 1  # one node across the blocks
    registered = {
        str(q.subject)[1:-1]
        for q in store.quads_for_pattern(None, None, None, ox.NamedNode(REGISTRY))
    }
    assert registered == set(graphs)
    holding = {str(g)[1:-1] for g in store.named_graphs() if quads(store, str(g)[1:-1])}
    assert holding == {*graphs, "urn:g:kept", REGISTRY}  # no probe or manifest left


@pytest.mark.parametrize(
    ("graphs", "message"),
    [
        ({"urn:catalogue:store:graphs": Graph()}, "reserved"),
        ({"urn:g:bad name": Graph()}, "not a valid IRI"),
        ({"urn:g:" + "x" * 1800: Graph()}, "longer than 1800 bytes"),
    ],
)
def test_bad_names_are_refused_before_anything_is_sent(
    graphs: dict[str, Graph], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        replace_request(graphs, clear=[])


def test_nothing_to_do_is_no_request() -> None:
    assert replace_request({}, clear=[]) is None
