"""GraphQL object and input types; counts can only be built from disclosed counts."""

from __future__ import annotations

from enum import Enum

import strawberry

from catalogue.domain import models
from catalogue.domain.cohort import CohortQuery, DatasetScope, SeriesCriteria, Sex, SubjectCriteria
from catalogue.services.disclosure import DisclosedCount
from catalogue.services.feasibility import Cell


@strawberry.type(description="A count of people or records, after disclosure control.")
class Count:
    value: int | None = strawberry.field(description="Null when suppressed.")
    suppressed: bool
    precision: str = strawberry.field(description="How it was published: exact or rounded to N.")

    @classmethod
    def of(cls, count: DisclosedCount) -> Count:
        return cls(value=count.value, suppressed=count.suppressed, precision=count.precision)


@strawberry.type(description="A data provider: a hospital, repository or infrastructure.")
class Provider:
    id: strawberry.ID
    name: str
    homepage: str | None

    @classmethod
    def of(cls, p: models.Provider) -> Provider:
        return cls(id=strawberry.ID(p.id), name=p.name, homepage=p.homepage)


@strawberry.type(
    description="Computed from harvested features after disclosure control: absent counts were "
    "suppressed, ages are widened to 5-year bounds, and values are listed only when held by "
    "enough subjects."
)
class DatasetSummary:
    number_of_unique_individuals: int | None
    number_of_records: int | None
    min_typical_age: int | None
    max_typical_age: int | None
    modalities: list[str]
    body_parts: list[str]
    manufacturers: list[str]

    @classmethod
    def of(cls, s: models.DatasetSummary) -> DatasetSummary:
        return cls(
            number_of_unique_individuals=s.number_of_unique_individuals,
            number_of_records=s.number_of_records,
            min_typical_age=s.min_typical_age,
            max_typical_age=s.max_typical_age,
            modalities=list(s.modalities),
            body_parts=list(s.body_parts),
            manufacturers=list(s.manufacturers),
        )


@strawberry.type(description="A dataset described in DCAT-AP / HealthDCAT-AP.")
class Dataset:
    identifier: str
    iri: str
    title: str
    description: str
    keywords: list[str]
    cancer_types: list[str]
    body_sites: list[str]
    modalities: list[str]
    license: str | None
    access_rights: str | None
    doi: str | None
    landing_page: str | None
    summary: DatasetSummary | None
    provider_id: strawberry.Private[str]

    @strawberry.field
    def provider(self, info: strawberry.Info) -> Provider:
        return Provider.of(info.context.view.provider(self.provider_id))

    @classmethod
    def of(cls, d: models.Dataset) -> Dataset:
        return cls(
            identifier=d.identifier,
            iri=d.iri,
            title=d.title,
            description=d.description,
            keywords=list(d.keywords),
            cancer_types=list(d.cancer_types),
            body_sites=list(d.body_sites),
            modalities=list(d.modalities),
            license=d.license,
            access_rights=d.access_rights,
            doi=d.doi,
            landing_page=d.landing_page,
            summary=DatasetSummary.of(d.summary) if d.summary else None,
            provider_id=d.provider_id,
        )


@strawberry.type
class DatasetEdge:
    cursor: str
    node: Dataset


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A Relay connection over the datasets search, best match first.")
class DatasetConnection:
    edges: list[DatasetEdge]
    page_info: PageInfo
    total_count: int


@strawberry.enum
class SexValue(Enum):
    FEMALE = "F"
    MALE = "M"
    OTHER = "O"
    UNKNOWN = "U"


@strawberry.input(description="Which providers and datasets (dct:identifier) to count in.")
class DatasetScopeInput:
    providers: list[strawberry.ID] | None = None
    datasets: list[str] | None = None


@strawberry.input(description="Subject criteria; age in whole years at any of the studies.")
class SubjectInput:
    sex: list[SexValue] | None = None
    age_min: int | None = None
    age_max: int | None = None


@strawberry.input(description="A series the subject must have; values in a list are ORed.")
class SeriesInput:
    modality: list[str] | None = None
    body_part: list[str] | None = None
    manufacturer: list[str] | None = None


@strawberry.input(description="A cohort-feasibility question; series items are ANDed.")
class FeasibilityQuery:
    datasets: DatasetScopeInput | None = None
    subject: SubjectInput | None = None
    series: list[SeriesInput] | None = None

    def to_domain(self) -> CohortQuery:
        scope = self.datasets or DatasetScopeInput()
        subject = self.subject or SubjectInput()
        return CohortQuery(
            datasets=DatasetScope(
                providers=tuple(str(p) for p in scope.providers or ()),
                datasets=tuple(scope.datasets or ()),
            ),
            subject=SubjectCriteria(
                sex=tuple(Sex(s.value) for s in subject.sex or ()),
                age_min=subject.age_min,
                age_max=subject.age_max,
            ),
            series=tuple(
                SeriesCriteria(
                    modality=tuple(s.modality or ()),
                    body_part=tuple(s.body_part or ()),
                    manufacturer=tuple(s.manufacturer or ()),
                )
                for s in self.series or ()
            ),
        )


@strawberry.type
class ProviderCounts:
    provider: Provider
    subjects: Count
    studies: Count
    series: Count


@strawberry.type
class DatasetCounts:
    dataset: Dataset
    subjects: Count
    studies: Count
    series: Count


@strawberry.type(description="Disclosure-controlled counts of a feasibility question.")
class FeasibilityResult:
    subjects: Count
    studies: Count
    series: Count
    by_provider: list[ProviderCounts]
    by_dataset: list[DatasetCounts]


def counts(cell: Cell) -> dict[str, Count]:
    return {
        "subjects": Count.of(cell.subjects),
        "studies": Count.of(cell.studies),
        "series": Count.of(cell.series),
    }
