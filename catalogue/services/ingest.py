"""Harvest orchestration: every provider's sources into the store and the indexes.

A source that fails is reported and keeps what it had; the other sources and providers go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
)
from catalogue.domain.identifiers import provider_graph as provider_graph_name
from catalogue.domain.models import Dataset, Provider
from catalogue.exceptions import CatalogueError, ConfigError
from catalogue.services.runtime import Catalogue
from catalogue.services.summaries import parse_summary, write_summaries

log = logging.getLogger(__name__)

ProgressHook = Callable[[str, int], None]
"""Called with a label and a number of rows done, for progress bars."""


@dataclass
class HarvestReport:
    """What a harvest run did, source by source."""

    sources: list[SourceReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if not s.ok]


class _Sink:
    """Writes one source's output into the catalogue; each call is atomic."""

    def __init__(
        self, catalogue: Catalogue, provider_id: str, source_id: str, progress: ProgressHook | None
    ) -> None:
        self._catalogue = catalogue
        self._provider_id = provider_id
        self._source_id = source_id
        self._progress = progress

    def put_datasets(self, items: list[HarvestedDataset]) -> None:
        graphs = {
            dataset_graph(self._provider_id, item.dataset.identifier): item.graph for item in items
        }
        self._catalogue.store.replace_graphs(graphs)

    def put_series(self, batches: Iterable[pa.RecordBatch]) -> int:
        def counted() -> Iterable[pa.RecordBatch]:
            for batch in batches:
                if self._progress:
                    self._progress(f"{self._provider_id}/{self._source_id}", batch.num_rows)
                yield batch

        return self._catalogue.cohort.replace_source(self._provider_id, self._source_id, counted())


def _harvest_source(
    catalogue: Catalogue,
    provider: ProviderConfig,
    position: int,
    pseudonymiser: Pseudonymiser,
    progress: ProgressHook | None,
) -> SourceReport:
    source = provider.sources[position]
    source_id = source.source_id(position)
    try:
        harvester: Harvester = plugins.load(plugins.HARVESTERS, source.kind)()
        ctx = HarvestContext(
            provider=provider,
            source_id=source_id,
            pseudonymise=pseudonymiser,
            base_dir=catalogue.settings.data_dir,
        )
        return harvester.harvest(source, ctx, _Sink(catalogue, provider.id, source_id, progress))
    except CatalogueError as exc:
        return SourceReport(provider.id, source_id, source.kind, ok=False, error=str(exc))
    except Exception as exc:  # a harvester bug or odd data must not stop the other sources
        log.exception("source %s/%s failed unexpectedly", provider.id, source_id)
        error = f"unexpected {type(exc).__name__}: {exc}"
        return SourceReport(provider.id, source_id, source.kind, ok=False, error=error)


def harvest(
    catalogue: Catalogue,
    providers: ProvidersFile,
    only: str | None = None,
    progress: ProgressHook | None = None,
) -> HarvestReport:
    """Harvest every provider (or only one) and refresh the datasets index from the store."""
    selected = [p for p in providers.providers if only is None or p.id == only]
    if only is not None and not selected:
        known = ", ".join(p.id for p in providers.providers)
        raise ConfigError(f"unknown provider {only!r} (known: {known})")
    started = time.perf_counter()
    report = HarvestReport()
    master = catalogue.settings.master_secret()
    for provider in selected:
        key = provider.secret.get_secret_value().encode() if provider.secret else None
        pseudonymiser = (
            Pseudonymiser(key) if key else Pseudonymiser.for_provider(master, provider.id)
        )
        public = Provider(id=provider.id, name=provider.name, homepage=provider.homepage)
        catalogue.store.replace_graphs({provider_graph_name(provider.id): provider_graph(public)})
        for position in range(len(provider.sources)):
            report.sources.append(
                _harvest_source(catalogue, provider, position, pseudonymiser, progress)
            )
        write_summaries(catalogue, provider.id)
        reindex_provider(catalogue, provider.id)
    report.seconds = time.perf_counter() - started
    return report


def stored_datasets(catalogue: Catalogue, provider_id: str) -> list[Dataset]:
    """A provider's datasets as the graph store holds them (the source of truth), each with
    the catalogue's computed summary when it has one."""
    out: list[Dataset] = []
    for name in catalogue.store.graph_names(provider_dataset_prefix(provider_id)):
        graph = catalogue.store.graph(name)
        for node in dataset_nodes(graph):
            dataset = parse_dataset(graph, node, provider_id)
            summary = parse_summary(
                catalogue.store.graph(summary_graph(provider_id, dataset.identifier))
            )
            out.append(dataset.model_copy(update={"summary": summary}))
    return out


def reindex_all(catalogue: Catalogue) -> dict[str, int]:
    """Rebuild the datasets index of every provider in the store; datasets per provider."""
    prefix = provider_graph_name("")
    providers = [name.removeprefix(prefix) for name in catalogue.store.graph_names(prefix)]
    return {unquote(p): reindex_provider(catalogue, unquote(p)) for p in providers}


def reindex_provider(catalogue: Catalogue, provider_id: str) -> int:
    """Rebuild a provider's entries in the datasets index from the graph store."""
    datasets = stored_datasets(catalogue, provider_id)
    catalogue.datasets.replace_provider(provider_id, datasets)
    return len(datasets)
