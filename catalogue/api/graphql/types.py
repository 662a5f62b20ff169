"""GraphQL object and input types; counts can only be built from disclosed counts."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from catalogue.api.graphql.dataset_details import (
    Agent,
    ContactPoint,
    Distribution,
    ValidationStatus,
    validation_loader,
)
from catalogue.domain import models
from catalogue.domain.cohort import (
    AnnotationKind,
    CohortQuery,
    Criterion,
    DatasetScope,
    SeriesCriteria,
    Sex,
    StudyCriteria,
    SubjectCriteria,
)
from catalogue.exceptions import QueryError
from catalogue.ontology.facets import concept_facets
from catalogue.ontology.vocabulary import Concept as VocabularyConcept
from catalogue.services import distinct, search
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.disclosure import DisclosedCount
from catalogue.services.feasibility import Cell, Feasibility


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
    concept_curies: strawberry.Private[tuple[str, ...]]
    themes: list[str] = strawberry.field(
        default_factory=list, description="dcat:theme values: IRIs (or labels) as published."
    )
    distributions: list[Distribution] = strawberry.field(default_factory=list)
    publisher: Agent | None = None
    contact_points: list[ContactPoint] = strawberry.field(default_factory=list)

    @strawberry.field(
        description="Its newest SHACL validation; null when it was never validated (its "
        "provider turned validation off). A curator reads the reports in validationReports."
    )
    async def validation(self, info: strawberry.Info) -> ValidationStatus | None:
        return await validation_loader(info).load((self.provider_id, self.identifier))

    @strawberry.field
    def provider(self, info: strawberry.Info) -> Provider:
        return Provider.of(info.context.view.provider(self.provider_id))

    @strawberry.field(
        description="What its cancer types, body sites and parts, modalities and access rights "
        "stand for, with every broader concept; mostSpecific: only the most specific ones."
    )
    def concepts(self, info: strawberry.Info, most_specific: bool = False) -> list[Concept]:
        vocabulary = info.context.view.catalogue.annotator().vocabulary
        curies = self.concept_curies
        if most_specific:
            curies = tuple(concept_facets(vocabulary).most_specific(curies))
        return [Concept.of(vocabulary[c]) for c in curies if c in vocabulary]

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
            concept_curies=d.concepts,
            themes=list(d.themes),
            distributions=[Distribution.of(x) for x in d.distributions],
            publisher=Agent.publisher_of(d),
            contact_points=[ContactPoint.of(c) for c in d.contact_points],
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


@strawberry.type(description="A concept of a shipped vocabulary (SKOS).")
class Concept:
    curie: str
    iri: str
    label: str = strawberry.field(description="Its preferred label (English when it has one).")
    scheme: str = strawberry.field(description="The vocabulary that declares it.")
    matched: str | None = strawberry.field(
        default=None, description="In autocompletion: the label (of any kind) that matched."
    )

    @classmethod
    def of(cls, c: VocabularyConcept, matched: str | None = None) -> Concept:
        return cls(curie=c.curie, iri=c.iri, label=c.label(), scheme=c.scheme, matched=matched)


@strawberry.enum(description="What datasets can be counted by in a search.")
class FacetField(Enum):
    PROVIDER = "provider"
    CANCER_TYPE = "cancer_type"
    BODY_PART = "body_part"
    MODALITY = "modality"
    ACCESS_RIGHTS = "access_rights"
    LICENSE = "license"
    THEME = "theme"


@strawberry.type(description="A value and how many datasets of the search hold it (exact).")
class FacetValue:
    value: str = strawberry.field(description="A provider id, a concept CURIE, or an IRI.")
    label: str
    count: int


@strawberry.type(
    description="Counts of the datasets matching a search by one field, most frequent first "
    "(at most 100 values). A concept field lists the most specific concepts the datasets are "
    "annotated with, each counting the datasets annotated with it or a narrower concept, as "
    "filtering by it would find."
)
class Facet:
    field: FacetField
    values: list[FacetValue]


@strawberry.type(description="A Relay connection over the datasets search, best match first.")
class DatasetConnection:
    edges: list[DatasetEdge]
    page_info: PageInfo
    total_count: int
    facets: list[Facet] = strawberry.field(
        description="Exact counts per facet over every dataset matching (not only this page)."
    )


@strawberry.enum
class DatasetOrder(Enum):
    RELEVANCE = "relevance"
    TITLE = "title"


@strawberry.input(
    description="Restrictions of a datasets search: every field given must hold, its values "
    "are alternatives. cancerTypes, bodyParts, modalities and concepts take CURIEs, IRIs or "
    "labels and find the datasets annotated with that concept or a narrower one."
)
class DatasetFilter:
    providers: list[strawberry.ID] | None = None
    cancer_types: list[str] | None = None
    body_parts: list[str] | None = None
    modalities: list[str] | None = None
    access_rights: list[str] | None = None
    licenses: list[str] | None = None
    themes: list[str] | None = None
    concepts: list[str] | None = None

    def to_domain(self) -> search.DatasetFilter:
        return search.DatasetFilter(
            providers=tuple(str(p) for p in self.providers or ()),
            cancer_types=tuple(self.cancer_types or ()),
            body_parts=tuple(self.body_parts or ()),
            modalities=tuple(self.modalities or ()),
            access_rights=tuple(self.access_rights or ()),
            licenses=tuple(self.licenses or ()),
            themes=tuple(self.themes or ()),
            concepts=tuple(self.concepts or ()),
        )


@strawberry.enum
class SexValue(Enum):
    FEMALE = "F"
    MALE = "M"
    OTHER = "O"
    UNKNOWN = "U"


@strawberry.enum(description="Kinds of annotation series.")
class AnnotationKindValue(Enum):
    SEG = "SEG"
    RTSTRUCT = "RTSTRUCT"
    SR = "SR"


@strawberry.enum(description="A dimension to break counts down by.")
class StratumValue(Enum):
    SEX = "sex"
    AGE_BAND = "age_band"
    MODALITY = "modality"
    BODY_PART = "body_part"
    YEAR = "year"


@strawberry.input(
    description="Which datasets to count in; each list restricts the scope (values are "
    "alternatives). Cancer types, access rights and licences match the datasets' metadata."
)
class DatasetScopeInput:
    providers: list[strawberry.ID] | None = None
    datasets: list[str] | None = None
    cancer_types: list[str] | None = None
    access_rights: list[str] | None = None
    licenses: list[str] | None = None

    def to_domain(self) -> DatasetScope:
        return DatasetScope(
            providers=tuple(str(p) for p in self.providers or ()),
            datasets=tuple(self.datasets or ()),
            cancer_types=tuple(self.cancer_types or ()),
            access_rights=tuple(self.access_rights or ()),
            licenses=tuple(self.licenses or ()),
        )


@strawberry.input(
    description="Subject criteria, all of which must hold; age in whole years at any study."
)
class SubjectInput:
    sex: list[SexValue] | None = None
    age_min: int | None = None
    age_max: int | None = None
    diagnosis: list[str] | None = strawberry.field(
        default=None, description="Diagnosis codes, where a provider supplies clinical data."
    )

    def to_domain(self) -> SubjectCriteria:
        return SubjectCriteria(
            sex=tuple(Sex(s.value) for s in self.sex or ()),
            age_min=self.age_min,
            age_max=self.age_max,
            diagnosis=tuple(self.diagnosis or ()),
        )


@strawberry.input(
    description="A series the subject must have: every field given holds on that one series; "
    "values in a list are alternatives; ranges are inclusive."
)
class SeriesInput:
    modality: list[str] | None = None
    body_part: list[str] | None = None
    manufacturer: list[str] | None = None
    model: list[str] | None = None
    slice_thickness_min: float | None = None
    slice_thickness_max: float | None = None
    field_strength_min: float | None = None
    field_strength_max: float | None = None
    contrast: bool | None = strawberry.field(
        default=None, description="true: a contrast agent is recorded; false: none is."
    )
    has_annotation: list[AnnotationKindValue] | None = strawberry.field(
        default=None, description="An annotation of one of these kinds was made on it."
    )

    def to_domain(self) -> SeriesCriteria:
        return SeriesCriteria(
            modality=tuple(self.modality or ()),
            body_part=tuple(self.body_part or ()),
            manufacturer=tuple(self.manufacturer or ()),
            model=tuple(self.model or ()),
            slice_thickness_min=self.slice_thickness_min,
            slice_thickness_max=self.slice_thickness_max,
            field_strength_min=self.field_strength_min,
            field_strength_max=self.field_strength_max,
            contrast=self.contrast,
            has_annotation=tuple(AnnotationKind(k.value) for k in self.has_annotation or ()),
        )


@strawberry.input(
    description="A study the subject must have: its year in range, every listed modality in "
    "it, and each series item held by a series of that same study."
)
class StudyInput:
    year_min: int | None = None
    year_max: int | None = None
    modalities: list[str] | None = None
    series: list[SeriesInput] | None = None

    def to_domain(self) -> StudyCriteria:
        return StudyCriteria(
            year_min=self.year_min,
            year_max=self.year_max,
            modalities=tuple(self.modalities or ()),
            series=tuple(s.to_domain() for s in self.series or ()),
        )


@strawberry.input(
    one_of=True,
    description="A subject-level boolean criterion: exactly one field. allOf: [] holds for "
    "every subject, anyOf: [] for none.",
)
class CriterionInput:
    all_of: list[CriterionInput] | None = strawberry.UNSET
    any_of: list[CriterionInput] | None = strawberry.UNSET
    not_: CriterionInput | None = strawberry.field(default=strawberry.UNSET, name="not")
    subject: SubjectInput | None = strawberry.UNSET
    study: StudyInput | None = strawberry.UNSET
    series: SeriesInput | None = strawberry.UNSET

    def to_domain(self) -> Criterion:
        if _given(self.all_of):
            return Criterion(all_of=tuple(c.to_domain() for c in self.all_of or ()))
        if _given(self.any_of):
            return Criterion(any_of=tuple(c.to_domain() for c in self.any_of or ()))
        if _given(self.not_) and self.not_ is not None:
            return Criterion(not_=self.not_.to_domain())
        if _given(self.subject) and self.subject is not None:
            return Criterion(subject=self.subject.to_domain())
        if _given(self.study) and self.study is not None:
            return Criterion(study=self.study.to_domain())
        if _given(self.series) and self.series is not None:
            return Criterion(series=self.series.to_domain())
        raise QueryError(
            "a criterion takes exactly one of allOf, anyOf, not, subject, study, series"
        )


def _given(value: object) -> bool:
    return value is not strawberry.UNSET and value is not None


@strawberry.input(
    description="A cohort-feasibility question. subject, each series item (each its own series, "
    "or all in one study with sameStudy), each study item and the where tree are ANDed."
)
class FeasibilityQuery:
    datasets: DatasetScopeInput | None = None
    subject: SubjectInput | None = None
    series: list[SeriesInput] | None = None
    same_study: bool | None = False
    studies: list[StudyInput] | None = None
    where: CriterionInput | None = None

    def to_domain(self) -> CohortQuery:
        return CohortQuery(
            datasets=(self.datasets or DatasetScopeInput()).to_domain(),
            subject=(self.subject or SubjectInput()).to_domain(),
            series=tuple(s.to_domain() for s in self.series or ()),
            same_study=bool(self.same_study),
            studies=tuple(s.to_domain() for s in self.studies or ()),
            where=self.where.to_domain() if self.where else None,
        )


@strawberry.enum(description="Whether a provider's counts could be had.")
class ProviderStatus(Enum):
    OK = "ok"
    UNAVAILABLE = "unavailable"


@strawberry.type
class ProviderCounts:
    provider: Provider
    subjects: Count
    studies: Count
    series: Count
    status: ProviderStatus = strawberry.field(
        default=ProviderStatus.OK,
        description="UNAVAILABLE: the provider's federated node did not answer (slow, down or "
        "refusing); its counts are then suppressed, never zero.",
    )
    reason: str | None = strawberry.field(
        default=None, description="Why the provider is unavailable."
    )


@strawberry.type(description="Lower bounds of an incomplete total (docs/federation.md).")
class CountBounds:
    subjects: int | None
    studies: int | None
    series: int | None


@strawberry.type
class DatasetCounts:
    dataset: Dataset
    subjects: Count
    studies: Count
    series: Count


@strawberry.type(description="One cell of a strata table.")
class StratumCell:
    values: list[str | None] = strawberry.field(
        description="The value of each dimension, in the table's order; null when unknown."
    )
    subjects: Count
    studies: Count
    series: Count


@strawberry.type(description="Counts broken down by one or more dimensions.")
class StrataTable:
    dimensions: list[StratumValue]
    cells: list[StratumCell]


@strawberry.type(description="What was counted, as the catalogue understood the question.")
class Explanation:
    normalised_query: JSON = strawberry.field(
        description="The canonical form: values cleaned, criteria folded into one tree."
    )
    plan: str = strawberry.field(description="How the cohort index evaluated it.")
    disclosure: str = strawberry.field(description="The disclosure rules applied.")
    epsilon_spent: float = strawberry.field(description="Privacy budget this answer used.")


@strawberry.type(description="A provider the distinct-subjects estimate leaves out, and why.")
class LeftOut:
    provider: Provider
    reason: str


@strawberry.type(
    description="How many distinct subjects match across providers, estimated from HyperLogLog "
    "sketches of linkage codes under the federation key the providers agreed on "
    "(docs/federation.md); disclosed under the same rules as every count."
)
class DistinctSubjects:
    estimate: Count
    relative_error: float = strawberry.field(
        description="The stated relative error of the estimate before rounding and noise "
        "(three standard errors)."
    )
    lower: int | None = strawberry.field(description="A lower bound; null when suppressed.")
    upper: int | None = strawberry.field(
        description="An upper bound; null when suppressed or when a provider is left out."
    )
    providers: list[Provider] = strawberry.field(description="The providers it counts.")
    left_out: list[LeftOut] = strawberry.field(
        description="Providers in scope it does not count (no federation key, a node that "
        "sends no sketch or did not answer)."
    )

    @classmethod
    def of(cls, found: distinct.DistinctSubjects, view: CatalogueView) -> DistinctSubjects:
        return cls(
            estimate=Count.of(found.estimate),
            relative_error=found.relative_error,
            lower=found.lower,
            upper=found.upper,
            providers=[Provider.of(view.provider(p)) for p in found.providers],
            left_out=[
                LeftOut(provider=Provider.of(view.provider(p)), reason=why)
                for p, why in found.missing.items()
            ],
        )


@strawberry.type(description="Disclosure-controlled counts of a feasibility question.")
class FeasibilityResult:
    subjects: Count
    studies: Count
    series: Count
    by_provider: list[ProviderCounts]
    by_dataset: list[DatasetCounts]
    strata: list[StrataTable]
    explanation: Explanation | None
    lower_bound: CountBounds | None = strawberry.field(
        default=None,
        description="Set when the total is suppressed because a provider's counts are "
        "suppressed or unavailable: the sum of the published provider counts.",
    )
    distinct_subjects: DistinctSubjects | None = strawberry.field(
        default=None,
        description="Asked for with `distinctSubjects: true`: the subjects counted once "
        "however many providers hold them (the total adds up the providers' counts).",
    )


def provider_counts(answer: Feasibility, provider: models.Provider, cell: Cell) -> ProviderCounts:
    """A provider's counts, UNAVAILABLE with the reason when its federated node did not answer."""
    reason = answer.unavailable.get(provider.id)
    status = ProviderStatus.OK if reason is None else ProviderStatus.UNAVAILABLE
    return ProviderCounts(
        provider=Provider.of(provider), **counts(cell), status=status, reason=reason
    )


def count_bounds(bounds: tuple[int | None, int | None, int | None] | None) -> CountBounds | None:
    if bounds is None:
        return None
    return CountBounds(subjects=bounds[0], studies=bounds[1], series=bounds[2])


def counts(cell: Cell) -> dict[str, Count]:
    return {
        "subjects": Count.of(cell.subjects),
        "studies": Count.of(cell.studies),
        "series": Count.of(cell.series),
    }
