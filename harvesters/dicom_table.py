"""`dicom-table` sources: a parquet or CSV table of DICOM series metadata, one row per series.

Columns are DICOM keywords (PatientID, StudyInstanceUID, SeriesInstanceUID, Modality, ...), as
idc-index-data ships them; another naming is mapped in the config. Only the columns needed are
read; identifiers are pseudonymised and dates cut to the year before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.imaging.features import READ_KEYWORDS, REQUIRED_KEYWORDS, SeriesRows
from harvesters.tables import Table

REQUIRED = REQUIRED_KEYWORDS
OPTIONAL = (
    *(k for k in READ_KEYWORDS if k not in REQUIRED),
    "instanceCount",
    "ReferencedSeriesUID",
)


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


class DicomTableHarvester:
    """Streams the table in batches into the cohort index, in one transaction per source."""

    config_model: ClassVar[type[SourceConfig]] = DicomTableSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DicomTableSource)
        name = {k: source.columns.get(k, k) for k in (*REQUIRED, *OPTIONAL)}
        wanted = [name[k] for k in REQUIRED]
        if source.dataset_column:
            wanted.append(source.dataset_column)
        table = Table.open(ctx.resolve(source.path), source.format, wanted, (".csv", ".tsv"))
        columns = wanted + [name[k] for k in OPTIONAL if name[k] in table.columns]
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        features = _FeatureBuilder(ctx, source, name, report)
        batches = table.batches(columns, missing_as_null=True)
        with table.streaming():
            report.series = sink.put_series(features.batch(b) for b in batches)
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
        self._rows = SeriesRows(ctx.pseudonymise, linkage=ctx.linkage)
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
