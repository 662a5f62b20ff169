"""The harvester port: what a harvester reads (its source config) and what it hands back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from rdflib import Graph

from catalogue.domain.identifiers import Pseudonymiser
from catalogue.domain.models import Dataset


class SourceConfig(BaseModel):
    """Base of every source kind in a providers file; `kind` picks the harvester."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    id: str | None = Field(
        default=None, description="Stable name of the source within its provider."
    )

    def source_id(self, position: int) -> str:
        return self.id or f"{self.kind}-{position}"


class ProviderConfig(BaseModel):
    """One data provider of a providers file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    homepage: str | None = None
    secret: SecretStr | None = Field(
        default=None,
        description="Pseudonymisation key; derived from CATALOGUE_SECRET when absent.",
    )
    sources: list[SourceConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class HarvestContext:
    """What a harvester may use: its provider, the pseudonymiser and the base folder of paths."""

    provider: ProviderConfig
    source_id: str
    pseudonymise: Pseudonymiser
    base_dir: Path

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path


@dataclass(frozen=True)
class HarvestedDataset:
    """A dataset description: its typed model and the RDF graph it was parsed from."""

    dataset: Dataset
    graph: Graph


@dataclass
class SourceReport:
    """What one source harvest did; a failed source keeps what was harvested before."""

    provider_id: str
    source_id: str
    kind: str
    ok: bool = True
    error: str | None = None
    datasets: int = 0
    series: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count


class HarvestSink(Protocol):
    """Where a harvester writes; each call replaces that source's previous output atomically."""

    def put_datasets(self, items: list[HarvestedDataset]) -> None: ...

    def put_series(self, batches: Iterable[pa.RecordBatch]) -> int: ...


class Harvester(Protocol):
    """A source kind; registered by name in the `catalogue.harvesters` entry-point group."""

    config_model: ClassVar[type[SourceConfig]]

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        """Read the source, write through the sink, and report; raise HarvestError on failure."""
        ...
