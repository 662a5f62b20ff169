"""The hub side of federated feasibility (docs/federation.md): one question answered here for
the centrally harvested providers and, in parallel, by the node of each federated provider in
scope; merged per provider and dataset. A node that does not answer in time, fails or refuses
is reported unavailable, never counted as zero; the total then publishes a lower bound only."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace

import httpx
from pydantic import ValidationError

from catalogue import __version__
from catalogue.domain.cohort import CohortQuery, DatasetScope, Stratum
from catalogue.domain.federation import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    FederatedNodeSource,
    NodeAnswer,
    WireCell,
    WireCount,
    node_request,
    signature_ok,
)
from catalogue.domain.models import Dataset
from catalogue.domain.principal import Principal
from catalogue.exceptions import QueryError
from catalogue.services.disclosure import (
    KINDS,
    DisclosedCount,
    Published,
    PublishedCell,
    Reason,
)
from catalogue.services.distinct import DistinctSubjects, distinct_subjects
from catalogue.services.feasibility import (
    ANONYMOUS,
    Explanation,
    Feasibility,
    FeasibilityService,
    distinct_json,
    published_json,
)

log = logging.getLogger(__name__)

UNAVAILABLE = DisclosedCount(None, True, "unavailable", "unavailable")
_UNAVAILABLE_CELL = PublishedCell(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
QUESTIONS_PER_NODE = 16
"""Questions in flight to one node at a time (its connection pool); more wait for a connection,
within the node's timeout."""


@dataclass(frozen=True)
class NodeOutcome:
    """One node's answer, or why there is none."""

    answer: NodeAnswer | None = None
    reason: str | None = None


def run_federated(
    service: FeasibilityService,
    query: CohortQuery,
    *,
    strata: tuple[tuple[Stratum, ...], ...] = (),
    principal: Principal = ANONYMOUS,
    distinct: bool = False,
) -> Feasibility:
    """`FeasibilityService.run` for a catalogue with federated providers."""
    query = query.normalised()
    service._check_scope(query.datasets)
    scope = query.datasets
    owners: dict[str, set[str]] = {}
    for provider_id, identifier in service.view.datasets_by_key():
        owners.setdefault(provider_id, set()).add(identifier)
    providers = list(scope.providers) if scope.providers else sorted(service.view.providers())
    if scope.datasets:
        providers = [p for p in providers if owners.get(p, set()) & set(scope.datasets)]
    federated = [p for p in providers if p in service.nodes]
    if not federated:
        return service.run_local(query, strata=strata, principal=principal, distinct=distinct)
    if strata:
        raise QueryError("strata tables are not yet answered across federated providers")
    central = [p for p in providers if p not in service.nodes]

    def narrowed(chosen: list[str]) -> CohortQuery:
        named = tuple(d for d in scope.datasets if any(d in owners.get(p, ()) for p in chosen))
        datasets = scope.model_copy(update={"providers": tuple(chosen), "datasets": named})
        return query.model_copy(update={"datasets": DatasetScope.model_validate(datasets)})

    channel = service.channel()
    started = time.monotonic()
    asked = {p: channel.ask(p, narrowed([p]), distinct) for p in federated}
    local = None
    if central:
        local = service.run_local(narrowed(central), principal=principal, distinct=distinct)
    # a node that hangs is left to its client's timeout, not waited for here
    outcomes = collect(asked, {p: service.nodes[p].timeout for p in federated}, started)
    answer = _merged(service, query, local, outcomes)
    if distinct:
        answer = replace(answer, distinct=_distinct(service, local, outcomes))
    _record(service, answer, principal)
    return answer


def _distinct(
    service: FeasibilityService, local: Feasibility | None, outcomes: dict[str, NodeOutcome]
) -> DistinctSubjects:
    """The union of the sketches counted here and those the nodes sent: only sketches under one
    federation key merge (the hub's own, else the first a node names)."""
    sketches = dict(local.sketches) if local else {}
    missing = dict(local.distinct.missing) if local and local.distinct else {}
    linker = service.view.catalogue.settings.linker()
    key = linker.key_id if linker else None
    for provider_id, outcome in sorted(outcomes.items()):
        if outcome.answer is None:
            missing[provider_id] = f"unavailable: {outcome.reason or 'no answer'}"
            continue
        sent = [s for s in outcome.answer.sketches or () if s.provider == provider_id]
        wire = sent[0] if sent else None
        sketch = wire.sketch() if wire else None
        if wire is None or sketch is None:
            withheld = wire.withheld if wire else None
            missing[provider_id] = f"the node sent no sketch ({withheld or 'not asked'})"
        elif key is not None and wire.key_id != key:
            missing[provider_id] = "the node's sketch is under another federation key"
        else:
            key = wire.key_id
            sketches[provider_id] = sketch
    return distinct_subjects(sketches, missing, service.rules, service.noise_secret)


