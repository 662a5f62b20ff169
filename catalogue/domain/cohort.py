"""The cohort-feasibility query model and its exact (not yet disclosed) results."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Sex(StrEnum):
    """Administrative sex as DICOM codes it (PatientSex F, M, O); anything else is UNKNOWN."""

    FEMALE = "F"
    MALE = "M"
    OTHER = "O"
    UNKNOWN = "U"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetScope(_Frozen):
    """Which providers and datasets (dct:identifier) a query looks at; empty means all."""

    providers: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()


class SubjectCriteria(_Frozen):
    """Subject-level criteria; age is in whole years at any of the subject's studies."""

    sex: tuple[Sex, ...] = ()
    age_min: int | None = Field(default=None, ge=0, le=150)
    age_max: int | None = Field(default=None, ge=0, le=150)

    @model_validator(mode="after")
    def _ordered(self) -> SubjectCriteria:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("ageMin is greater than ageMax")
        return self


class SeriesCriteria(_Frozen):
    """One series a subject must have; values within a field are alternatives (OR)."""

    modality: tuple[str, ...] = ()
    body_part: tuple[str, ...] = ()
    manufacturer: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.modality or self.body_part or self.manufacturer)


class CohortQuery(_Frozen):
    """A feasibility question: the subjects in scope meeting every criterion."""

    datasets: DatasetScope = DatasetScope()
    subject: SubjectCriteria = SubjectCriteria()
    series: tuple[SeriesCriteria, ...] = ()

    def normalised(self) -> CohortQuery:
        """Canonical form: value lists sorted and de-duplicated, empty series items dropped."""

        def norm(values: tuple[str, ...], upper: bool = True) -> tuple[str, ...]:
            cleaned = {
                " ".join(v.split()).upper() if upper else " ".join(v.split()).casefold()
                for v in values
            }
            return tuple(sorted(v for v in cleaned if v))

        items = {
            SeriesCriteria(
                modality=norm(s.modality),
                body_part=norm(s.body_part),
                manufacturer=norm(s.manufacturer, upper=False),
            )
            for s in self.series
        }
        return CohortQuery(
            datasets=DatasetScope(
                providers=tuple(sorted(set(self.datasets.providers))),
                datasets=tuple(sorted(set(self.datasets.datasets))),
            ),
            subject=SubjectCriteria(
                sex=tuple(sorted(set(self.subject.sex))),
                age_min=self.subject.age_min,
                age_max=self.subject.age_max,
            ),
            series=tuple(
                sorted((s for s in items if not s.is_empty), key=lambda s: s.model_dump_json())
            ),
        )


class ExactCounts(_Frozen):
    """Subjects, studies and series of one cell, before disclosure control."""

    subjects: int = 0
    studies: int = 0
    series: int = 0


class ExactResult(_Frozen):
    """Exact counts from a cohort index; they never leave the service layer undisclosed."""

    total: ExactCounts
    by_provider: dict[str, ExactCounts]
    by_dataset: dict[tuple[str, str], ExactCounts]


class ExactSummary(_Frozen):
    """What a dataset's features add up to, before disclosure control."""

    subjects: int
    studies: int
    age_min: int | None = None
    age_max: int | None = None
    subjects_by_modality: dict[str, int] = {}
    subjects_by_body_part: dict[str, int] = {}
    subjects_by_manufacturer: dict[str, int] = {}
