"""`ckan` sources: a CKAN portal's DCAT catalogue endpoint (ckanext-dcat), incrementally.

The catalogue is read from `{url}/catalog.{format}` page by page (Hydra paging). After a
successful run the time it started is kept in `DATA_DIR/harvest-state/<provider>/<source>.json`;
the next run asks only for datasets modified since then (`modified_since`, less an overlap for
clock skew) and, being a partial listing, deletes nothing. Every `full_every` runs the whole
catalogue is listed again, which is when datasets gone from the portal are deleted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.net.http import headers_field, plain_headers
from harvesters.hydra import Listing, harvest_pages


class CkanSource(SourceConfig):
    """A CKAN portal with the ckanext-dcat catalogue endpoint."""

    kind: Literal["ckan"]
    url: str = Field(pattern=r"^https?://", description="The portal's root URL.")
    format: Literal["ttl", "jsonld", "xml", "rdf", "n3"] = Field(
        default="ttl", description="Serialisation asked for: the `{format}` of the endpoint."
    )
    catalog_path: str = Field(
        default="/catalog.{format}",
        pattern=r"^/.*\{format\}",
        description="The endpoint under the root (ckanext.dcat.catalog_endpoint).",
    )
    params: dict[str, str] = Field(
        default_factory=dict, description="Further query parameters, such as q, fq or profiles."
    )
    incremental: bool = Field(
        default=True, description="After a successful run, ask only for what changed since."
    )
    full_every: int = Field(
        default=10, ge=1, description="Every this many runs, list the whole catalogue."
    )
    overlap: float = Field(
        default=600, ge=0, description="Seconds asked for before the last run's start."
    )
    headers: dict[str, SecretStr] = headers_field()
    max_pages: int = Field(default=10_000, ge=1)


@dataclass(frozen=True)
class CkanState:
    """When the last successful run started, and how many incremental runs followed a full one."""

    last_started: datetime
    since_full: int

    @staticmethod
    def path(ctx: HarvestContext) -> Path:
        name = quote(ctx.source_id, safe="")
        return ctx.base_dir / "harvest-state" / ctx.provider.id / f"{name}.json"

    @classmethod
    def load(cls, path: Path) -> CkanState | None:
        """The saved state; None when there is none or it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            started = datetime.fromisoformat(data["last_started"])
            return cls(started.astimezone(UTC), int(data["since_full"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically (a crash leaves the previous state)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"last_started": self.last_started.isoformat(), "since_full": self.since_full}
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(data) + "\n", encoding="utf-8")
        os.replace(partial, path)


class CkanHarvester:
    """Lists a CKAN catalogue a page at a time; incremental between periodic full listings."""

    config_model: ClassVar[type[SourceConfig]] = CkanSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, CkanSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        state_path = CkanState.path(ctx)
        state = CkanState.load(state_path)
        if state is None and state_path.exists():
            report.warn(f"{state_path}: unreadable harvest state; listing everything")
        started = datetime.now(UTC)
        incremental = (
            source.incremental and state is not None and state.since_full + 1 < source.full_every
        )
        params = dict(source.params)
        since_full = 0
        if incremental:
            assert state is not None
            since_full = state.since_full + 1
            since = state.last_started - timedelta(seconds=source.overlap)  # UTC, as loaded
            # ckanext-dcat reads a naive ISO time as UTC (it appends the Z itself)
            params["modified_since"] = since.strftime("%Y-%m-%dT%H:%M:%S")
            report.complete = False
        endpoint = source.catalog_path.replace("{format}", source.format)
        listing = Listing(
            url=source.url.rstrip("/") + endpoint,
            params=params,
            headers=plain_headers(source.headers),
            max_pages=source.max_pages,
        )
        finished = harvest_pages(ctx.http, listing, ctx, sink, report)
        if finished:
            CkanState(started, since_full).save(state_path)
        return report
