"""DCAT-AP / HealthDCAT-AP / imaging-extension descriptions into Dataset models and their own
triples.

The work is done on Oxigraph terms, indexed by subject (`Index`): harvests parse with Oxigraph
and never build an rdflib graph of a whole catalogue unless its drift must be normalised. The
rdflib entry points (`iter_datasets`, `parse_dataset`, `dataset_subgraph`) convert and share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import pyoxigraph as ox
from rdflib import Graph
from rdflib.term import Node

from catalogue.dcat.description import Description
from catalogue.dcat.drift import has_drift, normalise
from catalogue.dcat.namespaces import (
    ADMS,
    CIM,
    DCAT,
    DCTERMS,
    FOAF,
    HEALTHDCATAP,
    RDF,
    RDFS,
    SKOS,
    VCARD,
    described_within,
)
from catalogue.dcat.terms import OxSubject, OxTerm, ParsedRdf, Statement, ToOxigraph
from catalogue.domain.harvest import HarvestedDataset
from catalogue.domain.models import ContactPoint, Dataset, Distribution

Index: TypeAlias = dict[OxTerm, list[Statement]]
"""Statements by subject."""

_PREFERRED_LANGUAGES = ("en", None)
_TYPE = ox.NamedNode(str(RDF.type))
_DATASET = ox.NamedNode(str(DCAT.Dataset))


def index(statements: Iterable[Statement]) -> Index:
    by_subject: Index = {}
    for statement in statements:
        found = by_subject.get(statement.subject)
        if found is None:
            by_subject[statement.subject] = [statement]
        else:
            found.append(statement)
    return by_subject


# --- the model ----------------------------------------------------------------------------


class _Properties:
    """One node's objects by predicate IRI."""

    def __init__(self, about: Index, node: OxTerm) -> None:
        self.about = about
        self.values: dict[str, list[OxTerm]] = {}
        for statement in about.get(node, ()):
            self.values.setdefault(statement.predicate.value, []).append(statement.object)

    def of(self, predicate: str) -> list[OxTerm]:
        return self.values.get(predicate, [])

    def text(self, predicate: str) -> str | None:
        """A literal value, preferring English, then untagged, then any language."""
        values = sorted(
            (o for o in self.of(predicate) if isinstance(o, ox.Literal)),
            key=lambda o: (o.value, o.language or "", o.datatype.value),
        )
        for language in _PREFERRED_LANGUAGES:
            for value in values:
                if value.language == language:
                    return value.value.strip()
        return values[0].value.strip() if values else None

    def texts(self, predicate: str) -> tuple[str, ...]:
        """Distinct string values of a property: literals, or labels/IRIs of resources."""
        out: set[str] = set()
        for obj in self.of(predicate):
            if isinstance(obj, ox.Literal):
                value = obj.value.strip()
            else:
                value = _Properties(self.about, obj).text(str(SKOS.prefLabel)) or _lexical(obj)
            if value:
                out.add(value)
        return tuple(sorted(out))  # graphs have no order: this is stable across harvests

    def first(self, predicate: str) -> str | None:
        for obj in self.of(predicate):
            return _lexical(obj)
        return None

    def integer(self, predicate: str) -> int | None:
        value = self.first(predicate)
        try:
            return None if value is None else int(value)
        except ValueError:
            return None

    def doi(self) -> str | None:
        for ident in self.of(str(ADMS.identifier)):
            if isinstance(ident, ox.Literal):
                continue
            notation = _Properties(self.about, ident).text(str(SKOS.notation))
            if notation and notation.startswith("10."):
                return notation
        return None

    def publisher(self) -> tuple[str | None, str | None]:
        """The publisher's name (or IRI) and its IRI (None for a blank node); of several, the
        last by name in order, whatever blank-node labels the parser gave them."""
        agents = []
        for agent in self.of(str(DCTERMS.publisher)):
            if isinstance(agent, (ox.NamedNode, ox.BlankNode)):
                name = _Properties(self.about, agent).text(str(FOAF.name))
                iri = agent.value if isinstance(agent, ox.NamedNode) else None
                if name or iri:
                    agents.append((name or agent.value, iri or ""))
        name, iri = max(agents, default=(None, ""))
        return name, iri or None

    def lexicals(self, predicate: str) -> tuple[str, ...]:
        """Every value of a property as its lexical form, sorted."""
        return tuple(sorted({_lexical(o).strip() for o in self.of(predicate)} - {""}))

    def terms(self, predicate: str) -> tuple[str, ...]:
        """Every value of a property naming a term: an IRI or a literal as its lexical form, a
        blank node (a dct:IMT, a dct:LicenseDocument...) by its rdf:value or rdfs:label; sorted."""
        found = set()
        for obj in self.of(predicate):
            if isinstance(obj, ox.BlankNode):
                node = _Properties(self.about, obj)
                value = node.text(str(RDF.value)) or node.text(str(RDFS.label))
            else:
                value = _lexical(obj)
            if value and value.strip():
                found.add(value.strip())
        return tuple(sorted(found))

    def nodes(self, predicate: str) -> Iterator[tuple[str | None, _Properties]]:
        """The resources a property points to: their IRI (None for a blank node), properties."""
        for obj in self.of(predicate):
            if isinstance(obj, (ox.NamedNode, ox.BlankNode)):
                iri = obj.value if isinstance(obj, ox.NamedNode) else None
                yield iri, _Properties(self.about, obj)

    def distributions(self) -> tuple[Distribution, ...]:
        found = [
            Distribution(
                iri=iri,
                title=props.text(str(DCTERMS.title)),
                description=props.text(str(DCTERMS.description)),
                access_urls=props.lexicals(str(DCAT.accessURL)),
                download_urls=props.lexicals(str(DCAT.downloadURL)),
                media_type=_least(props.terms(str(DCAT.mediaType))),
                format=_least(props.terms(str(DCTERMS.format))),
                byte_size=_size(props.lexicals(str(DCAT.byteSize))),
                license=_least(props.terms(str(DCTERMS.license))),
                access_rights=_least(props.terms(str(DCTERMS.accessRights))),
            )
            for iri, props in self.nodes(str(DCAT.distribution))
        ]
        return tuple(sorted(found, key=lambda d: d.model_dump_json()))

    def contact_points(self) -> tuple[ContactPoint, ...]:
        found = [
            ContactPoint(
                iri=iri,
                name=props.text(str(VCARD.fn)) or props.text(str(VCARD["organization-name"])),
                email=_least(
                    tuple(e.removeprefix("mailto:") for e in props.lexicals(str(VCARD.hasEmail)))
                ),
                url=_least(props.lexicals(str(VCARD.hasURL))),
            )
            for iri, props in self.nodes(str(DCAT.contactPoint))
        ]
        return tuple(sorted(found, key=lambda c: c.model_dump_json()))


