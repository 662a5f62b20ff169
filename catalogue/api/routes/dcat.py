"""DCAT-AP REST export with content negotiation: /catalog (Hydra-paged) and /datasets/..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from rdflib import Graph

from catalogue.exceptions import QueryError
from catalogue.services.dcat_export import MAX_PAGE_SIZE, catalogue_page, dataset_description
from catalogue.services.runtime import Catalogue

FORMATS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}
"""Media types served, the first being the default."""


def negotiate(accept: str | None) -> str:
    """The served media type that best matches an Accept header (q-values honoured)."""
    best, best_q = "text/turtle", 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media in FORMATS and q > best_q:
            best, best_q = media, q
    return best


def rdf_response(graph: Graph, request: Request) -> Response:
    media = negotiate(request.headers.get("accept"))
    body = graph.serialize(format=FORMATS[media])
    return Response(content=body, media_type=media, headers={"Vary": "Accept"})


def _catalogue(request: Request) -> Catalogue:
    opened: Catalogue = request.app.state.context.view.catalogue
    return opened


def router() -> APIRouter:
    """The export routes; they read the catalogue the app opened."""
    routes = APIRouter(tags=["DCAT-AP export"])

    @routes.get("/catalog", response_class=Response)
    def catalog(
        request: Request,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    ) -> Response:
        """The whole catalogue in DCAT-AP, paged with a hydra:PartialCollectionView."""
        base = str(request.base_url)
        graph = catalogue_page(_catalogue(request), base, page, page_size)
        return rdf_response(graph, request)

    @routes.get("/datasets/{provider}/{identifier:path}", response_class=Response)
    def dataset(request: Request, provider: str, identifier: str) -> Response:
        """One dataset's DCAT-AP description, as its provider published it."""
        try:
            graph = dataset_description(_catalogue(request), provider, identifier)
        except QueryError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        return rdf_response(graph, request)

    return routes
