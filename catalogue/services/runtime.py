"""The running catalogue: settings plus the backends they name, opened from the data folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalogue import plugins
from catalogue.config import Settings
from catalogue.index.base import CohortIndex, DatasetIndex
from catalogue.services.audit import AuditLog
from catalogue.services.harvest_log import HarvestLog
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

    closed: bool = False

    def close(self) -> None:
        """Close every backend; closing twice is harmless."""
        if self.closed:
            return
        self.closed = True
        self.log.close()
        self.audit.close()
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
        datasets = datasets_cls(root / "index" / f"datasets-{settings.index.datasets}")
        cohort = cohort_cls(root / "index" / f"cohort-{settings.index.cohort}")
        log = HarvestLog(root / "harvest-log.sqlite")
        audit = AuditLog(root / "audit.sqlite")
        drop_incomplete_graphs(store, log)
    except Exception:
        store.close()
        raise
    return Catalogue(
        settings=settings, store=store, datasets=datasets, cohort=cohort, log=log, audit=audit
    )


def drop_incomplete_graphs(store: GraphStore, log: HarvestLog) -> None:
    """Drop the graphs a harvest began to bulk-load and did not finish (it crashed): they may
    be incomplete, their datasets were never recorded, and the next harvest writes them again."""
    pending = log.pending()
    if pending:
        store.replace_graphs(dict.fromkeys(pending, ()))
        log.clear_pending(pending)
