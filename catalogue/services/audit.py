"""The feasibility audit log and privacy ledger: one SQLite file, append-only.

`feasibility_audit` has a row per feasibility request (answered or refused): who asked, for which
project, the canonical query, what was published, the epsilon it spent and its release key.
`released_cells` has, per published cell, its exact subject count and a bucketed sketch of its
subject set (never published), for the differencing check. Triggers refuse UPDATE and DELETE on
both tables. Times are ISO-8601 UTC text of fixed width, so they compare as text; a naive
`datetime` is taken as UTC. One connection, guarded by a lock: safe from worker threads.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalogue.config import DisclosureSettings
from catalogue.exceptions import PrivacyBudgetError, StoreError

Sketch = tuple[tuple[int, int], ...]
"""A subject set's non-empty hash buckets as (bucket, subjects), sorted (`CellEvidence.sketch`)."""

_TOLERANCE = 1e-9  # float sums of epsilons

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feasibility_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, user TEXT NOT NULL,
    project TEXT NOT NULL, query TEXT NOT NULL, published TEXT NOT NULL,
    epsilon REAL NOT NULL, outcome TEXT NOT NULL, release_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feasibility_audit_by_user ON feasibility_audit (user, project, time);
CREATE INDEX IF NOT EXISTS feasibility_audit_by_release
    ON feasibility_audit (user, project, release_key);