def _record(service: FeasibilityService, answer: Feasibility, principal: Principal) -> None:
    """The whole federated answer in the hub's audit log, beside the record of the part counted
    here (which is the one that spends budget): what was published, and which nodes failed."""
    cells = {"total": answer.total}
    cells.update({f"provider:{p.id}": c for p, c in answer.by_provider})
    cells.update({f"dataset:{d.provider_id}/{d.identifier}": c for d, c in answer.by_dataset})
    text = published_json(cells, unavailable=answer.unavailable, **distinct_json(answer.distinct))
    query_json = answer.query.canonical_json()
    key = "federated:" + hashlib.sha256(f"{query_json}\n{text}".encode()).hexdigest()
    service.audit.record(
        principal.user,
        principal.project,
        query_json,
        text,
        0.0,
        "answered",
        key,
        {},
        service.clock(),
    )


class NodeChannel:
    """The hub's connections to its nodes, for every question it sends: one HTTP client per
    node (its connections kept alive, at most QUESTIONS_PER_NODE at once) and one thread pool.
    Thread-safe; close it with the service."""

    def __init__(self, nodes: Mapping[str, FederatedNodeSource]) -> None:
        limits = httpx.Limits(
            max_connections=QUESTIONS_PER_NODE, max_keepalive_connections=QUESTIONS_PER_NODE
        )
        self._nodes = dict(nodes)
        self._clients = {
            provider: httpx.Client(timeout=node.timeout, follow_redirects=False, limits=limits)
            for provider, node in nodes.items()
        }
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, QUESTIONS_PER_NODE * len(nodes)), thread_name_prefix="federation"
        )
        self._lock = threading.Lock()
        self._closed = False

    def ask(self, provider: str, query: CohortQuery, distinct: bool) -> Future[NodeOutcome]:
        """The outcome, to come, of asking the node of `provider`."""
        with self._lock:
            if self._closed:
                raise QueryError("the federation channel is closed")
            node, client = self._nodes[provider], self._clients[provider]
            return self._pool.submit(ask_node, node, client, query, distinct)

    def close(self) -> None:
        """Close every client; questions under way end with their node's timeout."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()


def ask_node(
    node: FederatedNodeSource, client: httpx.Client, query: CohortQuery, distinct: bool = False
) -> NodeOutcome:
    """POST the query to a node through `client`; any failure becomes a reason, never an
    exception."""
    headers = {"User-Agent": f"cancer-imaging-catalogue/{__version__} (federation hub)"}
    token = node.bearer()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = node_request(query, distinct).model_dump(mode="json", exclude_defaults=True)
    nonce = secrets.token_hex(16)  # signed back by the node: an old answer cannot be replayed
    headers[NONCE_HEADER] = nonce
    try:
        response = client.post(node.endpoint("/federation/feasibility"), json=body, headers=headers)
    except httpx.TimeoutException:
        return NodeOutcome(reason=f"no answer within {node.timeout:g} s")
    except httpx.HTTPError as exc:
        return NodeOutcome(reason=f"unreachable ({type(exc).__name__})")
    if node.node_key is not None or node.node_key_env is not None:
        key = node.response_key()  # a key named but missing fails closed
        signature = response.headers.get(SIGNATURE_HEADER)
        if not key or not signature_ok(key, nonce, response.content, signature):
            return NodeOutcome(reason="bad node signature")
    if response.status_code != 200:
        return NodeOutcome(reason=_refusal(response))
    try:
        return NodeOutcome(answer=NodeAnswer.model_validate_json(response.content))
    except ValidationError:
        return NodeOutcome(reason="the node's answer is malformed")


def _refusal(response: httpx.Response) -> str:
    status = response.status_code
    message = ""
    try:  # the REST error body: {"error": message, "code": ...}
        detail = response.json()
        if isinstance(detail, dict) and isinstance(detail.get("error"), str):
            message = detail["error"][:300]
    except ValueError:
        pass
    if status == 401:
        return "the node refused this hub's credentials (HTTP 401)"
    if status == 403:
        return f"the node refused the question (HTTP 403){': ' + message if message else ''}"
    return f"the node failed (HTTP {status})"


def collect(
    asked: dict[str, Future[NodeOutcome]], timeouts: dict[str, float], start: float
) -> dict[str, NodeOutcome]:
    """Each node's outcome, waiting for none longer than its timeout after `start` (when the
    questions were sent; time.monotonic())."""
    out = {}
    for provider, future in asked.items():
        left = max(0.0, timeouts[provider] - (time.monotonic() - start))
        try:
            out[provider] = future.result(timeout=left + 0.5)
        except FutureTimeout:
            out[provider] = NodeOutcome(reason=f"no answer within {timeouts[provider]:g} s")
    return out


_REASONS: dict[str | None, Reason] = {
    r: r for r in ("small", "zero", "complementary", "differencing", "noise")
}


def _count(wire: WireCount) -> DisclosedCount:
    reason = _REASONS.get(wire.reason, "small") if wire.suppressed else None
    return DisclosedCount(wire.value, wire.suppressed, wire.precision, reason)


def _cell(wire: WireCell) -> PublishedCell:
    return PublishedCell(_count(wire.subjects), _count(wire.studies), _count(wire.series))


def _merged(
    service: FeasibilityService,
    query: CohortQuery,
    local: Feasibility | None,
    outcomes: dict[str, NodeOutcome],
) -> Feasibility:
    view = service.view
    by_provider = list(local.by_provider) if local else []
    by_dataset = list(local.by_dataset) if local else []
    unavailable: dict[str, str] = {}
    texts = [f"here: {local.explanation.disclosure}"] if local else []
    for provider_id, outcome in outcomes.items():
        if outcome.answer is None:
            reason = outcome.reason or "no answer"
            log.warning("federated provider %s unavailable: %s", provider_id, reason)
            unavailable[provider_id] = reason
            by_provider.append((view.provider(provider_id), _UNAVAILABLE_CELL))
            continue
        answer = outcome.answer
        texts.append(f"node {provider_id}: {answer.disclosure}")
        for item in answer.providers:
            if item.id == provider_id:  # a node answers for the provider it was asked about
                by_provider.append((view.provider(item.id), _cell(item.cell)))
        for entry in answer.datasets:
            if entry.provider != provider_id:
                continue
            dataset = view.dataset(entry.provider, entry.identifier) or Dataset(
                provider_id=entry.provider,
                identifier=entry.identifier,
                iri="",
                title=entry.identifier,
            )
            by_dataset.append((dataset, _cell(entry.cell)))
    by_provider.sort(key=lambda pair: pair[0].id)
    by_dataset.sort(key=lambda pair: (pair[0].provider_id, pair[0].identifier))
    total, lower = total_of([cell for _, cell in by_provider])
    plan = local.explanation.plan if local else ""
    nodes = ", ".join(sorted(outcomes))
    return Feasibility(
        query=query,
        total=total,
        by_provider=by_provider,
        by_dataset=by_dataset,
        strata=[],
        explanation=Explanation(
            normalised_query=json.loads(query.canonical_json()),
            plan=f"federated: nodes {nodes}" + (f"; here: {plan}" if plan else ""),
            disclosure="; ".join(texts) + "; total: the sum of the provider counts",
            epsilon_spent=local.explanation.epsilon_spent if local else 0.0,
        ),
        unavailable=unavailable,
        lower_bound=lower,
    )


def total_of(cells: list[PublishedCell]) -> tuple[PublishedCell, Published | None]:
    """The total over published provider cells: their sum when every one is published, else
    suppressed ("incomplete") with the sum of the published ones as a lower bound."""
    counts: list[DisclosedCount] = []
    lower: list[int | None] = []
    complete = True
    for kind in KINDS:
        parts = [getattr(cell, kind) for cell in cells]
        published = [p.value for p in parts if p.value is not None]
        texts = {p.precision for p in parts if p.value is not None}
        text = texts.pop() if len(texts) == 1 else "sum of provider counts"
        if any(p.value is None for p in parts):
            complete = False
            counts.append(DisclosedCount(None, True, text, "incomplete"))
        else:
            counts.append(DisclosedCount(sum(published), False, text if parts else "exact"))
        lower.append(sum(published) if published else None)
    bound: Published = (lower[0], lower[1], lower[2])
    return PublishedCell(*counts), None if complete else bound
