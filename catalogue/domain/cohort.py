"""The cohort-feasibility query model and its exact (not yet disclosed) results.

A query selects subjects. Its criteria sit at three levels, each with exists-semantics over the
subject's rows in scope: a subject criterion (sex, age at any study, diagnosis), a study the
subject must have (year, modalities present, series within that same study), a series the
subject must have (modality, body part, manufacturer, model, slice thickness, field strength,
contrast, annotations). Criteria compose with `allOf`, `anyOf` and `not` at subject level.

The flat fields of `CohortQuery` (`subject`, `series`, `studies`) are the simple form and stay as
they were; `where` takes a boolean tree; all of them are ANDed. `criterion()` gives the one
canonical tree a query means: equivalent forms (reordered, repeated, nested, doubly negated,
differently spelt values) normalise to the same tree.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class Sex(StrEnum):
    """Administrative sex as DICOM codes it (PatientSex F, M, O); anything else is UNKNOWN."""

    FEMALE = "F"
    MALE = "M"
    OTHER = "O"
    UNKNOWN = "U"


class AnnotationKind(StrEnum):
    """Kinds of annotation series: segmentations, RT structure sets, structured reports."""

    SEG = "SEG"
    RTSTRUCT = "RTSTRUCT"
    SR = "SR"


class Stratum(StrEnum):
    """A dimension a feasibility answer can be broken down by."""

    SEX = "sex"
    AGE_BAND = "age_band"
    MODALITY = "modality"
    BODY_PART = "body_part"
    YEAR = "year"


class _Frozen(BaseModel):
    """Immutable; fields take their snake_case names or the API's camelCase ones."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel
    )


