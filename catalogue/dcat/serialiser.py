"""Dataset models into DCAT-AP 3 / HealthDCAT-AP graphs with the imaging extension."""

from __future__ import annotations

from collections.abc import Iterable

from rdflib import BNode, Graph, Literal, URIRef

from catalogue.dcat.namespaces import (
    ADMS,
    CIM,
    DCAT,
    DCTERMS,
    FOAF,
    HEALTHDCATAP,
    PREFIXES,
    RDF,
    SKOS,
    XSD,
)
from catalogue.domain.models import Dataset, Provider


def bind_prefixes(graph: Graph) -> Graph:
    """`graph` with the catalogue's prefixes (namespaces.PREFIXES) bound."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace)
    return graph


def add_dataset(graph: Graph, dataset: Dataset, publisher: URIRef | None = None) -> URIRef:
    """Add one dataset's triples to a graph and return its node."""
    node = URIRef(dataset.iri)
    graph.add((node, RDF.type, DCAT.Dataset))
    graph.add((node, DCTERMS.identifier, Literal(dataset.identifier)))
    graph.add((node, DCTERMS.title, Literal(dataset.title, lang="en")))
    if dataset.description:
        graph.add((node, DCTERMS.description, Literal(dataset.description, lang="en")))
    for keyword in dataset.keywords:
        graph.add((node, DCAT.keyword, Literal(keyword, lang="en")))
    for theme in dataset.themes:
        graph.add((node, DCAT.theme, URIRef(theme)))
    for value in dataset.cancer_types:
        graph.add((node, CIM.cancerType, Literal(value)))
    for value in dataset.body_sites:
        graph.add((node, CIM.bodySite, Literal(value)))
    for value in dataset.modalities:
        graph.add((node, CIM.modality, Literal(value)))
    if dataset.license:
        graph.add((node, DCTERMS.license, URIRef(dataset.license)))
    if dataset.access_rights:
        graph.add((node, DCTERMS.accessRights, URIRef(dataset.access_rights)))
    if dataset.landing_page:
        graph.add((node, DCAT.landingPage, URIRef(dataset.landing_page)))
    if dataset.doi:
        ident = BNode()
        graph.add((node, ADMS.identifier, ident))
        graph.add((ident, RDF.type, ADMS.Identifier))
        graph.add((ident, SKOS.notation, Literal(dataset.doi)))
    if dataset.number_of_unique_individuals is not None:
        graph.add(
            (
                node,
                HEALTHDCATAP.numberOfUniqueIndividuals,
                Literal(dataset.number_of_unique_individuals, datatype=XSD.nonNegativeInteger),
            )
        )
    if publisher is not None:
        graph.add((node, DCTERMS.publisher, publisher))
    return node


def catalogue_graph(provider: Provider, catalogue_iri: str, datasets: Iterable[Dataset]) -> Graph:
    """A DCAT catalogue of one provider with its datasets, as the provider would publish it."""
    graph = bind_prefixes(Graph())
    catalog = URIRef(catalogue_iri)
    agent = URIRef(provider.homepage or f"{catalogue_iri}#publisher")
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, Literal(f"{provider.name} imaging catalogue", lang="en")))
    graph.add((catalog, DCTERMS.publisher, agent))
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(provider.name)))
    for dataset in datasets:
        graph.add((catalog, DCAT.dataset, add_dataset(graph, dataset, agent)))
    return graph


def provider_graph(provider: Provider) -> Graph:
    """A provider's own description, stored in its named graph."""
    graph = bind_prefixes(Graph())
    node = URIRef(f"urn:catalogue:provider:{provider.id}")
    graph.add((node, RDF.type, FOAF.Agent))
    graph.add((node, DCTERMS.identifier, Literal(provider.id)))
    graph.add((node, FOAF.name, Literal(provider.name)))
    if provider.homepage:
        graph.add((node, FOAF.homepage, URIRef(provider.homepage)))
    return graph


def parse_provider(graph: Graph) -> Provider | None:
    """The Provider described by a provider graph, if any."""
    for node in graph.subjects(RDF.type, FOAF.Agent):
        ident = graph.value(node, DCTERMS.identifier)
        name = graph.value(node, FOAF.name)
        if ident is None or name is None:
            continue
        homepage = graph.value(node, FOAF.homepage)
        return Provider(id=str(ident), name=str(name), homepage=str(homepage) if homepage else None)
    return None
