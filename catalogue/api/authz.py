"""Authorisation: which role may ask for which GraphQL field, and how that is enforced.

POLICY maps "Query.<field>", "Mutation.<field>" (and any nested "Type.<field>" that needs
restricting) to the roles allowed; `Role.ANONYMOUS` in a set means public and `Role.ADMIN` may
do everything. A root field missing from the table is admin-only (fail closed); a nested field
missing from it is allowed to whoever may reach its parent. The whole operation is refused,
before any resolver runs, when one field it selects is not allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    OperationDefinitionNode,
    TypeInfo,
    Visitor,
    visit,
)
from graphql.utilities import TypeInfoVisitor
from starlette.requests import Request
from strawberry.extensions import SchemaExtension

from catalogue.domain.principal import Principal, Role

if TYPE_CHECKING:
    from graphql import DocumentNode, GraphQLSchema


PUBLIC = frozenset(Role)
RESEARCHERS = frozenset({Role.RESEARCHER, Role.ADMIN})
CURATORS = frozenset({Role.CURATOR, Role.ADMIN})
HARVESTERS = frozenset({Role.HARVESTER, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

CHANGES_FIELD = "Query.datasetChanges"
"""The changes feed: harvesters only, or public when `auth.public_changes` is set."""

POLICY: dict[str, frozenset[Role]] = {
    # The public catalogue.
    "Query.providers": PUBLIC,
    "Query.datasets": PUBLIC,
    "Query.dataset": PUBLIC,
    "Query.concepts": PUBLIC,
    # Cohort feasibility: signed-in researchers (their privacy budget is theirs).
    "Query.feasibility": RESEARCHERS,
    # The changes feed for downstream harvesters (see `policy(public_changes=...)`).
    CHANGES_FIELD: HARVESTERS,
    # Curation.
    "Query.unmappedValues": CURATORS,
    "Query.mappings": CURATORS,
    "Query.mappingSet": CURATORS,
    "Mutation.proposeMapping": CURATORS,
    "Mutation.approveMapping": CURATORS,
    "Mutation.rejectMapping": CURATORS,
    "Mutation.remap": CURATORS,
    # Harvests and validation reports (catalogue.api.graphql.harvests).
    "Query.harvestRuns": CURATORS,
    "Query.harvestRun": CURATORS,
    "Query.validationReports": CURATORS,
    "Mutation.harvestProvider": CURATORS,
}

INTROSPECTION = frozenset({"__schema", "__type", "__typename"})
ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


def policy(public_changes: bool = False) -> dict[str, frozenset[Role]]:
    """POLICY as a deployment applies it: the changes feed public when so configured."""
    table = dict(POLICY)
    if public_changes:
        table[CHANGES_FIELD] = PUBLIC
    return table


def allowed(table: Mapping[str, frozenset[Role]], coordinate: str, roles: frozenset[Role]) -> bool:
    """Whether callers with `roles` (anonymous is implied) may select the field."""
    permitted = permitted_roles(table, coordinate)
    return Role.ADMIN in roles or Role.ANONYMOUS in permitted or bool(permitted & roles)


def permitted_roles(table: Mapping[str, frozenset[Role]], coordinate: str) -> frozenset[Role]:
    """The roles the table gives a field: a root field it misses is admin-only (fail closed),
    a nested one is open to whoever may reach it."""
    default = ADMINS if coordinate.partition(".")[0] in ROOT_TYPES else PUBLIC
    return table.get(coordinate, default)


def selected_fields(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None = None
) -> Iterator[str]:
    """Schema coordinates ("Type.field") of every field the operation selects, fragments
    included (each named fragment as it is spread), introspection fields excepted."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    elif len(operations) > 1:
        operations = []  # graphql-core refuses the request itself
    found: list[str] = []
    type_info = TypeInfo(schema)
    roots = {  # the root types by the names POLICY gives them, whatever the schema calls them
        root.name: kind
        for root, kind in (
            (schema.query_type, "Query"),
            (schema.mutation_type, "Mutation"),
            (schema.subscription_type, "Subscription"),
        )
        if root is not None
    }

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent: GraphQLNamedType | None = type_info.get_parent_type()
            name = node.name.value
            if parent is not None and name not in INTROSPECTION and parent.name[:2] != "__":
                found.append(f"{roots.get(parent.name, parent.name)}.{name}")

    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for operation in operations:
        visit(operation, TypeInfoVisitor(type_info, Collect()))
        for name in _spread_fragments(operation, fragments):
            visit(fragments[name], TypeInfoVisitor(type_info, Collect()))
    seen: set[str] = set()
    for coordinate in found:
        if coordinate not in seen:
            seen.add(coordinate)
            yield coordinate


