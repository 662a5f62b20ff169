"""The harvester port: what a harvester reads (its source config) and what it hands back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from catalogue.domain.identifiers import Pseudonymiser
from catalogue.domain.linkage import Linkage
from catalogue.domain.models import Dataset

if TYPE_CHECKING:
    from catalogue.dcat.description import Description
    from catalogue.net.http import HttpClient


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
    validation: Literal["off", "record", "reject"] = Field(
        default="record",
        description="SHACL validation of each new or changed dataset: off; record the report "
        "and accept; or reject a violating dataset (its previous version, if any, stays).",
    )
    max_delete_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest share of this provider's datasets one run may delete; default: "
        "the deployment's harvest.max_delete_share.",
    )


@dataclass(frozen=True)
class HarvestContext:
    """What a harvester may use: its provider, the pseudonymiser and the base folder of paths."""

    provider: ProviderConfig
    source_id: str
    pseudonymise: Pseudonymiser
    base_dir: Path
    http: HttpClient
    """The run's HTTP client, through which every request of a harvester goes."""
    linkage: Linkage | None = None
    """Linkage codes under the federation key, when the deployment has one (SeriesRows)."""

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path


@dataclass(frozen=True)
class HarvestedDataset:
    """A dataset description: its typed model and the triples it was parsed from."""

    dataset: Dataset
    description: Description
    normalisations: tuple[str, ...] = ()
    """Drift repaired while reading it (for the harvest report)."""


@dataclass
class SourceReport:
    """What one source harvest did; a failed source keeps what was harvested before.

    `datasets` counts the datasets the source listed; the sink adds how many of them were new,
    updated, unchanged or rejected, and how many earlier ones it deleted. A harvester sets
    `complete = False` when it listed only part of its datasets on purpose (such as CKAN's
    `modified_since`), so that nothing is deleted; a failed source (`ok = False`) deletes nothing
    either."""

    provider_id: str
    source_id: str
    kind: str
    ok: bool = True
    error: str | None = None
    datasets: int = 0
    series: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0
    suspect: str | None = None
    """Why deletions were held back (an empty listing, or too large a share to delete)."""
    warnings: list[str] = field(default_factory=list)
    normalisations: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def incomplete(self, why: str) -> None:
        """The listing stopped short: warn, and delete nothing at the end."""
        self.warn(f"{why}; listing incomplete (nothing deleted)")
        self.complete = False


class HarvestSink(Protocol):
    """Where a harvester writes.

    `put_datasets` may be called several times per source (a page at a time); each dataset's
    graph is replaced atomically as it comes, and unchanged ones are not rewritten. When the
    source ends `ok` and `complete`, the datasets it did not list this time are deleted, unless
    the deletion safeguard holds them back. `put_series` replaces the source's feature rows in
    one transaction, `put_diagnoses` its (subject pseudonym, normalised code) pairs likewise."""

    def put_datasets(self, items: list[HarvestedDataset]) -> None: ...

    def put_series(self, batches: Iterable[pa.RecordBatch]) -> int: ...

    def put_diagnoses(self, rows: Iterable[tuple[int, str]]) -> int: ...


class Harvester(Protocol):
    """A source kind; registered by name in the `catalogue.harvesters` entry-point group."""

    config_model: ClassVar[type[SourceConfig]]

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        """Read the source, write through the sink, and report; raise HarvestError on failure."""
        ...
