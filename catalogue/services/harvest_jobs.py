"""Harvests started over the API: one at a time, in a background thread of the server process,
on the catalogue the server holds open (no other process can open its data folder).

The providers file is read when a harvest is asked for, so a provider added to it since the
server started can be harvested. When the harvest ends, the read view is refreshed.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass

from catalogue.config import read_providers
from catalogue.exceptions import (
    CatalogueError,
    HarvestError,
    HarvestRunningError,
    HarvestUnavailableError,
    QueryError,
)
from catalogue.ontology.store import ensure_vocabularies
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.ingest import harvest

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A harvest this process started: its provider, and its run once the log has it."""

    provider_id: str
    run_id: int | None = None


class HarvestJobs:
    """Starts harvests of one provider in a background thread, one at a time."""

    def __init__(self, view: CatalogueView) -> None:
        self._view = view
        self._lock = threading.Lock()
        self._running: Job | None = None
        self._thread: threading.Thread | None = None

    def running_run(self) -> int | None:
        """The run of the harvest under way, if any."""
        with self._lock:
            return None if self._running is None else self._running.run_id

    def start(self, provider_id: str) -> int:
        """Start harvesting one provider of the providers file; returns its run, which is in
        the log (not ended) by then. Refused while another harvest runs."""
        catalogue = self._view.catalogue
        path = catalogue.settings.providers
        if path is None:
            raise HarvestUnavailableError(
                "this server has no providers file (CATALOGUE_PROVIDERS), so it cannot harvest "
                "on request"
            )
        parsed, errors = read_providers(path)
        if provider_id not in {p.id for p in parsed.providers}:
            known = ", ".join(p.id for p in parsed.providers) or "none"
            invalid = f"; {len(errors)} invalid entries in the providers file" if errors else ""
            raise QueryError(f"unknown provider {provider_id!r} (known: {known}){invalid}")
        job = Job(provider_id)
        with self._lock:
            if self._running is not None:
                running = self._running
                run = "starting" if running.run_id is None else f"run {running.run_id}"
                raise HarvestRunningError(
                    f"a harvest is already running ({run}, provider {running.provider_id!r}); "
                    "ask again when it has ended"
                )
            self._running = job
        started = threading.Event()
        failures: list[str] = []

        def started_run(run_id: int) -> None:
            with self._lock:
                job.run_id = run_id
            started.set()

        def work() -> None:
            try:
                ensure_vocabularies(catalogue.store)
                harvest(catalogue, parsed, only=provider_id, started_run=started_run)
            except Exception as exc:  # logged: nobody waits for the thread
                log.exception("the harvest of %s started over the API failed", provider_id)
                failures.append(str(exc) if isinstance(exc, CatalogueError) else "see the log")
            finally:
                self._view.refresh()
                with self._lock:
                    self._running = None
                started.set()

        thread = threading.Thread(target=work, name=f"harvest-{provider_id}", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        started.wait()
        if job.run_id is None:
            why = failures[0] if failures else "unknown reason"
            raise HarvestError(f"the harvest of {provider_id!r} failed before it started: {why}")
        return job.run_id

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the last harvest started to end; False if it is still running."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True


_JOBS: weakref.WeakKeyDictionary[CatalogueView, HarvestJobs] = weakref.WeakKeyDictionary()
_JOBS_LOCK = threading.Lock()


def jobs_for(view: CatalogueView) -> HarvestJobs:
    """The harvest jobs of the catalogue a view reads (one per view: one per server)."""
    with _JOBS_LOCK:
        jobs = _JOBS.get(view)
        if jobs is None:
            jobs = _JOBS[view] = HarvestJobs(view)
        return jobs
