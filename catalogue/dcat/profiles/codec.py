"""Graphs to `Resource` trees and back, and the typed reading of a tree by a model class.

`read` turns a node's description into a generic `Resource` tree: every triple lands in some
node's `extra`. It follows exactly what `catalogue.dcat.parser.dataset_subgraph` includes, the
objects `namespaces.described_within` accepts (blank nodes; agents and distributions by IRI),
transitively; other IRIs are references. `upgrade` then lets a model
class claim the (predicate, object) pairs its fields stand for, leaving the rest in `extra`;
`write` emits a model's fields and `extra` again, so read -> upgrade -> write is lossless.
"""

from __future__ import annotations

import re
import types
import typing
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from catalogue.dcat.namespaces import RDF, described_within
from catalogue.dcat.profiles.resource import Prop, RdfList, Resource, Term, Text, TypedLiteral

R = TypeVar("R", bound=Resource)

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class FieldSpec:
    """How one model field maps to RDF: its predicate, arity and accepted value types."""

    name: str
    prop: Prop
    repeatable: bool
    members: tuple[type[Any], ...]

    @property
    def resource_members(self) -> tuple[type[Resource], ...]:
        return tuple(m for m in self.members if issubclass(m, Resource))


@cache
def field_specs(cls: type[Resource]) -> tuple[FieldSpec, ...]:
    """The RDF-mapped fields of a model class, in declaration order."""
    specs = []
    for name, info in cls.model_fields.items():
        prop = next((m for m in info.metadata if isinstance(m, Prop)), None)
        if prop is None:
            continue
        annotation = info.annotation
        origin = typing.get_origin(annotation)
        repeatable = origin in (list, Sequence)
        element = typing.get_args(annotation)[0] if repeatable else annotation
        specs.append(FieldSpec(name, prop, repeatable, _members(element)))
    return tuple(specs)


