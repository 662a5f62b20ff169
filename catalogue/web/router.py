"""The web pages' routes: server-rendered shells (Jinja2) and /web/config.json.

Every page gets its data in the browser from the public GraphQL API at /graphql; nothing here
reads the catalogue.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined

from catalogue.config import AuthSettings
from catalogue.web.texts import LANGUAGE, texts_for

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
"""Served at /static/ by the app."""

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.undefined = StrictUndefined  # a missing text fails loudly, never renders empty


def browser_config(auth: AuthSettings) -> dict[str, Any]:
    """What the pages' scripts need to sign in: the OIDC issuers and the browser client id."""
    issuers = []
    for issuer in auth.issuers:
        audience = issuer.audience if isinstance(issuer.audience, str) else issuer.audience[0]
        issuers.append({"issuer": issuer.issuer, "clientId": issuer.web_client_id or audience})
    return {
        "graphql": "/graphql",
        "lang": LANGUAGE,
        "authDisabled": auth.disabled,
        "issuers": issuers,
    }


@cache
def _texts_json(page: str) -> str:
    """A page's texts as the JSON its scripts read, safe inside a <script> element (made once
    per page: the texts are constants)."""
    return json.dumps(texts_for(page), ensure_ascii=False).replace("</", "<\\/")


def _page(request: Request, template: str, page: str, **extra: Any) -> HTMLResponse:
    context = {
        "lang": LANGUAGE,
        "page": page,
        "t": texts_for(page),
        "texts_json": _texts_json(page),
        **extra,
    }
    return templates.TemplateResponse(request, template, context)


def web_router(auth: AuthSettings | None = None) -> APIRouter:
    """The pages: search at /, a dataset's page, feasibility and curation."""
    routes = APIRouter(tags=["web pages"], include_in_schema=False)
    config = browser_config(auth or AuthSettings())

    @routes.get("/", response_class=HTMLResponse)
    def search_page(request: Request) -> HTMLResponse:
        return _page(request, "search.html", "search")

    @routes.get("/datasets/{provider}/{identifier:path}/view", response_class=HTMLResponse)
    def dataset_page(request: Request, provider: str, identifier: str) -> HTMLResponse:
        return _page(request, "dataset.html", "dataset", provider=provider, identifier=identifier)

    @routes.get("/feasibility", response_class=HTMLResponse)
    def feasibility_page(request: Request) -> HTMLResponse:
        return _page(request, "feasibility.html", "feasibility")

    @routes.get("/curation", response_class=HTMLResponse)
    def curation_page(request: Request) -> HTMLResponse:
        return _page(request, "curation.html", "curation")

    @routes.get("/web/config.json")
    def web_config() -> JSONResponse:
        return JSONResponse(config)

    return routes
