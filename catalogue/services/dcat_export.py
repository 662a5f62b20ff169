"""The catalogue back out as DCAT-AP: a Hydra-paged catalogue and one dataset at a time.

Graphs come from the store as the providers described them (the source of truth), so harvesting
this export with the `dcat` harvester gives isomorphic dataset graphs. The stores keep numbers by
value and Oxigraph (like Virtuoso) types every integer `xsd:integer`: drift normalisation gives
the profiles' counts and flags their datatype back before a graph is served.
"""

from __future__ import annotations

from rdflib import Graph, Literal, Namespace, URIRef

from catalogue.dcat.drift import normalise
from catalogue.dcat.namespaces import DCAT, DCTERMS, RDF, XSD
from catalogue.dcat.parser import dataset_nodes
from catalogue.dcat.serialiser import bind_prefixes
from catalogue.domain.identifiers import GRAPH_BASE, dataset_graph
from catalogue.exceptions import QueryError
from catalogue.services.runtime import Catalogue

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
MAX_PAGE_SIZE = 1000
"""The largest page /catalog serves."""


def catalogue_page(catalogue: Catalogue, base: str, page: int, page_size: int) -> Graph:
    """Page `page` (from 1) of every stored dataset, in graph-name order, as one DCAT catalogue
    with a hydra:PartialCollectionView (first, previous, next, last) as CKAN and piveau do.
    The route checks that `page` >= 1 and 1 <= `page_size` <= MAX_PAGE_SIZE."""
    names = catalogue.store.graph_names(f"{GRAPH_BASE}dataset:")
    pages = max(1, -(-len(names) // page_size))
    graph = bind_prefixes(Graph())
    graph.bind("hydra", HYDRA)
    node = URIRef(f"{base}catalog")
    graph.add((node, RDF.type, DCAT.Catalog))
    graph.add((node, DCTERMS.title, Literal("Cancer imaging catalogue", lang="en")))
    for name in names[(page - 1) * page_size : page * page_size]:
        stored = _stored(catalogue, name)
        graph += stored
        for dataset in dataset_nodes(stored):
            graph.add((node, DCAT.dataset, dataset))
    view = URIRef(f"{base}catalog?page={page}&page_size={page_size}")
    graph.add((view, RDF.type, HYDRA.PartialCollectionView))
    graph.add((node, HYDRA.view, view))
    graph.add((view, HYDRA.totalItems, Literal(len(names), datatype=XSD.nonNegativeInteger)))

    def link(number: int) -> URIRef:
        return URIRef(f"{base}catalog?page={number}&page_size={page_size}")

    graph.add((view, HYDRA.first, link(1)))
    graph.add((view, HYDRA.last, link(pages)))
    if page > 1:
        graph.add((view, HYDRA.previous, link(page - 1)))
    if page < pages:
        graph.add((view, HYDRA.next, link(page + 1)))
    return graph


def dataset_description(catalogue: Catalogue, provider_id: str, identifier: str) -> Graph:
    """One dataset's stored description; QueryError when the catalogue has no such dataset."""
    graph = _stored(catalogue, dataset_graph(provider_id, identifier))
    if not len(graph):
        raise QueryError(f"no dataset {identifier!r} at provider {provider_id!r}")
    return bind_prefixes(graph)


def _stored(catalogue: Catalogue, name: str) -> Graph:
    """A stored description with the datatypes the profiles declare (see the module doc)."""
    return normalise(catalogue.store.graph(name))[0]
