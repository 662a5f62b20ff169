"""The feasibility audit log and privacy ledger (SQLite)."""

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.config import DisclosureSettings
from catalogue.domain.cohort import SKETCH_BUCKETS
from catalogue.exceptions import PrivacyBudgetError, QueryError
from catalogue.services.audit import (
    AuditLog,
    Sketch,
    pack_sketch,
    sketch_distance,
    unpack_sketch,
)

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
RULES = DisclosureSettings(threshold=10, budget_daily=3.0, budget_total=5.0)
PUBLISHED = '{"total":[10,10,12]}'
"""What an entry records as published: [subjects, studies, series] per cell."""


def sketch(subjects: set[int]) -> Sketch:
    buckets: dict[int, int] = {}
    for s in subjects:
        buckets[s % SKETCH_BUCKETS] = buckets.get(s % SKETCH_BUCKETS, 0) + 1
    return tuple(sorted(buckets.items()))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit" / "audit.sqlite") as audit:
        yield audit


def answer(
    log: AuditLog,
    user: str = "ann",
    project: str = "p1",
    cost: float = 1.0,
    now: datetime = NOW,
    key: str = "release-1",
    released: dict[str, tuple[int, Sketch]] | None = None,
    outcome: str = "answered",
) -> int:
    return log.record(
        user, project, '{"where":null}', PUBLISHED, cost, outcome, key, released or {}, now
    )


def test_record_and_entries(log: AuditLog) -> None:
    first = answer(log, now=NOW)
    second = answer(log, user="bob", now=NOW + timedelta(minutes=1), key="release-2")
    third = answer(
        log, now=NOW + timedelta(minutes=2), cost=0, outcome="refused: budget", key="release-3"
    )
    assert first < second < third
    entries = log.entries()
    assert [e.id for e in entries] == [third, second, first]  # newest first
    newest = entries[0]
    assert (newest.user, newest.project, newest.outcome, newest.epsilon) == (
        "ann",
        "p1",
        "refused: budget",
        0.0,
    )
    assert newest.time == NOW + timedelta(minutes=2)
    assert newest.query == '{"where":null}' and newest.published == PUBLISHED
    assert newest.release_key == "release-3"
    assert [e.id for e in log.entries(user="ann")] == [third, first]
    assert [e.id for e in log.entries(user="bob")] == [second]
    assert [e.id for e in log.entries(since=NOW + timedelta(seconds=30))] == [third, second]
    assert [e.id for e in log.entries(user="ann", since=NOW + timedelta(seconds=30))] == [third]
    assert [e.id for e in log.entries(limit=1)] == [third]
    assert log.entries(project="p2") == []
    with pytest.raises(ValueError, match="outcome"):
        answer(log, outcome="maybe")
    with pytest.raises(ValueError, match="negative"):
        answer(log, cost=-1)


def test_the_log_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:
        answer(log, released={"total": (12, sketch(set(range(12))))})
    with AuditLog(path) as log:  # reopening keeps the rows and the triggers
        assert len(log.entries()) == 1
    con = sqlite3.connect(path)
    try:
        for sql in (
            "UPDATE feasibility_audit SET epsilon = 0",
            "DELETE FROM feasibility_audit",
            "UPDATE released_cells SET subjects = 0",
            "DELETE FROM released_cells",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        con.execute(
            "INSERT INTO feasibility_audit (time, user, project, query, published, epsilon, "
            "outcome, release_key) VALUES ('t', 'u', 'p', '{}', '{}', 0, 'answered', 'k')"
        )  # appending stays possible
        assert con.execute("SELECT COUNT(*), SUM(epsilon) FROM feasibility_audit").fetchone() == (
            2,
            1.0,
        )
    finally:
        con.close()


def test_daily_budget_is_enforced_and_renews_at_utc_midnight(log: AuditLog) -> None:
    for minute in range(3):
        log.charge("ann", "p1", 1.0, RULES, NOW)
        answer(log, now=NOW + timedelta(minutes=minute))
    assert log.spent("ann", "p1") == 3.0
    with pytest.raises(PrivacyBudgetError) as error:
        log.charge("ann", "p1", 1.0, RULES, NOW + timedelta(hours=1))
    message = str(error.value)
    assert "daily privacy budget" in message
    assert "0 of 3 is left" in message
    assert "renews at 2026-03-15T00:00:00Z" in message
    assert isinstance(error.value, QueryError)
    log.charge("ann", "p1", 0.0, RULES, NOW)  # a free (identical) release is always allowed
    log.charge("ann", "p2", 1.0, RULES, NOW)  # budgets are per project
    log.charge("bob", "p1", 1.0, RULES, NOW)  # and per user
    # the next UTC day renews the daily budget (in another time zone, the same instant)
    tomorrow = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    log.charge("ann", "p1", 1.0, RULES, tomorrow.astimezone(timezone(timedelta(hours=-5))))
    assert log.spent("ann", "p1", since=tomorrow) == 0.0
    answer(log, now=tomorrow)
    answer(log, now=tomorrow)
    # five spent in all: the total budget is exhausted for good
    with pytest.raises(PrivacyBudgetError, match="total privacy budget") as error:
        log.charge("ann", "p1", 0.5, RULES, tomorrow + timedelta(days=30))
    assert "0 of 5 is left" in str(error.value) and "does not renew" in str(error.value)


def test_a_partly_spent_budget_says_what_is_left(log: AuditLog) -> None:
    answer(log, cost=2.5)
    with pytest.raises(PrivacyBudgetError, match=r"0\.5 of 3 is left today"):
        log.charge("ann", "p1", 1.0, RULES, NOW)
    log.charge("ann", "p1", 0.5, RULES, NOW)
    unlimited = DisclosureSettings(budget_daily=None, budget_total=None)
    log.charge("ann", "p1", 1000.0, unlimited, NOW)


def test_record_rechecks_the_budget_atomically(log: AuditLog) -> None:
    answer(log, cost=3.0)
    with pytest.raises(PrivacyBudgetError):
        log.record("ann", "p1", "{}", "{}", 1.0, "answered", "k", {}, NOW, rules=RULES)
    assert log.spent("ann", "p1") == 3.0
    assert len(log.entries()) == 1  # nothing written


def test_concurrent_records_from_threads(log: AuditLog) -> None:
    def work(worker: int) -> None:
        for i in range(20):
            answer(log, user=f"u{worker}", key=f"{worker}-{i}", cost=0.1)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log.entries(limit=1000)) == 80
    assert log.spent("u3", "p1") == pytest.approx(2.0)


