"""What a harvester author needs, in one import: the port, the config base and the report."""

from catalogue.domain.harvest import (
    HarvestContext,
    HarvestedDataset,
    Harvester,
    HarvestSink,
    SourceConfig,
    SourceReport,
)

__all__ = [
    "HarvestContext",
    "HarvestSink",
    "HarvestedDataset",
    "Harvester",
    "SourceConfig",
    "SourceReport",
]
