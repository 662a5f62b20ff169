"""Profiles as an ordered chain: a dataset is read by the first profile, then enriched by each
next one, whose dataset model extends the previous one's.

A profile owns models; the fields a model declares (rather than inherits) are the profile's
properties. Parsing reads the node into a generic tree, then each profile in turn claims its
properties from what the previous ones left over; serialising writes every field with the
predicate its profile gave it, and the leftovers as they came.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rdflib import Graph
from rdflib.term import Node

from catalogue.dcat.namespaces import PREFIXES
from catalogue.dcat.profiles import codec
from catalogue.dcat.profiles.resource import Resource
from catalogue.exceptions import ConfigError


@dataclass(frozen=True)
class Profile:
    """One application profile: its name, the dataset model it yields, and all its models."""

    name: str
    dataset: type[Resource]
    models: tuple[type[Resource], ...]

    def properties(self) -> dict[str, str]:
        """Predicate -> "Model.field" for every property this profile introduces."""
        out: dict[str, str] = {}
        for model in self.models:
            inherited = {
                name
                for base in model.__mro__[1:]
                if isinstance(base, type) and issubclass(base, Resource)
                for name in base.model_fields
            }
            for spec in codec.field_specs(model):
                if spec.name not in inherited:
                    out.setdefault(spec.prop.predicate, f"{model.__name__}.{spec.name}")
        return out

    def enrich(self, model: Resource) -> Resource:
        """The dataset `model` (from the previous profile) as this profile's dataset model."""
        return codec.upgrade(model, self.dataset)


class ProfileChain:
    """Profiles applied in order; each dataset model must extend the previous one."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        if not profiles:
            raise ConfigError("a profile chain needs at least one profile")
        for previous, profile in itertools.pairwise(profiles):
            if not issubclass(profile.dataset, previous.dataset):
                raise ConfigError(
                    f"profile {profile.name!r} cannot follow {previous.name!r}: "
                    f"{profile.dataset.__name__} does not extend {previous.dataset.__name__}"
                )
        self.profiles = tuple(profiles)

    def parse(self, graph: Graph, node: Node) -> Resource:
        """The description of `node` in `graph`, read by every profile in turn."""
        model = codec.read(graph, node)
        for profile in self.profiles:
            model = profile.enrich(model)
        return model

    def serialise(self, model: Resource) -> Graph:
        """The description of `model` as a new graph."""
        graph = Graph()
        self.write(graph, model)
        return graph

    def write(self, graph: Graph, model: Resource) -> Node:
        """Add the description of `model` to `graph`; return its node (a new blank node when
        the model has no IRI)."""
        for prefix, namespace in PREFIXES.items():
            graph.bind(prefix, namespace, override=False)
        return codec.write(graph, model)
