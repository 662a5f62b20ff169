"""Cohort feasibility: validate, resolve the dataset scope, count exactly in the cohort index,
check the asker's history (differencing, privacy budget), disclose every cell, audit.

Nothing exact leaves this module: `Feasibility` holds only `DisclosedCount`s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from catalogue.domain.cohort import CellEvidence, CohortQuery, DatasetScope, ExactResult, Stratum
from catalogue.domain.federation import FederatedNodeSource, read_federated_nodes
from catalogue.domain.linkage import HllSketch
from catalogue.domain.models import Dataset, Provider
from catalogue.domain.principal import Principal as Principal
from catalogue.exceptions import PrivacyBudgetError, QueryError
from catalogue.ontology.curie import is_curie
from catalogue.services.audit import Sketch, sketch_distance
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.disclosure import (
    CellInput,
    DisclosedCount,
    Group,
    Published,
    PublishedCell,
    precision,
    publish,
)
from catalogue.services.distinct import NO_KEY, DistinctSubjects, distinct_subjects

if TYPE_CHECKING:
    from catalogue.services.federation import NodeChannel

Cell = PublishedCell
"""Disclosed subjects, studies and series of one cell of the answer."""

MAX_STRATA_TABLES = 4
_NO_EVIDENCE = CellEvidence()


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True)
class StratumCellResult:
    values: tuple[str | None, ...]
    cell: Cell


@dataclass(frozen=True)
class StrataResult:
    dimensions: tuple[Stratum, ...]
    cells: list[StratumCellResult]


@dataclass(frozen=True)
class Explanation:
    """What was counted and how it was published."""

    normalised_query: Any
    plan: str
    disclosure: str
    epsilon_spent: float


@dataclass(frozen=True)
class Feasibility:
    """A feasibility answer; only disclosed counts, never an exact one."""

    query: CohortQuery
    total: Cell
    by_provider: list[tuple[Provider, Cell]]
    by_dataset: list[tuple[Dataset, Cell]]
    strata: list[StrataResult]
    explanation: Explanation
    unavailable: dict[str, str] = field(default_factory=dict)
    """Federated providers whose node did not answer (docs/federation.md), with why; their
    `by_provider` cells are suppressed ("unavailable"), never zeros."""
    lower_bound: Published | None = None
    """When the total is incomplete (a provider cell suppressed or unavailable): the sum of
    the published provider counts, a lower bound of the total (None for a kind with none)."""
    distinct: DistinctSubjects | None = None
    """When asked for: the disclosed estimate of distinct subjects across providers."""
    sketches: dict[str, HllSketch] = field(default_factory=dict)
    """When distinct subjects were asked for: each linked provider's sketch of its matching
    subjects, for the federation layer only (a node sends it to its hub when allowed); never
    published by the API."""


def _now() -> datetime:
    return datetime.now(UTC)


class FeasibilityService:
    """Answers feasibility questions for one catalogue; safe to call from worker threads."""

    def __init__(
        self,
        view: CatalogueView,
        clock: Callable[[], datetime] = _now,
        nodes: Mapping[str, FederatedNodeSource] | None = None,
    ) -> None:
        self.view = view
        settings = view.catalogue.settings
        self.nodes = dict(read_federated_nodes(settings.providers) if nodes is None else nodes)
        """Federated providers (their `federated-node` source); none: all counted here."""
        self.rules = view.catalogue.settings.disclosure
        self.audit = view.catalogue.audit
        self.clock = clock
        master = view.catalogue.settings.master_secret()
        self._secret = hmac.new(master, b"feasibility-noise", hashlib.sha256).digest()
        self._channel: NodeChannel | None = None
        self._channel_lock = threading.Lock()

    def channel(self) -> NodeChannel:
        """The connections to the federated nodes, opened on the first federated question."""
        from catalogue.services.federation import NodeChannel  # it builds on this module

        with self._channel_lock:
            if self._channel is None:
                self._channel = NodeChannel(self.nodes)
            return self._channel

    def close(self) -> None:
        """Close the connections to the nodes, if any were opened."""
        with self._channel_lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    @property
    def noise_secret(self) -> bytes:
        """The key of this catalogue's deterministic noise (disclosure.publish)."""
        return self._secret

    def run(
        self,
        query: CohortQuery,
        *,
        strata: tuple[tuple[Stratum, ...], ...] = (),
        principal: Principal = ANONYMOUS,
        distinct: bool = False,
    ) -> Feasibility:
        """Answer a question; with federated providers, their nodes are asked too. With
        `distinct`, also estimate the distinct subjects across providers."""
        if self.nodes:
            from catalogue.services.federation import run_federated  # it builds on this module

            return run_federated(self, query, strata=strata, principal=principal, distinct=distinct)
        return self.run_local(query, strata=strata, principal=principal, distinct=distinct)

    def run_local(
        self,
        query: CohortQuery,
        *,
        strata: tuple[tuple[Stratum, ...], ...] = (),
        principal: Principal = ANONYMOUS,
        distinct: bool = False,
    ) -> Feasibility:
        """Answer from this catalogue's own cohort index."""
        query = query.normalised()
        strata = _checked_strata(strata)
        self._check_scope(query.datasets)
        scopes = self._metadata_scope(query.datasets) if query.datasets.by_metadata else None
        rules = self.rules
        differencing = rules.differencing and rules.threshold > 1
        exact = self.view.catalogue.cohort.count(
            query,
            strata=strata,
            scopes=scopes,
            evidence=differencing,
            strata_min_subjects=rules.threshold,
            max_strata_cells=rules.max_strata_cells,
            linkage=distinct,
        )
        cells, groups = _cells(exact)
        tables = 3 + len(strata)
        now = self.clock()
        release = self._release_key(exact, tables)
        query_json = query.canonical_json()
        sketches = {
            key: (counts.subjects, evidence.sketch)
            for key, (counts, evidence) in cells.items()
            if evidence.sketch
        }
        published = publish(cells, groups, rules, self._secret, tables)
        if differencing:
            earlier = self.audit.nearest_released(
                principal.user, principal.project, sketches, rules, now
            )
            replacements = _near_within(sketches, published, earlier, rules.threshold)
            if replacements:
                published = publish(
                    cells, groups, rules, self._secret, tables, replacements=replacements
                )
        free = rules.epsilon is None or self.audit.answered_before(
            principal.user, principal.project, release
        )
        cost = 0.0 if free or rules.epsilon is None else rules.epsilon
        released = {k: v for k, v in sketches.items() if not published[k].subjects.suppressed}
        linked = {p: HllSketch(r) for p, r in exact.linkage.items()}
        estimate = None
        if distinct:
            missing = {p: NO_KEY for p in exact.by_provider if p not in linked}
            estimate = distinct_subjects(linked, missing, rules, self._secret)
        try:
            self.audit.record(
                principal.user,
                principal.project,
                query_json,
                published_json(published, **distinct_json(estimate)),
                cost,
                "answered",
                release,
                released,
                now,
                rules=rules if cost else None,
            )
        except PrivacyBudgetError as exc:
            self.record_refusal(principal, query_json, str(exc), release)
            raise
        answer = self._answer(query, exact, published, strata, cost, tables)
        return replace(answer, distinct=estimate, sketches=linked)

    def record_refusal(
        self, principal: Principal, query_json: str, reason: str, release: str
    ) -> None:
        """Record in the audit log a question refused (nothing published, nothing spent)."""
        self.audit.record(
            principal.user,
            principal.project,
            query_json,
            "{}",
            0.0,
            f"refused: {reason}",
            release,
            {},
            self.clock(),
        )

    def _answer(
        self,
        query: CohortQuery,
        exact: ExactResult,
        published: dict[str, Cell],
        strata: tuple[tuple[Stratum, ...], ...],
        cost: float,
        tables: int,
    ) -> Feasibility:
        by_dataset = []
        for provider_id, identifier in exact.by_dataset:
            dataset = self.view.dataset(provider_id, identifier) or Dataset(
                provider_id=provider_id, identifier=identifier, iri="", title=identifier
            )
            by_dataset.append((dataset, published[f"dataset:{provider_id}/{identifier}"]))
        tables_out = [
            StrataResult(
                dimensions=table.dimensions,
                cells=[
                    StratumCellResult(cell.values, published[_stratum_key(n, cell.values)])
                    for cell in table.cells
                ],
            )
            for n, table in enumerate(exact.strata)
        ]
        return Feasibility(
            query=query,
            total=published["total"],
            by_provider=[
                (self.view.provider(p), published[f"provider:{p}"]) for p in exact.by_provider
            ],
            by_dataset=by_dataset,
            strata=tables_out,
            explanation=Explanation(
                normalised_query=json.loads(query.canonical_json()),
                plan=exact.plan,
                disclosure=self._rules_text(tables),
                epsilon_spent=cost,
            ),
        )

    def _rules_text(self, tables: int) -> str:
        rules = self.rules
        if rules.exact and rules.publish_zero:
            return "exact counts (trusted deployment)"
        scale = None if rules.epsilon is None else tables / rules.epsilon
        parts = [
            f"counts 1-{rules.threshold - 1} suppressed" if rules.threshold > 1 else "",
            "zero published" if rules.publish_zero else "zero suppressed",
            precision(rules, scale),
            f"epsilon {rules.epsilon:g} split over {tables} tables" if rules.epsilon else "",
            "complementary suppression",
            "differencing check against your earlier answers" if rules.differencing else "",
        ]
        return "; ".join(p for p in parts if p)

    def _check_scope(self, scope: DatasetScope) -> None:
        known = set(self.view.providers())
        unknown = [p for p in scope.providers if p not in known]
        if unknown:
            raise QueryError(f"unknown provider(s): {', '.join(unknown)}")
        if scope.datasets:
            known_datasets = self.view.dataset_identifiers()
            missing = [d for d in scope.datasets if d not in known_datasets]
            if missing:
                raise QueryError(f"unknown dataset(s): {', '.join(missing)}")

    def _metadata_scope(self, scope: DatasetScope) -> frozenset[tuple[str, str]]:
        """The (provider, dataset) pairs whose catalogue metadata meets the scope's criteria; a
        cancer type given as a concept (NCIT:C2926) also finds datasets whose cancer types map
        to one of its descendants."""
        chosen = set()
        concepts = {c.upper() for c in scope.cancer_types if is_curie(c)}
        names = [c for c in scope.cancer_types if not is_curie(c)]
        annotator = self.view.catalogue.annotator() if concepts else None
        for key, dataset in self.view.datasets_by_key().items():
            if scope.cancer_types:
                named = bool(names) and _matches(names, dataset.cancer_types)
                coded = annotator is not None and bool(
                    concepts & annotator.annotate(key[0], "cancer_type", dataset.cancer_types)
                )
                if not (named or coded):
                    continue
            if scope.access_rights and not _matches(scope.access_rights, [dataset.access_rights]):
                continue
            if scope.licenses and not _matches(scope.licenses, [dataset.license]):
                continue
            chosen.add(key)
        return frozenset(chosen)

    def _release_key(self, exact: ExactResult, tables: int) -> str:
        """A keyed digest of everything an answer is computed from: equal keys, equal answers."""
        material = json.dumps(
            [
                tables,
                exact.total.model_dump(),
                sorted((k, v.model_dump()) for k, v in exact.evidence.items()),
                [t.model_dump(mode="json") for t in exact.strata],
            ],
            sort_keys=True,
            default=str,
        )
        return hmac.new(self._secret, material.encode(), hashlib.sha256).hexdigest()