def _members(annotation: Any) -> tuple[type[Any], ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


# --- graph -> generic tree ----------------------------------------------------------------


def _sorted_edges(graph: Graph, subject: Node) -> list[tuple[Node, Node]]:
    def key(edge: tuple[Node, Node]) -> tuple[str, int, str]:
        predicate, obj = edge
        kind = 0 if isinstance(obj, URIRef) else 1 if isinstance(obj, Literal) else 2
        return (str(predicate), kind, str(obj))

    return sorted(graph.predicate_objects(subject), key=key)


def read(graph: Graph, node: Node) -> Resource:
    """The description of `node` as a generic tree of `Resource`s (RDF lists as `RdfList`)."""
    # Breadth first: a node reached several times is described where it is reached first
    # (nearest the root) and referenced elsewhere.
    owner: dict[Node, tuple[Node, Node, Node]] = {}
    incoming: dict[Node, int] = {node: 1} if isinstance(node, BNode) else {}
    order = [node]
    seen = {node}
    edges: dict[Node, list[tuple[Node, Node]]] = {}  # every node's (predicate, object) pairs
    queue: deque[Node] = deque([node])
    while queue:
        subject = queue.popleft()
        edges[subject] = _sorted_edges(graph, subject)
        for predicate, obj in edges[subject]:
            if not described_within(predicate, obj):
                continue
            if isinstance(obj, BNode):
                incoming[obj] = incoming.get(obj, 0) + 1
            if obj not in seen:
                seen.add(obj)
                owner[obj] = (subject, predicate, obj)
                order.append(obj)
                queue.append(obj)
    shared = {n for n, count in incoming.items() if count > 1}
    cells = _list_cells(order[1:], shared, edges)
    # Bottom up (children come after their parent in breadth-first order): no recursion, so
    # deep nesting such as a long rdf:List cannot exhaust the stack.
    built: dict[Node, Resource | RdfList] = {}
    for current in reversed(order):
        if current not in cells:
            built[current] = _describe(current, edges[current], owner, shared, built)
        elif owner[current][1] != RDF.rest:  # the head of a list
            built[current] = _collect(current, edges, owner, built)
    root = built[node]
    assert isinstance(root, Resource)  # the root is never a list cell
    return root


def _list_cells(
    nodes: list[Node], shared: set[Node], edges: dict[Node, list[tuple[Node, Node]]]
) -> set[Node]:
    """The blank nodes that are cells of well-formed rdf:Lists (rdf:first and rdf:rest only,
    each reached once, ending in rdf:nil)."""
    cells: set[Node] = set()
    for node in nodes:
        if not isinstance(node, BNode) or node in shared:
            continue
        pairs = edges[node]
        if len(pairs) == 2 and {p for p, _ in pairs} == {RDF.first, RDF.rest}:
            cells.add(node)
    before: dict[Node, list[Node]] = {}  # rdf:rest target -> the cells pointing at it
    for cell in cells:
        before.setdefault(dict(edges[cell])[RDF.rest], []).append(cell)
    # a cell whose rest is neither nil nor a cell breaks every cell before it: drop them all,
    # walking back once (linear, where re-checking every cell per round was cubic)
    broken = [c for rest, cs in before.items() if rest != RDF.nil and rest not in cells for c in cs]
    while broken:
        cell = broken.pop()
        if cell in cells:
            cells.discard(cell)
            broken.extend(before.get(cell, ()))
    return cells


def _value(
    obj: Node,
    edge: tuple[Node, Node, Node],
    owner: dict[Node, tuple[Node, Node, Node]],
    built: dict[Node, Resource | RdfList],
) -> Term:
    if owner.get(obj) == edge and obj in built:
        return built[obj]
    if isinstance(obj, BNode):
        return Resource(node_id=str(obj))
    if isinstance(obj, Literal):
        return _literal(obj)
    return str(obj)


def _describe(
    node: Node,
    edges: list[tuple[Node, Node]],
    owner: dict[Node, tuple[Node, Node, Node]],
    shared: set[Node],
    built: dict[Node, Resource | RdfList],
) -> Resource:
    types_: list[str] = []
    extra: list[tuple[str, Term]] = []
    for predicate, obj in edges:
        if predicate == RDF.type and isinstance(obj, URIRef):
            types_.append(str(obj))
        else:
            extra.append((str(predicate), _value(obj, (node, predicate, obj), owner, built)))
    return Resource(
        iri=str(node) if isinstance(node, URIRef) else None,
        node_id=str(node) if node in shared else None,
        types=types_,
        extra=extra,
    )


def _collect(
    head: Node,
    edges: dict[Node, list[tuple[Node, Node]]],
    owner: dict[Node, tuple[Node, Node, Node]],
    built: dict[Node, Resource | RdfList],
) -> RdfList:
    items: list[Term] = []
    cell = head
    while cell != RDF.nil:
        pair = dict(edges[cell])  # a list cell has exactly one rdf:first and one rdf:rest
        first = pair[RDF.first]
        items.append(_value(first, (cell, RDF.first, first), owner, built))
        cell = pair[RDF.rest]
    return RdfList(items=items)


def _literal(literal: Literal) -> Text | TypedLiteral:
    if literal.datatype is None:
        return Text(value=str(literal), lang=literal.language)
    return TypedLiteral(value=str(literal), datatype=str(literal.datatype))


# --- generic tree -> typed models ---------------------------------------------------------


class _NoFit:
    pass


_NO_FIT = _NoFit()


def upgrade(model: Resource, cls: type[R]) -> R:
    """`model` as an instance of `cls` (a subclass of its class): the fields `cls` adds claim
    their values from `extra`, and fields `cls` narrows to a subclass are upgraded in turn."""
    source = type(model)
    if not issubclass(cls, source):
        raise TypeError(f"{cls.__name__} does not extend {source.__name__}")
    if type(model) is cls and isinstance(model, cls):
        return model
    data = {name: getattr(model, name) for name in source.model_fields}
    remaining = list(model.extra)
    for spec in field_specs(cls):
        if spec.name in source.model_fields:
            if cls.model_fields[spec.name].annotation != source.model_fields[spec.name].annotation:
                data[spec.name] = _refit(data[spec.name], spec)
        else:
            data[spec.name], remaining = _claim(remaining, spec)
    data["extra"] = remaining
    return cls(**data)


def _claim(
    remaining: list[tuple[str, Term]], spec: FieldSpec
) -> tuple[Any, list[tuple[str, Term]]]:
    taken: list[Any] = []
    rest: list[tuple[str, Term]] = []
    for predicate, obj in remaining:
        if predicate == spec.prop.predicate and (spec.repeatable or not taken):
            value = _convert(obj, spec)
            if value is not _NO_FIT:
                taken.append(value)
                continue
        rest.append((predicate, obj))
    if spec.repeatable:
        return taken, rest
    return (taken[0] if taken else None), rest


def _convert(obj: Term, spec: FieldSpec) -> Any:
    """`obj` as a value of the field, or _NO_FIT when that would lose or change anything."""
    members = spec.members
    if isinstance(obj, str):
        if str in members:
            return obj
        for member in spec.resource_members:
            return member(iri=obj)
    elif isinstance(obj, Resource):
        if str in members and obj.iri is not None and obj.is_reference():
            return obj.iri
        fitted = _fit(obj, spec)
        if fitted is not None:
            return fitted
    elif isinstance(obj, Text):
        if Text in members:
            return obj
    elif isinstance(obj, TypedLiteral):
        if TypedLiteral in members:
            return obj
        if obj.datatype == spec.prop.datatype:
            if bool in members and obj.value in ("true", "false"):
                return obj.value == "true"
            if int in members and _INTEGER.fullmatch(obj.value) and obj.value != "-0":
                return int(obj.value)
    return _NO_FIT


def _refit(value: Any, spec: FieldSpec) -> Any:
    if spec.repeatable:
        return [_refit_one(v, spec) for v in value]
    return None if value is None else _refit_one(value, spec)


def _refit_one(value: Any, spec: FieldSpec) -> Any:
    fitted = _fit(value, spec) if isinstance(value, Resource) else None
    return value if fitted is None else fitted


def _fit(value: Resource, spec: FieldSpec) -> Resource | None:
    """`value` as the first resource member of the field it is an instance of or upgrades to,
    or None when there is none."""
    for member in spec.resource_members:
        if isinstance(value, member):
            return value
        if issubclass(member, type(value)):
            return upgrade(value, member)
    return None


# --- typed models -> graph ----------------------------------------------------------------


def write(graph: Graph, model: Resource, blank: dict[str, BNode] | None = None) -> Node:
    """Add the triples of `model` (and of the nodes nested in it) to `graph`; return its node.
    `blank` maps node_ids to the blank nodes already written (shared within one call)."""
    blank = {} if blank is None else blank
    node: Node
    if model.iri is not None:
        node = URIRef(model.iri)
    elif model.node_id is not None:
        node = blank.setdefault(model.node_id, BNode())
    else:
        node = BNode()
    for type_ in model.types:
        graph.add((node, RDF.type, URIRef(type_)))
    for spec in field_specs(type(model)):
        value = getattr(model, spec.name)
        values = value if spec.repeatable else [] if value is None else [value]
        predicate = URIRef(spec.prop.predicate)
        for item in values:
            graph.add((node, predicate, _term(graph, item, spec.prop, blank)))
    for predicate_iri, obj in model.extra:
        graph.add((node, URIRef(predicate_iri), _term(graph, obj, None, blank)))
    return node


def _term(graph: Graph, value: Any, prop: Prop | None, blank: dict[str, BNode]) -> Node:
    if isinstance(value, Resource):
        return write(graph, value, blank)
    if isinstance(value, RdfList):
        head: Node = RDF.nil
        for item in reversed(value.items):
            cell = BNode()
            graph.add((cell, RDF.first, _term(graph, item, None, blank)))
            graph.add((cell, RDF.rest, head))
            head = cell
        return head
    if isinstance(value, Text):
        return Literal(value.value, lang=value.lang)
    if isinstance(value, TypedLiteral):
        # as it came: a graph built with normalize=False keeps a non-canonical lexical form
        return Literal(value.value, datatype=URIRef(value.datatype), normalize=False)
    if isinstance(value, bool):
        return Literal("true" if value else "false", datatype=_datatype(prop))
    if isinstance(value, int):
        return Literal(str(value), datatype=_datatype(prop))
    if isinstance(value, str):
        return URIRef(value)
    raise TypeError(f"not an RDF value: {value!r}")


def _datatype(prop: Prop | None) -> URIRef:
    if prop is None or prop.datatype is None:
        raise TypeError("an int or bool field needs Prop(..., datatype=...)")
    return URIRef(prop.datatype)
