"""Writing one source's dataset descriptions: incremental, validated, deletions safeguarded.

Each batch a harvester hands over is written at once, skipping datasets whose digest equals the
one last written: changed datasets in one store transaction, new ones with the store's bulk
loader (see `DatasetWriter.put`). When the source ends well and listed all its datasets, those
it listed before but not now are deleted, unless that would be an empty listing or more than the
allowed share of the provider's datasets: then nothing is deleted and the provider is marked
suspect (a portal answering an empty page during an outage must not empty the catalogue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from rdflib import Graph

from catalogue.dcat.terms import Triples, gc_paused
from catalogue.domain.harvest import HarvestedDataset, ProviderConfig, SourceReport
from catalogue.domain.identifiers import dataset_graph, summary_graph
from catalogue.domain.models import Dataset
from catalogue.services.harvest_log import DatasetState, ValidationRecord
from catalogue.services.runtime import Catalogue

Validator = Callable[[Graph], ValidationRecord]
"""Validates one dataset description (SHACL); None when the provider's validation is off."""


@dataclass
class _Load:
    """New datasets being bulk-loaded in the worker thread, committed when it is done."""

    loading: Future[None]
    items: dict[str, HarvestedDataset]


class DatasetWriter:
    """Writes the datasets of one source of one provider within a harvest run.

    New datasets go to the store's bulk loader in a worker thread (the loader releases the
    GIL), while the harvester goes on with the next batch; a load is committed (digests
    recorded, graphs taken off the pending list) before the next write and by `flush`, which
    the caller runs before `finish`."""

    def __init__(
        self,
        catalogue: Catalogue,
        run_id: int,
        provider: ProviderConfig,
        report: SourceReport,
        validator: Validator | None,
        written: dict[str, Dataset],
    ) -> None:
        self._catalogue = catalogue
        self._log = catalogue.log
        self._run_id = run_id
        self._provider = provider
        self._report = report
        self._validator = validator
        self._written = written
        """The models of the datasets written, by identifier, so the index needs no re-read."""
        self._known: dict[str, DatasetState] = self._log.states(provider.id)
        self._listed: set[str] = set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-load")
        self._load: _Load | None = None

    def put(self, items: list[HarvestedDataset]) -> None:
        """Write the new and changed datasets of a batch: the changed ones in one transaction,
        the new ones with the store's bulk loader (listed as pending until their digests are
        recorded, so a crash never leaves part of one behind)."""
        self.flush()
        report, provider_id = self._report, self._provider.id
        fresh: dict[str, HarvestedDataset] = {}
        changed: dict[str, HarvestedDataset] = {}
        for item in items:
            identifier = item.dataset.identifier
            if identifier in self._listed:
                report.warn(f"dataset {identifier!r} listed twice; the later one is kept")
            self._listed.add(identifier)
            report.normalisations.extend(item.normalisations)
            known = self._known.get(identifier)
            # listed twice in this batch: the later one wins
            again = identifier in fresh or identifier in changed
            if not again and known is not None and known.digest == item.description.digest:
                report.unchanged += 1
                continue
            if self._validator is not None:
                record = self._validator(item.description.graph)
                self._log.put_validation(self._run_id, provider_id, identifier, record)
                if not record.conforms and self._provider.validation == "reject":
                    report.rejected += 1
                    continue
            if again:
                pass
            elif known is None:
                report.new += 1
            else:
                report.updated += 1
            (fresh if known is None else changed)[identifier] = item
        if changed:
            self._catalogue.store.replace_graphs(self._graphs(changed))
            self._commit(changed)
        if fresh:
            self._start_load(fresh)

    def _graphs(self, items: dict[str, HarvestedDataset]) -> dict[str, Triples]:
        return {
            dataset_graph(self._provider.id, i): d.description.triples for i, d in items.items()
        }

    def _start_load(self, items: dict[str, HarvestedDataset]) -> None:
        """List the graphs as pending, start loading them, compute the digests meanwhile."""
        graphs = self._graphs(items)
        self._log.add_pending(graphs)
        self._load = _Load(self._worker.submit(self._catalogue.store.add_graphs, graphs), items)
        with gc_paused():  # a batch's Oxigraph terms
            for item in items.values():
                item.description.digest  # noqa: B018 (cached for the commit)

    def flush(self) -> None:
        """Wait for the bulk load under way and commit it; if it failed, drop what it may have
        written, and raise its error."""
        load, self._load = self._load, None
        if load is None:
            return
        names = list(self._graphs(load.items))
        try:
            load.loading.result()
        except BaseException:
            self._catalogue.store.replace_graphs(dict.fromkeys(names, ()))
            self._log.clear_pending(names)
            raise
        self._commit(load.items, completed=names)

    def close(self) -> None:
        """Flush, and stop the worker thread."""
        try:
            self.flush()
        finally:
            self._worker.shutdown()

    def _commit(self, items: dict[str, HarvestedDataset], completed: Sequence[str] = ()) -> None:
        """Record the digests of datasets written (and take `completed` graphs off the pending
        list), and keep their models for the index."""
        source = self._report.source_id
        digests = {i: item.description.digest for i, item in items.items()}
        self._log.put_states(self._provider.id, source, self._run_id, digests, completed=completed)
        for identifier, digest in digests.items():
            self._known[identifier] = DatasetState(source, digest)
        self._written.update({i: item.dataset for i, item in items.items()})

    def finish(self, max_delete_share: float, allow_deletions: bool = False) -> None:
        """Delete what the source no longer lists, if it ended well, listed everything and the
        safeguard allows; a rejected dataset still counts as listed (its old version stays)."""
        report = self._report
        if not (report.ok and report.complete):
            return
        mine = {i for i, s in self._known.items() if s.source == report.source_id}
        gone = sorted(mine - self._listed)
        if not gone:
            return
        total = len(self._known)
        if not allow_deletions:
            if not self._listed:
                report.suspect = (
                    f"empty listing: {len(gone)} datasets kept (deleted nothing); "
                    "harvest again with --allow-deletions if they really are gone"
                )
                return
            if len(gone) > max_delete_share * total:
                report.suspect = (
                    f"would delete {len(gone)} of {total} datasets, more than "
                    f"{max_delete_share:.0%}: deleted nothing; harvest again with "
                    "--allow-deletions if they really are gone"
                )
                return
        provider_id = self._provider.id
        names = [dataset_graph(provider_id, i) for i in gone]
        names += [summary_graph(provider_id, i) for i in gone]
        self._catalogue.store.replace_graphs(dict.fromkeys(names, Graph()))
        self._log.mark_deleted(provider_id, gone)  # index entries go at the provider's end
        for identifier in gone:
            self._known.pop(identifier, None)
        report.deleted = len(gone)