def _checked_strata(strata: tuple[tuple[Stratum, ...], ...]) -> tuple[tuple[Stratum, ...], ...]:
    if len(strata) > MAX_STRATA_TABLES:
        raise QueryError(f"at most {MAX_STRATA_TABLES} strata tables may be asked for")
    for dims in strata:
        if not dims:
            raise QueryError("a strata table needs at least one dimension")
        if len(set(dims)) != len(dims):
            raise QueryError("a strata table names each dimension once")
    return tuple(tuple(Stratum(d) for d in dims) for dims in strata)


def _names(value: str) -> set[str]:
    """Ways a metadata value may be asked for: itself, its last IRI segment, and for a
    Creative Commons licence IRI its short name (CC-BY-4.0)."""
    text = " ".join(value.split()).casefold().rstrip("/")
    names = {text, text.rsplit("/", 1)[-1], text.rsplit("#", 1)[-1]}
    if "creativecommons.org/" in text:
        parts = text.split("creativecommons.org/", 1)[1].split("/")
        if len(parts) >= 3 and parts[0] in ("licenses", "publicdomain"):
            names.add("-".join(["cc", *parts[1:3]]))
    return names


def _matches(asked: Iterable[str], values: Iterable[str | None]) -> bool:
    have: set[str] = set()
    for value in values:
        if value:
            have |= _names(value)
    return any(_names(a) & have for a in asked)


