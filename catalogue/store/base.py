"""The GraphStore port: the catalogue graph, one named graph per (provider, dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rdflib import Graph

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

    def replace_graphs(self, graphs: dict[str, Graph], drop_prefix: str | None = None) -> None:
        """Atomically replace the named graphs given; with `drop_prefix`, also drop every other
        graph whose name starts with it (a provider's datasets no longer published)."""
        ...

    def graph(self, name: str) -> Graph:
        """A copy of one named graph (empty if absent)."""
        ...

    def graph_names(self, prefix: str = "") -> list[str]:
        """Names of the named graphs starting with `prefix`, sorted."""
        ...

    def triple_count(self) -> int: ...

    def close(self) -> None: ...
