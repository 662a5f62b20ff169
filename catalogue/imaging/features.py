"""The series-feature record every DICOM source produces, and the one builder that makes it.

One row per series. Identifiers are keyed pseudonyms; the record is an allow-list: no name,
identifier, UID in clear, birth date, exact date, institution or free text is ever part of it.
With a federation key, `linkage` holds the subject's HyperLogLog contribution under it (a
register and a rank, catalogue.domain.linkage), never a hash of the identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyarrow as pa

from catalogue.imaging.normalise import (
    age_from_dates,
    age_in_years,
    coded,
    count_of,
    decimal_of,
    free_text,
    sex_code,
    year_of,
)

SERIES_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("subject", pa.int64(), nullable=False),
        pa.field("study", pa.int64(), nullable=False),
        pa.field("series", pa.int64(), nullable=False),
        pa.field("sex", pa.string(), nullable=False),
        pa.field("age", pa.int16()),
        pa.field("study_year", pa.int16()),
        pa.field("modality", pa.string()),
        pa.field("body_part", pa.string()),
        pa.field("manufacturer", pa.string()),
        pa.field("instances", pa.int32()),
        pa.field("model", pa.string()),
        pa.field("slice_thickness", pa.float32()),
        pa.field("pixel_spacing", pa.float32()),
        pa.field("field_strength", pa.float32()),
        pa.field("contrast", pa.bool_()),
        pa.field("sop_class", pa.string()),
        pa.field("is_annotation", pa.bool_(), nullable=False),
        pa.field("annotated_series", pa.int64()),
        pa.field("linkage", pa.int32()),
    ]
)
"""Columns of a series-feature batch, in order."""


def as_series_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` cast to SERIES_SCHEMA (unchanged when it already has it)."""
    if batch.schema == SERIES_SCHEMA:
        return batch
    return pa.Table.from_batches([batch]).cast(SERIES_SCHEMA).to_batches()[0]


FEATURE_COLUMNS = tuple(SERIES_SCHEMA.names)
ANNOTATION_MODALITIES = frozenset({"SEG", "RTSTRUCT", "SR"})

REQUIRED_KEYWORDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")
"""Without all three a series cannot be counted; every DICOM source skips it."""

READ_KEYWORDS = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientSex",
    "PatientAge",
    "PatientBirthDate",
    "StudyDate",
    "Modality",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "SliceThickness",
    "PixelSpacing",
    "MagneticFieldStrength",
    "ContrastBolusAgent",
    "SOPClassUID",
)
"""DICOM attributes a feature is derived from; `instanceCount` and `ReferencedSeriesUID` are
source-level extras (the number of instances, and the series an annotation refers to)."""


class SeriesRows:
    """Accumulates series features from raw DICOM attribute values, pseudonymising on the way.

    `add` takes a mapping of DICOM keyword to raw value (strings, numbers or pydicom values);
    birth and study dates only serve to compute an age and the study year, then are dropped.
    """

    def __init__(
        self,
        pseudonymise: Callable[[str], int],
        cache_limit: int = 2_000_000,
        linkage: Callable[[str], int] | None = None,
    ) -> None:
        self._pseudo = pseudonymise
        self._linkage = linkage
        self._last_patient: tuple[str, int | None] = ("", None)
        self._cache: dict[str, int] = {}
        self._cache_limit = cache_limit
        self._rows: dict[str, list[object]] = {f: [] for f in FEATURE_COLUMNS}
        self._last_series, self._last_series_id = "", 0

    def __len__(self) -> int:
        return len(self._rows["series"])

    def _pseudonym(self, value: str) -> int:
        found = self._cache.get(value)
        if found is None:
            if len(self._cache) >= self._cache_limit:
                self._cache.clear()
            found = self._cache[value] = self._pseudo(value)
        return found

    def add(self, dataset: object, attrs: Mapping[str, object]) -> str | None:
        """Add one series; return the reason it was skipped, or None when added."""
        patient, study, series = (
            patient_key(attrs.get("PatientID")),
            _text(attrs.get("StudyInstanceUID")),
            _text(attrs.get("SeriesInstanceUID")),
        )
        if not (patient and study and series and _text(dataset)):
            return "missing identifier or dataset"
        modality = coded(attrs.get("Modality"))
        referenced = _text(attrs.get("ReferencedSeriesUID"))
        age = age_in_years(attrs.get("PatientAge"))
        if age is None:
            age = age_from_dates(attrs.get("PatientBirthDate"), attrs.get("StudyDate"))
        contrast_agent = attrs.get("ContrastBolusAgent")
        row = self._rows
        row["dataset"].append(str(dataset))
        row["subject"].append(self._pseudonym(patient))
        row["study"].append(self._pseudonym(study))
        if series != self._last_series:  # instances of one series usually come together
            self._last_series, self._last_series_id = series, self._pseudo(series)
        row["series"].append(self._last_series_id)
        row["sex"].append(sex_code(attrs.get("PatientSex")).value)
        row["age"].append(age)
        row["study_year"].append(year_of(attrs.get("StudyDate")))
        row["modality"].append(modality)
        row["body_part"].append(coded(attrs.get("BodyPartExamined")))
        row["manufacturer"].append(free_text(attrs.get("Manufacturer")))
        row["instances"].append(count_of(attrs.get("instanceCount")))
        row["model"].append(free_text(attrs.get("ManufacturerModelName")))
        row["slice_thickness"].append(decimal_of(attrs.get("SliceThickness")))
        row["pixel_spacing"].append(decimal_of(attrs.get("PixelSpacing")))
        row["field_strength"].append(decimal_of(attrs.get("MagneticFieldStrength")))
        row["contrast"].append(True if _text(contrast_agent) else None)
        row["sop_class"].append(_uid(attrs.get("SOPClassUID")))
        row["is_annotation"].append(modality in ANNOTATION_MODALITIES)
        row["annotated_series"].append(self._pseudo(referenced) if referenced else None)
        row["linkage"].append(self._linkage_code(patient))
        return None

    def _linkage_code(self, patient: str) -> int | None:
        """The subject's linkage code under the federation key (None without one)."""
        if self._linkage is None:
            return None
        if self._last_patient[0] != patient:  # a patient's series usually come together
            self._last_patient = (patient, self._linkage(patient))
        return self._last_patient[1]

    def take_tuples(self, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
        """The rows added since the last take, as plain tuples of `columns` (no Arrow)."""
        out = list(zip(*(self._rows[c] for c in columns), strict=True))
        self._rows = {f: [] for f in FEATURE_COLUMNS}
        return out

    def take(self) -> pa.RecordBatch:
        """The rows added since the last call, as one SERIES_SCHEMA batch."""
        batch = pa.RecordBatch.from_pydict(self._rows, schema=SERIES_SCHEMA)
        self._rows = {f: [] for f in FEATURE_COLUMNS}
        return batch


def patient_key(value: object) -> str | None:
    """The text a PatientID is pseudonymised from (None when empty): every source that names
    subjects (series rows, clinical tables) goes through it, so that their pseudonyms join."""
    return _text(value)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _uid(value: object) -> str | None:
    """A standard UID such as a SOP Class (never an instance UID): digits and dots only."""
    text = _text(value)
    if text is None or len(text) > 64 or not text.replace(".", "").isdigit():
        return None
    return text
