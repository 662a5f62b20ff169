"""The GraphQL schema: providers, datasets search and feasibility."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.fastapi import BaseContext
from strawberry.types import ExecutionContext

from catalogue.api.auth import PROJECT_HEADER
from catalogue.api.authz import POLICY, Authorization
from catalogue.api.graphql.limits import QueryLimits
from catalogue.api.graphql.types import (
    Concept,
    Count,
    Dataset,
    DatasetConnection,
    DatasetCounts,
    DatasetEdge,
    DatasetFilter,
    DatasetOrder,
    DistinctSubjects,
    Explanation,
    Facet,
    FacetField,
    FacetValue,
    FeasibilityQuery,
    FeasibilityResult,
    PageInfo,
    Provider,
    StrataTable,
    StratumCell,
    StratumValue,
    count_bounds,
    counts,
    provider_counts,
)
from catalogue.api.ratelimit import check_feasibility
from catalogue.domain.cohort import Stratum
from catalogue.domain.principal import Role
from catalogue.exceptions import QueryError
from catalogue.index.base import FacetCounts
from catalogue.ontology.vocabulary import shipped_vocabulary
from catalogue.services.catalogue_view import CatalogueView, encode_cursor
from catalogue.services.feasibility import FeasibilityService, Principal
from catalogue.services.search import facet_label


@dataclass(frozen=True)
class Services:
    """What every request shares: the read view and the feasibility service."""

    view: CatalogueView
    feasibility: FeasibilityService


class Context(BaseContext):
    """Per-request context: the shared services, who asks, and the authorisation policy
    (catalogue.api.authz) the `Authorization` extension applies."""

    def __init__(
        self,
        view: CatalogueView,
        feasibility: FeasibilityService,
        principal: Principal,
        policy: Mapping[str, frozenset[Role]] = POLICY,
    ) -> None:
        super().__init__()
        self.view = view
        self.feasibility = feasibility
        self.principal = principal
        self.policy = policy


@strawberry.type
class Query:
    @strawberry.field(description="Every data provider.")
    def providers(self, info: strawberry.Info) -> list[Provider]:
        return [Provider.of(p) for p in info.context.view.providers().values()]

    @strawberry.field(
        description='Search datasets: words, "phrases", OR, NOT or -word, stemmed in English, '
        "German, French, Spanish, Italian and Dutch, over their text and the labels and synonyms "
        "of their concepts; a phrase naming a concept also finds datasets annotated with a "
        "narrower one. No search lists all, by title."
    )
    async def datasets(
        self,
        info: strawberry.Info,
        search: str | None = None,
        filter: DatasetFilter | None = None,
        first: int = 20,
        after: str | None = None,
        order_by: DatasetOrder = DatasetOrder.RELEVANCE,
        expand_concepts: Annotated[
            bool,
            strawberry.argument(
                description="false: match the words only, without concept expansion."
            ),
        ] = True,
        providers: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(deprecation_reason="Use filter: {providers: [...]}."),
        ] = None,
    ) -> DatasetConnection:
        view: CatalogueView = info.context.view
        wants_facets = _selects(info, "facets")
        page = await asyncio.to_thread(
            partial(
                view.search,
                search,
                first,
                after,
                tuple(str(p) for p in providers or ()),
                filters=filter.to_domain() if filter else None,
                facets=wants_facets,
                order=order_by.value,
                expand=expand_concepts,
            )
        )
        edges = [
            DatasetEdge(cursor=encode_cursor(page.offset + i), node=Dataset.of(d))
            for i, d in enumerate(page.datasets)
        ]
        return DatasetConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.offset > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
            facets=_facets(view, page.facets),
        )

    @strawberry.field(
        description="Concepts whose labels or synonyms (any language) start with the text, best "
        "first: whole labels, then preferred labels, synonyms and later words; shorter first."
    )
    def concepts(
        self,
        info: strawberry.Info,
        search: str,
        scheme: Annotated[
            str | None,
            strawberry.argument(description="A vocabulary key, such as ncit-neoplasm."),
        ] = None,
        first: int = 10,
    ) -> list[Concept]:
        found = info.context.view.concepts(search, scheme, first)
        return [Concept.of(c.concept, c.matched) for c in found]

    @strawberry.field(description="One dataset by provider and identifier.")
    def dataset(
        self, info: strawberry.Info, provider: strawberry.ID, identifier: str
    ) -> Dataset | None:
        found = info.context.view.dataset(str(provider), identifier)
        return Dataset.of(found) if found else None

    @strawberry.field(
        description="How many subjects, studies and series match, per provider "
        "and per dataset; every count passes disclosure control. Requires the researcher role."
    )
    async def feasibility(
        self,
        info: strawberry.Info,
        query: FeasibilityQuery,
        strata: list[list[StratumValue]] | None = None,
        explain: bool = False,
        distinct_subjects: bool = False,
    ) -> FeasibilityResult:
        try:
            domain_query = query.to_domain()
        except ValidationError as exc:
            raise QueryError(_validation_message(exc)) from exc
        check_feasibility(info.context)
        service: FeasibilityService = info.context.feasibility
        tables = tuple(tuple(Stratum(d.value) for d in dims) for dims in strata or ())
        answer = await asyncio.to_thread(
            partial(
                service.run,
                domain_query,
                strata=tables,
                principal=info.context.principal,
                distinct=distinct_subjects,
            )
        )
        explained = answer.explanation
        return FeasibilityResult(
            **counts(answer.total),
            by_provider=[provider_counts(answer, p, c) for p, c in answer.by_provider],
            by_dataset=[
                DatasetCounts(dataset=Dataset.of(d), **counts(c)) for d, c in answer.by_dataset
            ],
            strata=[
                StrataTable(
                    dimensions=[StratumValue(d.value) for d in table.dimensions],
                    cells=[
                        StratumCell(values=list(c.values), **counts(c.cell)) for c in table.cells
                    ],
                )
                for table in answer.strata
            ],
            lower_bound=count_bounds(answer.lower_bound),
            distinct_subjects=DistinctSubjects.of(answer.distinct, info.context.view)
            if answer.distinct
            else None,
            explanation=Explanation(
                normalised_query=explained.normalised_query,
                plan=explained.plan,
                disclosure=explained.disclosure,
                epsilon_spent=explained.epsilon_spent,
            )
            if explain
            else None,
        )


def _selects(info: strawberry.Info, name: str) -> bool:
    """Whether the query selects a field of the result (directly or in a fragment)."""
    pending = list(info.selected_fields)
    while pending:
        selection = pending.pop()
        if getattr(selection, "name", None) == name:
            return True
        pending.extend(getattr(selection, "selections", ()))
    return False


def _facets(view: CatalogueView, counts: FacetCounts) -> list[Facet]:
    vocabulary = shipped_vocabulary()  # the labels: no mapping-set lookup needed
    facets = []
    for name, values in counts.items():
        if name == "provider":
            labels = {v: view.provider(v).name for v, _ in values}
        else:
            labels = {v: facet_label(vocabulary, v) for v, _ in values}
        facets.append(
            Facet(
                field=FacetField(name),
                values=[FacetValue(value=v, label=labels[v], count=n) for v, n in values],
            )
        )
    return facets


def _validation_message(exc: ValidationError) -> str:
    """Pydantic's errors as one line naming each field (camelCase, as the API spells it)."""
    parts = []
    for error in exc.errors():
        path = ".".join(_camel(str(p)) for p in error["loc"] if not isinstance(p, int))
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{path}: {message}" if path else message)
    return "; ".join(parts)


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p.title() for p in rest)


class CatalogueSchema(strawberry.Schema):
    """Logs nothing itself: the HTTP router (catalogue.api.graphql.router) codes every error,
    masks and logs the unexpected ones with their correlation id (catalogue.api.errors)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


from strawberry.tools import merge_types  # noqa: E402

from catalogue.api.graphql.changes import ChangesQuery  # noqa: E402
from catalogue.api.graphql.curation import CurationMutation, CurationQuery  # noqa: E402
from catalogue.api.graphql.harvests import HarvestMutation, HarvestQuery  # noqa: E402

schema = CatalogueSchema(
    query=merge_types("Query", (Query, CurationQuery, HarvestQuery, ChangesQuery)),
    mutation=merge_types("Mutation", (CurationMutation, HarvestMutation)),
    extensions=[ParserCache, ValidationCache, Authorization, QueryLimits],
)

__all__ = ["PROJECT_HEADER", "Context", "Count", "Services", "schema"]