def _stratum_key(table: int, values: tuple[str | None, ...]) -> str:
    return f"strata:{table}:" + json.dumps(values)


def _cells(exact: ExactResult) -> tuple[dict[str, CellInput], list[Group]]:
    """Every cell of an answer with its evidence, and the groups that add up."""
    evidence = exact.evidence
    cells: dict[str, CellInput] = {"total": (exact.total, evidence.get("total", _NO_EVIDENCE))}
    for p, counts in exact.by_provider.items():
        key = f"provider:{p}"
        cells[key] = (counts, evidence.get(key, _NO_EVIDENCE))
    for (p, d), counts in exact.by_dataset.items():
        key = f"dataset:{p}/{d}"
        cells[key] = (counts, evidence.get(key, _NO_EVIDENCE))
    groups: list[Group] = [("total", [f"provider:{p}" for p in exact.by_provider])]
    for p in exact.by_provider:
        members = [f"dataset:{q}/{d}" for q, d in exact.by_dataset if q == p]
        groups.append((f"provider:{p}", members))
    for n, table in enumerate(exact.strata):
        keys = []
        for cell in table.cells:
            key = _stratum_key(n, cell.values)
            cells[key] = (cell.counts, cell.evidence)
            keys.append(key)
        groups.append(("total", keys))
    return cells, groups


