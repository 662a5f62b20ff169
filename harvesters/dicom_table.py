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
from catalogue.imaging.features import READ_KEYWORDS, REQUIRED_KEYWORDS, SeriesRows

REQUIRED = REQUIRED_KEYWORDS
OPTIONAL = (
    *(k for k in READ_KEYWORDS if k not in REQUIRED),
    "instanceCount",
    "ReferencedSeriesUID",
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


class _FeatureBuilder:
    """Turns raw table batches into SERIES_SCHEMA batches through the shared SeriesRows."""

    def __init__(
        self,
        ctx: HarvestContext,
        source: DicomTableSource,
        name: dict[str, str],
        report: SourceReport,
    ) -> None:
        self._rows = SeriesRows(ctx.pseudonymise)
        self._source = source
        self._name = name
        self._report = report

    def batch(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        data = raw.to_pydict()
        n = raw.num_rows
        columns = {k: data[c] for k, c in self._name.items() if c in data}
        if self._source.dataset_column:
            datasets: list[object] = data[self._source.dataset_column]
        else:
            datasets = [self._source.dataset] * n
        for i in range(n):
            skipped = self._rows.add(datasets[i], {k: v[i] for k, v in columns.items()})
            if skipped:
                self._report.skip(skipped)
        return self._rows.take()
