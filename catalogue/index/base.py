"""Ports of the derived indexes: datasets (text and facets) and cohort (feature counts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from catalogue.domain.cohort import CohortQuery, ExactResult, ExactSummary, Stratum
from catalogue.domain.models import Dataset


@dataclass(frozen=True)
class SearchPage:
    """One page of a dataset search, best first."""

    total: int
    datasets: list[Dataset]


class DatasetIndex(Protocol):
    """Full-text search over dataset descriptions; rebuilt from the graph store at will."""

    def __init__(self, path: Path) -> None: ...

    def replace_provider(self, provider_id: str, datasets: list[Dataset]) -> None:
        """Make `datasets` the provider's whole set of indexed datasets, atomically."""
        ...

    def update(self, datasets: list[Dataset], removed: list[tuple[str, str]]) -> None:
        """Add or replace `datasets` and remove the (provider, identifier) pairs, atomically."""
        ...

    def search(
        self, text: str | None, offset: int, limit: int, providers: tuple[str, ...] = ()
    ) -> SearchPage: ...

    def get(self, provider_id: str, identifier: str) -> Dataset | None: ...

    def all(self) -> list[Dataset]: ...

    def close(self) -> None: ...


class CohortIndex(Protocol):
    """Subject/study/series features, answering feasibility queries with exact counts."""

    def __init__(self, path: Path) -> None: ...

    def replace_source(
        self, provider_id: str, source_id: str, batches: Iterable[pa.RecordBatch]
    ) -> int:
        """Atomically replace one source's series rows (SERIES_SCHEMA batches); return the count.
        On failure the source keeps its previous rows."""
        ...

    def replace_diagnoses(
        self, provider_id: str, source_id: str, rows: Iterable[tuple[int, str]]
    ) -> int:
        """Atomically replace one source's diagnoses: (subject pseudonym, normalised code) pairs;
        return how many distinct pairs it now has. On failure the source keeps its previous
        diagnoses."""
        ...

    def count(
        self,
        query: CohortQuery,
        *,
        strata: tuple[tuple[Stratum, ...], ...] = (),
        scopes: frozenset[tuple[str, str]] | None = None,
        evidence: bool = False,
    ) -> ExactResult:
        """Exact counts for a query (normalised first) per docs/feasibility.md: by provider, by
        dataset and in the strata tables asked for, with each cell's fingerprints (and, with
        `evidence`, subject sketches). `scopes` restricts the (provider, dataset) pairs, as
        resolved from catalogue metadata by the service."""
        ...

    def scopes(self) -> list[tuple[str, str]]:
        """Every (provider, dataset) holding features."""
        ...

    def summaries(self, provider_id: str) -> dict[str, ExactSummary]:
        """Per dataset of a provider: exact totals, age range and subjects per coded value."""
        ...

    def close(self) -> None: ...
