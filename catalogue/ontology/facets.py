"""Concept facets: a dataset's concept closure split into families (cancer type, body part,
modality), each concept folded onto one representative of its exact-match class, and the most
specific of them.

A closure from `Annotator.annotate` holds a concept, its exact matches in the other
vocabularies and every ancestor: "Lung Non-Small Cell Carcinoma" brings NCIT:C2926 and
DOID:3908 and a dozen ancestors. A facet lists each notion once (NCIT before DOID before
ICD-10-CM; SNOMED CT anatomic regions before BodyPartExamined terms), and names the most
specific notions a dataset is annotated with, while its counts follow the closure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from catalogue.ontology.vocabulary import Vocabulary

FAMILIES: Mapping[str, tuple[str, ...]] = {
    "cancer_type": ("ncit-neoplasm", "doid-cancer-slim", "icd10cm-neoplasms"),
    "body_part": ("anatomic-region", "body-part-examined"),
    "modality": ("modality",),
}
"""Concept facets and their vocabularies, preferred first."""


@dataclass
class ConceptFacets:
    """Splits closures into facet values; caches per concept (build one per vocabulary)."""

    vocabulary: Vocabulary
    _family: dict[str, str | None] = field(default_factory=dict, repr=False)
    _canonical: dict[str, str] = field(default_factory=dict, repr=False)
    _above: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _below: dict[str, bool] = field(default_factory=dict, repr=False)

    def family(self, curie: str) -> str | None:
        """The facet a concept belongs to, or None (unknown concept, or no facet)."""
        found = self._family.get(curie, "")
        if found == "":
            concept = self.vocabulary.concepts.get(curie)
            scheme = concept.scheme if concept else None
            found = next((f for f, schemes in FAMILIES.items() if scheme in schemes), None)
            self._family[curie] = found
        return found

    def canonical(self, curie: str) -> str:
        """The representative of a concept's exact-match class within its family."""
        found = self._canonical.get(curie)
        if found is None:
            family = self.family(curie)
            found = curie
            if family is not None:
                schemes = FAMILIES[family]
                members = {curie} | {
                    m for m in self.vocabulary[curie].exact_matches if self.family(m) == family
                }
                found = min(members, key=lambda m: (schemes.index(self.vocabulary[m].scheme), m))
            self._canonical[curie] = found
        return found

    def above(self, curie: str) -> frozenset[str]:
        """Canonical ancestors of a canonical concept (of it or its exact matches), itself
        excluded."""
        found = self._above.get(curie)
        if found is None:
            family = self.family(curie)
            seeds = {curie} | {
                m for m in self.vocabulary[curie].exact_matches if self.family(m) == family
            }
            ancestors = {
                self.canonical(a)
                for seed in seeds
                for a in self.vocabulary.ancestors(seed)
                if self.family(a) == family
            }
            found = self._above[curie] = frozenset(ancestors - {curie})
        return found

    def has_below(self, curie: str) -> bool:
        """Whether a concept of its family is below a canonical concept (or below one of its
        exact matches): if not, the concept is the most specific wherever it is held."""
        found = self._below.get(curie)
        if found is None:
            family = self.family(curie)
            seeds = {curie} | {
                m for m in self.vocabulary[curie].exact_matches if self.family(m) == family
            }
            found = self._below[curie] = any(
                self.family(d) == family
                for seed in seeds
                for d in self.vocabulary.descendants(seed)
            )
        return found

    def split(self, closure: Iterable[str]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
        """Per family: (canonical concepts of the closure, the most specific of them)."""
        values: dict[str, set[str]] = {}
        for curie in closure:
            family = self.family(curie)
            if family is not None:
                values.setdefault(family, set()).add(self.canonical(curie))
        out = {}
        for family, held in values.items():
            general = set().union(*(self.above(c) for c in held))
            out[family] = (frozenset(held), frozenset(held - general))
        return out

    def most_specific(self, closure: Iterable[str]) -> list[str]:
        """The most specific concepts of a closure: per family, canonical ones no other one is
        below; concepts outside every family (access rights) as they are."""
        curies = list(closure)
        kept = [c for c in curies if self.family(c) is None]
        for _, specific in self.split(curies).values():
            kept.extend(specific)
        return sorted(set(kept))


_BY_VOCABULARY: dict[int, tuple[Vocabulary, ConceptFacets]] = {}


def concept_facets(vocabulary: Vocabulary) -> ConceptFacets:
    """The shared `ConceptFacets` of a vocabulary (its caches live as long as the process)."""
    held = _BY_VOCABULARY.get(id(vocabulary))
    if held is None or held[0] is not vocabulary:
        held = _BY_VOCABULARY[id(vocabulary)] = (vocabulary, ConceptFacets(vocabulary))
    return held[1]
