"""HealthDCAT-AP access levels, read from a dataset's dct:accessRights (EU access-right table)."""

from __future__ import annotations

from enum import StrEnum

from rdflib import Graph, Namespace, URIRef
from rdflib.term import Node

from catalogue.dcat.namespaces import DCTERMS

ACCESS_RIGHT = Namespace("http://publications.europa.eu/resource/authority/access-right/")
"""The EU Publications Office access-right authority table."""


class AccessLevel(StrEnum):
    """The three HealthDCAT-AP access levels, from the least to the most demanding."""

    PUBLIC = "public"
    RESTRICTED = "restricted"
    NON_PUBLIC = "non-public"

    @property
    def iri(self) -> URIRef:
        """The access-right concept that declares this level."""
        return ACCESS_RIGHT[self.name]

    @property
    def rank(self) -> int:
        """Strictness: NON_PUBLIC asks for the most metadata."""
        return list(AccessLevel).index(self)

    @classmethod
    def from_iri(cls, iri: Node) -> AccessLevel | None:
        """The level an access-right IRI declares, or None for anything else."""
        for level in cls:
            if iri == level.iri:
                return level
        return None


def access_level(graph: Graph, dataset: Node) -> AccessLevel:
    """The level a dataset is validated at: its declared dct:accessRights.

    Only the three EU access-right IRIs count (the HealthDCAT-AP shapes accept nothing else). A
    dataset that declares none of them, or several, is held to the strictest level that applies:
    NON_PUBLIC when none is recognised, since health data whose access is not stated must be
    presumed sensitive; the missing or wrong dct:accessRights is reported by the shapes anyway.
    """
    levels = [AccessLevel.from_iri(o) for o in graph.objects(dataset, DCTERMS.accessRights)]
    known = [level for level in levels if level is not None]
    if not known:
        return AccessLevel.NON_PUBLIC
    return max(known, key=lambda level: level.rank)
