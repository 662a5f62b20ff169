"""The changes feed: what downstream harvesters read to keep a copy of the catalogue.

Each dataset appears at most once, at its latest change (created, updated or deleted), in the
order of that change's sequence number in the harvest log's change log. A cursor is the last
sequence number a client has seen (with the log's epoch, so a cursor of a rebuilt catalogue is
refused): it stays valid while changes arrive, and a dataset that changes again while a client
pages moves past the cursor, to be read again on a later page. `since` keeps the datasets whose
latest change is at or after that time. A change is served only once the catalogue serves what
it changed (the feed stops before the first dataset still being indexed), so a client never
passes a change it could not yet see. Applying every page from the start, or a first full pass
and then the pages after its high-water mark, gives the same copy.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from catalogue.domain.models import Dataset
from catalogue.exceptions import QueryError
from catalogue.services.harvest_log import ChangeKind
from catalogue.services.runtime import Catalogue

MAX_PAGE = 500
DEFAULT_PAGE = 100
_CURSOR = "changes/v1"


@dataclass(frozen=True)
class DatasetChange:
    """A dataset's latest change; `dataset` is what the catalogue serves of it now (None when
    deleted, or when it has gone since: its deletion then follows in the feed)."""

    seq: int
    kind: ChangeKind
    provider: str
    identifier: str
    changed_at: datetime
    dataset: Dataset | None
    cursor: str


@dataclass(frozen=True)
class ChangePage:
    """A page of the feed. `high_water` is a cursor to go on from once this page is applied:
    its last change, or, on the last page, the newest change served (the client is up to date
    there); `total` counts the whole feed for this `since`."""

    changes: list[DatasetChange]
    total: int
    has_next: bool
    high_water: str


def encode_change_cursor(epoch: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR}:{epoch}:{seq}".encode()).decode()


def decode_change_cursor(cursor: str, epoch: str, last: int) -> int:
    """The sequence number in a cursor of this change log; QueryError when it is malformed, of
    another change log, or ahead of this one."""
    try:
        kind, log, number = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        seq = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"invalid changes cursor {cursor!r}: pass one this feed gave") from exc
    if kind != _CURSOR or seq < 0:
        raise QueryError(f"invalid changes cursor {cursor!r}: pass one this feed gave")
    if log != epoch or seq > last:
        raise QueryError(
            f"changes cursor {cursor!r} is not of this catalogue's change log (rebuilt since?): "
            "harvest again from the start, without `after`"
        )
    return seq


def parse_since(text: str) -> datetime:
    """An ISO 8601 date-time with its offset (REST form of `since`)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(
            f"since {text!r} is not an ISO 8601 date-time (e.g. 2025-01-31T12:00:00Z)"
        ) from exc
    return checked_since(value)


def checked_since(value: datetime) -> datetime:
    """`since` must say its time zone: a naive time is ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise QueryError(f"since {value.isoformat()} has no time zone: give its offset (Z for UTC)")
    return value


def changes_page(
    catalogue: Catalogue,
    since: datetime | None = None,
    first: int = DEFAULT_PAGE,
    after: str | None = None,
    datasets: bool = True,
) -> ChangePage:
    """A page of the feed: the changes after the cursor `after` (from the start when None)
    whose dataset's latest change is at or after `since`, at most `first` (0 to MAX_PAGE);
    with `datasets`, each live dataset as the index serves it (the RDF feed reads the store)."""
    if first < 0 or first > MAX_PAGE:
        raise QueryError(f"first must be between 0 and {MAX_PAGE}")
    if since is not None:
        since = checked_since(since)
    with catalogue.log.change_snapshot() as log:
        epoch, last = log.change_epoch(), log.last_change()
        start = decode_change_cursor(after, epoch, last) if after else 0
        horizon = log.change_horizon()
        rows = log.latest_changes(start, horizon, since, first + 1)
        total = log.count_latest_changes(horizon, since)
    has_next = len(rows) > first
    rows = rows[:first]
    served = last if horizon is None else horizon - 1
    high = rows[-1].seq if has_next and rows else start if has_next else max(start, served)
    changes = []
    for row in rows:
        dataset = None
        if datasets and row.kind != "deleted":
            dataset = catalogue.datasets.get(row.provider, row.identifier)
        changes.append(
            DatasetChange(
                seq=row.seq,
                kind=row.kind,
                provider=row.provider,
                identifier=row.identifier,
                changed_at=row.changed_at,
                dataset=dataset,
                cursor=encode_change_cursor(epoch, row.seq),
            )
        )
    return ChangePage(changes, total, has_next, encode_change_cursor(epoch, high))
