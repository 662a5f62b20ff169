"""DCAT-AP / HealthDCAT-AP / imaging-extension graphs into Dataset models and their subgraphs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from rdflib import Graph, Literal, URIRef
from rdflib.term import Node

from catalogue.dcat.drift import normalise
from catalogue.dcat.namespaces import (
    ADMS,
    CIM,
    DCAT,
    DCTERMS,
    FOAF,
    HEALTHDCATAP,
    RDF,
    SKOS,
    described_within,
)
from catalogue.domain.harvest import HarvestedDataset
from catalogue.domain.models import Dataset

_PREFERRED_LANGUAGES = ("en", None)


def _text(graph: Graph, subject: Node, predicate: URIRef) -> str | None:
    """A literal value, preferring English, then untagged, then any language."""
    values = sorted(o for o in graph.objects(subject, predicate) if isinstance(o, Literal))
    for language in _PREFERRED_LANGUAGES:
        for value in values:
            if value.language == language:
                return str(value).strip()
    return str(values[0]).strip() if values else None


def _texts(graph: Graph, subject: Node, predicate: URIRef) -> tuple[str, ...]:
    """Distinct string values of a property: literals, or labels/IRIs of resources."""
    out: list[str] = []
    for obj in graph.objects(subject, predicate):
        if isinstance(obj, Literal):
            value = str(obj).strip()
        else:
            label = _text(graph, obj, SKOS.prefLabel)
            value = label if label else str(obj)
        if value and value not in out:
            out.append(value)
    return tuple(sorted(out))  # graphs have no order: this is stable across harvests


def _iri(graph: Graph, subject: Node, predicate: URIRef) -> str | None:
    for obj in graph.objects(subject, predicate):
        return str(obj)
    return None


def _int(graph: Graph, subject: Node, predicate: URIRef) -> int | None:
    for obj in graph.objects(subject, predicate):
        try:
            return int(str(obj))
        except ValueError:
            return None
    return None


def _doi(graph: Graph, subject: Node) -> str | None:
    for ident in graph.objects(subject, ADMS.identifier):
        notation = _text(graph, ident, SKOS.notation)
        if notation and notation.startswith("10."):
            return notation
    return None


def dataset_nodes(graph: Graph) -> list[Node]:
    """Every dcat:Dataset in the graph, in a stable order."""
    return sorted(set(graph.subjects(RDF.type, DCAT.Dataset)), key=str)


def parse_dataset(graph: Graph, node: Node, provider_id: str) -> Dataset:
    """One dataset node as a Dataset; the identifier is dct:identifier, else the IRI."""
    identifier = _text(graph, node, DCTERMS.identifier) or str(node)
    publisher = None
    for agent in sorted(graph.objects(node, DCTERMS.publisher), key=str):
        name = _text(graph, agent, FOAF.name)
        publisher = name or (str(agent) if isinstance(agent, URIRef) else None)
    return Dataset(
        provider_id=provider_id,
        identifier=identifier,
        iri=str(node),
        title=_text(graph, node, DCTERMS.title) or identifier,
        description=_text(graph, node, DCTERMS.description) or "",
        keywords=_texts(graph, node, DCAT.keyword),
        themes=_texts(graph, node, DCAT.theme),
        cancer_types=_texts(graph, node, CIM.cancerType),
        body_sites=_texts(graph, node, CIM.bodySite),
        modalities=_texts(graph, node, CIM.modality),
        license=_iri(graph, node, DCTERMS.license),
        access_rights=_iri(graph, node, DCTERMS.accessRights),
        doi=_doi(graph, node),
        landing_page=_iri(graph, node, DCAT.landingPage),
        publisher=publisher,
        number_of_unique_individuals=_int(graph, node, HEALTHDCATAP.numberOfUniqueIndividuals),
    )


def reachable(graph: Graph, roots: Iterable[Node], follow: Callable[[Node, Node], bool]) -> Graph:
    """The triples of `roots` and of every node reached from them through (predicate, object)
    pairs that `follow` accepts, transitively, with the graph's prefixes."""
    out = Graph()
    seen: set[Node] = set()
    stack: list[Node] = list(roots)
    while stack:
        subject = stack.pop()
        if subject in seen:
            continue
        seen.add(subject)
        for predicate, obj in graph.predicate_objects(subject):
            out.add((subject, predicate, obj))
            if follow(predicate, obj):
                stack.append(obj)
    for prefix, namespace in graph.namespaces():
        out.bind(prefix, namespace, override=False)
    return out


def dataset_subgraph(graph: Graph, node: Node) -> Graph:
    """The dataset's description: its triples, and those of the blank nodes, distributions and
    agents it points to, transitively (a concise bounded description extended to them)."""
    return reachable(graph, [node], described_within)


def iter_datasets(
    graph: Graph,
    provider_id: str,
    select: Callable[[Graph], Iterable[Node]] = dataset_nodes,
) -> Iterator[HarvestedDataset]:
    """The datasets of a graph (every dcat:Dataset, or those `select` picks from the normalised
    graph) as a harvester hands them to its sink: known drift normalised first, each with its
    own subgraph and the normalisations made within it."""
    graph, changes = normalise(graph)
    by_subject: dict[str, list[str]] = {}
    for change in changes:
        by_subject.setdefault(change.subject, []).append(str(change))
    for node in select(graph):
        subgraph = dataset_subgraph(graph, node)
        made = [line for s in set(subgraph.subjects()) for line in by_subject.get(s.n3(), ())]
        yield HarvestedDataset(
            parse_dataset(subgraph, node, provider_id), subgraph, tuple(sorted(made))
        )
