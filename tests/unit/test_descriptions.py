"""Dataset descriptions on Oxigraph terms (the harvest's fast path) against rdflib: the same
triples as an rdflib traversal of the same graph, the same models and digests, and a digest
that ignores blank-node labels but sees any change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from catalogue.dcat import namespaces
from catalogue.dcat.digest import description_digest
from catalogue.dcat.drift import has_drift, normalise
from catalogue.dcat.parser import (
    dataset_nodes,
    dataset_subgraph,
    iter_datasets,
    iter_parsed_datasets,
    parse_dataset,
)
from catalogue.dcat.rdf_io import read_rdf_triples
from catalogue.dcat.terms import ParsedRdf, ToOxigraph, to_graph
from catalogue.exceptions import UnreadableSourceError
from tests.unit.dcat_corpus import REPO_DCAT, corpus_files, corpus_id, corpus_path

DCAT = Namespace(str(namespaces.DCAT))
DCTERMS = Namespace(str(namespaces.DCTERMS))
RDF = Namespace(str(namespaces.RDF))
FILES = [*corpus_files(), *sorted(REPO_DCAT.glob("*.ttl"))]


def masked(lines: tuple[str, ...]) -> list[str]:
    """Report lines without blank-node labels (new ones each time a graph is made)."""
    return sorted(re.sub(r"_:\S+", "_:b", line) for line in lines)


def parsed_or_skip(path: Path) -> ParsedRdf:
    try:
        return read_rdf_triples(path)
    except UnreadableSourceError as exc:
        pytest.skip(f"not parseable (kept in the corpus as a negative case): {exc}")


@pytest.mark.parametrize(
    "path",
    FILES,
    ids=lambda p: corpus_id(p) if not p.is_relative_to(REPO_DCAT) else f"repo/{p.name}",
)
def test_fast_path_datasets_equal_an_rdflib_reading(path: Path) -> None:
    """Each dataset the harvest reads from Oxigraph terms has the triples an rdflib traversal
    of the (normalised) graph finds, the model rdflib's graph gives, and the same digest."""
    parsed = parsed_or_skip(path)
    graph, _ = normalise(parsed.graph())
    by_iri = {str(node): node for node in dataset_nodes(graph) if isinstance(node, URIRef)}
    items = list(iter_parsed_datasets(parsed, "p"))
    assert len(items) == len(dataset_nodes(graph))
    for item in items:
        if item.dataset.iri not in by_iri:
            continue  # a blank dataset: no name to find it by in the other graph
        node = by_iri[item.dataset.iri]
        expected = dataset_subgraph(graph, node)
        assert isomorphic(item.description.graph, expected), item.dataset.iri
        assert item.description.digest == description_digest(expected)
        assert item.dataset == parse_dataset(graph, node, "p")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_fast_path_gives_what_the_rdflib_path_gives(path: Path) -> None:
    """Documents without drift skip the rdflib graph; with it they take the rdflib path: both
    give the same datasets, descriptions and normalisations."""
    parsed = parsed_or_skip(path)
    fast = list(iter_parsed_datasets(parsed, "p"))
    slow = list(iter_datasets(parsed.graph(), "p"))
    assert [i.dataset for i in fast] == [i.dataset for i in slow]
    assert [i.description.digest for i in fast] == [i.description.digest for i in slow]
    assert [masked(i.normalisations) for i in fast] == [masked(i.normalisations) for i in slow]
    if not has_drift(parsed.triples):
        assert all(not i.normalisations for i in slow)


def test_the_digest_ignores_blank_node_labels_and_sees_any_change() -> None:
    path = corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl")
    first, second = read_rdf_triples(path), read_rdf_triples(path)
    blanks = {t.object for t in first.triples} & {t.object for t in second.triples}
    assert not any(type(b).__name__ == "BlankNode" for b in blanks), "labels differ per read"
    assert description_digest(first.triples) == description_digest(second.triples)
    graph = first.graph()
    assert description_digest(graph) == description_digest(first.triples)
    # one literal inside a blank node (the temporal period) changed
    (node,) = dataset_nodes(graph)
    period = graph.value(node, DCTERMS.temporal)
    start = graph.value(period, DCAT.startDate)
    assert isinstance(period, BNode) and start is not None
    changed = Graph()
    changed += graph
    changed.set((period, DCAT.startDate, Literal(str(start)[:4])))
    assert description_digest(changed) != description_digest(graph)
    # a statement stated twice is one statement
    assert description_digest([*first.triples, first.triples[0]]) == description_digest(
        first.triples
    )


def test_cyclic_blank_nodes_fall_back_to_a_canonical_digest() -> None:
    def cycle() -> Graph:
        graph = Graph()
        a, b = BNode(), BNode()
        graph.add((a, RDF.type, DCAT.Dataset))
        graph.add((a, DCTERMS.relation, b))
        graph.add((b, DCTERMS.relation, a))
        return graph

    one, two = cycle(), cycle()
    assert description_digest(one).startswith("iso:")
    assert description_digest(one) == description_digest(ToOxigraph().triples(two))
    two.add((URIRef("https://example.org/x"), DCTERMS.title, Literal("x")))
    assert description_digest(one) != description_digest(two)


def test_terms_convert_both_ways_without_loss() -> None:
    graph = read_rdf_triples(corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl")).graph()
    back = to_graph(ToOxigraph().triples(graph))
    assert isomorphic(back, graph)
    bad = Graph()
    bad.add((URIRef("https://example.org/a b"), DCTERMS.title, Literal("x")))
    with pytest.raises(UnreadableSourceError, match="invalid IRI"):
        ToOxigraph().triples(bad)
