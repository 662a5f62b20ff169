"""A content digest of an RDF description that does not depend on blank-node labels.

Harvests compare it with the last stored digest of a dataset, so an unchanged description is not
rewritten or reindexed. Each blank node is named by a hash of what it says (its properties,
nested blank nodes hashed first): DCAT descriptions nest blank nodes as trees (contact points,
periods, checksums), which this names canonically in linear time. A description whose blank nodes
form a cycle falls back to rdflib's canonical graph digest.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from rdflib import BNode, Graph
from rdflib.compare import to_isomorphic
from rdflib.term import Node


class _CycleError(Exception):
    pass


def description_digest(graph: Graph) -> str:
    """A hex digest equal for isomorphic graphs (tree-shaped blank nodes, or any via fallback)."""
    about: dict[Node, list[tuple[Node, Node]]] = defaultdict(list)
    for s, p, o in graph:
        about[s].append((p, o))
    names: dict[Node, str] = {}
    visiting: set[Node] = set()

    def term(node: Node) -> str:
        if not isinstance(node, BNode):
            return node.n3()
        name = names.get(node)
        if name is not None:
            return name
        if node in visiting:
            raise _CycleError
        visiting.add(node)
        lines = sorted(f"{p.n3()} {term(o)}" for p, o in about.get(node, ()))
        visiting.discard(node)
        name = "_:" + hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()
        names[node] = name
        return name

    try:
        lines = sorted(f"{term(s)} {p.n3()} {term(o)}" for s, p, o in graph)
    except _CycleError:
        return "iso:" + str(to_isomorphic(graph).graph_digest())  # type: ignore[no-untyped-call]
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=20).hexdigest()
