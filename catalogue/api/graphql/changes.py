"""`datasetChanges`: the changes feed for downstream harvesters (services/changes.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Annotated

import strawberry

from catalogue.api.graphql.types import Dataset, PageInfo
from catalogue.services import changes
from catalogue.services.catalogue_view import CatalogueView


@strawberry.enum(description="What last happened to a dataset.")
class ChangeKind(Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@strawberry.type(
    description="A dataset's latest change. CREATED and UPDATED carry the dataset as the "
    "catalogue serves it now (null only if it has gone since: its deletion follows in the "
    "feed); DELETED is a tombstone: provider, identifier and deletedAt."
)
class DatasetChange:
    kind: ChangeKind
    provider: strawberry.ID
    identifier: str
    changed_at: datetime = strawberry.field(description="When it changed (UTC, microseconds).")
    dataset: Dataset | None
    deleted_at: datetime | None = strawberry.field(description="When deleted; null otherwise.")

    @classmethod
    def of(cls, change: changes.DatasetChange) -> DatasetChange:
        deleted = change.kind == "deleted"
        return cls(
            kind=ChangeKind(change.kind),
            provider=strawberry.ID(change.provider),
            identifier=change.identifier,
            changed_at=change.changed_at,
            dataset=Dataset.of(change.dataset) if change.dataset and not deleted else None,
            deleted_at=change.changed_at if deleted else None,
        )


@strawberry.type
class DatasetChangeEdge:
    cursor: str
    node: DatasetChange


@strawberry.type(description="A page of the changes feed, in the order the changes were made.")
class DatasetChangeConnection:
    edges: list[DatasetChangeEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Datasets in the whole feed for this `since` (each counted once)."
    )
    high_water_mark: str = strawberry.field(
        description="A cursor to pass as `after` once this page is applied: its last change, "
        "or on the last page the newest change served, so a client that is up to date polls "
        "from there."
    )


@strawberry.type
class ChangesQuery:
    @strawberry.field(
        description="Every dataset created, updated or deleted (since a time), each once at its "
        "latest change, in the order of those changes; cursors stay valid while changes "
        "arrive, and a dataset changing again while you page comes again later. Applying "
        "every page gives the catalogue as the server holds it. See docs/harvest-contract.md."
    )
    async def dataset_changes(
        self,
        info: strawberry.Info,
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Only datasets whose latest change is at or after this time "
                "(inclusive); it must carry its offset, e.g. 2025-01-31T12:00:00Z."
            ),
        ] = None,
        first: Annotated[
            int,
            strawberry.argument(description=f"Page size, 0 to {changes.MAX_PAGE}."),
        ] = changes.DEFAULT_PAGE,
        after: Annotated[
            str | None,
            strawberry.argument(description="A cursor (an edge's, or highWaterMark)."),
        ] = None,
    ) -> DatasetChangeConnection:
        view: CatalogueView = info.context.view
        page = await asyncio.to_thread(
            partial(changes.changes_page, view.catalogue, since, first, after)
        )
        edges = [DatasetChangeEdge(cursor=c.cursor, node=DatasetChange.of(c)) for c in page.changes]
        return DatasetChangeConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
            high_water_mark=page.high_water,
        )
