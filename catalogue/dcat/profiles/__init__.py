"""Typed, lossless DCAT-AP 3 -> HealthDCAT-AP -> imaging models of a dataset description.

    model = parse(graph, node)   # an ImagingDataset
    graph = serialise(model)     # isomorphic to dataset_subgraph(graph, node)

Whatever no profile understands is kept in each node's `extra` and written back.
"""

from __future__ import annotations

from rdflib import Graph
from rdflib.term import Node

from catalogue.dcat.profiles import dcatap, healthdcatap, imaging
from catalogue.dcat.profiles.chain import Profile, ProfileChain
from catalogue.dcat.profiles.dcatap import Agent, Dataset, Distribution
from catalogue.dcat.profiles.healthdcatap import HealthAgent, HealthDataset
from catalogue.dcat.profiles.imaging import ImagingDataset
from catalogue.dcat.profiles.resource import Lit, RdfList, Resource, Term, Text, TypedLiteral

DCATAP3 = Profile("DCAT-AP 3.0.1", dcatap.Dataset, dcatap.MODELS)
HEALTHDCATAP_R8 = Profile("HealthDCAT-AP release 8", HealthDataset, healthdcatap.MODELS)
IMAGING = Profile("imaging extension", ImagingDataset, imaging.MODELS)

CHAIN = ProfileChain((DCATAP3, HEALTHDCATAP_R8, IMAGING))
"""The catalogue's profiles, most general first."""


def parse(graph: Graph, node: Node) -> ImagingDataset:
    """The dataset `node` of `graph` as the most specific model of the chain."""
    model = CHAIN.parse(graph, node)
    if not isinstance(model, ImagingDataset):  # pragma: no cover - the chain ends with imaging
        raise TypeError(f"expected an ImagingDataset, got {type(model).__name__}")
    return model


def serialise(model: Resource) -> Graph:
    """A model (of any profile) as a new graph."""
    return CHAIN.serialise(model)


def write(graph: Graph, model: Resource) -> Node:
    """Add a model's description to `graph`; return its node."""
    return CHAIN.write(graph, model)


__all__ = [
    "CHAIN",
    "DCATAP3",
    "HEALTHDCATAP_R8",
    "IMAGING",
    "Agent",
    "Dataset",
    "Distribution",
    "HealthAgent",
    "HealthDataset",
    "ImagingDataset",
    "Lit",
    "Profile",
    "ProfileChain",
    "RdfList",
    "Resource",
    "Term",
    "Text",
    "TypedLiteral",
    "parse",
    "serialise",
    "write",
]
