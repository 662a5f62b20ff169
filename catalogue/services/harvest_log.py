"""The harvest log: runs and what each source did, each dataset's last digest, validation reports.

One SQLite file in the data folder. A dataset's digest is written after its graph, so a crash in
between only means the dataset is rewritten next time. Graphs written with the store's bulk
loader (not atomic) are listed as pending before, and taken off the list in the transaction that
writes their digests: a crash in between leaves them listed, and `open_catalogue` drops them.

The change log (`changes`) records each dataset created, updated or deleted, in the transaction
that changes its state, with a sequence number that only grows: downstream harvesters read it as
a feed (services/changes.py). A dataset whose served entry is not yet refreshed (`indexed` 0, or
deleted but still in the index) holds the feed back at its latest change (`change_horizon`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

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

_CHANGES = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, identifier TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    changed_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_dataset ON changes (provider, identifier, seq);
CREATE INDEX IF NOT EXISTS dataset_state_unserved ON dataset_state (provider, identifier)
    WHERE indexed = 0 OR deleted = 1;
CREATE TABLE IF NOT EXISTS change_log (epoch TEXT NOT NULL);
"""
"""The change log, created (and seeded from `dataset_state`) once per harvest log."""

_STAMP = "MAX(?, COALESCE((SELECT changed_at FROM changes ORDER BY seq DESC LIMIT 1), ''))"
"""A change's time: now, but never before the previous change (the clock may step back), so
that `changed_at` grows with `seq`."""
_LATEST = (
    "c.seq = (SELECT MAX(d.seq) FROM changes d "
    "WHERE d.provider = c.provider AND d.identifier = c.identifier)"
)
"""The change `c` is its dataset's latest."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamp() -> str:
    """Now in UTC to the microsecond, in the fixed-width form `changed_at` is compared in."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


ChangeKind = Literal["created", "updated", "deleted"]


@dataclass(frozen=True)
class ChangeRecord:
    """One entry of the change log."""

    seq: int
    provider: str
    identifier: str
    kind: ChangeKind
    changed_at: datetime


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