def _spread_fragments(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[str]:
    """Names of the fragments an operation spreads, directly or through other fragments."""
    pending: list[OperationDefinitionNode | FragmentDefinitionNode] = [operation]
    names: list[str] = []
    while pending:
        node = pending.pop()
        for child in _walk(node):
            if isinstance(child, FragmentSpreadNode):
                name = child.name.value
                if name not in names and name in fragments:
                    names.append(name)
                    pending.append(fragments[name])
    return names


def _walk(node: Any) -> Iterator[Any]:
    selection_set = getattr(node, "selection_set", None)
    for selection in selection_set.selections if selection_set else ():
        yield selection
        yield from _walk(selection)


_SELECTED: dict[tuple[GraphQLSchema, str, str | None], tuple[str, ...]] = {}
_SELECTED_MAX = 1024


def remembered_fields(
    schema: GraphQLSchema, document: DocumentNode, query: str, operation_name: str | None
) -> tuple[str, ...]:
    """`selected_fields`, remembered by query text (the fields depend on the text and the
    operation only, not on who asks), so a repeated query is not walked again."""
    key = (schema, query, operation_name)
    found = _SELECTED.get(key)
    if found is None:
        if len(_SELECTED) >= _SELECTED_MAX:
            _SELECTED.clear()
        found = _SELECTED[key] = tuple(selected_fields(schema, document, operation_name))
    return found


def denials(
    coordinates: Iterable[str], principal: Principal, table: Mapping[str, frozenset[Role]]
) -> list[GraphQLError]:
    """One error per selected field the principal may not select (empty: it may run)."""
    roles = frozenset(principal.roles)
    code = "FORBIDDEN" if principal.authenticated else "UNAUTHENTICATED"
    errors = []
    for coordinate in coordinates:
        if not allowed(table, coordinate, roles):
            names = " or ".join(sorted(r.value for r in permitted_roles(table, coordinate)))
            errors.append(
                GraphQLError(
                    f"{coordinate} requires the role {names}"
                    + ("; sign in" if code == "UNAUTHENTICATED" else ""),
                    extensions={"code": code, "field": coordinate},
                )
            )
    return errors


class Authorization(SchemaExtension):
    """Refuses an operation that selects a field its caller may not, before any resolver runs;
    the context's `principal` (anonymous when it has none) and `policy` (or POLICY) decide."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        context = execution.context
        principal = getattr(context, "principal", None) or Principal("anonymous")
        if document is not None:
            table = getattr(context, "policy", None) or POLICY
            schema = execution.schema._schema
            operation = execution.operation_name
            if execution.query is None:
                coordinates: Iterable[str] = selected_fields(schema, document, operation)
            else:
                coordinates = remembered_fields(schema, document, execution.query, operation)
            errors = denials(coordinates, principal, table)
            if errors:
                execution.result = ExecutionResult(data=None, errors=errors)
        yield


def require(*roles: Role) -> Callable[..., Any]:
    """A FastAPI dependency for a REST route: the request's principal must have one of the
    roles (admin always may; `Role.ANONYMOUS` among them makes the route public)."""
    permitted = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        from catalogue.api.auth import authenticate
        from catalogue.exceptions import AuthenticationError, PermissionDeniedError

        principal = await authenticate(request)
        if Role.ADMIN in principal.roles or Role.ANONYMOUS in permitted:
            return principal
        if permitted & frozenset(principal.roles):
            return principal
        names = " or ".join(sorted(r.value for r in permitted | {Role.ADMIN}))
        if not principal.authenticated:
            raise AuthenticationError(f"this requires signing in as {names}")
        raise PermissionDeniedError(f"this requires the role {names}")

    return dependency
