"""Providers' raw values -> shared concepts: the one place a local term gets its codes.

A raw value of a field (a BodyPartExamined "CHESTABDPELVIS" at provider "thoracic", a
collection's cancer type "NSCLC") gets its concepts from, in order:

1. the curators' approved mappings for (provider, field, value), or for ('*', field, value),
   which every provider shares (the shipped default set uses it for aliases seen in the wild);
2. otherwise, when the value *is* a standard term of the field's vocabularies (a DICOM defined
   term such as "CHEST", a modality "CT", a label or synonym of an NCIt concept), that concept,
   unless a curator rejected it for this value.

Automatic proposals (lexical matches a curator has not approved) are never applied.
`closure` adds what a concept implies: its exact matches in other vocabularies and every
ancestor, so that a dataset annotated with "Lung Non-Small Cell Carcinoma" is found by "Lung
Carcinoma" and by "Neoplasm by Site".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from catalogue.ontology.vocabulary import Vocabulary

ANY_PROVIDER = "*"
"""The provider of a mapping every provider shares."""

FIELD_SCHEMES: Mapping[str, tuple[str, ...]] = {
    "body_part": ("body-part-examined", "anatomic-region"),
    "body_site": ("anatomic-region", "body-part-examined"),
    "modality": ("modality",),
    "cancer_type": ("ncit-neoplasm", "doid-cancer-slim", "icd10cm-neoplasms"),
    "access_rights": ("access-right",),
}
"""The vocabularies a field's raw values are standard terms of, in order of preference."""

ValueKey = tuple[str, str, str]
"""(provider, field, raw value)."""


def mapping_keys(provider: str, field_name: str, value: str) -> tuple[ValueKey, ValueKey]:
    """The keys a curator's mapping of a raw value may be recorded under: the provider's own,
    then every provider's ('*'); the first one recorded decides."""
    return (provider, field_name, value), (ANY_PROVIDER, field_name, value)


@dataclass
class Annotator:
    """Resolves raw values to concepts with a vocabulary and a mapping set's decisions."""

    vocabulary: Vocabulary
    approved: Mapping[ValueKey, list[str]] = field(default_factory=dict)
    rejected: frozenset[tuple[str, str, str, str]] = frozenset()
    """(provider, field, raw value, concept) pairs a curator rejected."""
    version: int = 0
    """The mapping set version these decisions come from."""

    def concepts(self, provider: str, field_name: str, value: str) -> frozenset[str]:
        """The concepts a raw value stands for (direct ones, no closure)."""
        keys = mapping_keys(provider, field_name, value)
        for key in keys:
            codes = self.approved.get(key)
            if codes is not None:
                return frozenset(c for c in codes if c in self.vocabulary)
        found: frozenset[str] = frozenset()
        for scheme in FIELD_SCHEMES.get(field_name, ()):
            hits = self.vocabulary.lookup(value, scheme)
            if hits:
                found = frozenset(c.curie for c in hits)
                break
        return frozenset(c for c in found if not any((*key, c) in self.rejected for key in keys))

    def annotate(self, provider: str, field_name: str, values: Iterable[str]) -> frozenset[str]:
        """The closure of the concepts of several raw values of one field."""
        direct: set[str] = set()
        for value in values:
            direct |= self.concepts(provider, field_name, value)
        return self.closure(direct)

    def closure(self, curies: Iterable[str]) -> frozenset[str]:
        """The concepts with their exact matches and every ancestor of either."""
        return _closure(self.vocabulary, frozenset(curies))


def _closure(vocabulary: Vocabulary, curies: frozenset[str]) -> frozenset[str]:
    return frozenset().union(*(_one_closure(vocabulary, c) for c in curies))


def _one_closure(vocabulary: Vocabulary, curie: str) -> frozenset[str]:
    held, cache = _CACHES.setdefault(id(vocabulary), (vocabulary, {}))
    assert held is vocabulary
    found = cache.get(curie)
    if found is None:
        seeds = {curie}
        if curie in vocabulary:
            seeds |= {m for m in vocabulary[curie].exact_matches if m in vocabulary}
        out = set(seeds)
        for seed in seeds:
            if seed in vocabulary:
                for ancestor in vocabulary.ancestors(seed):
                    out.add(ancestor)
                    out |= {m for m in vocabulary[ancestor].exact_matches if m in vocabulary}
        found = cache[curie] = frozenset(out)
    return found


_CACHES: dict[int, tuple[Vocabulary, dict[str, frozenset[str]]]] = {}
"""Closures per vocabulary (held, so that its id is not reused)."""


def descendants_or_self(vocabulary: Vocabulary, curie: str) -> frozenset[str]:
    """A concept, its exact matches, and every concept below any of them: what a query for
    the concept should also find."""
    if curie not in vocabulary:
        return frozenset({curie})
    seeds = {curie} | {m for m in vocabulary[curie].exact_matches if m in vocabulary}
    out = set(seeds)
    for seed in seeds:
        out |= vocabulary.descendants(seed)
    return frozenset(out)
