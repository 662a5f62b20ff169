"""`clinical-table` sources: a parquet or CSV table of diagnoses, one row per (patient, code).

Only two columns are read: the PatientID, pseudonymised with the provider's key exactly as the
DICOM sources do it (so a subject's diagnoses join its series rows), and the diagnosis code,
normalised (whitespace collapsed, upper case) and prefixed with the source's `code_system` when
it comes bare. Nothing else of the table is read or kept. The source's diagnoses are replaced in
one transaction: a table that cannot be read, or only part-way, changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.imaging.features import patient_key
from harvesters.tables import Table

DEFAULT_COLUMNS = {"PatientID": "PatientID", "code": "diagnosis_code"}
"""What each column is called unless `columns` says otherwise."""
CACHE_LIMIT = 2_000_000
"""Pseudonyms kept in memory at most (a patient usually has several rows)."""

MISSING_PATIENT = "missing PatientID"
EMPTY_CODE = "empty diagnosis code"


class ClinicalTableSource(SourceConfig):
    """A diagnosis table: one row per (patient, diagnosis code)."""

    kind: Literal["clinical-table"]
    path: Path
    format: Literal["parquet", "csv"] | None = Field(
        default=None, description="Default: csv for a .csv file, else parquet."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="`PatientID` and `code` -> column name, where they are not named "
        "PatientID and diagnosis_code.",
    )
    code_system: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9._-]*:$",
        description="Prefix given to bare codes (without a colon), e.g. 'ICD10CM:' makes "
        "'C34.1' 'ICD10CM:C34.1'.",
    )

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown column key(s) {', '.join(unknown)}: "
                f"only {', '.join(DEFAULT_COLUMNS)} can be mapped"
            )
        return value


def normalise_code(raw: object, code_system: str | None) -> str | None:
    """A diagnosis code as the index stores and queries compare it: whitespace runs collapsed,
    upper case, `code_system` prepended when the code is bare; None when empty."""
    if raw is None:
        return None
    code = " ".join(str(raw).split()).upper()
    if not code:
        return None
    if code_system and ":" not in code:
        code = code_system.upper() + code
    return code


class _DiagnosisRows:
    """Turns raw batches into (subject pseudonym, code) pairs, counting the rows it skips."""

    def __init__(
        self, pseudonymise: Callable[[str], int], code_system: str | None, report: SourceReport
    ) -> None:
        self._pseudo = pseudonymise
        self._code_system = code_system
        self._report = report
        self._cache: dict[str, int] = {}

    def _pseudonym(self, patient: str) -> int:
        found = self._cache.get(patient)
        if found is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[patient] = self._pseudo(patient)
        return found

    def pairs(
        self, batches: Iterable[pa.RecordBatch], patient_column: str, code_column: str
    ) -> Iterator[tuple[int, str]]:
        for batch in batches:
            patients = batch.column(patient_column).to_pylist()
            codes = batch.column(code_column).to_pylist()
            for raw_patient, raw_code in zip(patients, codes, strict=True):
                patient = patient_key(raw_patient)
                if patient is None:
                    self._report.skip(MISSING_PATIENT)
                    continue
                code = normalise_code(raw_code, self._code_system)
                if code is None:
                    self._report.skip(EMPTY_CODE)
                    continue
                yield self._pseudonym(patient), code


class ClinicalTableHarvester:
    """Streams the table's (patient, code) pairs into the cohort index, one transaction."""

    config_model: ClassVar[type[SourceConfig]] = ClinicalTableSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, ClinicalTableSource)
        name = {k: source.columns.get(k, default) for k, default in DEFAULT_COLUMNS.items()}
        wanted = list(dict.fromkeys(name.values()))
        table = Table.open(ctx.resolve(source.path), source.format, wanted)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        rows = _DiagnosisRows(ctx.pseudonymise, source.code_system, report)
        batches = table.batches(wanted)
        with table.streaming():
            stored = sink.put_diagnoses(rows.pairs(batches, name["PatientID"], name["code"]))
        if not stored:
            report.warn("no diagnosis code stored: check the table and its `columns` mapping")
        return report
