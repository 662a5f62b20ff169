"""The FastAPI application: GraphQL (with GraphiQL) at /graphql, the DCAT-AP export at /catalog
and /datasets/{provider}/{identifier}, and /health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from strawberry.fastapi import GraphQLRouter

from catalogue import __version__
from catalogue.api.graphql.schema import Context, Services, principal_of, schema
from catalogue.api.routes import dcat as dcat_routes
from catalogue.config import Settings
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.feasibility import FeasibilityService
from catalogue.services.runtime import Catalogue, open_catalogue


def create_app(settings: Settings | None = None, catalogue: Catalogue | None = None) -> FastAPI:
    """The app over an open catalogue, or over one it opens (and closes) itself."""
    state: dict[str, Services] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = catalogue is None
        opened = catalogue or open_catalogue(settings or Settings())
        view = CatalogueView(opened)
        state["context"] = Services(view=view, feasibility=FeasibilityService(view))
        app.state.context = state["context"]
        try:
            yield
        finally:
            if owned:
                opened.close()

    async def get_context(request: Request) -> Context:
        services = state["context"]
        return Context(services.view, services.feasibility, principal_of(request))

    app = FastAPI(
        title="Cancer imaging catalogue",
        version=__version__,
        description="DCAT-AP catalogue and cohort feasibility for federated cancer imaging.",
        lifespan=lifespan,
    )
    app.include_router(
        GraphQLRouter(schema, context_getter=get_context, graphql_ide="graphiql"), prefix="/graphql"
    )

    app.include_router(dcat_routes.router())

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
