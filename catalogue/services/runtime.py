"""The running catalogue: settings plus the backends they name, opened from the data folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalogue import plugins
from catalogue.config import Settings
from catalogue.index.base import CohortIndex, DatasetIndex
from catalogue.ontology.annotate import Annotator
from catalogue.ontology.sssom import parse_local
from catalogue.ontology.vocabulary import shipped_vocabulary
from catalogue.services.audit import AuditLog
from catalogue.services.curation import import_default_set
from catalogue.services.harvest_log import HarvestLog
from catalogue.services.mappings import MappingStore
from catalogue.store.base import GraphStore


@dataclass
class Catalogue:
    """Open backends; close it when done (each embedded engine holds a lock on its folder)."""

    settings: Settings
    store: GraphStore
    datasets: DatasetIndex
    cohort: CohortIndex
    log: HarvestLog
    audit: AuditLog
    mappings: MappingStore

    closed: bool = False
    _annotator: Annotator | None = None

    def annotator(self) -> Annotator:
        """The shipped vocabularies with the curators' current decisions (cached per version)."""
        version = self.mappings.version()
        cached = self._annotator
        if cached is None or cached.version != version:
            rejected: set[tuple[str, str, str, str]] = set()
            for mapping in self.mappings.mappings(status="rejected"):
                local = parse_local(mapping.subject_id or "")
                if local is not None and mapping.object_id:
                    rejected.add((local.provider, local.field, local.value, mapping.object_id))
            cached = self._annotator = Annotator(
                shipped_vocabulary(),
                approved=self.mappings.approved_map(),
                rejected=frozenset(rejected),
                version=version,
            )
        return cached

    def close(self) -> None:
        """Close every backend; closing twice is harmless."""
        if self.closed:
            return
        self.closed = True
        self.log.close()
        self.audit.close()
        self.mappings.close()
        self.cohort.close()
        self.datasets.close()
        self.store.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_catalogue(settings: Settings) -> Catalogue:
    """Open the configured backends under the data folder; an unknown name fails here."""
    root: Path = settings.data_dir
    store_cls = plugins.load(plugins.GRAPH_STORES, settings.store.backend)
    datasets_cls = plugins.load(plugins.DATASET_INDEXES, settings.index.datasets)
    cohort_cls = plugins.load(plugins.COHORT_INDEXES, settings.index.cohort)
    store = store_cls.open(root / "store" / settings.store.backend, settings.store)
    try:
        index = settings.index
        datasets = datasets_cls.open(root / "index" / f"datasets-{index.datasets}", index)
        cohort = cohort_cls.open(root / "index" / f"cohort-{index.cohort}", index)
        log = HarvestLog(root / "harvest-log.sqlite")
        audit = AuditLog(root / "audit.sqlite")
        mappings = MappingStore.in_data_dir(root)
        if mappings.version() == 0:  # a new catalogue starts from the shipped default set
            import_default_set(mappings)
        drop_incomplete_graphs(store, log)
    except Exception:
        store.close()
        raise
    catalogue = Catalogue(
        settings=settings,
        store=store,
        datasets=datasets,
        cohort=cohort,
        log=log,
        audit=audit,
        mappings=mappings,
    )
    if datasets.emptied:  # an index of an older schema: rebuilt from the store
        from catalogue.services.ingest import reindex_all  # ingest needs this module

        reindex_all(catalogue)
    return catalogue


def drop_incomplete_graphs(store: GraphStore, log: HarvestLog) -> None:
    """Drop the graphs a harvest began to bulk-load and did not finish (it crashed): they may
    be incomplete, their datasets were never recorded, and the next harvest writes them again."""
    pending = log.pending()
    if pending:
        store.replace_graphs(dict.fromkeys(pending, ()))
        log.clear_pending(pending)
