"""The FastAPI application: GraphQL (with GraphiQL) at /graphql, the DCAT-AP export at /catalog
and /datasets/{provider}/{identifier}, the web pages at / (catalogue.web), and /health."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from catalogue import __version__
from catalogue.api.auth import DISABLED_WARNING, Authenticator, authenticate, error_response
from catalogue.api.authz import policy
from catalogue.api.errors import (
    catalogue_error_response,
    http_error_response,
    validation_error_response,
)
from catalogue.api.graphql.router import CatalogueGraphQLRouter
from catalogue.api.graphql.schema import Context, Services, schema
from catalogue.api.middleware import RequestGuard
from catalogue.api.node_responses import NodeResponses
from catalogue.api.ratelimit import FeasibilityRateLimits
from catalogue.api.routes import changes as changes_routes
from catalogue.api.routes import dcat as dcat_routes
from catalogue.api.routes import federation as federation_routes
from catalogue.config import Settings
from catalogue.exceptions import AuthenticationError, CatalogueError, PermissionDeniedError
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.feasibility import FeasibilityService
from catalogue.services.harvest_jobs import jobs_for
from catalogue.services.runtime import Catalogue, open_catalogue
from catalogue.web import STATIC_DIR, web_router

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, catalogue: Catalogue | None = None) -> FastAPI:
    """The app over an open catalogue, or over one it opens (and closes) itself."""
    state: dict[str, Services] = {}
    configured = settings or (catalogue.settings if catalogue else Settings())
    table = policy(public_changes=configured.auth.public_changes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = catalogue is None
        opened = catalogue or open_catalogue(configured)
        if configured.auth.disabled:
            log.warning(DISABLED_WARNING)
        view = CatalogueView(opened)
        state["context"] = Services(view=view, feasibility=FeasibilityService(view))
        app.state.context = state["context"]
        try:
            yield
        finally:
            jobs = jobs_for(view)
            if jobs.running_run() is not None:
                log.warning("waiting for the harvest under way to end before closing")
            jobs.wait()  # never close the stores under a running harvest
            state["context"].feasibility.close()
            if owned:
                opened.close()

    async def get_context(request: Request) -> Context:
        services = state["context"]
        return Context(services.view, services.feasibility, await authenticate(request), table)

    app = FastAPI(
        title="Cancer imaging catalogue",
        version=__version__,
        description="DCAT-AP catalogue and cohort feasibility for federated cancer imaging.",
        lifespan=lifespan,
    )
    app.state.authenticator = Authenticator(configured.auth, ApiTokenStore(configured.data_dir))
    app.add_exception_handler(AuthenticationError, error_response)
    app.add_exception_handler(PermissionDeniedError, error_response)
    app.state.limits = configured.limits
    app.state.feasibility_limits = FeasibilityRateLimits(configured.limits)
    app.add_exception_handler(CatalogueError, catalogue_error_response)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(HTTPException, http_error_response)
    app.add_middleware(RequestGuard, graphql_path="/graphql")
    node_only = configured.node.enabled and configured.node.exclusive
    if not node_only:
        app.include_router(
            CatalogueGraphQLRouter(schema, context_getter=get_context, graphql_ide="graphiql"),
            prefix="/graphql",
        )
        app.include_router(web_router(configured.auth))  # the pages; before /datasets/{...:path}
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(dcat_routes.router(), dependencies=[Depends(authenticate)])  # public
    if not node_only:
        app.include_router(changes_routes.router(table["Query.datasetChanges"]))
    if configured.node.enabled:
        app.include_router(federation_routes.router(configured.node))
        key = configured.node.response_key
        if key is not None or configured.node.traffic_log is not None:  # outermost: what is sent
            app.add_middleware(
                NodeResponses,
                key=None if key is None else key.get_secret_value(),
                traffic_log=configured.node.traffic_log,
            )

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
