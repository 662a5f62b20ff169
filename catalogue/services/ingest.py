"""Harvest orchestration: every provider's sources into the store and the indexes.

A source that fails is reported and keeps what it had; the other sources and providers go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import unquote

import pyarrow as pa

from catalogue import plugins
from catalogue.config import ProvidersFile
from catalogue.dcat.parser import dataset_nodes, parse_dataset
from catalogue.dcat.serialiser import provider_graph
from catalogue.domain.harvest import (
    HarvestContext,
    HarvestedDataset,
    Harvester,
    ProviderConfig,
    SourceReport,
)
from catalogue.domain.identifiers import (
    Pseudonymiser,
    dataset_graph,
    provider_dataset_prefix,
    summary_graph,
    summary_prefix,
)
from catalogue.domain.identifiers import provider_graph as provider_graph_name
from catalogue.domain.linkage import Linkage
from catalogue.domain.models import Dataset, DatasetSummary, Provider
from catalogue.exceptions import CatalogueError, ConfigError
from catalogue.index.base import DatasetIndex
from catalogue.net.http import HttpClient
from catalogue.services.curation import apply_mappings
from catalogue.services.dataset_sync import DatasetWriter
from catalogue.services.runtime import Catalogue
from catalogue.services.search import annotate_dataset
from catalogue.services.summaries import parse_summary, write_summaries
from catalogue.services.validation import validate_description

log = logging.getLogger(__name__)

ProgressHook = Callable[[str, int], None]
"""Called with a label and a number of rows done, for progress bars."""


@dataclass
class HarvestReport:
    """What a harvest run did, source by source."""

    sources: list[SourceReport] = field(default_factory=list)
    seconds: float = 0.0
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if not s.ok]


class _Sink:
    """Writes one source's output into the catalogue; each call is atomic."""

    def __init__(
        self,
        catalogue: Catalogue,
        provider_id: str,
        source_id: str,
        progress: ProgressHook | None,
        datasets: DatasetWriter,
    ) -> None:
        self._catalogue = catalogue
        self._provider_id = provider_id
        self._source_id = source_id
        self._progress = progress
        self._datasets = datasets

    def put_datasets(self, items: list[HarvestedDataset]) -> None:
        self._datasets.put(items)

    def put_series(self, batches: Iterable[pa.RecordBatch]) -> int:
        def counted() -> Iterable[pa.RecordBatch]:
            for batch in batches:
                if self._progress:
                    self._progress(f"{self._provider_id}/{self._source_id}", batch.num_rows)
                yield batch

        return self._catalogue.cohort.replace_source(self._provider_id, self._source_id, counted())

    def put_diagnoses(self, rows: Iterable[tuple[int, str]]) -> int:
        return self._catalogue.cohort.replace_diagnoses(self._provider_id, self._source_id, rows)


@dataclass(frozen=True)
class _Run:
    """What every source of one harvest run shares."""

    catalogue: Catalogue
    run_id: int
    progress: ProgressHook | None
    allow_deletions: bool
    linkage: Linkage | None = None


def _harvest_source(
    run: _Run,
    provider: ProviderConfig,
    position: int,
    pseudonymiser: Pseudonymiser,
    written: dict[str, Dataset],
    http: HttpClient,
) -> SourceReport:
    catalogue = run.catalogue
    source = provider.sources[position]
    source_id = source.source_id(position)
    report = SourceReport(provider.id, source_id, source.kind)
    validator = None if provider.validation == "off" else validate_description
    writer = DatasetWriter(catalogue, run.run_id, provider, report, validator, written)
    try:
        harvester: Harvester = plugins.load(plugins.HARVESTERS, source.kind)()
        ctx = HarvestContext(
            provider=provider,
            source_id=source_id,
            pseudonymise=pseudonymiser,
            base_dir=catalogue.settings.data_dir,
            http=http,
            linkage=run.linkage,
        )
        sink = _Sink(catalogue, provider.id, source_id, run.progress, writer)
        done = harvester.harvest(source, ctx, sink)
        _merge(done, into=report)
    except CatalogueError as exc:
        report.ok, report.error = False, str(exc)
    except Exception as exc:  # a harvester bug or odd data must not stop the other sources
        log.exception("source %s/%s failed unexpectedly", provider.id, source_id)
        report.ok, report.error = False, f"unexpected {type(exc).__name__}: {exc}"
    try:
        writer.close()  # the last bulk load is committed (or undone) before any deletion
    except CatalogueError as exc:
        report.ok, report.error = False, f"writing new datasets failed: {exc}"
    try:
        share = provider.max_delete_share
        if share is None:
            share = catalogue.settings.harvest.max_delete_share
        writer.finish(share, run.allow_deletions)
    except CatalogueError as exc:
        report.ok, report.error = False, f"deleting datasets no longer listed failed: {exc}"
    catalogue.log.record_source(run.run_id, report)
    return report


def _merge(done: SourceReport, into: SourceReport) -> None:
    """The harvester's own report into the one the sink has been counting in (a harvester
    never sees that one: it reports in its own)."""
    into.ok, into.error, into.complete = done.ok, done.error, done.complete
    into.datasets, into.series = done.datasets, done.series
    for reason, count in done.skipped.items():
        into.skip(reason, count)
    into.warnings.extend(done.warnings)
    into.normalisations.extend(done.normalisations)