CREATE TABLE IF NOT EXISTS released_cells (
    audit_id INTEGER NOT NULL REFERENCES feasibility_audit (id), user TEXT NOT NULL,
    project TEXT NOT NULL, time TEXT NOT NULL, cell TEXT NOT NULL, subjects INTEGER NOT NULL,
    sketch BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS released_cells_by_count ON released_cells (user, project, subjects);
"""

_APPEND_ONLY = """
CREATE TRIGGER IF NOT EXISTS {table}_no_{op} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    """One feasibility request as the audit log holds it."""

    id: int
    time: datetime
    user: str
    project: str
    query: str
    """The canonical query JSON."""
    published: str
    """The published counts JSON (empty object when refused)."""
    epsilon: float
    outcome: str
    """"answered" or "refused: <reason>"."""
    release_key: str


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _midnight(moment: datetime) -> datetime:
    """The UTC midnight starting `moment`'s UTC day."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def pack_sketch(sketch: Sketch) -> bytes:
    """A sketch as a compact BLOB: zlib of little-endian uint32 (bucket, subjects) pairs."""
    flat = array("I", [value for pair in sketch for value in pair])
    if sys.byteorder == "big":
        flat.byteswap()
    return zlib.compress(flat.tobytes())


def unpack_sketch(blob: bytes) -> Sketch:
    """The sketch `pack_sketch` made `blob` of."""
    flat = array("I")
    flat.frombytes(zlib.decompress(blob))
    if sys.byteorder == "big":
        flat.byteswap()
    return tuple(zip(flat[::2], flat[1::2], strict=True))


def sketch_distance(a: Sketch, b: Sketch) -> int:
    """L1 distance of two sparse sketches: the size of the sets' symmetric difference when it is
    small (hash collisions can only make it smaller); 0 for equal sets."""
    counts = dict(a)
    for bucket, n in b:
        counts[bucket] = counts.get(bucket, 0) - n
    return sum(abs(n) for n in counts.values())


def _published_values(value: object) -> tuple[int | None, int | None, int | None]:
    """A cell's published [subjects, studies, series] from an audit entry (None: suppressed)."""
    if isinstance(value, list) and len(value) == 3:
        return (value[0], value[1], value[2])
    return (None, None, None)


class AuditLog:
    """The audit log and privacy ledger in the SQLite file `path`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._con = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(
                _SCHEMA
                + "".join(
                    _APPEND_ONLY.format(table=table, op=op)
                    for table in ("feasibility_audit", "released_cells")
                    for op in ("UPDATE", "DELETE")
                )
            )
        except sqlite3.Error as exc:
            raise StoreError(f"feasibility audit log {path} unusable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spent(self, user: str, project: str, since: datetime | None) -> float:
        sql = "SELECT SUM(epsilon) FROM feasibility_audit WHERE user = ? AND project = ?"
        args: list[str] = [user, project]
        if since is not None:
            sql += " AND time >= ?"
            args.append(_stamp(since))
        return float(self._con.execute(sql, args).fetchone()[0] or 0.0)

    def spent(self, user: str, project: str, since: datetime | None = None) -> float:
        """The epsilon `user` spent on `project` (since `since`, or in all)."""
        with self._lock:
            return self._spent(user, project, since)

    def _check(
        self, user: str, project: str, cost: float, rules: DisclosureSettings, now: datetime
    ) -> None:
        if cost <= 0:
            return
        whose = f"{user!r} on project {project!r}"
        if rules.budget_total is not None:
            left = max(rules.budget_total - self._spent(user, project, None), 0.0)
            if cost > left + _TOLERANCE:
                raise PrivacyBudgetError(
                    f"total privacy budget exhausted for {whose}: {left:g} of "
                    f"{rules.budget_total:g} is left and this query costs {cost:g}; "
                    "the total budget does not renew"
                )
        if rules.budget_daily is not None:
            midnight = _midnight(now)
            left = max(rules.budget_daily - self._spent(user, project, midnight), 0.0)
            if cost > left + _TOLERANCE:
                renews = _stamp(midnight + timedelta(days=1)).replace(".000000", "")
                raise PrivacyBudgetError(
                    f"daily privacy budget exhausted for {whose}: {left:g} of "
                    f"{rules.budget_daily:g} is left today and this query costs {cost:g}; "
                    f"the daily budget renews at {renews}"
                )

    def charge(
        self, user: str, project: str, cost: float, rules: DisclosureSettings, now: datetime
    ) -> None:
        """Raise `PrivacyBudgetError` if spending `cost` now would exceed the total budget or the
        daily one (since UTC midnight). Nothing is spent until `record`."""
        with self._lock:
            self._check(user, project, cost, rules, now)

    def answered_before(self, user: str, project: str, release_key: str) -> bool:
        """Whether this user and project were given this very release (it is then free)."""
        with self._lock:
            row = self._con.execute(
                "SELECT 1 FROM feasibility_audit WHERE user = ? AND project = ? "
                "AND release_key = ? AND outcome = 'answered' LIMIT 1",
                [user, project, release_key],
            ).fetchone()
        return row is not None

    def nearest_released(
        self,
        user: str,
        project: str,
        cells: Mapping[str, tuple[int, Sketch]],
        rules: DisclosureSettings,
        now: datetime,
    ) -> dict[str, tuple[int | None, int | None, int | None]]:
        """For each of `cells` (subjects, sketch) whose subject set differs by 1..threshold-1
        subjects from a cell released to this user and project within the window, the values
        published for the nearest such cell (the earliest among equals)."""
        k = rules.threshold
        if not rules.differencing or k <= 1:
            return {}
        since = _stamp(now - timedelta(days=rules.differencing_window_days))
        found: dict[str, tuple[int | None, int | None, int | None]] = {}
        with self._lock:
            for key, (subjects, sketch) in cells.items():
                rows = self._con.execute(
                    "SELECT r.sketch, r.cell, a.published FROM released_cells AS r "
                    "JOIN feasibility_audit AS a ON a.id = r.audit_id "
                    "WHERE r.user = ? AND r.project = ? AND r.subjects BETWEEN ? AND ? "
                    "AND r.time >= ? ORDER BY r.audit_id",
                    [user, project, subjects - k + 1, subjects + k - 1, since],
                )
                best: tuple[int, str, str] | None = None
                for blob, cell, published in rows:
                    distance = sketch_distance(sketch, unpack_sketch(blob))
                    if 0 < distance < k and (best is None or distance < best[0]):
                        best = (distance, cell, published)
                if best is not None:
                    found[key] = _published_values(json.loads(best[2]).get(best[1]))
        return found

    def record(
        self,
        user: str,
        project: str,
        query_json: str,
        published_json: str,
        cost: float,
        outcome: str,
        release_key: str,
        released: Mapping[str, tuple[int, Sketch]],
        now: datetime,
        rules: DisclosureSettings | None = None,
    ) -> int:
        """Append one request and its released cells (subjects, sketch) in one transaction and
        return its id. With `rules`, the budget is checked again in that transaction (so two
        concurrent requests cannot both spend the last of it): `PrivacyBudgetError`, nothing
        written."""
        if cost < 0:
            raise ValueError("a cost cannot be negative")
        if outcome != "answered" and not outcome.startswith("refused: "):
            raise ValueError("an outcome is 'answered' or 'refused: <reason>'")
        stamp = _stamp(now)
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                if rules is not None:
                    self._check(user, project, cost, rules, now)
                cursor = self._con.execute(
                    "INSERT INTO feasibility_audit (time, user, project, query, published, "
                    "epsilon, outcome, release_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [stamp, user, project, query_json, published_json, cost, outcome, release_key],
                )
                audit_id = cursor.lastrowid
                assert audit_id is not None
                self._con.executemany(
                    "INSERT INTO released_cells VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (audit_id, user, project, stamp, key, n, pack_sketch(sketch))
                        for key, (n, sketch) in released.items()
                    ],
                )
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")
        return audit_id

    def entries(
        self,
        user: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        project: str | None = None,
    ) -> list[AuditEntry]:
        """Audit entries for administrators, the newest first, optionally filtered."""
        clauses, args = [], []
        for clause, value in (
            ("user = ?", user),
            ("project = ?", project),
            ("time >= ?", None if since is None else _stamp(since)),
        ):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._con.execute(
                "SELECT id, time, user, project, query, published, epsilon, outcome, release_key "
                f"FROM feasibility_audit {where} ORDER BY time DESC, id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        return [
            AuditEntry(i, datetime.fromisoformat(t), u, p, q, pub, float(e), o, k)
            for i, t, u, p, q, pub, e, o, k in rows
        ]
