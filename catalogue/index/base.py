"""Ports of the derived indexes: datasets (text and facets) and cohort (feature counts)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, Self

import pyarrow as pa

from catalogue.config import IndexSettings
from catalogue.domain.cohort import CohortQuery, ExactResult, ExactSummary, Stratum
from catalogue.domain.models import Dataset

FACETS = ("provider", "cancer_type", "body_part", "modality", "access_rights", "license", "theme")
"""The facets a dataset search counts: plain values (provider, access rights, licence, theme)
and concepts (cancer type, body part, modality; see `catalogue.ontology.facets`)."""

FacetCounts = dict[str, list[tuple[str, int]]]
"""Per facet, (value, number of matching datasets), most frequent first."""

SearchOrder = Literal["relevance", "title"]
"""Best match first (by title when there is no text), or by title."""


@dataclass(frozen=True)
class SearchFilters:
    """What every dataset found must satisfy: each field restricts (its values are
    alternatives); each concept group is a set of alternatives matched with descendants."""

    providers: tuple[str, ...] = ()
    concepts: tuple[frozenset[str], ...] = ()
    access_rights: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()

    def with_providers(self, providers: tuple[str, ...]) -> SearchFilters:
        """These filters, restricted to `providers` besides."""
        if not providers:
            return self
        return replace(self, providers=(*self.providers, *providers))


@dataclass(frozen=True)
class SearchPage:
    """One page of a dataset search, best first, with the exact facet counts of every match
    when asked for: a concept facet lists the most specific concepts the matches are annotated
    with, each counted over the matches annotated with it or a descendant (what filtering by it
    finds)."""

    total: int
    datasets: list[Dataset]
    facets: FacetCounts = field(default_factory=dict)


class DatasetIndex(Protocol):
    """Full-text and concept search over dataset descriptions; rebuilt from the graph store at
    will. Documents carry the labels of the datasets' concepts (`Dataset.concepts`, closures),
    and a query naming a concept also finds datasets annotated with it or a descendant."""

    emptied: bool
    """An index of an older schema was found on opening and emptied: the catalogue rebuilds it
    from the graph store."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> Self:
        """Open the index: an embedded backend keeps it in the `path` folder, a remote one
        finds its cluster through `settings`."""
        ...

    def replace_provider(self, provider_id: str, datasets: list[Dataset]) -> None:
        """Make `datasets` the provider's whole set of indexed datasets, atomically."""
        ...

    def replace_all(self, datasets: Mapping[str, list[Dataset]]) -> None:
        """Make these (per provider) every dataset of the index, at once: searches see the
        old documents until the new ones are all there (`catalogue reindex`)."""
        ...

    def update(self, datasets: list[Dataset], removed: list[tuple[str, str]]) -> None:
        """Add or replace `datasets` and remove the (provider, identifier) pairs, atomically."""
        ...

    def search(
        self,
        text: str | None,
        offset: int,
        limit: int,
        filters: SearchFilters | None = None,
        facets: bool = False,
        *,
        order: SearchOrder = "relevance",
        providers: tuple[str, ...] = (),
        expand: bool = True,
    ) -> SearchPage:
        """Datasets matching `text` (words, quoted phrases, OR, NOT; with `expand`, a phrase
        naming a concept also matches what is annotated with it or a descendant) and
        `filters`, best first, with the facet counts when `facets`. `providers` is the older
        spelling of `filters.providers`, added to it."""
        ...

    def get(self, provider_id: str, identifier: str) -> Dataset | None: ...

    def all(self) -> list[Dataset]: ...

    def close(self) -> None: ...


class CohortIndex(Protocol):
    """Subject/study/series features, answering feasibility queries with exact counts."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> Self:
        """Open the index: an embedded backend keeps it in the `path` folder, a remote one
        finds its cluster through `settings`."""
        ...

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
        strata_min_subjects: int = 1,
        max_strata_cells: int = 5000,
        linkage: bool = False,
    ) -> ExactResult:
        """Exact counts for a query (normalised first) per docs/feasibility.md: by provider, by
        dataset and in the strata tables asked for, with each cell's fingerprints (and, with
        `evidence`, subject sketches). `scopes` restricts the (provider, dataset) pairs, as
        resolved from catalogue metadata by the service. Strata tables list by name only the
        values at least `strata_min_subjects` subjects in scope hold (the others are '(other)');
        more than `max_strata_cells` cells is a QueryError. With `linkage`, each provider whose
        subjects have linkage codes gets the HyperLogLog registers of its matching subjects."""
        ...

    def scopes(self) -> list[tuple[str, str]]:
        """Every (provider, dataset) holding features."""
        ...

    def summaries(self, provider_id: str) -> dict[str, ExactSummary]:
        """Per dataset of a provider: exact totals, age range and subjects per coded value."""
        ...

    def distinct_values(self, provider_id: str, field: str) -> dict[str, tuple[int, int]]:
        """Raw value of a series field (body_part, modality, manufacturer) -> (series,
        subjects) holding it, for one provider; QueryError for another field."""
        ...

    def replace_value_concepts(
        self, provider_id: str, rows: Iterable[tuple[str, str, str]], version: int
    ) -> None:
        """Atomically make (field, raw value, concept) rows the provider's value concepts (each
        value's closure under the curators' mappings), computed with mapping set `version`."""
        ...

    def sources(self) -> list[tuple[str, str]]:
        """Every (provider, source) holding series rows or diagnoses."""
        ...

    def export(self, provider_id: str, source_id: str) -> Iterator[pa.RecordBatch]:
        """A source's series rows as SERIES_SCHEMA batches (`catalogue reindex --to` copies
        them into another backend)."""
        ...

    def export_diagnoses(self, provider_id: str, source_id: str) -> list[tuple[int, str]]:
        """A source's (subject pseudonym, normalised code) pairs."""
        ...

    def value_concepts(self, provider_id: str) -> list[tuple[str, str, str]]:
        """A provider's (field, raw value, concept) rows (see `replace_value_concepts`)."""
        ...

    def concept_values(self, field: str, concepts: Collection[str]) -> frozenset[tuple[str, str]]:
        """(provider, raw value) pairs of `field` whose concepts hold any of `concepts`."""
        ...

    def mapping_version(self, provider_id: str | None = None) -> int | None:
        """The mapping set version the value concepts were computed with: the provider's, or
        the oldest over every provider; None before any."""
        ...

    def close(self) -> None: ...
