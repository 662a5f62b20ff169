"""The harvest log: runs and what each source did, each dataset's last digest, validation reports.

One SQLite file in the data folder. A dataset's digest is written after its graph, so a crash in
between only means the dataset is rewritten next time. Graphs written with the store's bulk
loader (not atomic) are listed as pending before, and taken off the list in the transaction that
writes their digests: a crash in between leaves them listed, and `open_catalogue` drops them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catalogue.domain.harvest import SourceReport
from catalogue.exceptions import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, ended TEXT, ok INTEGER);
CREATE TABLE IF NOT EXISTS source_runs (
    run_id INTEGER NOT NULL REFERENCES runs(id), provider TEXT NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL, ok INTEGER NOT NULL, error TEXT, complete INTEGER NOT NULL,
    listed INTEGER NOT NULL, new INTEGER NOT NULL, updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL, deleted INTEGER NOT NULL, rejected INTEGER NOT NULL,
    series INTEGER NOT NULL, suspect TEXT, skipped TEXT NOT NULL, warnings TEXT NOT NULL,
    normalisations TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dataset_state (
    provider TEXT NOT NULL, identifier TEXT NOT NULL, source TEXT NOT NULL,
    digest TEXT NOT NULL, run_id INTEGER NOT NULL, indexed INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (provider, identifier));
CREATE TABLE IF NOT EXISTS validation_reports (
    run_id INTEGER NOT NULL, provider TEXT NOT NULL, identifier TEXT NOT NULL,
    conforms INTEGER NOT NULL, violations INTEGER NOT NULL, report TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS validation_by_dataset ON validation_reports (provider, identifier);
CREATE TABLE IF NOT EXISTS pending_graphs (name TEXT PRIMARY KEY);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DatasetState:
    """What the log knows of a stored dataset: the source that last listed it, and its digest."""

    source: str
    digest: str


@dataclass(frozen=True)
class ValidationRecord:
    """A dataset's validation report."""

    conforms: bool
    violations: int
    report: str


@dataclass
class RunRecord:
    """One harvest run and its sources' reports."""

    id: int
    started: str
    ended: str | None
    ok: bool | None
    sources: list[SourceReport] = field(default_factory=list)
    mapping_version: int | None = None
    """The curators' mapping set version the run applied to the harvested values."""


