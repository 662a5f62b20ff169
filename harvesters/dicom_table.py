"""`dicom-table` sources: a parquet or CSV table of DICOM series metadata, one row per series.

Columns are DICOM keywords (PatientID, StudyInstanceUID, SeriesInstanceUID, Modality, ...), as
idc-index-data ships them; another naming is mapped in the config. Only the columns needed are
read; identifiers are pseudonymised and dates cut to the year before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.exceptions import UnreadableSourceError
from catalogue.imaging.features import SERIES_SCHEMA
from catalogue.imaging.normalise import age_in_years, coded, free_text, sex_code, year_of

REQUIRED = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")
OPTIONAL = (
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "Modality",
    "BodyPartExamined",
    "Manufacturer",
    "instanceCount",
)
BATCH_ROWS = 65_536


class DicomTableSource(SourceConfig):
    """A series table; rows go to `dataset`, or to the dataset named in `dataset_column`."""

    kind: Literal["dicom-table"]
    path: Path
    format: Literal["parquet", "csv"] | None = None
    dataset: str | None = None
    dataset_column: str | None = None
    columns: dict[str, str] = Field(
        default_factory=dict, description="DICOM keyword -> column name, where they differ."
    )

    @model_validator(mode="after")
    def _one_dataset_rule(self) -> DicomTableSource:
        if (self.dataset is None) == (self.dataset_column is None):
            raise ValueError("give exactly one of 'dataset' or 'dataset_column'")
        return self


def _batches(path: Path, fmt: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableSourceError(f"{path}: not a readable parquet file: {exc}") from exc
        present = set(parquet.schema_arrow.names)
        yield from parquet.iter_batches(
            batch_size=BATCH_ROWS, columns=[c for c in columns if c in present]
        )
    else:
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    include_missing_columns=True,
                    column_types=dict.fromkeys(columns, pa.string()),
                ),
            )
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableSourceError(f"{path}: not a readable CSV file: {exc}") from exc
        yield from reader


def _present_columns(path: Path, fmt: str) -> set[str]:
    try:
        if fmt == "parquet":
            return set(pq.read_schema(path).names)
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8", "replace")
        return {c.strip().strip('"') for c in header.rstrip("\r\n").split(",")}
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnreadableSourceError(f"{path}: cannot read {fmt} table: {exc}") from exc


class DicomTableHarvester:
    """Streams the table in batches into the cohort index, in one transaction per source."""

    config_model: ClassVar[type[SourceConfig]] = DicomTableSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DicomTableSource)
        path = ctx.resolve(source.path)
        if not path.is_file():
            raise UnreadableSourceError(f"{path}: no such file")
        fmt = source.format or ("csv" if path.suffix.lower() in (".csv", ".tsv") else "parquet")
        name = {k: source.columns.get(k, k) for k in (*REQUIRED, *OPTIONAL)}
        present = _present_columns(path, fmt)
        wanted = [name[k] for k in REQUIRED]
        if source.dataset_column:
            wanted.append(source.dataset_column)
        missing = [c for c in wanted if c not in present]
        if missing:
            raise UnreadableSourceError(f"{path}: missing required column(s): {', '.join(missing)}")
        columns = wanted + [name[k] for k in OPTIONAL if name[k] in present]
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        features = _FeatureBuilder(ctx, source, name, report)
        try:
            report.series = sink.put_series(features.batch(b) for b in _batches(path, fmt, columns))
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableSourceError(
                f"{path}: table unreadable part-way, nothing changed: {exc}"
            ) from exc
        return report


def _count(value: object) -> int | None:
    """A non-negative whole count from an int, a float or a text such as '12' or '12.0'."""
    try:
        number = float(str(value))
    except ValueError:
        return None
    if number != number or number < 0 or number > 2**31 - 1 or number != int(number):
        return None
    return int(number)


class _FeatureBuilder:
    """Turns raw rows into SERIES_SCHEMA batches; caches pseudonyms of repeated identifiers."""

    def __init__(
        self,
        ctx: HarvestContext,
        source: DicomTableSource,
        name: dict[str, str],
        report: SourceReport,
    ) -> None:
        self._pseudo = ctx.pseudonymise
        self._source = source
        self._name = name
        self._report = report
        self._cache: dict[str, int] = {}

    def _pseudonym(self, value: str) -> int:
        found = self._cache.get(value)
        if found is None:
            found = self._cache[value] = self._pseudo(value)
            if len(self._cache) > 2_000_000:
                self._cache.clear()
        return found

    def batch(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        data = raw.to_pydict()
        n = raw.num_rows

        def column(keyword: str) -> list[object]:
            values: list[object] = data.get(self._name[keyword], [None] * n)
            return values

        patients, studies, series = (
            column("PatientID"),
            column("StudyInstanceUID"),
            column("SeriesInstanceUID"),
        )
        if self._source.dataset_column:
            datasets = data[self._source.dataset_column]
        else:
            datasets = [self._source.dataset] * n
        sexes, ages, dates = column("PatientSex"), column("PatientAge"), column("StudyDate")
        modalities, parts = column("Modality"), column("BodyPartExamined")
        makers, counts = column("Manufacturer"), column("instanceCount")
        out: dict[str, list[object]] = {f: [] for f in SERIES_SCHEMA.names}
        for i in range(n):
            patient, study, uid, dataset = patients[i], studies[i], series[i], datasets[i]
            if not (patient and study and uid and dataset):
                self._report.skip("missing identifier or dataset")
                continue
            out["dataset"].append(str(dataset))
            out["subject"].append(self._pseudonym(str(patient)))
            out["study"].append(self._pseudonym(str(study)))
            out["series"].append(self._pseudo(str(uid)))
            out["sex"].append(sex_code(sexes[i]).value)
            out["age"].append(age_in_years(ages[i]))
            out["study_year"].append(year_of(dates[i]))
            out["modality"].append(coded(modalities[i]))
            out["body_part"].append(coded(parts[i]))
            out["manufacturer"].append(free_text(makers[i]))
            out["instances"].append(_count(counts[i]))
        return pa.RecordBatch.from_pydict(out, schema=SERIES_SCHEMA)
