"""What one GraphQL operation may ask for: tokens and length (refused while parsing), depth and
aliases (strawberry's QueryDepthLimiter and MaxAliasesLimiter rules), page sizes and an
estimated cost (refused before any resolver runs). The limits are the app's `limits` settings
(catalogue.config.LimitSettings); the rules of given limits are built once, so strawberry's
ValidationCache keeps recognising them.

The cost of an operation: each field costs 1; a field with a `first` (or `last`) argument
multiplies the cost of what it selects by it (of a connection: its edges or nodes only), a list
of objects by LIST_SIZES (else DEFAULT_LIST_SIZE); feasibility costs FEASIBILITY_COST more, and
STRATA_COST more per strata table asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from graphql.utilities import get_operation_ast, value_from_ast_untyped
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.types import ExecutionContext, ExecutionResult

from catalogue.api.state import request_value
from catalogue.config import LimitSettings
from catalogue.exceptions import QueryError, QueryTooComplexError
from catalogue.services.changes import MAX_PAGE as CHANGES_PAGE_CAP

PAGE_ARGUMENTS = ("first", "last")
"""Arguments that say how many items a list field returns."""
DEFAULT_PAGE_CAP = 1000
PAGE_CAPS: dict[str, int] = {
    "Query.datasets": 100,
    "Query.concepts": 100,
    "Query.unmappedValues": 1000,
    "Query.mappings": 1000,
    "Query.datasetChanges": CHANGES_PAGE_CAP,
}
"""The largest `first` (or `last`) of each field; any other is capped at DEFAULT_PAGE_CAP (a
resolver may cap it lower)."""

CONNECTION_ITEMS = frozenset({"edges", "nodes"})
"""The fields of a connection whose cost its `first` multiplies."""

DEFAULT_LIST_SIZE = 10
LIST_SIZES: dict[str, int] = {
    "Query.providers": 20,
    "DatasetConnection.facets": 7,
    "Facet.values": 100,
    "Dataset.concepts": 20,
    "FeasibilityResult.byProvider": 20,
    "FeasibilityResult.byDataset": 100,
    "FeasibilityResult.strata": 1,  # counted by the strata argument
    "StrataTable.cells": 100,
}
"""How many items a list of objects without `first` is expected to hold."""

FEASIBILITY_COST = 100
STRATA_COST = 100
COSTLY = {"Query.feasibility"}


def limits_of(context: Any) -> LimitSettings:
    """The app's limits (app.state.limits), reached through the request of the context."""
    return request_value(getattr(context, "request", None), "limits", LimitSettings) or _DEFAULTS


_DEFAULTS = LimitSettings()


@cache
def validation_rules(max_depth: int, max_aliases: int) -> tuple[type[ValidationRule], ...]:
    """The depth, alias and introspection-depth rules of these limits (one tuple per limits)."""
    return (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        MaxIntrospectionDepthRule,
    )


class QueryLimits(SchemaExtension):
    """Tokens and length while parsing (as strawberry's MaxTokensLimiter, plus a length),
    depth and aliases while validating, page sizes and cost before executing."""

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        limits = limits_of(execution.context)
        execution.parse_options["max_tokens"] = limits.max_tokens
        options: dict[str, Any] = execution.parse_options  # type: ignore[assignment]
        options["max_source_length"] = limits.max_query_length  # graphql-core parses it
        execution.validation_rules = (
            *execution.validation_rules,
            *validation_rules(limits.max_depth, limits.max_aliases),
        )
        yield

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.result is None:  # not refused already (authorisation)
            error = refusal(execution)
            if error is not None:
                refused = GraphQLError(str(error), original_error=error)
                execution.pre_execution_errors = [refused]
                execution.result = ExecutionResult(data=None, errors=[refused])
        yield


