"""POST /federation/feasibility: node mode, only mounted when `node.enabled` (docs/federation.md).
Callers need the `hub` role (an API token the node issued to its hub)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from catalogue.api.authz import require
from catalogue.config import NodeSettings
from catalogue.domain.federation import NodeAnswer, NodeRequest
from catalogue.domain.principal import Principal, Role
from catalogue.services.federation_node import answer_hub


def router(settings: NodeSettings) -> APIRouter:
    routes = APIRouter(tags=["federation"])

    @routes.post("/federation/feasibility", response_model=NodeAnswer)
    def feasibility(
        body: NodeRequest,
        request: Request,
        caller: Annotated[Principal, Depends(require(Role.HUB))],
    ) -> Response:
        """Disclosure-controlled counts of one normalised query, per provider and dataset,
        under this node's own rules (with sketches when asked and allowed); 403 with the
        reason when the node refuses the question."""
        answer = answer_hub(request.app.state.context.feasibility, body, caller, settings)
        return Response(answer.body(), media_type="application/json")

    return routes
