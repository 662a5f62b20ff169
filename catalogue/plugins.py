"""Backends and harvesters register by name through entry points, like rdflib stores."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from catalogue.exceptions import PluginError

GRAPH_STORES = "catalogue.graph_stores"
DATASET_INDEXES = "catalogue.dataset_indexes"
COHORT_INDEXES = "catalogue.cohort_indexes"
HARVESTERS = "catalogue.harvesters"
_KINDS = {
    GRAPH_STORES: "graph store",
    DATASET_INDEXES: "dataset index",
    COHORT_INDEXES: "cohort index",
    HARVESTERS: "source kind",
}


def available(group: str) -> list[str]:
    """Names registered in an entry-point group, sorted."""
    return sorted(ep.name for ep in entry_points(group=group))


def load(group: str, name: str) -> Any:
    """The object registered as `name` in `group`; an unknown name fails with the known ones."""
    for ep in entry_points(group=group):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:  # an installed plugin that cannot import
                raise PluginError(f"{group} plugin {name!r} failed to load: {exc}") from exc
    known = ", ".join(available(group)) or "none installed"
    raise PluginError(f"unknown {_KINDS.get(group, group)} {name!r} (known: {known})")