def _least(values: tuple[str, ...]) -> str | None:
    """One of several values, the same whatever order the graph gave them in."""
    return min(values, default=None)


def _size(values: tuple[str, ...]) -> int | None:
    """A byte size (xsd:nonNegativeInteger or decimal) as a whole number, if one is valid."""
    for value in values:
        try:
            number = Decimal(value)
        except InvalidOperation:
            continue
        if number.is_finite() and number >= 0 and number == number.to_integral_value():
            return int(number)
    return None


def _lexical(term: OxTerm) -> str:
    """An IRI, a blank node's label, a literal's lexical form (as rdflib's `str` gives them)."""
    return str(term) if isinstance(term, ox.Triple) else term.value


def dataset_model(about: Index, node: OxSubject, provider_id: str) -> Dataset:
    """One dataset node as a Dataset; the identifier is dct:identifier, else the IRI."""
    props = _Properties(about, node)
    identifier = props.text(str(DCTERMS.identifier)) or _lexical(node)
    publisher, publisher_iri = props.publisher()
    return Dataset(
        provider_id=provider_id,
        identifier=identifier,
        iri=_lexical(node),
        title=props.text(str(DCTERMS.title)) or identifier,
        description=props.text(str(DCTERMS.description)) or "",
        keywords=props.texts(str(DCAT.keyword)),
        themes=props.texts(str(DCAT.theme)),
        cancer_types=props.texts(str(CIM.cancerType)),
        body_sites=props.texts(str(CIM.bodySite)),
        modalities=props.texts(str(CIM.modality)),
        license=props.first(str(DCTERMS.license)),
        access_rights=props.first(str(DCTERMS.accessRights)),
        doi=props.doi(),
        landing_page=props.first(str(DCAT.landingPage)),
        publisher=publisher,
        publisher_iri=publisher_iri,
        distributions=props.distributions(),
        contact_points=props.contact_points(),
        number_of_unique_individuals=props.integer(str(HEALTHDCATAP.numberOfUniqueIndividuals)),
    )


