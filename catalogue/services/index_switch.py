"""`catalogue reindex --to BACKEND`: build the datasets and cohort indexes of another backend
(docs/scaling.md) from the graph store (datasets) and from the current cohort index (the
harvested features, copied source by source), check that both answer alike, and leave the
current ones untouched; the deployment then switches with CATALOGUE_INDEX__BACKEND."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from catalogue import plugins
from catalogue.config import IndexSettings
from catalogue.domain.cohort import CohortQuery
from catalogue.exceptions import ConfigError, StoreError
from catalogue.index.base import CohortIndex, DatasetIndex
from catalogue.services.ingest import ProgressHook, reindex_all
from catalogue.services.runtime import Catalogue


@dataclass
class SwitchReport:
    backend: str
    datasets: dict[str, int] = field(default_factory=dict)
    """Datasets indexed per provider."""
    series: dict[tuple[str, str], int] = field(default_factory=dict)
    """Series rows copied per (provider, source)."""
    diagnoses: int = 0


def target_settings(current: IndexSettings, backend: str) -> IndexSettings:
    """The index settings of `backend` ("embedded" or "elasticsearch"), the rest kept."""
    if backend not in ("embedded", "elasticsearch"):
        raise ConfigError(f"unknown index backend {backend!r} (known: embedded, elasticsearch)")
    target = IndexSettings(backend=backend, elasticsearch=current.elasticsearch)
    if (target.datasets, target.cohort) == (current.datasets, current.cohort):
        raise ConfigError(f"the indexes are already on {backend}")
    return target


def switch_indexes(
    catalogue: Catalogue,
    backend: str,
    root: Path | None = None,
    progress: ProgressHook | None = None,
) -> SwitchReport:
    """Fill `backend`'s indexes (embedded ones under `root`, default the data folder; series
    rows told to `progress` per source as they are copied) and check them against the current
    ones: every provider's and dataset's exact counts of the
    whole cohort, and the number of datasets, must agree (StoreError if not)."""
    tell = progress or (lambda _label, _rows: None)
    target = target_settings(catalogue.settings.index, backend)
    base = (root or catalogue.settings.data_dir) / "index"
    datasets_cls = plugins.load(plugins.DATASET_INDEXES, target.datasets)
    cohort_cls = plugins.load(plugins.COHORT_INDEXES, target.cohort)
    report = SwitchReport(backend)
    datasets: DatasetIndex = datasets_cls.open(base / f"datasets-{target.datasets}", target)
    try:
        cohort: CohortIndex = cohort_cls.open(base / f"cohort-{target.cohort}", target)
        try:
            report.datasets = reindex_all(catalogue, into=datasets)
            providers = set()
            for provider_id, source_id in catalogue.cohort.sources():
                label = f"{provider_id}/{source_id}"
                rows = _counted(catalogue.cohort.export(provider_id, source_id), label, tell)
                report.series[(provider_id, source_id)] = cohort.replace_source(
                    provider_id, source_id, rows
                )
                codes = catalogue.cohort.export_diagnoses(provider_id, source_id)
                report.diagnoses += cohort.replace_diagnoses(provider_id, source_id, codes)
                providers.add(provider_id)
            for provider_id in sorted(providers):
                version = catalogue.cohort.mapping_version(provider_id)
                if version is not None:
                    rows3 = catalogue.cohort.value_concepts(provider_id)
                    cohort.replace_value_concepts(provider_id, rows3, version)
            _check(catalogue, datasets, cohort)
        finally:
            cohort.close()
    finally:
        datasets.close()
    return report


def _counted(
    batches: Iterator[pa.RecordBatch], label: str, tell: ProgressHook
) -> Iterator[pa.RecordBatch]:
    """The batches, each told to the progress hook as it is taken."""
    for batch in batches:
        yield batch
        tell(label, batch.num_rows)


def _check(catalogue: Catalogue, datasets: DatasetIndex, cohort: CohortIndex) -> None:
    want = catalogue.cohort.count(CohortQuery())
    got = cohort.count(CohortQuery())
    if (got.by_provider, got.by_dataset) != (want.by_provider, want.by_dataset):
        raise StoreError("the new cohort index does not count the whole cohort alike")
    have = len(datasets.all())
    if have != len(catalogue.datasets.all()):
        raise StoreError(f"the new datasets index holds {have} datasets, not as many as now")
