"""GET /changes: the changes feed in DCAT-AP for RDF harvesters (services/changes_export.py),
with content negotiation; the same feed, cursors and rules as GraphQL `datasetChanges`."""

from __future__ import annotations

from collections.abc import Set
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from catalogue.api.authz import require
from catalogue.api.routes.dcat import rdf_response
from catalogue.domain.principal import Role
from catalogue.exceptions import QueryError
from catalogue.services.changes import DEFAULT_PAGE, MAX_PAGE, changes_page, parse_since
from catalogue.services.changes_export import changes_graph
from catalogue.services.runtime import Catalogue


def router(roles: Set[Role]) -> APIRouter:
    """The feed route, open to `roles` (as the policy gives `Query.datasetChanges`)."""
    routes = APIRouter(tags=["DCAT-AP export"])

    @routes.get("/changes", response_class=Response, dependencies=[Depends(require(*roles))])
    def changes(
        request: Request,
        since: Annotated[
            str | None,
            Query(description="ISO 8601 date-time with its offset; inclusive."),
        ] = None,
        after: Annotated[str | None, Query(description="A cursor this feed gave.")] = None,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Response:
        """Datasets created, updated or deleted, each at its latest change, in change order,
        as Activity Streams activities in a Hydra-paged collection; tombstones for deletions."""
        catalogue: Catalogue = request.app.state.context.view.catalogue
        try:
            when = parse_since(since) if since is not None else None
            page = changes_page(catalogue, when, page_size, after, datasets=False)
            graph = changes_graph(catalogue, page, str(request.base_url), page_size, after, when)
        except QueryError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return rdf_response(graph, request)

    return routes