def _near_within(
    sketches: dict[str, tuple[int, Sketch]],
    published: dict[str, Cell],
    earlier: dict[str, Published],
    threshold: int,
) -> dict[str, Published]:
    """What each cell must publish instead of its own values because its subject set differs
    by 1..threshold-1 subjects from a set published before: an earlier answer's cell, else a
    cell that comes before it in this answer (total, providers, datasets, strata). The cell
    then cannot be told apart from that one, so the few subjects between them stay hidden."""
    out = dict(earlier)
    shown: list[tuple[int, int, str, Sketch]] = []  # (subjects, order, key, sketch), sorted
    for order, (key, (subjects, sketch)) in enumerate(sketches.items()):
        if key not in out:
            low = bisect_left(shown, (subjects - threshold + 1,))
            high = bisect_left(shown, (subjects + threshold,))
            near = [
                (distance, earlier_order, other)
                for _, earlier_order, other, other_sketch in shown[low:high]
                if 0 < (distance := sketch_distance(sketch, other_sketch)) < threshold
            ]
            if near:
                nearest = min(near)[2]
                out[key] = _values(published[nearest], out.get(nearest))
        insort(shown, (subjects, order, key, sketch))
    return out


def _values(cell: Cell, replaced: Published | None) -> Published:
    if replaced is not None:
        return replaced
    return (cell.subjects.value, cell.studies.value, cell.series.value)


def distinct_json(estimate: DistinctSubjects | None) -> dict[str, object]:
    """The distinct-subjects estimate as the audit log records it beside the cells."""
    if estimate is None:
        return {}
    return {"distinct": {"value": estimate.estimate.value, "providers": estimate.providers}}


def published_json(published: Mapping[str, Cell], **extra: object) -> str:
    """What an answer published, as the audit log records it: [subjects, studies, series] per
    cell, null where suppressed; `extra` entries beside them."""

    def one(count: DisclosedCount) -> int | None:
        return count.value

    cells = {k: [one(c.subjects), one(c.studies), one(c.series)] for k, c in published.items()}
    return json.dumps({**cells, **extra}, sort_keys=True)
