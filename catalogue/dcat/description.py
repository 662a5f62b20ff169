"""One dataset's description as a harvest carries it: Oxigraph triples, with its rdflib graph
(for validation) and its digest made on demand, once."""

from __future__ import annotations

from functools import cached_property

from rdflib import Graph

from catalogue.dcat.digest import description_digest
from catalogue.dcat.terms import Statement, to_graph


class Description:
    """The triples of a dataset's description (its concise bounded description, extended to
    the agents and distributions it points to: see parser.describe)."""

    def __init__(self, triples: list[Statement]) -> None:
        self.triples = triples

    @cached_property
    def graph(self) -> Graph:
        """The description as an rdflib Graph (built on first use)."""
        return to_graph(self.triples)

    @cached_property
    def digest(self) -> str:
        return description_digest(self.triples)
