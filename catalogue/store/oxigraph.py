"""GraphStore on Oxigraph on disk: writes in SPARQL Update transactions, or with its bulk loader
for graphs it does not hold yet; reads a graph's quads as Oxigraph gives them (literals are not
rewritten again by rdflib)."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pyoxigraph as ox
from oxrdflib import OxigraphStore
from rdflib import Dataset, Graph

from catalogue.dcat.terms import RdfGraph, to_graph
from catalogue.exceptions import StoreError
from catalogue.store.sparql_update import graph_iri, triples_of

if TYPE_CHECKING:
    from catalogue.config import StoreSettings


class OxigraphGraphStore:
    """Oxigraph's RocksDB-backed store; each replacement is one SPARQL Update transaction."""

    @classmethod
    def open(cls, path: Path, settings: StoreSettings) -> OxigraphGraphStore:
        """The store kept in the `path` folder (the settings only name the backend)."""
        return cls(path)

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._ox = ox.Store(str(path))
        except OSError as exc:
            raise StoreError.cannot_open("Oxigraph store", path, exc) from exc
        self.dataset = Dataset(store=OxigraphStore(store=self._ox))

    def replace_graphs(
        self, graphs: Mapping[str, RdfGraph], drop_prefix: str | None = None
    ) -> None:
        drops = set(graphs)
        if drop_prefix is not None:
            drops |= set(self.graph_names(drop_prefix))
        nodes = {name: graph_iri(name) for name in sorted(drops)}
        statements = [f"DROP SILENT GRAPH {node}" for node in nodes.values()]
        # one INSERT DATA for every graph: a blank node shared by two graphs stays one node
        blocks = []
        for name, graph in graphs.items():
            body = "\n".join(f"{t} ." for t in triples_of(name, graph))
            if body:
                blocks.append(f"GRAPH {nodes[name]} {{\n{body}\n}}")
        if blocks:
            statements.append("INSERT DATA {\n" + "\n".join(blocks) + "\n}")
        if not statements:
            return
        try:
            self._ox.update(" ;\n".join(statements))
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"graph replacement failed, nothing changed: {exc}") from exc

    def add_graphs(self, graphs: Mapping[str, RdfGraph]) -> None:
        """Oxigraph's bulk loader, after dropping any graph of these names it holds (left by a
        crash): not atomic, several times faster than a transaction."""
        nodes = {name: graph_iri(name) for name in graphs}  # every name checked first
        held = [n for n in graphs if self._ox.contains_named_graph(ox.NamedNode(n))]
        if held:
            self.replace_graphs(dict.fromkeys(held, ()))
        lines: list[str] = []
        for name, graph in graphs.items():
            node = nodes[name]
            lines.extend(f"{t} {node} .\n" for t in triples_of(name, graph))
        if not lines:
            return
        try:
            self._ox.bulk_load(input="".join(lines).encode(), format=ox.RdfFormat.N_QUADS)
            self._ox.flush()
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"bulk load failed, part of the graphs may be written: {exc}") from exc

    def graph(self, name: str) -> Graph:
        """The graph's quads as stored; StoreError for a name the store could not hold."""
        graph_iri(name)
        quads = self._ox.quads_for_pattern(None, None, None, ox.NamedNode(name))
        return to_graph(quads, dict(self.dataset.namespaces()))

    def graph_names(self, prefix: str = "") -> list[str]:
        names = (str(g.value) for g in self._ox.named_graphs() if isinstance(g, ox.NamedNode))
        return sorted(n for n in names if n.startswith(prefix))

    def triple_count(self) -> int:
        return len(self._ox)

    def close(self) -> None:
        """Flush and release the store's lock on its folder (RocksDB frees it with the last
        reference, so every reference is dropped and collected)."""
        if getattr(self, "_ox", None) is None:
            return
        self._ox.flush()
        del self.dataset
        del self._ox
        gc.collect()
