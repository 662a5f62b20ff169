"""The GraphStore port: the catalogue graph, one named graph per (provider, dataset)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rdflib import Graph

from catalogue.dcat.terms import RdfGraph

if TYPE_CHECKING:
    from typing import Self

    from catalogue.config import StoreSettings


class GraphStore(Protocol):
    """An RDF quad store; the source of truth for catalogue metadata."""

    @classmethod
    def open(cls, path: Path, settings: StoreSettings) -> Self:
        """Open the store: embedded backends keep it in the `path` folder, remote ones find
        it through `settings`."""
        ...

    def replace_graphs(
        self, graphs: Mapping[str, RdfGraph], drop_prefix: str | None = None
    ) -> None:
        """Atomically replace the named graphs given; with `drop_prefix`, also drop every other
        graph whose name starts with it (a provider's datasets no longer published)."""
        ...

    def add_graphs(self, graphs: Mapping[str, RdfGraph]) -> None:
        """Write graphs the store does not hold yet, as fast as the store can (Oxigraph: its bulk
        loader), possibly not atomically: a crash may leave part of them. The caller records
        their names first, and drops them with `replace_graphs` if they may be incomplete."""
        ...

    def graph(self, name: str) -> Graph:
        """A copy of one named graph (empty if absent)."""
        ...

    def graph_names(self, prefix: str = "") -> list[str]:
        """Names of the named graphs starting with `prefix`, sorted."""
        ...

    def triple_count(self) -> int: ...

    def close(self) -> None: ...