def harvest(
    catalogue: Catalogue,
    providers: ProvidersFile,
    only: str | None = None,
    progress: ProgressHook | None = None,
    allow_deletions: bool = False,
    started_run: Callable[[int], None] | None = None,
) -> HarvestReport:
    """Harvest every provider (or only one), recording the run in the harvest log, and bring the
    datasets index up to date with what changed; `started_run` is told the run's id as soon as
    the log has it."""
    selected = [p for p in providers.providers if only is None or p.id == only]
    if only is not None and not selected:
        known = ", ".join(p.id for p in providers.providers)
        raise ConfigError(f"unknown provider {only!r} (known: {known})")
    started = time.perf_counter()
    report = HarvestReport()
    master = catalogue.settings.master_secret()
    run = _Run(
        catalogue,
        catalogue.log.start_run(),
        progress,
        allow_deletions,
        catalogue.settings.linker(),
    )
    report.run_id = run.run_id
    if started_run is not None:
        started_run(run.run_id)
    http = HttpClient(catalogue.settings.http)
    try:
        for provider in selected:
            key = provider.secret.get_secret_value().encode() if provider.secret else None
            pseudonymiser = (
                Pseudonymiser(key) if key else Pseudonymiser.for_provider(master, provider.id)
            )
            public = Provider(id=provider.id, name=provider.name, homepage=provider.homepage)
            catalogue.store.replace_graphs(
                {provider_graph_name(provider.id): provider_graph(public)}
            )
            written: dict[str, Dataset] = {}
            for position in range(len(provider.sources)):
                report.sources.append(
                    _harvest_source(run, provider, position, pseudonymiser, written, http)
                )
            apply_mappings(catalogue, provider.id, run.run_id)
            unindexed = partial(_unindexed, run, provider.id)
            known_iri = _known_iris(catalogue, provider.id, written)
            summaries = write_summaries(catalogue, provider.id, known_iri, unindexed)
            _update_index(catalogue, provider.id, written, summaries)
    finally:
        http.close()
        catalogue.log.end_run(run.run_id, report.ok)
    report.seconds = time.perf_counter() - started
    return report


def _unindexed(run: _Run, provider_id: str, identifiers: set[str]) -> None:
    run.catalogue.log.set_indexed(provider_id, sorted(identifiers), False)


def _known_iris(
    catalogue: Catalogue, provider_id: str, written: Mapping[str, Dataset]
) -> Callable[[str], str | None]:
    """A dataset's IRI without reading its graph: from its model written in this run, or from
    its datasets-index entry if that is current (not changed or deleted since); else None."""
    current = set(catalogue.log.states(provider_id)) - catalogue.log.unindexed(provider_id)

    def known_iri(identifier: str) -> str | None:
        dataset = written.get(identifier)
        if dataset is None and identifier in current:
            dataset = catalogue.datasets.get(provider_id, identifier)
        return None if dataset is None else dataset.iri

    return known_iri


def _update_index(
    catalogue: Catalogue,
    provider_id: str,
    written: Mapping[str, Dataset],
    summaries: Mapping[str, DatasetSummary],
) -> None:
    """Bring the datasets index in line with the store for one provider: (re)index the datasets
    marked as changed and remove those marked deleted (in this run, or in a run that stopped
    before indexing). Models written in this run are not read back, nor are the summaries
    `write_summaries` just stored."""
    pending = sorted(catalogue.log.unindexed(provider_id))
    deleted = catalogue.log.deleted(provider_id)
    if not pending and not deleted:
        return
    datasets = []
    for identifier in pending:
        stored = _stored_models(catalogue, provider_id, dataset_graph(provider_id, identifier))
        dataset = written.get(identifier) or next(stored, None)
        if dataset is not None:
            datasets.append(dataset.model_copy(update={"summary": summaries.get(identifier)}))
    annotator = catalogue.annotator()
    annotated = [annotate_dataset(d, annotator) for d in datasets]
    catalogue.datasets.update(annotated, [(provider_id, i) for i in deleted])
    catalogue.log.set_indexed(provider_id, pending, True)
    catalogue.log.drop_states(provider_id, deleted)


def _stored_models(catalogue: Catalogue, provider_id: str, name: str) -> Iterator[Dataset]:
    """The models of the datasets a stored graph describes (none if it is absent), read when
    first asked for."""
    graph = catalogue.store.graph(name)
    for node in dataset_nodes(graph):
        yield parse_dataset(graph, node, provider_id)


def stored_datasets(catalogue: Catalogue, provider_id: str) -> list[Dataset]:
    """A provider's datasets as the graph store holds them (the source of truth), each with
    the catalogue's computed summary when it has one."""
    summarised = set(catalogue.store.graph_names(summary_prefix(provider_id)))

    def summary(identifier: str) -> DatasetSummary | None:
        name = summary_graph(provider_id, identifier)
        return parse_summary(catalogue.store.graph(name)) if name in summarised else None

    return [
        dataset.model_copy(update={"summary": summary(dataset.identifier)})
        for name in catalogue.store.graph_names(provider_dataset_prefix(provider_id))
        for dataset in _stored_models(catalogue, provider_id, name)
    ]


def reindex_all(catalogue: Catalogue, into: DatasetIndex | None = None) -> dict[str, int]:
    """Rebuild the datasets index (or `into` another) of every provider in the store; datasets
    per provider."""
    prefix = provider_graph_name("")
    providers = [name.removeprefix(prefix) for name in catalogue.store.graph_names(prefix)]
    annotator = catalogue.annotator()
    datasets = {
        unquote(p): [annotate_dataset(d, annotator) for d in stored_datasets(catalogue, unquote(p))]
        for p in providers
    }
    (into or catalogue.datasets).replace_all(datasets)
    return {p: len(found) for p, found in datasets.items()}
