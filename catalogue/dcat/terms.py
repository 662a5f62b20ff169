"""RDF terms and triples in two libraries: pyoxigraph's (fast, what harvests carry) and rdflib's
(what validation, the profiles and the exports work on); conversions both ways.

A harvest parses with Oxigraph and keeps its terms: building an rdflib graph costs about ten
times as much per triple, so one is built only where a library needs it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeAlias

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

from catalogue.exceptions import UnreadableSourceError

OxTerm: TypeAlias = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
"""An object as Oxigraph types it (triple terms are refused when a document is read)."""
OxSubject: TypeAlias = ox.NamedNode | ox.BlankNode | ox.Triple
Statement: TypeAlias = ox.Triple | ox.Quad
"""A triple as Oxigraph gives it: its parser yields quads, here always in the default graph (so
`str()` is the N-Triples line without its final dot)."""
Triples: TypeAlias = Sequence[Statement]
RdfGraph: TypeAlias = Graph | Triples
"""What the graph stores accept for one named graph: an rdflib Graph or Oxigraph triples."""

_XSD_STRING = str(XSD.string)
_LANG_STRING = str(RDF.langString)


@dataclass
class ParsedRdf:
    """A parsed document: its triples (named graphs merged) and the prefixes it declared."""

    triples: list[Statement]
    prefixes: dict[str, str] = field(default_factory=dict)

    def graph(self) -> Graph:
        return to_graph(self.triples, self.prefixes)


def rdflib_literal(value: str, datatype: str | None, language: str | None) -> Literal:
    """An rdflib literal of this lexical form (kept as the source wrote it: rdflib would
    rewrite some, such as a dateTime's Z), xsd:string implicit."""
    if language:
        return Literal(value, lang=language)
    if datatype is None or datatype == _XSD_STRING:
        return Literal(value)
    return Literal(value, datatype=URIRef(datatype), normalize=False)


def to_graph(triples: Iterable[Statement], prefixes: Mapping[str, str] | None = None) -> Graph:
    """Oxigraph triples as a new rdflib Graph (each blank node one BNode)."""
    graph = Graph()
    blanks: dict[str, BNode] = {}
    literals: dict[ox.Literal, Literal] = {}

    def term(value: OxTerm) -> Node:
        if isinstance(value, ox.NamedNode):
            return URIRef(value.value)
        if isinstance(value, ox.BlankNode):
            return blanks.setdefault(value.value, BNode())
        if isinstance(value, ox.Literal):
            made = literals.get(value)
            if made is None:
                made = rdflib_literal(value.value, value.datatype.value, value.language)
                literals[value] = made
            return made
        raise UnreadableSourceError(f"unsupported RDF term {value} (RDF 1.2 triple terms, N3)")

    graph.addN((term(t.subject), term(t.predicate), term(t.object), graph) for t in triples)
    for prefix, namespace in (prefixes or {}).items():
        graph.bind(prefix, namespace, override=False)
    return graph


class ToOxigraph:
    """Converts rdflib terms to Oxigraph's, one blank node for each BNode it meets."""

    def __init__(self) -> None:
        self._blanks: dict[BNode, ox.BlankNode] = {}

    def term(self, node: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
        """The Oxigraph term; UnreadableSourceError for an IRI Oxigraph finds invalid."""
        if isinstance(node, URIRef):
            try:
                return ox.NamedNode(str(node))
            except ValueError as exc:
                shown = str(node) if len(node) <= 80 else str(node)[:80] + "…"
                raise UnreadableSourceError(f"invalid IRI <{shown}>: {exc}") from exc
        if isinstance(node, BNode):
            blank = self._blanks.get(node)
            if blank is None:
                blank = self._blanks[node] = ox.BlankNode()
            return blank
        if isinstance(node, Literal):
            datatype = node.datatype
            try:
                if node.language:
                    return ox.Literal(str(node), language=node.language)
                if datatype is None or str(datatype) in (_XSD_STRING, _LANG_STRING):
                    return ox.Literal(str(node))
            except ValueError as exc:
                raise UnreadableSourceError(f"invalid literal {node.n3()[:80]}: {exc}") from exc
            return ox.Literal(str(node), datatype=self.named(datatype))
        raise UnreadableSourceError(f"unsupported RDF term {node!r}")

    def subject(self, node: Node) -> ox.NamedNode | ox.BlankNode:
        term = self.term(node)
        if isinstance(term, ox.Literal):
            raise UnreadableSourceError(f"a literal as a subject: {node!r}")
        return term

    def named(self, node: Node) -> ox.NamedNode:
        term = self.term(node)
        if not isinstance(term, ox.NamedNode):
            raise UnreadableSourceError(f"not an IRI where one belongs: {node!r}")
        return term

    def triples(self, graph: Graph) -> list[Statement]:
        out: list[Statement] = []
        for s, p, o in graph:
            out.append(ox.Triple(self.subject(s), self.named(p), self.term(o)))
        return out


def to_triples(graph: RdfGraph) -> Triples:
    """A graph as Oxigraph triples (Oxigraph triples are returned as they are)."""
    return ToOxigraph().triples(graph) if isinstance(graph, Graph) else graph


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector paused, for code making millions of Oxigraph terms (each one
    tracked: the collector would walk them all again and again, up to four times the work);
    they form no cycles, so nothing is kept longer than it would be."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def gc_frozen() -> Iterator[None]:
    """The objects alive on entry (a parsed document's terms) left out of Python's cycle
    collections until exit, so the code within pays only for what it makes."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
