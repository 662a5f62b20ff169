"""Writing one source's dataset descriptions: incremental, validated, deletions safeguarded.

Each batch a harvester hands over is written in one store transaction, skipping datasets whose
digest equals the one last written. When the source ends well and listed all its datasets, those
it listed before but not now are deleted, unless that would be an empty listing or more than the
allowed share of the provider's datasets: then nothing is deleted and the provider is marked
suspect (a portal answering an empty page during an outage must not empty the catalogue).
"""

from __future__ import annotations

from collections.abc import Callable

from rdflib import Graph

from catalogue.dcat.digest import description_digest
from catalogue.domain.harvest import HarvestedDataset, ProviderConfig, SourceReport
from catalogue.domain.identifiers import dataset_graph, summary_graph
from catalogue.domain.models import Dataset
from catalogue.services.harvest_log import DatasetState, ValidationRecord
from catalogue.services.runtime import Catalogue

Validator = Callable[[Graph], ValidationRecord]
"""Validates one dataset description (SHACL); None when the provider's validation is off."""


class DatasetWriter:
    """Writes the datasets of one source of one provider within a harvest run."""

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

    def put(self, items: list[HarvestedDataset]) -> None:
        """Write the new and changed datasets of a batch in one transaction."""
        report, provider_id = self._report, self._provider.id
        graphs: dict[str, Graph] = {}
        digests: dict[str, str] = {}
        written: dict[str, Dataset] = {}
        for item in items:
            identifier = item.dataset.identifier
            if identifier in self._listed:
                report.warn(f"dataset {identifier!r} listed twice; the later one is kept")
            self._listed.add(identifier)
            report.normalisations.extend(item.normalisations)
            digest = description_digest(item.graph)
            known = self._known.get(identifier)
            again = identifier in written  # listed twice in this batch: the later one wins
            if not again and known is not None and known.digest == digest:
                report.unchanged += 1
                continue
            if self._validator is not None:
                record = self._validator(item.graph)
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
            graphs[dataset_graph(provider_id, identifier)] = item.graph
            digests[identifier] = digest
            written[identifier] = item.dataset
        if graphs:
            self._catalogue.store.replace_graphs(graphs)
            self._log.put_states(provider_id, self._report.source_id, self._run_id, digests)
            for identifier, digest in digests.items():
                self._known[identifier] = DatasetState(self._report.source_id, digest)
            self._written.update(written)

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
