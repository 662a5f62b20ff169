"""Node mode: a feasibility question from a federation hub answered under this node's own
disclosure rules (docs/federation.md). Every request is recorded in the audit log with its
normalised query, answered or refused."""

from __future__ import annotations

import hashlib
import logging

from catalogue.config import NodeSettings
from catalogue.domain.cohort import Stratum
from catalogue.domain.federation import (
    NodeAnswer,
    NodeRequest,
    WireCell,
    WireCount,
    WireDataset,
    WireProvider,
    WireSketch,
    features,
)
from catalogue.domain.principal import Principal
from catalogue.exceptions import PermissionDeniedError
from catalogue.services.disclosure import DisclosedCount, PublishedCell
from catalogue.services.distinct import NO_KEY
from catalogue.services.feasibility import Feasibility, FeasibilityService

log = logging.getLogger(__name__)


def hub_principal(caller: Principal) -> Principal:
    """Whom a hub's questions are charged to: the hub itself (its token), in one project, so
    that privacy budget and differencing check cover everything that hub ever asked."""
    return Principal(f"hub:{caller.user}", "federation", caller.roles, caller.authenticated)


def answer_hub(
    service: FeasibilityService, request: NodeRequest, caller: Principal, settings: NodeSettings
) -> NodeAnswer:
    """Answer (or refuse, PermissionDeniedError) one hub request."""
    query = request.cohort_query()
    principal = hub_principal(caller)
    query_json = query.canonical_json()
    refused = sorted(features(query) & set(settings.refuse))
    if request.strata and settings.refuse_strata:
        refused.append("strata")
    if refused:
        reason = f"this node does not answer questions using {', '.join(refused)}"
        log.info("hub request refused: %s %s (%s)", principal.user, query_json, reason)
        release = hashlib.sha256(f"refused:{query_json}".encode()).hexdigest()
        service.record_refusal(principal, query_json, reason, release)
        raise PermissionDeniedError(reason)
    log.info("hub request: %s %s", principal.user, query_json)
    strata = tuple(tuple(Stratum(d) for d in dims) for dims in request.strata)
    distinct = request.distinct and settings.sketches
    answer = service.run(query, strata=strata, principal=principal, distinct=distinct)  # audited
    return NodeAnswer(
        disclosure=answer.explanation.disclosure,
        providers=[WireProvider(id=p.id, cell=wire_cell(c)) for p, c in answer.by_provider],
        datasets=[
            WireDataset(provider=d.provider_id, identifier=d.identifier, cell=wire_cell(c))
            for d, c in answer.by_dataset
        ],
        sketches=wire_sketches(answer, settings, service) if request.distinct else None,
    )


def wire_sketches(
    answer: Feasibility, settings: NodeSettings, service: FeasibilityService
) -> list[WireSketch]:
    """Each provider's sketch for the hub, or why it is withheld: the node does not send
    sketches, has no federation key, or its own rules suppress the provider's count (a sketch
    tells roughly how many subjects it holds)."""
    linker = service.view.catalogue.settings.linker()
    out = []
    for provider, cell in answer.by_provider:
        sketch = answer.sketches.get(provider.id)
        if not settings.sketches:
            out.append(WireSketch(provider=provider.id, withheld="this node sends no sketches"))
        elif sketch is None or linker is None:
            out.append(WireSketch(provider=provider.id, withheld=NO_KEY))
        elif cell.subjects.suppressed:
            withheld = "the count is suppressed under the node's rules"
            out.append(WireSketch(provider=provider.id, withheld=withheld))
        else:
            out.append(
                WireSketch(provider=provider.id, key_id=linker.key_id, registers=sketch.encode())
            )
    return out


def wire_count(count: DisclosedCount) -> WireCount:
    return WireCount(
        value=count.value,
        suppressed=count.suppressed,
        precision=count.precision,
        reason=count.reason,
    )


def wire_cell(cell: PublishedCell) -> WireCell:
    return WireCell(
        subjects=wire_count(cell.subjects),
        studies=wire_count(cell.studies),
        series=wire_count(cell.series),
    )