@dataclass(frozen=True)
class ValidationStatus:
    """A dataset's newest validation: its run (and when that run started), the verdict."""

    run_id: int
    conforms: bool
    violations: int
    checked_at: str | None


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
        self._path = path
        try:
            self._con = sqlite3.connect(path, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(_SCHEMA)
            columns = {row[1] for row in self._con.execute("PRAGMA table_info(runs)")}
            if "mapping_version" not in columns:  # a log from before mappings were applied
                with self._con:
                    self._con.execute("ALTER TABLE runs ADD COLUMN mapping_version INTEGER")
            self._create_change_log()
        except sqlite3.Error as exc:
            raise StoreError(f"harvest log {path} unusable: {exc}") from exc

    def _create_change_log(self) -> None:
        """Create the change log if missing, seeded with every live dataset as created (a log
        from before the change log), and a new epoch, in one transaction."""
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'"
        if self._con.execute(found).fetchone():
            return
        stamp, epoch = _stamp(), uuid.uuid4().hex  # ours: safe to write into the script
        self._con.executescript(
            f"BEGIN; {_CHANGES}"
            "INSERT INTO changes (provider, identifier, kind, changed_at) "
            f"SELECT provider, identifier, 'created', '{stamp}' FROM dataset_state "
            "WHERE deleted = 0 ORDER BY provider, identifier; "
            f"INSERT INTO change_log VALUES ('{epoch}'); COMMIT;"
        )

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
        return [self._record(*row) for row in rows]

    def run(self, run_id: int) -> RunRecord | None:
        """One run with its sources' reports; None if there is no such run."""
        row = self._con.execute(
            "SELECT id, started, ended, ok, mapping_version FROM runs WHERE id = ?", [run_id]
        ).fetchone()
        return None if row is None else self._record(*row)

    def _record(
        self, run_id: int, started: str, ended: str | None, ok: int | None, mapping: int | None
    ) -> RunRecord:
        record = RunRecord(run_id, started, ended, None if ok is None else bool(ok))
        record.mapping_version = mapping
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
        return record

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
        stamp = _stamp()
        with self._con:
            self._con.executemany(
                "INSERT INTO changes (provider, identifier, kind, changed_at) VALUES (?1, ?2, "
                "CASE WHEN EXISTS (SELECT 1 FROM dataset_state WHERE provider = ?1 "
                "AND identifier = ?2 AND deleted = 0) THEN 'updated' ELSE 'created' END, "
                + _STAMP.replace("?", "?3")
                + ")",
                [(provider_id, i, stamp) for i in digests],
            )
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
        them to the next run. A served dataset marked as needing it is recorded as updated
        (what the catalogue serves of it is about to change)."""
        with self._con:
            if not indexed:
                self._append_changes("updated", provider_id, identifiers, "indexed = 1")
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
        """Datasets deleted from the store whose index entry is still to be removed; recorded
        as deleted."""
        with self._con:
            self._append_changes("deleted", provider_id, identifiers)
            self._con.executemany(
                "UPDATE dataset_state SET deleted = 1 WHERE provider = ? AND identifier = ?",
                [(provider_id, i) for i in identifiers],
            )

    def record_updates(self, keys: Iterable[tuple[str, str]]) -> None:
        """Record live datasets, by (provider, identifier), as updated: what the catalogue
        serves of them changed without a harvest (a remap re-annotated them)."""
        by_provider: dict[str, list[str]] = {}
        for provider_id, identifier in keys:
            by_provider.setdefault(provider_id, []).append(identifier)
        with self._con:
            for provider_id, identifiers in by_provider.items():
                self._append_changes("updated", provider_id, identifiers)

    def _append_changes(
        self, kind: ChangeKind, provider_id: str, identifiers: Iterable[str], where: str = "1"
    ) -> None:
        """Append a change for each live dataset (that also matches `where`); the caller holds
        the transaction."""
        self._con.executemany(
            "INSERT INTO changes (provider, identifier, kind, changed_at) "
            f"SELECT provider, identifier, ?, {_STAMP} FROM dataset_state "
            f"WHERE provider = ? AND identifier = ? AND deleted = 0 AND {where}",
            [(kind, _stamp(), provider_id, i) for i in identifiers],
        )

    @contextmanager
    def change_snapshot(self) -> Iterator[ChangeSnapshot]:
        """The change log as of one committed state (its own connection: never a transaction
        this one has under way), for reading a page of the feed consistently."""
        con = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            con.execute("BEGIN")
            yield ChangeSnapshot(con)
        finally:
            con.close()

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

    def latest_validations(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], ValidationStatus]:
        """The newest validation of each (provider, identifier) that has one, without its
        report text, in one query per 400 datasets."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], ValidationStatus] = {}
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            pairs = ", ".join("(?, ?)" for _ in chunk)
            rows = self._con.execute(
                "SELECT v.provider, v.identifier, v.run_id, v.conforms, v.violations, r.started "
                "FROM validation_reports v LEFT JOIN runs r ON r.id = v.run_id "
                "WHERE v.rowid IN (SELECT MAX(rowid) FROM validation_reports "
                f"WHERE (provider, identifier) IN (VALUES {pairs}) GROUP BY provider, identifier)",
                [value for key in chunk for value in key],
            )
            for provider, identifier, run_id, conforms, violations, started in rows:
                status = ValidationStatus(run_id, bool(conforms), violations, started)
                found[(provider, identifier)] = status
        return found

    def close(self) -> None:
        self._con.close()


class ChangeSnapshot:
    """Reads of the change log within one read transaction (see `HarvestLog.change_snapshot`)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def change_epoch(self) -> str:
        """This change log's identity: a cursor from another log (a rebuilt catalogue) is told
        apart by it."""
        row = self._con.execute("SELECT epoch FROM change_log").fetchone()
        return str(row[0])

    def last_change(self) -> int:
        """The sequence number of the newest change (0: none yet)."""
        row = self._con.execute("SELECT MAX(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def change_horizon(self) -> int | None:
        """The latest change of the first dataset whose served entry does not reflect it yet
        (written, or deleted, but not yet (re)indexed): the feed stops before it. None when
        every change is served."""
        row = self._con.execute(
            "SELECT MIN((SELECT MAX(c.seq) FROM changes c "
            "WHERE c.provider = s.provider AND c.identifier = s.identifier)) "
            "FROM dataset_state s WHERE s.indexed = 0 OR s.deleted = 1"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def latest_changes(
        self, after: int, before: int | None, since: datetime | None, limit: int
    ) -> list[ChangeRecord]:
        """Each dataset's latest change, if it is after `after`, before `before` and at or
        after `since`, in sequence order, at most `limit`."""
        rows = self._con.execute(
            "SELECT c.seq, c.provider, c.identifier, c.kind, c.changed_at FROM changes c "
            f"WHERE c.seq > ? AND c.seq < ? AND c.changed_at >= ? AND {_LATEST} "
            "ORDER BY c.seq LIMIT ?",
            [after, _bound(before), _since(since), limit],
        )
        return [
            ChangeRecord(seq, p, i, cast(ChangeKind, kind), datetime.fromisoformat(at))
            for seq, p, i, kind, at in rows
        ]

    def count_latest_changes(self, before: int | None, since: datetime | None) -> int:
        """How many datasets `latest_changes` gives from the start."""
        row = self._con.execute(
            f"SELECT COUNT(*) FROM changes c WHERE c.seq < ? AND c.changed_at >= ? AND {_LATEST}",
            [_bound(before), _since(since)],
        ).fetchone()
        return int(row[0])


def _bound(before: int | None) -> int:
    return 2**63 - 1 if before is None else before


def _since(since: datetime | None) -> str:
    """`since` in the form `changed_at` is stored in (an aware datetime)."""
    return "" if since is None else since.astimezone(UTC).isoformat(timespec="microseconds")
