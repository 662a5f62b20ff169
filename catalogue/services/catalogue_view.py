"""Read views of catalogue metadata: providers from the store, datasets from the index."""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass, field, replace

from catalogue.dcat.serialiser import parse_provider
from catalogue.domain.identifiers import GRAPH_BASE
from catalogue.domain.models import Dataset, Provider
from catalogue.exceptions import QueryError
from catalogue.index.base import FacetCounts, SearchOrder
from catalogue.services.runtime import Catalogue
from catalogue.services.search import (
    Completion,
    DatasetFilter,
    completer,
    search_filters,
)

MAX_PAGE = 100


@dataclass(frozen=True)
class DatasetPage:
    """A page of datasets with Relay-style cursors (opaque offsets)."""

    total: int
    offset: int
    datasets: list[Dataset]
    facets: FacetCounts = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.datasets) < self.total


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"invalid cursor {cursor!r}") from exc
    if kind != "offset" or offset < 0:
        raise QueryError(f"invalid cursor {cursor!r}")
    return offset


class CatalogueView:
    """Providers and datasets for the API, with small caches refreshed after each harvest."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] | None = None
        self._datasets: dict[tuple[str, str], Dataset] | None = None
        self._identifiers: frozenset[str] | None = None

    def refresh(self) -> None:
        with self._lock:
            self._providers = None
            self._datasets = None
            self._identifiers = None

    def providers(self) -> dict[str, Provider]:
        with self._lock:
            if self._providers is None:
                found = {}
                for name in self.catalogue.store.graph_names(f"{GRAPH_BASE}provider:"):
                    provider = parse_provider(self.catalogue.store.graph(name))
                    if provider is not None:
                        found[provider.id] = provider
                self._providers = dict(sorted(found.items()))
            return self._providers

    def provider(self, provider_id: str) -> Provider:
        return self.providers().get(provider_id) or Provider(id=provider_id, name=provider_id)

    def datasets_by_key(self) -> dict[tuple[str, str], Dataset]:
        with self._lock:
            return self._described()

    def _described(self) -> dict[tuple[str, str], Dataset]:
        """The datasets index as a dict (caller holds the lock)."""
        if self._datasets is None:
            self._datasets = {d.key: d for d in self.catalogue.datasets.all()}
        return self._datasets

    def dataset_identifiers(self) -> frozenset[str]:
        """Identifiers of every dataset described in the catalogue or holding features."""
        with self._lock:
            if self._identifiers is None:
                described = {identifier for _, identifier in self._described()}
                featured = {identifier for _, identifier in self.catalogue.cohort.scopes()}
                self._identifiers = frozenset(described | featured)
            return self._identifiers

    def dataset(self, provider_id: str, identifier: str) -> Dataset | None:
        return self.datasets_by_key().get((provider_id, identifier))

    def search(
        self,
        text: str | None,
        first: int = 20,
        after: str | None = None,
        providers: tuple[str, ...] = (),
        *,
        filters: DatasetFilter | None = None,
        facets: bool = False,
        order: SearchOrder = "relevance",
        expand: bool = True,
    ) -> DatasetPage:
        """A page of the datasets matching `text` (with concept expansion unless `expand` is
        false) and the filters (`providers`: the older spelling of `filters.providers`)."""
        if first < 0 or first > MAX_PAGE:
            raise QueryError(f"first must be between 0 and {MAX_PAGE}")
        offset = decode_cursor(after) + 1 if after else 0
        request = filters or DatasetFilter()
        if providers:
            request = replace(request, providers=(*request.providers, *providers))
        page = self.catalogue.datasets.search(
            text,
            offset,
            first,
            search_filters(request, self.catalogue.annotator()),
            facets,
            order=order,
            expand=expand,
        )
        return DatasetPage(
            total=page.total, offset=offset, datasets=page.datasets, facets=page.facets
        )

    def concepts(self, text: str, scheme: str | None = None, first: int = 10) -> list[Completion]:
        """Concepts whose labels (any language) start with `text`, best first."""
        if first < 0 or first > MAX_PAGE:
            raise QueryError(f"first must be between 0 and {MAX_PAGE}")
        vocabulary = self.catalogue.annotator().vocabulary
        if scheme is not None and scheme not in vocabulary.schemes:
            known = ", ".join(sorted(vocabulary.schemes))
            raise QueryError(f"unknown scheme {scheme!r}; known: {known}")
        return completer(vocabulary).complete(text, scheme, first)