def datasets_in(about: Index) -> list[OxSubject]:
    """Every dcat:Dataset, in a stable order."""
    nodes = {
        subject
        for subject, statements in about.items()
        if isinstance(subject, (ox.NamedNode, ox.BlankNode))
        and any(s.predicate == _TYPE and s.object == _DATASET for s in statements)
    }
    return sorted(nodes, key=_lexical)


# --- descriptions -------------------------------------------------------------------------


def closure(
    roots: Iterable[Any], about: Callable[[Any], Iterable[Any]], follow: Callable[[Any, Any], bool]
) -> list[Any]:
    """The triples (rdflib's or Oxigraph's) `about` gives of `roots` and of every node reached
    from them through (predicate, object) pairs that `follow` accepts, transitively, each once."""
    out: list[Any] = []
    seen: set[Any] = set()
    stack = list(roots)
    while stack:
        subject = stack.pop()
        if subject in seen:
            continue
        seen.add(subject)
        for triple in about(subject):
            out.append(triple)
            if follow(triple[1], triple[2]):
                stack.append(triple[2])
    return out


def describe(about: Index, node: OxSubject) -> list[Statement]:
    """The dataset's description: its triples, and those of the blank nodes, distributions and
    agents it points to, transitively (a concise bounded description extended to them)."""
    empty: list[Statement] = []
    return closure([node], lambda s: about.get(s, empty), described_within)


def reachable(graph: Graph, roots: Iterable[Node], follow: Callable[[Node, Node], bool]) -> Graph:
    """The rdflib triples of `roots` and of every node reached from them through (predicate,
    object) pairs that `follow` accepts, transitively, with the graph's prefixes."""
    out = Graph()
    for triple in closure(roots, lambda s: graph.triples((s, None, None)), follow):
        out.add(triple)
    for prefix, namespace in graph.namespaces():
        out.bind(prefix, namespace, override=False)
    return out


# --- rdflib entry points --------------------------------------------------------------------


def dataset_nodes(graph: Graph) -> list[Node]:
    """Every dcat:Dataset in an rdflib graph, in a stable order."""
    return sorted(set(graph.subjects(RDF.type, DCAT.Dataset)), key=str)


def parse_dataset(graph: Graph, node: Node, provider_id: str) -> Dataset:
    """One dataset node of an rdflib graph as a Dataset."""
    convert = ToOxigraph()
    subject = convert.subject(node)
    return dataset_model(index(convert.triples(graph)), subject, provider_id)


def dataset_subgraph(graph: Graph, node: Node) -> Graph:
    """The dataset's description (see `describe`) in an rdflib graph."""
    return reachable(graph, [node], described_within)


# --- harvests -----------------------------------------------------------------------------


def iter_datasets(
    graph: Graph,
    provider_id: str,
    select: Callable[[Graph], Iterable[Node]] = dataset_nodes,
) -> Iterator[HarvestedDataset]:
    """The datasets of an rdflib graph (every dcat:Dataset, or those `select` picks from the
    normalised graph) as a harvester hands them to its sink: known drift normalised first, each
    with its own description and the normalisations made within it."""
    graph, changes = normalise(graph)
    convert = ToOxigraph()
    about = index(convert.triples(graph))
    nodes = [convert.subject(node) for node in select(graph)]
    by_subject: dict[str, list[str]] = {}
    for change in changes:
        by_subject.setdefault(change.subject, []).append(str(change))
    n3: dict[OxTerm, str] = {}
    if changes:
        n3 = {convert.term(s): s.n3() for s in set(graph.subjects())}

    def made(statements: list[Statement]) -> tuple[str, ...]:
        lines = {line for s in statements for line in by_subject.get(n3.get(s.subject, ""), ())}
        return tuple(sorted(lines))

    return _harvested(about, nodes, provider_id, made)


def iter_parsed_datasets(parsed: ParsedRdf, provider_id: str) -> Iterator[HarvestedDataset]:
    """The datasets of a parsed document, as `iter_datasets` gives them; without building an
    rdflib graph when the document has no known drift (the common case: a harvest's fast path)."""
    if has_drift(parsed.triples):
        return iter_datasets(parsed.graph(), provider_id)
    about = index(parsed.triples)
    return _harvested(about, datasets_in(about), provider_id, lambda _: ())


def _harvested(
    about: Index,
    nodes: Sequence[OxSubject],
    provider_id: str,
    normalisations: Callable[[list[Statement]], tuple[str, ...]],
) -> Iterator[HarvestedDataset]:
    for node in nodes:
        statements = describe(about, node)
        yield HarvestedDataset(
            dataset_model(about, node, provider_id),
            Description(statements),
            normalisations(statements),
        )