def _codes(values: tuple[str, ...]) -> tuple[str, ...]:
    """Coded values (modality, body part): whitespace runs collapsed, upper case."""
    return tuple(sorted({" ".join(v.split()).upper() for v in values} - {""}))


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Free names (manufacturer, model): whitespace runs collapsed, case folded."""
    return tuple(sorted({" ".join(v.split()).casefold() for v in values} - {""}))


def _check_range(low: float | None, high: float | None, name: str) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{name}Min is greater than {name}Max")


class DatasetScope(_Frozen):
    """Which datasets a query looks at; each non-empty list restricts it (empty means all).

    `providers` are provider ids, `datasets` dct:identifiers; `cancer_types`, `access_rights` and
    `licenses` match the datasets' catalogue metadata (a value, an IRI or its last segment)."""

    providers: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    cancer_types: tuple[str, ...] = ()
    access_rights: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()

    def normalised(self) -> DatasetScope:
        def clean(values: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(sorted({" ".join(v.split()) for v in values} - {""}))

        return DatasetScope(
            providers=clean(self.providers),
            datasets=clean(self.datasets),
            cancer_types=tuple(sorted({" ".join(v.split()).casefold() for v in self.cancer_types})),
            access_rights=clean(self.access_rights),
            licenses=clean(self.licenses),
        )

    @property
    def by_metadata(self) -> bool:
        """Whether the scope needs the datasets' catalogue metadata to be resolved."""
        return bool(self.cancer_types or self.access_rights or self.licenses)


class SubjectCriteria(_Frozen):
    """Subject-level criteria, all of which must hold: sex, age in whole years at any of the
    subject's studies, and a diagnosis code among `diagnosis` where a provider supplies them."""

    sex: tuple[Sex, ...] = ()
    age_min: int | None = Field(default=None, ge=0, le=150)
    age_max: int | None = Field(default=None, ge=0, le=150)
    diagnosis: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> SubjectCriteria:
        _check_range(self.age_min, self.age_max, "age")
        return self

    @property
    def is_empty(self) -> bool:
        return not (self.sex or self.diagnosis) and self.age_min is None and self.age_max is None


class SeriesCriteria(_Frozen):
    """One series a subject must have; all given fields hold on that one series, values within
    a field are alternatives (OR). Ranges are inclusive; `has_annotation` asks for an annotation
    series of one of those kinds made on it (or, where the reference is unknown, in its study)."""

    modality: tuple[str, ...] = ()
    body_part: tuple[str, ...] = ()
    manufacturer: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    slice_thickness_min: float | None = Field(default=None, ge=0)
    slice_thickness_max: float | None = Field(default=None, ge=0)
    field_strength_min: float | None = Field(default=None, ge=0)
    field_strength_max: float | None = Field(default=None, ge=0)
    contrast: bool | None = None
    has_annotation: tuple[AnnotationKind, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> SeriesCriteria:
        _check_range(self.slice_thickness_min, self.slice_thickness_max, "sliceThickness")
        _check_range(self.field_strength_min, self.field_strength_max, "fieldStrength")
        return self

    @property
    def is_empty(self) -> bool:
        return self == SeriesCriteria()

    def normalised(self) -> SeriesCriteria:
        return self.model_copy(
            update={
                "modality": _codes(self.modality),
                "body_part": _codes(self.body_part),
                "manufacturer": _names(self.manufacturer),
                "model": _names(self.model),
                "has_annotation": tuple(sorted(set(self.has_annotation))),
            }
        )


class StudyCriteria(_Frozen):
    """One study a subject must have: its year in range, every modality in `modalities` present
    in it, and each item of `series` held by a series of that same study."""

    year_min: int | None = Field(default=None, ge=1800, le=2200)
    year_max: int | None = Field(default=None, ge=1800, le=2200)
    modalities: tuple[str, ...] = ()
    series: tuple[SeriesCriteria, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> StudyCriteria:
        _check_range(self.year_min, self.year_max, "year")
        return self

    def normalised(self) -> StudyCriteria:
        items = {s.normalised() for s in self.series}
        return StudyCriteria(
            year_min=self.year_min,
            year_max=self.year_max,
            modalities=_codes(self.modalities),
            series=tuple(sorted((s for s in items if not s.is_empty), key=_sort_key)),
        )


class Criterion(_Frozen):
    """A node of a subject-level boolean tree: exactly one of its fields is set.

    `all_of=()` is true for every subject in scope, `any_of=()` for none."""

    all_of: tuple[Criterion, ...] | None = Field(default=None, alias="allOf")
    any_of: tuple[Criterion, ...] | None = Field(default=None, alias="anyOf")
    not_: Criterion | None = Field(default=None, alias="not")
    subject: SubjectCriteria | None = None
    study: StudyCriteria | None = None
    series: SeriesCriteria | None = None

    @model_validator(mode="before")
    @classmethod
    def _snake_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            renames = {"all_of": "allOf", "any_of": "anyOf", "not_": "not"}
            data = {renames.get(k, k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _one_field(self) -> Criterion:
        fields = type(self).model_fields
        given = [fields[name].alias or name for name in fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a criterion takes exactly one of allOf, anyOf, not, subject, study, series"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def is_true(self) -> bool:
        return self.all_of == ()

    @property
    def is_false(self) -> bool:
        return self.any_of == ()

    def normalised(self) -> Criterion:
        """The canonical form of this tree (see `normalise`)."""
        return normalise(self)

    def leaves(self, positive: bool = True) -> list[tuple[Criterion, bool]]:
        """Every leaf with whether it sits under an even number of `not`s."""
        if self.all_of is not None or self.any_of is not None:
            children = self.all_of if self.all_of is not None else self.any_of
            return [leaf for child in children or () for leaf in child.leaves(positive)]
        if self.not_ is not None:
            return self.not_.leaves(not positive)
        return [(self, positive)]

    def depth(self) -> int:
        children = self.all_of or self.any_of or ((self.not_,) if self.not_ else ())
        return 1 + max((c.depth() for c in children), default=0)

    def to_json(self) -> Any:
        """The tree as the API spells it (camelCase names, defaults left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


TRUE = Criterion(all_of=())
FALSE = Criterion(any_of=())


def _sort_key(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True), sort_keys=True)


def _and(children: list[Criterion]) -> Criterion:
    return _compose("all_of", children)


def _or(children: list[Criterion]) -> Criterion:
    return _compose("any_of", children)


def _compose(op: str, children: list[Criterion]) -> Criterion:
    """Flatten nested nodes of the same operator, absorb constants, sort, de-duplicate."""
    unit, absorbing = (TRUE, FALSE) if op == "all_of" else (FALSE, TRUE)
    flat: dict[str, Criterion] = {}
    for child in children:
        nested = getattr(child, op)
        for item in nested if nested is not None else (child,):
            if item == absorbing:
                return absorbing
            if item != unit:
                flat[_sort_key(item)] = item
    # x AND NOT x is false; x OR NOT x is true
    for item in flat.values():
        if item.not_ is not None and _sort_key(item.not_) in flat:
            return absorbing
    if len(flat) == 1:
        return next(iter(flat.values()))
    ordered = tuple(flat[k] for k in sorted(flat))
    return Criterion(**{op: ordered})


def _subject_leaves(subject: SubjectCriteria) -> list[Criterion]:
    """A subject criterion as separate leaves, one per attribute (their conjunction)."""
    leaves = []
    if subject.sex:
        leaves.append(Criterion(subject=SubjectCriteria(sex=tuple(sorted(set(subject.sex))))))
    if subject.age_min is not None or subject.age_max is not None:
        leaves.append(
            Criterion(subject=SubjectCriteria(age_min=subject.age_min, age_max=subject.age_max))
        )
    if subject.diagnosis:
        leaves.append(Criterion(subject=SubjectCriteria(diagnosis=_codes(subject.diagnosis))))
    return leaves


def normalise(node: Criterion) -> Criterion:
    """Canonical form: leaves cleaned (values sorted, de-duplicated, spelt one way; a subject
    leaf split per attribute; an empty series leaf is any series, an empty study any study),
    `allOf`/`anyOf` flattened, constants absorbed, children sorted and de-duplicated, double
    negation removed, `not` of a constant folded."""
    if node.all_of is not None:
        return _and([normalise(c) for c in node.all_of])
    if node.any_of is not None:
        return _or([normalise(c) for c in node.any_of])
    if node.not_ is not None:
        inner = normalise(node.not_)
        if inner.not_ is not None:
            return inner.not_
        if inner.is_true:
            return FALSE
        if inner.is_false:
            return TRUE
        return Criterion(not_=inner)
    if node.subject is not None:
        leaves = _subject_leaves(node.subject)
        return _and(leaves) if leaves else TRUE
    if node.study is not None:
        return Criterion(study=node.study.normalised())
    assert node.series is not None
    return Criterion(series=node.series.normalised())


class CohortQuery(_Frozen):
    """A feasibility question: the subjects in scope meeting every criterion.

    `series` items must each hold on some series of the subject; with `same_study` they must
    all hold within one study. `studies` items must each hold on some study. `where` is a
    boolean tree. All of these are ANDed."""

    datasets: DatasetScope = DatasetScope()
    subject: SubjectCriteria = SubjectCriteria()
    series: tuple[SeriesCriteria, ...] = ()
    same_study: bool = False
    studies: tuple[StudyCriteria, ...] = ()
    where: Criterion | None = None

    def criterion(self) -> Criterion:
        """The one canonical boolean tree this query's criteria mean."""
        parts = [Criterion(subject=self.subject)]
        if self.same_study and self.series:
            parts.append(Criterion(study=StudyCriteria(series=self.series)))
        else:
            parts.extend(Criterion(series=s) for s in self.series)
        parts.extend(Criterion(study=s) for s in self.studies)
        if self.where is not None:
            parts.append(self.where)
        return normalise(Criterion(all_of=tuple(parts)))

    def normalised(self) -> CohortQuery:
        """Canonical form: the scope cleaned and every criterion folded into `where`."""
        tree = self.criterion()
        return CohortQuery(
            datasets=self.datasets.normalised(), where=None if tree.is_true else tree
        )

    def canonical_json(self) -> str:
        """A stable text of the normalised query (for logs, keys and explanations)."""
        normal = self.normalised()
        return json.dumps(
            {
                "datasets": normal.datasets.model_dump(
                    mode="json", exclude_defaults=True, by_alias=True
                ),
                "where": normal.where.to_json() if normal.where else None,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


class ExactCounts(_Frozen):
    """Subjects, studies and series of one cell, before disclosure control."""

    subjects: int = 0
    studies: int = 0
    series: int = 0


class CellEvidence(_Frozen):
    """What the disclosure layer needs to know of a cell besides its counts, never published:
    order-independent 64-bit fingerprints of the counted subject, study and series sets (equal
    sets give equal fingerprints, whatever query produced them) and a bucketed sketch of the
    subject set (`SKETCH_BUCKETS` counts of subjects per hash bucket), whose L1 distance to
    another cell's sketch is the size of the sets' symmetric difference when it is small."""

    subject_fp: int = 0
    study_fp: int = 0
    series_fp: int = 0
    sketch: tuple[tuple[int, int], ...] = ()
    """Non-empty buckets as (bucket, subjects) pairs, sorted by bucket."""


SKETCH_BUCKETS = 1024


class StratumCell(_Frozen):
    """One cell of a strata table: the values of its dimensions (None: not known)."""

    values: tuple[str | None, ...]
    counts: ExactCounts
    evidence: CellEvidence = CellEvidence()


class StrataTable(_Frozen):
    """Counts broken down by one or more dimensions. Every value of each dimension found in
    the query's scope has its cells (zeros included), whatever the criteria."""

    dimensions: tuple[Stratum, ...]
    cells: tuple[StratumCell, ...]


class ExactResult(_Frozen):
    """Exact counts from a cohort index; they never leave the service layer undisclosed."""

    total: ExactCounts
    by_provider: dict[str, ExactCounts]
    by_dataset: dict[tuple[str, str], ExactCounts]
    strata: tuple[StrataTable, ...] = ()
    evidence: dict[str, CellEvidence] = {}
    """Per cell, keyed 'total', 'provider:<id>', 'dataset:<provider>/<identifier>'."""
    plan: str = ""
    """How the index evaluated the query (for `explain`)."""
    linkage: dict[str, bytes] = {}
    """With `linkage` asked: per provider in scope whose subjects have linkage codes, the
    HyperLogLog registers of its matching subjects (catalogue.domain.linkage.HllSketch)."""


class ExactSummary(_Frozen):
    """What a dataset's features add up to, before disclosure control."""

    subjects: int
    studies: int
    age_min: int | None = None
    age_max: int | None = None
    subjects_by_modality: dict[str, int] = {}
    subjects_by_body_part: dict[str, int] = {}
    subjects_by_manufacturer: dict[str, int] = {}
