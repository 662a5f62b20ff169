"""The text of the SPARQL 1.1 Update that replaces named graphs in a remote store.

One request replaces every graph. SPARQL endpoints run one request as one transaction, but
Virtuoso commits the operations that ran before one that signals an error (its HTTP handler ends
with `commit work` whatever happened), so the request is ordered to fail, if it fails, before it
changes anything:

1. every typed literal is first written to a scratch graph (then dropped): a literal the endpoint
   cannot store (Virtuoso 7.2 and `xsd:duration`) fails there, before any change;
2. a manifest graph lists the graphs to clear; two set-based deletes clear them and take them off
   the registry (a constant number of operations: Virtuoso compiles a request with hundreds of
   operations slowly and rejects one with about a thousand);
3. one INSERT DATA writes the registry entries and every triple, in GRAPH blocks of at most
   `BLOCK` triples (Virtuoso's parser runs out of stack at about 5,000 triples in one block).

Blank nodes are written as skolem IRIs under `SKOLEM` and read back as blank nodes: Virtuoso
refuses blank nodes in INSERT DATA, and templates that would keep them compile in quadratic time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from uuid import uuid4

import pyoxigraph as ox
from rdflib import XSD

from catalogue.dcat.terms import OxTerm, RdfGraph, Statement, Triples, to_triples
from catalogue.exceptions import CatalogueError, StoreError

RESERVED = "urn:catalogue:store:"
"""Names under this prefix are the store's own bookkeeping, never a catalogue graph."""
REGISTRY = f"{RESERVED}graphs"
"""The graph listing every named graph the store holds: `<name> <KEY> "hex of its UTF-8"`."""
KEY = f"{RESERVED}key"
"""Lists are paged and filtered on the hex key: Virtuoso orders and compares non-ASCII names
inconsistently (ORDER BY and `>` disagree), which skips names when paging on the names."""
CLEARED = f"{RESERVED}Replaced"
SKOLEM = f"{RESERVED}genid:"
PROBE_VALUE = f"{RESERVED}value"
BLOCK = 1000
MAX_IRI_BYTES = 1800
"""Virtuoso 7.2 keeps the first 1,879 bytes of a longer IRI and says nothing."""


def iri(name: str) -> str:
    """`<name>` for a valid absolute IRI of at most MAX_IRI_BYTES, else a StoreError."""
    try:
        text = str(ox.NamedNode(name))
    except ValueError as exc:
        raise StoreError(f"not a valid IRI: {name!r} ({exc})") from exc
    if len(name.encode()) > MAX_IRI_BYTES:
        raise StoreError(
            f"IRI longer than {MAX_IRI_BYTES} bytes (a SPARQL store such as Virtuoso would "
            f"silently cut it short): {name[:80]}..."
        )
    return text


def graph_iri(name: str) -> str:
    """`<name>` for the name of a catalogue graph (valid, and not one of the store's own)."""
    if name.startswith(RESERVED):
        raise StoreError(f"graph names under {RESERVED} are reserved for the store: {name}")
    return iri(name)


def string(value: str) -> str:
    """A SPARQL string literal."""
    return str(ox.Literal(value))


def key(name: str) -> str:
    """A graph name's registry key: its UTF-8 in hex, which orders as the name does."""
    return name.encode().hex()


def triples_of(name: str, graph: RdfGraph) -> Triples:
    """The graph as Oxigraph triples; a StoreError naming the graph for a term a store cannot
    hold (raised before anything is written)."""
    try:
        return to_triples(graph)
    except CatalogueError as exc:
        raise StoreError(f"cannot write graph {name}, nothing changed: {exc}") from exc


@dataclass
class ReplaceRequest:
    """One replacement: the update text and the scratch graphs it uses."""

    text: str
    probe: str
    manifest: str


def replace_request(graphs: Mapping[str, RdfGraph], clear: Iterable[str]) -> ReplaceRequest | None:
    """The update that clears the graphs in `clear` and `graphs` and writes `graphs`; None when
    there is nothing to do. Invalid names and terms raise StoreError before anything is sent."""
    cleared = sorted({graph_iri(name) for name in (*graphs, *clear)})
    if not cleared:
        return None
    token = uuid4().hex
    probe, manifest = f"{RESERVED}probe:{token}", f"{RESERVED}manifest:{token}"
    skolems: dict[ox.BlankNode, str] = {}
    typed: set[str] = set()
    blocks: list[str] = []
    stored: list[str] = []
    for name, graph in graphs.items():
        lines = [_ntriple(triple, skolems, typed) for triple in triples_of(name, graph)]
        if lines:
            node = graph_iri(name)
            stored.append(f"{node} <{KEY}> {string(key(name))} .")
            blocks.extend(_blocks(node, lines))
    operations: list[str] = []
    if typed:
        value = f"<{probe}> <{PROBE_VALUE}>"
        operations.append(_insert_data(_blocks(f"<{probe}>", [f"{value} {o} ." for o in typed])))
        operations.append(f"DROP SILENT GRAPH <{probe}>")
    listed = [f"{name} a <{CLEARED}> ." for name in cleared]
    operations += [
        _insert_data(_blocks(f"<{manifest}>", listed)),
        f"DELETE {{ GRAPH ?g {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{manifest}> {{ ?g a <{CLEARED}> }}"
        " GRAPH ?g { ?s ?p ?o } }",
        f"DELETE {{ GRAPH <{REGISTRY}> {{ ?g <{KEY}> ?k }} }} WHERE {{ GRAPH <{manifest}> "
        f"{{ ?g a <{CLEARED}> }} GRAPH <{REGISTRY}> {{ ?g <{KEY}> ?k }} }}",
    ]
    if stored:
        operations.append(_insert_data([*_blocks(f"<{REGISTRY}>", stored), *blocks]))
    operations.append(f"DROP SILENT GRAPH <{manifest}>")
    return ReplaceRequest(" ;\n".join(operations), probe, manifest)


def _ntriple(triple: Statement, skolems: dict[ox.BlankNode, str], typed: set[str]) -> str:
    s, p, o = (_term(node, skolems) for node in (triple.subject, triple.predicate, triple.object))
    literal = triple.object
    if isinstance(literal, ox.Literal) and not literal.language and literal.datatype != _STRING:
        typed.add(o)
    return f"{s} {p} {o} ."


_STRING = ox.NamedNode(str(XSD.string))


def _term(node: OxTerm, skolems: dict[ox.BlankNode, str]) -> str:
    if isinstance(node, ox.BlankNode):
        return f"<{skolems.setdefault(node, f'{SKOLEM}{uuid4().hex}')}>"
    if isinstance(node, ox.NamedNode):
        return iri(node.value)
    if isinstance(node, ox.Literal):
        return str(node)
    raise StoreError(f"cannot store the RDF term {node!r}")


def _blocks(graph: str, lines: list[str]) -> Iterator[str]:
    for start in range(0, len(lines), BLOCK):
        yield f"GRAPH {graph} {{\n" + "\n".join(lines[start : start + BLOCK]) + "\n}"


def _insert_data(blocks: Iterable[str]) -> str:
    return "INSERT DATA {\n" + "\n".join(blocks) + "\n}"
