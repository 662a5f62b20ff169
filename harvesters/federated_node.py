"""`federated-node` sources: a provider whose features stay at its own node (docs/federation.md).

Harvesting reads the node's DCAT-AP catalogue (`GET <url>/catalog`, Hydra-paged), so that its
datasets are searchable and can be named in a question; no series row ever reaches the hub.
Feasibility questions go to the node at query time (catalogue/services/federation.py)."""

from __future__ import annotations

from typing import ClassVar

from catalogue.domain.federation import FederatedNodeSource
from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from harvesters.hydra import Listing, harvest_pages


class FederatedNodeHarvester:
    """The node's published catalogue, read like a `dcat` URL source."""

    config_model: ClassVar[type[SourceConfig]] = FederatedNodeSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, FederatedNodeSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        token = source.bearer()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        listing = Listing(source.endpoint("/catalog"), None, headers, None, 10_000)
        harvest_pages(ctx.http, listing, ctx, sink, report)
        return report
