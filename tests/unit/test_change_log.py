"""The harvest log's change log: what each state change records, atomically; the horizon of
what is served; snapshots; seeding an older log."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalogue.services.harvest_log import HarvestLog


def rows(path: Path) -> list[tuple[int, str, str, str, str]]:
    """Every change as the table holds it, in order."""
    with sqlite3.connect(path) as con:
        return con.execute(
            "SELECT seq, provider, identifier, kind, changed_at FROM changes ORDER BY seq"
        ).fetchall()


def kinds(path: Path) -> list[tuple[str, str, str]]:
    return [(p, i, k) for _, p, i, k, _ in rows(path)]


def test_state_changes_are_recorded_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = HarvestLog(path)
    log.put_states("p", "s", 1, {"a": "d1", "b": "d1"})
    log.put_states("p", "s", 2, {"a": "d2"})
    log.mark_deleted("p", ["b", "never-there"])
    log.drop_states("p", ["b"])  # the index caught up: nothing more to record
    log.put_states("p", "s", 3, {"b": "d3"})  # back again
    log.set_indexed("p", ["a", "b"], True)
    log.set_indexed("p", ["a"], False)  # what is served of it changes (its summary)
    log.set_indexed("p", ["a"], False)  # already waiting for the index: no second record
    log.record_updates([("p", "b"), ("p", "gone"), ("q", "x")])
    assert kinds(path) == [
        ("p", "a", "created"),
        ("p", "b", "created"),
        ("p", "a", "updated"),
        ("p", "b", "deleted"),
        ("p", "b", "created"),
        ("p", "a", "updated"),
        ("p", "b", "updated"),
    ]
    assert [row[0] for row in rows(path)] == list(range(1, 8))
    stamps = [datetime.fromisoformat(row[4]) for row in rows(path)]
    assert stamps == sorted(stamps)
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert abs(datetime.now(UTC) - stamps[-1]) < timedelta(minutes=5)


def test_a_change_is_written_with_its_state_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = HarvestLog(path)
    log.put_states("p", "s", 1, {"a": "d1"})
    with pytest.raises(sqlite3.IntegrityError):  # no digest: the state row is refused...
        log.put_states("p", "s", 2, {"b": "d2", "c": None})  # type: ignore[dict-item]
    assert kinds(path) == [("p", "a", "created")]  # ...and so are the changes before it
    assert set(log.states("p")) == {"a"}


def test_the_feed_stops_before_changes_not_yet_served(tmp_path: Path) -> None:
    log = HarvestLog(tmp_path / "log.sqlite")
    log.put_states("p", "s", 1, {"a": "d", "b": "d"})
    log.set_indexed("p", ["a", "b"], True)
    log.put_states("p", "s", 2, {"a": "d2"})  # seq 3: written, not yet indexed
    log.put_states("q", "s", 2, {"x": "d"})  # seq 4
    log.set_indexed("q", ["x"], True)
    with log.change_snapshot() as snapshot:
        assert snapshot.change_horizon() == 3
        served = snapshot.latest_changes(0, snapshot.change_horizon(), None, 10)
        assert [(c.identifier, c.kind) for c in served] == [("b", "created")]
        assert snapshot.count_latest_changes(snapshot.change_horizon(), None) == 1
    log.set_indexed("p", ["a"], True)
    log.mark_deleted("p", ["b"])  # seq 5: deleted, still in the index
    with log.change_snapshot() as snapshot:
        assert snapshot.change_horizon() == 5
        served = snapshot.latest_changes(0, 5, None, 10)
        assert [(c.seq, c.identifier) for c in served] == [(3, "a"), (4, "x")]
    log.drop_states("p", ["b"])
    with log.change_snapshot() as snapshot:
        assert snapshot.change_horizon() is None
        everything = snapshot.latest_changes(0, None, None, 10)
        assert [(c.seq, c.kind) for c in everything] == [
            (3, "updated"),
            (4, "created"),
            (5, "deleted"),
        ]
        assert [c.seq for c in snapshot.latest_changes(3, None, None, 1)] == [4]
        for change in everything:  # `since` is inclusive, to the microsecond
            since = change.changed_at
            found = snapshot.latest_changes(0, None, since, 10)
            assert change in found
            assert [c.seq for c in found] == [c.seq for c in everything if c.changed_at >= since]
            later = snapshot.latest_changes(0, None, since + timedelta(microseconds=1), 10)
            assert change not in later
        assert snapshot.last_change() == 5


def test_a_snapshot_never_sees_a_transaction_under_way(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = HarvestLog(path)
    log.put_states("p", "s", 1, {"a": "d"})
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO changes (provider, identifier, kind, changed_at) "
        "VALUES ('p', 'z', 'created', '2099-01-01T00:00:00.000000+00:00')"
    )
    with log.change_snapshot() as snapshot:
        assert snapshot.last_change() == 1
    writer.execute("COMMIT")
    with log.change_snapshot() as snapshot:
        assert snapshot.last_change() == 2
    writer.close()


def test_an_older_log_is_seeded_once_with_its_live_datasets(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE dataset_state (provider TEXT NOT NULL, identifier TEXT NOT NULL, "
        "source TEXT NOT NULL, digest TEXT NOT NULL, run_id INTEGER NOT NULL, "
        "indexed INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (provider, identifier));"
        "INSERT INTO dataset_state VALUES ('p', 'b', 's', 'd', 1, 1, 0);"
        "INSERT INTO dataset_state VALUES ('p', 'a', 's', 'd', 1, 1, 0);"
        "INSERT INTO dataset_state VALUES ('p', 'gone', 's', 'd', 1, 1, 1);"
    )
    old.close()
    log = HarvestLog(path)
    assert kinds(path) == [("p", "a", "created"), ("p", "b", "created")]
    with log.change_snapshot() as snapshot:
        epoch = snapshot.change_epoch()
    log.close()
    again = HarvestLog(path)
    assert kinds(path) == [("p", "a", "created"), ("p", "b", "created")]
    with again.change_snapshot() as snapshot:
        assert snapshot.change_epoch() == epoch
    with HarvestLog(tmp_path / "other.sqlite").change_snapshot() as snapshot:
        assert snapshot.change_epoch() != epoch
