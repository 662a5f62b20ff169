"""A content digest of an RDF description that does not depend on blank-node labels.

Harvests compare it with the last stored digest of a dataset, so an unchanged description is not
rewritten or reindexed. Each blank node is named by a hash of what it says (its properties,
nested blank nodes hashed first): DCAT descriptions nest blank nodes as trees (contact points,
periods, checksums), which this names canonically in linear time. A description whose blank nodes
form a cycle falls back to rdflib's canonical graph digest.

Terms are written in N-Triples form (Oxigraph's), so the digest of an rdflib graph equals that of
the same triples parsed by Oxigraph.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pyoxigraph as ox
from rdflib import Graph
from rdflib.compare import to_isomorphic

from catalogue.dcat.terms import OxTerm, RdfGraph, to_graph, to_triples


class _CycleError(Exception):
    pass


def description_digest(graph: RdfGraph) -> str:
    """A hex digest equal for isomorphic graphs (tree-shaped blank nodes, or any via fallback)."""
    triples = to_triples(graph)
    about: dict[OxTerm, list[tuple[str, OxTerm]]] = defaultdict(list)
    for t in triples:
        if isinstance(t.subject, ox.BlankNode):
            about[t.subject].append((str(t.predicate), t.object))
    names: dict[ox.BlankNode, str] = {}
    visiting: set[ox.BlankNode] = set()

    def term(node: OxTerm) -> str:
        if not isinstance(node, ox.BlankNode):
            return str(node)
        name = names.get(node)
        if name is not None:
            return name
        if node in visiting:
            raise _CycleError
        visiting.add(node)
        lines = sorted({f"{p} {term(o)}" for p, o in about.get(node, ())})
        visiting.discard(node)
        name = "_:" + hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()
        names[node] = name
        return name

    try:
        if about:
            lines = sorted({f"{term(t.subject)} {t.predicate} {term(t.object)}" for t in triples})
        else:  # no blank node: every term is written as it is
            lines = sorted(set(map(str, triples)))
    except _CycleError:
        rdf = graph if isinstance(graph, Graph) else to_graph(triples)
        return "iso:" + str(to_isomorphic(rdf).graph_digest())  # type: ignore[no-untyped-call]
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=20).hexdigest()