def test_answered_before(log: AuditLog) -> None:
    answer(log, key="release-1")
    answer(log, key="release-2", outcome="refused: budget", cost=0)
    assert log.answered_before("ann", "p1", "release-1")
    assert not log.answered_before("ann", "p1", "release-2")  # refused: nothing was released
    assert not log.answered_before("ann", "p2", "release-1")
    assert not log.answered_before("bob", "p1", "release-1")
    assert not log.answered_before("ann", "p1", "release-3")


def test_differencing_flags_a_cell_one_subject_away(log: AuditLog) -> None:
    cohort = set(range(1000, 1040))
    answer(log, released={"total": (40, sketch(cohort))})
    cells = {
        "same": (40, sketch(cohort)),
        "one less": (39, sketch(cohort - {1000})),
        "one more": (41, sketch(cohort | {5})),
        "nine less": (31, sketch(cohort - set(range(1000, 1009)))),
        "ten less": (30, sketch(cohort - set(range(1000, 1010)))),
        "other": (40, sketch(set(range(2000, 2040)))),
    }
    later = NOW + timedelta(days=10)
    assert log.nearest_released("ann", "p1", cells, RULES, later).keys() == {
        "one less",
        "one more",
        "nine less",
    }
    assert log.nearest_released("bob", "p1", cells, RULES, later).keys() == set()
    assert log.nearest_released("ann", "p2", cells, RULES, later).keys() == set()
    # outside the window, or with the check off, or exact counts: nothing is flagged
    assert log.nearest_released("ann", "p1", cells, RULES, NOW + timedelta(days=91)).keys() == set()
    off = RULES.model_copy(update={"differencing": False})
    assert log.nearest_released("ann", "p1", cells, off, later).keys() == set()
    exact = RULES.model_copy(update={"threshold": 1})
    assert log.nearest_released("ann", "p1", cells, exact, later).keys() == set()


def test_differencing_against_several_releases(log: AuditLog) -> None:
    answer(log, released={"a": (20, sketch(set(range(20)))), "b": (50, sketch(set(range(50))))})
    answer(log, key="release-2", released={"c": (12, sketch(set(range(100, 112))))})
    cells = {
        "near a": (21, sketch(set(range(21)))),
        "near b": (48, sketch(set(range(48)))),
        "near c": (11, sketch(set(range(101, 112)))),
        "far": (35, sketch(set(range(35)))),
    }
    assert log.nearest_released("ann", "p1", cells, RULES, NOW).keys() == {
        "near a",
        "near b",
        "near c",
    }


@given(
    st.dictionaries(
        st.integers(0, SKETCH_BUCKETS - 1), st.integers(1, 2**32 - 1), max_size=SKETCH_BUCKETS
    )
)
def test_sketch_blobs_round_trip(buckets: dict[int, int]) -> None:
    original = tuple(sorted(buckets.items()))
    blob = pack_sketch(original)
    assert unpack_sketch(blob) == original
    assert len(blob) <= 8 * len(original) + 32


@given(st.sets(st.integers(0, 10**6), max_size=60), st.sets(st.integers(0, 10**6), max_size=60))
def test_sketch_distance_bounds_the_symmetric_difference(a: set[int], b: set[int]) -> None:
    distance = sketch_distance(sketch(a), sketch(b))
    assert distance == sketch_distance(sketch(b), sketch(a))
    assert distance <= len(a ^ b)
    assert distance % 2 == len(a ^ b) % 2
    if a == b:
        assert distance == 0
    if len(a ^ b) == 1:
        assert distance == 1
