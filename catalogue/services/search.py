"""Semantic dataset search around the index: datasets annotated with concepts before they are
indexed, a searcher's filters resolved to concepts, facet labels, and concept autocompletion."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from catalogue.domain.models import Dataset
from catalogue.index.base import SearchFilters
from catalogue.ontology.annotate import ANY_PROVIDER, Annotator
from catalogue.ontology.vocabulary import Concept, Vocabulary, normalise


def annotate_dataset(dataset: Dataset, annotator: Annotator) -> Dataset:
    """The dataset with `concepts`: the closure of what its cancer types, body sites, access
    rights and modalities (declared, and in its computed summary) stand for."""
    fields: list[tuple[str, Iterable[str]]] = [
        ("cancer_type", dataset.cancer_types),
        ("body_site", dataset.body_sites),
        ("modality", dataset.modalities),
        ("access_rights", (dataset.access_rights,) if dataset.access_rights else ()),
    ]
    if dataset.summary is not None:
        fields += [("body_part", dataset.summary.body_parts)]
        fields += [("modality", dataset.summary.modalities)]
    direct: set[str] = set()
    for field_name, values in fields:
        for value in values:
            direct |= _concepts_of(annotator, dataset.provider_id, field_name, value)
    return dataset.model_copy(update={"concepts": tuple(sorted(annotator.closure(direct)))})


def _concepts_of(annotator: Annotator, provider: str, field_name: str, value: str) -> set[str]:
    """A raw value's concepts; a value that is a concept's IRI or CURIE stands for it."""
    found = set(annotator.concepts(provider, field_name, value))
    if not found:
        concept = annotator.vocabulary.resolve(value)
        if concept is not None:
            found.add(concept.curie)
    return found


# -- filters


@dataclass(frozen=True)
class DatasetFilter:
    """A searcher's restrictions as given: values of one field are alternatives. Cancer types,
    body parts and modalities are CURIEs, IRIs, labels or raw values; each finds the datasets
    annotated with what it stands for or anything below it."""

    providers: tuple[str, ...] = ()
    cancer_types: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    access_rights: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    concepts: tuple[str, ...] = ()


_FILTER_FIELDS = {
    "cancer_types": ("cancer_type",),
    "body_parts": ("body_site", "body_part"),
    "modalities": ("modality",),
}


def search_filters(request: DatasetFilter, annotator: Annotator) -> SearchFilters:
    """The index's filters: values resolved to concepts (an unknown one matches nothing)."""
    groups = []
    for name, fields in _FILTER_FIELDS.items():
        values: tuple[str, ...] = getattr(request, name)
        if values:
            found: set[str] = set()
            for value in values:
                for field_name in fields:
                    found |= _concepts_of(annotator, ANY_PROVIDER, field_name, value)
            groups.append(frozenset(found))
    if request.concepts:
        vocabulary = annotator.vocabulary
        groups.append(frozenset(_curie(vocabulary, v) for v in request.concepts))
    access = set(request.access_rights)
    for value in request.access_rights:
        concept = annotator.vocabulary.resolve(value) or next(
            iter(annotator.vocabulary.lookup(value, "access-right")), None
        )
        if concept is not None:
            access.add(concept.iri)
    return SearchFilters(
        providers=request.providers,
        concepts=tuple(groups),
        access_rights=tuple(sorted(access)),
        licenses=request.licenses,
        themes=request.themes,
    )


def _curie(vocabulary: Vocabulary, value: str) -> str:
    concept = vocabulary.resolve(value)
    return concept.curie if concept is not None else value


def facet_label(vocabulary: Vocabulary, value: str) -> str:
    """How a facet value reads: a concept's (or concept IRI's) preferred label, else itself."""
    concept = vocabulary.resolve(value)
    return concept.label() if concept is not None else value


# -- autocompletion


@dataclass(frozen=True)
class Completion:
    """A concept whose label starts with what was typed, and that label."""

    concept: Concept
    matched: str


_EXACT, _PREFERRED, _SYNONYM, _INNER = range(4)
"""Ranks of a match: the whole label, the start of a preferred label, the start of another
label (synonym, hidden label, notation), the start of a later word of any label."""

_Rank = tuple[int, int, int, str, str]
"""(rank, length of the label, its kind, label, CURIE): the smaller the better."""

_MEMO_FROM = 2000
"""Answers over more candidates than this (one- or two-letter prefixes) are kept."""


class ConceptCompleter:
    """Prefix search over every label (all languages) with a sorted key list and bisection:
    exact labels first, then preferred labels, synonyms, later words; shorter labels first."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        entries: list[tuple[str, _Rank, str]] = []
        for concept in vocabulary.concepts.values():
            for kind, text in _texts(concept):
                words = normalise(text).split()
                entries.append(
                    (" ".join(words), (kind, len(text), kind, text, concept.curie), concept.scheme)
                )
                for i in range(1, len(words)):
                    inner = (_INNER, len(text), _INNER, text, concept.curie)
                    entries.append((" ".join(words[i:]), inner, concept.scheme))
        entries.sort()
        self._tables: dict[str | None, tuple[list[str], list[_Rank]]] = {}
        for scheme in (None, *vocabulary.schemes):
            kept = [e for e in entries if scheme is None or e[2] == scheme]
            self._tables[scheme] = ([e[0] for e in kept], [e[1] for e in kept])
        self._memo: dict[tuple[str, str | None, int], list[Completion]] = {}

    def complete(self, text: str, scheme: str | None = None, first: int = 10) -> list[Completion]:
        """The best `first` concepts whose labels start with `text` (normalised)."""
        prefix = normalise(text)
        table = self._tables.get(scheme)
        if not prefix or table is None or first <= 0:
            return []
        memo = self._memo.get((prefix, scheme, first))
        if memo is not None:
            return memo
        keys, ranks = table
        low = bisect_left(keys, prefix)
        high = bisect_left(keys, prefix + "\U0010ffff", low)
        exact_end = bisect_right(keys, prefix, low, high)
        exact = [(_EXACT, *r[1:]) if r[0] < _INNER else r for r in ranks[low:exact_end]]
        wanted = first * 4
        candidates = heapq.nsmallest(wanted, exact + ranks[exact_end:high])
        best = _unique(candidates)
        if len(best) < first and len(candidates) == wanted:  # many labels of few concepts
            best = _unique(sorted(exact + ranks[exact_end:high]))
        concepts = self.vocabulary.concepts
        found = [Completion(concepts[curie], label) for curie, label in best[:first]]
        if high - low > _MEMO_FROM:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[(prefix, scheme, first)] = found
        return found


def _unique(ranked: Iterable[_Rank]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for *_, text, curie in ranked:
        seen.setdefault(curie, text)
    return list(seen.items())


def _texts(concept: Concept) -> Iterable[tuple[int, str]]:
    for text in concept.pref_labels.values():
        yield _PREFERRED, text
    for texts in (*concept.alt_labels.values(), *concept.hidden_labels.values()):
        for text in texts:
            yield _SYNONYM, text
    if concept.notation:
        yield _SYNONYM, concept.notation


_COMPLETERS: dict[int, ConceptCompleter] = {}


def completer(vocabulary: Vocabulary) -> ConceptCompleter:
    """The completer of a vocabulary, built once per process."""
    found = _COMPLETERS.get(id(vocabulary))
    if found is None or found.vocabulary is not vocabulary:
        found = _COMPLETERS[id(vocabulary)] = ConceptCompleter(vocabulary)
    return found
