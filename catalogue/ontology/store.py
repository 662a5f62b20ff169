"""The shipped vocabularies in a GraphStore: one named graph per vocabulary and version."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from catalogue.domain.identifiers import GRAPH_BASE
from catalogue.ontology.vocabulary import read_file, shipped_files, shipped_vocabulary
from catalogue.store.base import GraphStore

VOCABULARY_GRAPH_PREFIX = f"{GRAPH_BASE}vocab:"


def vocabulary_graph(scheme: str, version: str) -> str:
    """Name of the graph holding one version of a vocabulary, e.g.
    `urn:catalogue:graph:vocab:modality@pydicom-3.0.2`."""
    return f"{vocabulary_prefix(scheme)}{quote(version, safe='+')}"


def vocabulary_prefix(scheme: str) -> str:
    """Common prefix of the graph names of every version of one vocabulary."""
    return f"{VOCABULARY_GRAPH_PREFIX}{quote(scheme, safe='')}@"


def load_vocabularies(store: GraphStore, paths: Iterable[Path] | None = None) -> list[str]:
    """Write each vocabulary file (default: the shipped ones) to its graph, dropping in the same
    transaction any other version of that vocabulary; returns the graph names written.

    Each vocabulary is replaced atomically on its own: a failure leaves it at its old version
    and those loaded before it at their new one. ConfigError for a missing or broken file (read
    before anything is written), StoreError from the store.
    """
    files = [read_file(p) for p in (shipped_files() if paths is None else paths)]
    names = []
    for file in files:
        name = vocabulary_graph(file.scheme.key, file.scheme.version)
        store.replace_graphs({name: file.triples}, drop_prefix=vocabulary_prefix(file.scheme.key))
        names.append(name)
    return names


def loaded_vocabularies(store: GraphStore) -> dict[str, str]:
    """Vocabulary key -> version of every vocabulary graph the store holds."""
    loaded = {}
    for name in store.graph_names(VOCABULARY_GRAPH_PREFIX):
        scheme, _, version = name.removeprefix(VOCABULARY_GRAPH_PREFIX).partition("@")
        loaded[unquote(scheme)] = unquote(version)
    return loaded


def ensure_vocabularies(store: GraphStore) -> list[str]:
    """Load the shipped vocabularies whose version the store does not hold yet (a harvest calls
    it, so the catalogue graph always has the vocabularies its annotations use); returns the
    graph names written, none when all are current."""
    loaded = loaded_vocabularies(store)
    stale = [
        scheme.path
        for key, scheme in shipped_vocabulary().schemes.items()
        if loaded.get(key) != scheme.version
    ]
    return load_vocabularies(store, sorted(set(stale))) if stale else []
