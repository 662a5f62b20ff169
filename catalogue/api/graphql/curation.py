"""GraphQL for curators: unmapped values, the mapping set, and decisions on mappings.

Every field here is for curators and requires the curator role (catalogue.api.authz); counts
pass disclosure control like every other count of the API.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from functools import partial
from typing import Annotated

import strawberry

from catalogue.api.graphql.types import Count
from catalogue.exceptions import HarvestRunningError, QueryError
from catalogue.ontology.sssom import Mapping, ReviewStatus, status_of
from catalogue.services import curation
from catalogue.services.disclosure import disclose
from catalogue.services.harvest_jobs import jobs_for
from catalogue.services.runtime import Catalogue

CURATORS = " For curators: requires the curator role."
MAX_VALUES = 1000


@strawberry.enum(description="Where a mapping stands: proposed, approved or rejected.")
class ReviewStatusValue(Enum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


@strawberry.type(
    description="A mapping of a provider's raw value to a code, as an SSSOM record: provider '*' "
    "is every provider. Only approved mappings are applied."
)
class TermMapping:
    provider: str
    field: str
    value: str
    object: str = strawberry.field(description="The code (CURIE), or sssom:NoTermFound.")
    object_label: str | None
    predicate: str
    status: ReviewStatusValue
    justification: str | None
    confidence: float | None
    comment: str | None
    authors: list[str]
    date: str | None
    subject_id: str = strawberry.field(description="LOCAL:<provider>/<field>/<value>.")

    @classmethod
    def of(cls, mapping: Mapping) -> TermMapping:
        provider, field, value = curation.mapping_key(mapping) or ("", "", "")
        return cls(
            provider=provider,
            field=field,
            value=value,
            object=mapping.object_id or "",
            object_label=mapping.object_label,
            predicate=mapping.predicate_id or "",
            status=ReviewStatusValue(status_of(mapping)),
            justification=mapping.mapping_justification,
            confidence=mapping.confidence,
            comment=mapping.comment,
            authors=[*(mapping.author_id or []), *(mapping.author_label or [])],
            date=mapping.mapping_date,
            subject_id=mapping.subject_id or "",
        )


@strawberry.type(description="A raw value no mapping or standard term resolves.")
class UnmappedValue:
    provider: str
    field: str
    value: str
    series: Count
    subjects: Count
    proposals: list[TermMapping]


@strawberry.type(description="The curators' mapping set as SSSOM/TSV.")
class MappingSetExport:
    version: int
    sssom: str = strawberry.field(description="SSSOM/TSV with its metadata embedded.")


@strawberry.type(description="A mapping after a curator's change, and the set's new version.")
class MappingChange:
    mapping: TermMapping
    version: int


@strawberry.type(description="What applying the mapping set did.")
class RemapResult:
    version: int = strawberry.field(description="The mapping set version now applied.")
    values: int = strawberry.field(description="Raw values whose concepts were recomputed.")
    datasets: int = strawberry.field(description="Datasets re-annotated and reindexed.")


def _catalogue(info: strawberry.Info) -> Catalogue:
    catalogue: Catalogue = info.context.view.catalogue
    return catalogue


def _author(info: strawberry.Info) -> str:
    return str(info.context.principal.user)


ObjectArgument = Annotated[str, strawberry.argument(name="object", description="A code (CURIE).")]


@strawberry.type
class CurationQuery:
    @strawberry.field(
        description="Raw values (body part, modality, manufacturer) that no approved mapping or "
        "standard term resolves, most series first, with their proposals; counts are disclosed."
        + CURATORS
    )
    async def unmapped_values(
        self,
        info: strawberry.Info,
        provider: str | None = None,
        field: str | None = None,
        first: int = 50,
    ) -> list[UnmappedValue]:
        if not 0 <= first <= MAX_VALUES:
            raise QueryError(f"first must be between 0 and {MAX_VALUES}")
        catalogue = _catalogue(info)
        rows = await asyncio.to_thread(
            partial(curation.coverage, catalogue, provider, field, unmapped=True)
        )
        rows = sorted(rows, key=lambda r: (-r.series, r.provider, r.field, r.value))[:first]
        proposals: dict[tuple[str, str, str], list[TermMapping]] = {}
        for mapping in await asyncio.to_thread(curation.find_mappings, catalogue, "proposed"):
            key = curation.mapping_key(mapping)
            if key is not None:
                proposals.setdefault(key, []).append(TermMapping.of(mapping))
        rules = catalogue.settings.disclosure
        return [
            UnmappedValue(
                provider=r.provider,
                field=r.field,
                value=r.value,
                series=Count.of(disclose(r.series, rules)),
                subjects=Count.of(disclose(r.subjects, rules)),
                proposals=proposals.get((r.provider, r.field, r.value), []),
            )
            for r in rows
        ]

    @strawberry.field(
        description="The current mappings, filtered; the first `first` of them." + CURATORS
    )
    async def mappings(
        self,
        info: strawberry.Info,
        status: ReviewStatusValue | None = None,
        provider: str | None = None,
        field: str | None = None,
        first: int = MAX_VALUES,
    ) -> list[TermMapping]:
        if not 0 <= first <= MAX_VALUES:
            raise QueryError(f"first must be between 0 and {MAX_VALUES}")
        wanted: ReviewStatus | None = None if status is None else status.value
        found = await asyncio.to_thread(
            curation.find_mappings, _catalogue(info), wanted, provider, field
        )
        return [TermMapping.of(m) for m in found[:first]]

    @strawberry.field(
        description="The current mapping set as SSSOM/TSV, and its version." + CURATORS
    )
    async def mapping_set(self, info: strawberry.Info) -> MappingSetExport:
        text, version = await asyncio.to_thread(curation.mapping_set_text, _catalogue(info))
        return MappingSetExport(version=version, sssom=text)


async def _decide(
    info: strawberry.Info,
    status: ReviewStatus,
    provider: str,
    field: str,
    value: str,
    object_id: str,
    predicate: str | None,
    comment: str | None,
) -> MappingChange:
    mapping, version = await asyncio.to_thread(
        partial(
            curation.decide,
            _catalogue(info),
            status,
            (provider, field, value),
            object_id,
            author=_author(info),
            predicate_id=predicate,
            comment=comment,
        )
    )
    return MappingChange(mapping=TermMapping.of(mapping), version=version)


def _decision(status: ReviewStatus, description: str) -> MappingChange:
    """The mutation recording a curator's decision of this status on one mapping."""

    async def resolve(
        info: strawberry.Info,
        provider: str,
        field: str,
        value: str,
        object_: ObjectArgument,
        predicate: str | None = None,
        comment: str | None = None,
    ) -> MappingChange:
        return await _decide(info, status, provider, field, value, object_, predicate, comment)

    mutation: MappingChange = strawberry.mutation(
        resolver=resolve, description=description + CURATORS
    )
    return mutation


@strawberry.type(name="Mutation")
class CurationMutation:
    propose_mapping: MappingChange = _decision(
        "proposed",
        "Propose a mapping (not applied until approved; provider '*' is every provider).",
    )
    approve_mapping: MappingChange = _decision(
        "approved", "Approve (or make) a mapping; it applies from the next remap or harvest."
    )
    reject_mapping: MappingChange = _decision(
        "rejected",
        "Reject a mapping: kept as a negative mapping, never applied nor proposed again; a "
        "rejected standard term is no longer applied to the value.",
    )

    @strawberry.mutation(
        description="Apply the current mapping set to the cohort and datasets indexes (no "
        "re-harvest)." + CURATORS
    )
    async def remap(self, info: strawberry.Info) -> RemapResult:
        running = jobs_for(info.context.view).running_run()
        if running is not None:  # the harvest applies the mapping set itself when it ends
            raise HarvestRunningError(
                f"a harvest is running (run {running}); remap when it has ended"
            )
        report = await asyncio.to_thread(curation.remap, _catalogue(info))
        info.context.view.refresh()
        return RemapResult(
            version=report.version,
            values=sum(report.values.values()),
            datasets=sum(report.datasets.values()),
        )