class HarvestLog:
    """Runs, dataset digests and validation reports in `path` (SQLite)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(path, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(_SCHEMA)
            columns = {row[1] for row in self._con.execute("PRAGMA table_info(runs)")}
            if "mapping_version" not in columns:  # a log from before mappings were applied
                with self._con:
                    self._con.execute("ALTER TABLE runs ADD COLUMN mapping_version INTEGER")
        except sqlite3.Error as exc:
            raise StoreError(f"harvest log {path} unusable: {exc}") from exc

    def start_run(self) -> int:
        with self._con:
            cursor = self._con.execute("INSERT INTO runs (started) VALUES (?)", [_now()])
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def end_run(self, run_id: int, ok: bool) -> None:
        with self._con:
            self._con.execute(
                "UPDATE runs SET ended = ?, ok = ? WHERE id = ?", [_now(), int(ok), run_id]
            )

    def record_mapping_version(self, run_id: int, version: int) -> None:
        """The mapping set version the run applied (the last one, if several)."""
        with self._con:
            self._con.execute("UPDATE runs SET mapping_version = ? WHERE id = ?", [version, run_id])

    def record_source(self, run_id: int, r: SourceReport) -> None:
        with self._con:
            self._con.execute(
                "INSERT INTO source_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    run_id, r.provider_id, r.source_id, r.kind, int(r.ok), r.error,
                    int(r.complete), r.datasets, r.new, r.updated, r.unchanged, r.deleted,
                    r.rejected, r.series, r.suspect, json.dumps(r.skipped),
                    json.dumps(r.warnings), json.dumps(r.normalisations),
                ],
            )  # fmt: skip

    def runs(self, last: int = 10) -> list[RunRecord]:
        """The most recent runs first, each with its sources' reports."""
        rows = self._con.execute(
            "SELECT id, started, ended, ok, mapping_version FROM runs ORDER BY id DESC LIMIT ?",
            [last],
        ).fetchall()
        out = []
        for run_id, started, ended, ok, mapping_version in rows:
            record = RunRecord(run_id, started, ended, None if ok is None else bool(ok))
            record.mapping_version = mapping_version
            for row in self._con.execute(
                "SELECT * FROM source_runs WHERE run_id = ? ORDER BY rowid", [run_id]
            ):
                report = SourceReport(row[1], row[2], row[3], ok=bool(row[4]), error=row[5])
                report.complete = bool(row[6])
                (report.datasets, report.new, report.updated, report.unchanged) = row[7:11]
                (report.deleted, report.rejected, report.series) = row[11:14]
                report.suspect = row[14]
                report.skipped = json.loads(row[15])
                report.warnings = json.loads(row[16])
                report.normalisations = json.loads(row[17])
                record.sources.append(report)
            out.append(record)
        return out

    def states(self, provider_id: str) -> dict[str, DatasetState]:
        """identifier -> state, for every dataset the provider has (not deleted)."""
        rows = self._con.execute(
            "SELECT identifier, source, digest FROM dataset_state "
            "WHERE provider = ? AND deleted = 0",
            [provider_id],
        )
        return {identifier: DatasetState(source, digest) for identifier, source, digest in rows}

    def put_states(
        self,
        provider_id: str,
        source_id: str,
        run_id: int,
        digests: dict[str, str],
        completed: Iterable[str] = (),
    ) -> None:
        """Record the digests of datasets written, and take the `completed` graphs off the
        pending list, in one transaction."""
        with self._con:
            self._con.executemany(
                "INSERT OR REPLACE INTO dataset_state VALUES (?, ?, ?, ?, ?, 0, 0)",
                [(provider_id, i, source_id, d, run_id) for i, d in digests.items()],
            )
            self._con.executemany(
                "DELETE FROM pending_graphs WHERE name = ?", [(n,) for n in completed]
            )

    def add_pending(self, names: Iterable[str]) -> None:
        """List graphs about to be bulk-loaded (possibly incomplete until taken off)."""
        with self._con:
            self._con.executemany(
                "INSERT OR IGNORE INTO pending_graphs VALUES (?)", [(n,) for n in names]
            )

    def pending(self) -> list[str]:
        return [r[0] for r in self._con.execute("SELECT name FROM pending_graphs ORDER BY name")]

    def clear_pending(self, names: Iterable[str]) -> None:
        with self._con:
            self._con.executemany(
                "DELETE FROM pending_graphs WHERE name = ?", [(n,) for n in names]
            )

    def set_indexed(self, provider_id: str, identifiers: list[str], indexed: bool) -> None:
        """Mark datasets as needing (False) or having (True) their index entry refreshed: marked
        before the store changes and cleared after the index did, so a crash in between leaves
        them to the next run."""
        with self._con:
            self._con.executemany(
                "UPDATE dataset_state SET indexed = ? WHERE provider = ? AND identifier = ?",
                [(int(indexed), provider_id, i) for i in identifiers],
            )

    def unindexed(self, provider_id: str) -> set[str]:
        """Datasets whose index entry must be (re)written."""
        rows = self._con.execute(
            "SELECT identifier FROM dataset_state "
            "WHERE provider = ? AND indexed = 0 AND deleted = 0",
            [provider_id],
        )
        return {r[0] for r in rows}

    def mark_deleted(self, provider_id: str, identifiers: list[str]) -> None:
        """Datasets deleted from the store whose index entry is still to be removed."""
        with self._con:
            self._con.executemany(
                "UPDATE dataset_state SET deleted = 1 WHERE provider = ? AND identifier = ?",
                [(provider_id, i) for i in identifiers],
            )

    def deleted(self, provider_id: str) -> list[str]:
        rows = self._con.execute(
            "SELECT identifier FROM dataset_state WHERE provider = ? AND deleted = 1 "
            "ORDER BY identifier",
            [provider_id],
        )
        return [r[0] for r in rows]

    def drop_states(self, provider_id: str, identifiers: list[str]) -> None:
        with self._con:
            self._con.executemany(
                "DELETE FROM dataset_state WHERE provider = ? AND identifier = ?",
                [(provider_id, i) for i in identifiers],
            )

    def put_validation(
        self, run_id: int, provider_id: str, identifier: str, record: ValidationRecord
    ) -> None:
        with self._con:
            self._con.execute(
                "INSERT INTO validation_reports VALUES (?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    provider_id,
                    identifier,
                    int(record.conforms),
                    record.violations,
                    record.report,
                ],
            )

    def validations(self, provider_id: str, identifier: str) -> list[tuple[int, ValidationRecord]]:
        """A dataset's validation reports with their run, the newest first."""
        rows = self._con.execute(
            "SELECT run_id, conforms, violations, report FROM validation_reports "
            "WHERE provider = ? AND identifier = ? ORDER BY rowid DESC",
            [provider_id, identifier],
        )
        return [(r, ValidationRecord(bool(c), v, t)) for r, c, v, t in rows]

    def close(self) -> None:
        self._con.close()