def refusal(execution: ExecutionContext) -> QueryError | None:
    """Why the operation may not run: a page size out of bounds, or a cost over the limit."""
    document = execution.graphql_document
    operation = get_operation_ast(document, execution.operation_name) if document else None
    if document is None or operation is None:
        return None
    schema = execution.schema._schema
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    variables = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    }
    variables.update(execution.variables or {})
    limits = limits_of(execution.context)
    try:
        total = Cost(schema, fragments, variables).selections(root, operation.selection_set)
    except QueryError as exc:
        return exc
    if total > limits.max_cost:
        return QueryTooComplexError(
            f"the operation's estimated cost {total} is over the limit of {limits.max_cost}: "
            "ask for fewer items (first) or fewer fields"
        )
    return None


class Cost:
    """The estimated cost of selections; checks every `first` against its cap on the way."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}
        self._fragment_costs: dict[tuple[str, int], int] = {}

    def selections(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, page: int = 1
    ) -> int:
        """The cost of selections on `parent`; on a connection, `page` multiplies its items
        (edges, nodes) and nothing else (totalCount, facets and pageInfo are computed once)."""
        if selection_set is None:
            return 0
        total = 0
        spread: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                items = page if selection.name.value in CONNECTION_ITEMS else 1
                total += items * self.field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(inner or parent, selection.selection_set, page)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in spread:  # executed once however often it is spread
                    spread.add(name)
                    total += self.fragment(name, page)
        return total

    def fragment(self, name: str, page: int = 1) -> int:
        key = (name, page)
        if key not in self._fragment_costs:
            self._fragment_costs[key] = 0  # cycles are refused by validation; be safe
            definition = self.fragments.get(name)
            cost = 0
            if definition is not None:
                condition = self.schema.get_type(definition.type_condition.name.value)
                if condition is not None:
                    cost = self.selections(condition, definition.selection_set, page)
            self._fragment_costs[key] = cost
        return self._fragment_costs[key]

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        name = node.name.value
        fields = getattr(parent, "fields", None)
        if name.startswith("__") or not fields or name not in fields:
            return 1  # introspection: bounded by the schema and MaxIntrospectionDepthRule
        definition = fields[name]
        coordinate = f"{parent.name}.{name}"
        child = get_named_type(definition.type)
        arguments = {a.name.value: a.value for a in node.arguments or ()}
        cost = 1
        if coordinate in COSTLY:
            tables = self._value(arguments.get("strata"))
            cost += FEASIBILITY_COST + STRATA_COST * _count(tables)
        page = next((a for a in PAGE_ARGUMENTS if a in definition.args), None)
        if page is not None:
            size = self._value(arguments.get(page), definition.args[page].default_value)
            cap = PAGE_CAPS.get(coordinate, DEFAULT_PAGE_CAP)
            if not isinstance(size, int) or isinstance(size, bool):
                multiplier = cap  # not a number: GraphQL refuses it when executing
            elif not 0 <= size <= cap:
                raise QueryError(f"{page} must be between 0 and {cap} (in {coordinate})")
            else:
                multiplier = size
            if isinstance(child, GraphQLObjectType) and CONNECTION_ITEMS & set(child.fields):
                return cost + self.selections(child, node.selection_set, page=multiplier)
        elif name in CONNECTION_ITEMS:
            multiplier = 1  # a connection's items: counted by its `first`
        elif _is_list(definition.type) and isinstance(child, GraphQLObjectType):
            multiplier = LIST_SIZES.get(coordinate, DEFAULT_LIST_SIZE)
        else:
            multiplier = 1
        return cost + multiplier * self.selections(child, node.selection_set)

    def _value(self, node: Any, default: Any = None) -> Any:
        """An argument's value: a literal, a variable's value, or the default."""
        if node is None:
            return default
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value, default)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, ListValueNode):
            return list(node.values)
        return default


def _count(tables: Any) -> int:
    """Strata tables asked for: a list, or one value GraphQL takes as a list of one."""
    return len(tables) if isinstance(tables, list) else 0 if tables is None else 1


def _is_list(kind: Any) -> bool:
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)
