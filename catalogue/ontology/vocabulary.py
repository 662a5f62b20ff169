"""The shipped SKOS vocabularies in memory: concepts, labels, and the transitive closures of
skos:broader, computed once at load."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyoxigraph as ox

from catalogue.dcat.terms import gc_paused
from catalogue.exceptions import ConfigError
from catalogue.ontology.curie import curie_or_none, to_curie

ONTOLOGIES_DIR = Path(__file__).resolve().parents[2] / "ontologies"
"""The repository's top-level data folder that holds the shipped Turtle files."""

_SKOS = "http://www.w3.org/2004/02/skos/core#"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_OWL_VERSION = "http://www.w3.org/2002/07/owl#versionInfo"
_DCT = "http://purl.org/dc/terms/"
CONCEPT = f"{_SKOS}Concept"
CONCEPT_SCHEME = f"{_SKOS}ConceptScheme"
COLLECTION = f"{_SKOS}Collection"


@dataclass(frozen=True, slots=True, eq=False)
class Concept:
    """One SKOS concept; labels by language tag ("" for an untagged literal)."""

    iri: str
    curie: str
    scheme: str
    """Key of the vocabulary that declares it (see `Scheme.key`)."""
    pref_labels: Mapping[str, str]
    alt_labels: Mapping[str, tuple[str, ...]]
    hidden_labels: Mapping[str, tuple[str, ...]]
    notation: str | None
    broader: frozenset[str]
    """CURIEs of the direct skos:broader concepts."""
    exact_matches: frozenset[str]
    """skos:exactMatch targets (CURIEs, or IRIs outside the known namespaces), both directions."""
    close_matches: frozenset[str]

    def label(self, language: str = "en") -> str:
        """The preferred label in `language`, else in any language, else the notation or CURIE."""
        if language in self.pref_labels:
            return self.pref_labels[language]
        for text in self.pref_labels.values():
            return text
        return self.notation or self.curie


@dataclass(frozen=True, slots=True)
class Scheme:
    """One skos:ConceptScheme, as one shipped file declares it."""

    key: str
    """Last segment of the scheme IRI, e.g. `ncit-neoplasm`."""
    iri: str
    title: str
    version: str
    sources: tuple[str, ...]
    licences: tuple[str, ...]
    path: Path


def normalise(text: str) -> str:
    """Lookup key of a label: NFKC, casefolded, every run of non-alphanumerics one space, and
    British spellings folded into American ones (oesophageal = esophageal, tumour = tumor)."""
    if text.isascii():  # the common case, about ten times faster
        key = " ".join(text.lower().translate(_ASCII_PUNCTUATION).split())
    else:
        folded = unicodedata.normalize("NFKC", text).casefold()
        key = " ".join(_NON_WORD.sub(" ", folded).split())
    return _BRITISH.sub(lambda m: _AMERICAN[m[0]], key) if _BRITISH.search(key) else key


_AMERICAN = {
    "oesophag": "esophag",
    "tumour": "tumor",
    "paediatr": "pediatr",
    "leukaem": "leukem",
    "haem": "hem",
    "anaem": "anem",
    "oestro": "estro",
    "gynaecolog": "gynecolog",
    "oedema": "edema",
    "coeliac": "celiac",
    "foetal": "fetal",
    "orthopaed": "orthoped",
}
"""British spellings of medical words (as word parts) and their American forms."""
_BRITISH = re.compile("|".join(sorted(_AMERICAN, key=len, reverse=True)))


_NON_WORD = re.compile(r"[\W_]+")
_ASCII_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation, " "))


@dataclass
class Vocabulary:
    """Every concept of the loaded files by CURIE, with closures and a label index."""

    schemes: Mapping[str, Scheme]
    concepts: Mapping[str, Concept]
    collections: Mapping[str, frozenset[str]]
    """skos:Collection IRI -> CURIEs of its members."""
    _ancestors: dict[str, frozenset[str]] = field(repr=False)
    _descendants: dict[str, frozenset[str]] = field(repr=False)
    _by_iri: dict[str, Concept] = field(repr=False)
    _by_label: dict[str, tuple[Concept, ...]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.concepts)

    def __contains__(self, curie: object) -> bool:
        return curie in self.concepts

    def __getitem__(self, curie: str) -> Concept:
        return self.concepts[curie]

    def by_iri(self, iri: str) -> Concept | None:
        return self._by_iri.get(iri)

    def resolve(self, term: str) -> Concept | None:
        """The concept a CURIE or an IRI names, or None."""
        return self.concepts.get(term) or self._by_iri.get(term)

    def in_scheme(self, scheme: str) -> list[Concept]:
        """The concepts of one vocabulary, by CURIE."""
        return sorted((c for c in self.concepts.values() if c.scheme == scheme), key=_curie)

    def ancestors(self, curie: str) -> frozenset[str]:
        """CURIEs of every concept reachable by skos:broader (the concept excluded); KeyError for
        an unknown CURIE."""
        if curie not in self.concepts:
            raise KeyError(curie)
        return self._ancestors.get(curie, frozenset())

    def descendants(self, curie: str) -> frozenset[str]:
        """CURIEs of every concept whose ancestors include this one; KeyError if unknown."""
        if curie not in self.concepts:
            raise KeyError(curie)
        return self._descendants.get(curie, frozenset())

    def lookup(self, text: str, scheme: str | None = None) -> tuple[Concept, ...]:
        """Concepts whose preferred, alternative or hidden label or notation equals `text` once
        both are normalised; preferred-label matches first."""
        found = self._by_label.get(normalise(text), ())
        if scheme is not None:
            found = tuple(c for c in found if c.scheme == scheme)
        return found


def _curie(concept: Concept) -> str:
    return concept.curie


def shipped_files(directory: Path = ONTOLOGIES_DIR) -> list[Path]:
    """The Turtle files of a vocabulary folder, sorted; ConfigError if there are none."""
    files = sorted(directory.glob("*.ttl")) if directory.is_dir() else []
    if not files:
        raise ConfigError(f"no vocabulary (*.ttl) found in {directory}")
    return files


Row = tuple[str, str, ox.NamedNode | ox.BlankNode | ox.Literal]
"""A triple as (subject value, predicate IRI, object term)."""


@dataclass
class VocabularyFile:
    """One parsed Turtle file: its triples, as Oxigraph gives them and as rows, and its scheme."""

    scheme: Scheme
    triples: list[ox.Quad]
    rows: list[Row]


def read_file(path: Path) -> VocabularyFile:
    """Parse one shipped file; ConfigError when missing, malformed or not one concept scheme."""
    try:
        triples = list(ox.parse(path=path, format=ox.RdfFormat.TURTLE))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(f"cannot read vocabulary {path}: {exc}") from exc
    rows: list[Row] = [(t.subject.value, t.predicate.value, t.object) for t in triples]
    schemes = {s for s, p, o in rows if p == _RDF_TYPE and o.value == CONCEPT_SCHEME}
    if len(schemes) != 1:
        raise ConfigError(f"{path} must declare one skos:ConceptScheme, found {len(schemes)}")
    iri = schemes.pop()
    values: dict[str, list[str]] = {}
    for subject, predicate, obj in rows:
        if subject == iri:
            values.setdefault(predicate, []).append(obj.value)
    versions = values.get(_OWL_VERSION, [])
    if len(versions) != 1:
        raise ConfigError(f"{path}: the scheme {iri} needs exactly one owl:versionInfo")
    scheme = Scheme(
        key=re.split(r"[/#]", iri.rstrip("/#"))[-1],
        iri=iri,
        title=next(iter(values.get(f"{_DCT}title", [])), iri),
        version=versions[0],
        sources=tuple(sorted(values.get(f"{_DCT}source", []))),
        licences=tuple(sorted(values.get(f"{_DCT}license", []))),
        path=path,
    )
    return VocabularyFile(scheme, triples, rows)


class _Draft:
    """A concept's values while its file is read."""

    __slots__ = ("alt", "broader", "close", "exact", "hidden", "notation", "pref")

    def __init__(self) -> None:
        self.pref: dict[str, str] = {}
        self.alt: dict[str, list[str]] = {}
        self.hidden: dict[str, list[str]] = {}
        self.notation: str | None = None
        self.broader: set[str] = set()
        self.exact: set[str] = set()
        self.close: set[str] = set()


_LABELS = {f"{_SKOS}altLabel": "alt", f"{_SKOS}hiddenLabel": "hidden"}
_PREF, _NOTATION, _BROADER, _MEMBER = (
    f"{_SKOS}{name}" for name in ("prefLabel", "notation", "broader", "member")
)
_MATCHES = {f"{_SKOS}exactMatch": "exact", f"{_SKOS}closeMatch": "close"}


def load_vocabulary(paths: Iterable[Path] | None = None) -> Vocabulary:
    """Load Turtle vocabularies (default: every shipped file) into one `Vocabulary`."""
    with gc_paused():  # ~10^5 acyclic objects: the cycle collector would only slow this down
        return _load([read_file(p) for p in (shipped_files() if paths is None else paths)])


def _load(files: list[VocabularyFile]) -> Vocabulary:
    schemes: dict[str, Scheme] = {}
    drafts: dict[str, tuple[str, _Draft]] = {}
    members: dict[str, set[str]] = {}
    for file in files:
        if file.scheme.key in schemes:
            raise ConfigError(f"two files declare the scheme {file.scheme.key}: {file.scheme.path}")
        schemes[file.scheme.key] = file.scheme
        _collect(file, drafts, members)
    concepts = _concepts(drafts)
    return _index(schemes, concepts, {k: frozenset(map(_short, v)) for k, v in members.items()})


def _collect(
    file: VocabularyFile, drafts: dict[str, tuple[str, _Draft]], members: dict[str, set[str]]
) -> None:
    """Gather the concepts (and collection members) of one file into `drafts`."""
    own: dict[str, _Draft] = {}
    for subject, predicate, obj in file.rows:
        if predicate == _RDF_TYPE and obj.value == CONCEPT:
            if subject in drafts:
                raise ConfigError(
                    f"{file.scheme.path}: {subject} is declared by another vocabulary"
                )
            own[subject] = _Draft()
            drafts[subject] = (file.scheme.key, own[subject])
    for subject, predicate, obj in file.rows:
        if predicate == _MEMBER:
            members.setdefault(subject, set()).add(obj.value)
            continue
        draft = own.get(subject)
        if draft is None:
            continue
        if predicate == _PREF and isinstance(obj, ox.Literal):
            draft.pref[obj.language or ""] = obj.value
        elif predicate in _LABELS and isinstance(obj, ox.Literal):
            kind = draft.alt if _LABELS[predicate] == "alt" else draft.hidden
            kind.setdefault(obj.language or "", []).append(obj.value)
        elif predicate == _NOTATION:
            draft.notation = obj.value
        elif predicate == _BROADER:
            draft.broader.add(obj.value)
        elif predicate in _MATCHES:
            (draft.exact if _MATCHES[predicate] == "exact" else draft.close).add(obj.value)


def _short(iri: str) -> str:
    return curie_or_none(iri) or iri


def _concepts(drafts: Mapping[str, tuple[str, _Draft]]) -> dict[str, Concept]:
    """Concepts from drafts, with matches made symmetric across the loaded vocabularies."""
    for iri, (_, draft) in drafts.items():
        for kind in ("exact", "close"):
            for target in getattr(draft, kind):
                if target in drafts:
                    getattr(drafts[target][1], kind).add(iri)
    concepts: dict[str, Concept] = {}
    for iri, (scheme, d) in drafts.items():
        try:
            curie = to_curie(iri)
        except ValueError as exc:
            raise ConfigError(f"vocabulary {scheme}: {exc}") from exc
        concepts[curie] = Concept(
            iri=iri,
            curie=curie,
            scheme=scheme,
            pref_labels=d.pref,
            alt_labels={lang: tuple(sorted(v)) for lang, v in d.alt.items()},
            hidden_labels={lang: tuple(sorted(v)) for lang, v in d.hidden.items()},
            notation=d.notation,
            broader=frozenset(map(_short, d.broader)),
            exact_matches=frozenset(map(_short, d.exact)),
            close_matches=frozenset(map(_short, d.close)),
        )
    return concepts


def _index(
    schemes: dict[str, Scheme],
    concepts: dict[str, Concept],
    collections: dict[str, frozenset[str]],
) -> Vocabulary:
    ancestors = transitive_closure({c: v.broader for c, v in concepts.items()})
    below: dict[str, set[str]] = {}
    for curie, above in ancestors.items():
        for ancestor in above:
            below.setdefault(ancestor, set()).add(curie)
    return Vocabulary(
        schemes=schemes,
        concepts=concepts,
        collections=collections,
        _ancestors=ancestors,
        _descendants={c: frozenset(v) for c, v in below.items()},
        _by_iri={c.iri: c for c in concepts.values()},
        _by_label=_label_index(concepts.values()),
    )


def transitive_closure(edges: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Every node reachable from each node (itself excluded, unless on a cycle, which raises
    ConfigError); nodes without outgoing edges are left out."""
    closure: dict[str, frozenset[str]] = {}
    for start in edges:
        if start in closure:
            continue
        # iterative depth-first search; `path` holds the nodes whose closure is being built
        path: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
        on_path = {start}
        while path:
            node, pending = path[-1]
            child = next(pending, None)
            if child is None:
                path.pop()
                on_path.discard(node)
                reached: set[str] = set()
                for parent in edges.get(node, ()):
                    reached.add(parent)
                    reached |= closure.get(parent, frozenset())
                if reached:
                    closure[node] = frozenset(reached)
                continue
            if child in on_path:
                raise ConfigError(f"skos:broader cycle through {child}")
            if child not in closure and child in edges:
                path.append((child, iter(edges[child])))
                on_path.add(child)
    return closure


def _label_index(concepts: Iterable[Concept]) -> dict[str, tuple[Concept, ...]]:
    """Normalised label -> concepts; preferred labels rank before the other kinds."""
    hits: dict[str, list[tuple[int, str, Concept]]] = {}
    for concept in concepts:
        for rank, texts in enumerate(_labels_of(concept)):
            for text in texts:
                hits.setdefault(normalise(text), []).append((rank, concept.curie, concept))
    index: dict[str, tuple[Concept, ...]] = {}
    for key, found in hits.items():
        if not key:
            continue
        if len(found) > 1:
            found.sort(key=lambda hit: hit[:2])
        seen: dict[str, Concept] = {}
        for _, curie, concept in found:
            seen.setdefault(curie, concept)
        index[key] = tuple(seen.values())
    return index


def _labels_of(concept: Concept) -> Sequence[Iterable[str]]:
    """The concept's texts by rank: preferred labels, alternative, then hidden and notation."""
    hidden = [t for texts in concept.hidden_labels.values() for t in texts]
    return (
        concept.pref_labels.values(),
        [t for texts in concept.alt_labels.values() for t in texts],
        [*hidden, *([concept.notation] if concept.notation else [])],
    )


@lru_cache(maxsize=1)
def shipped_vocabulary() -> Vocabulary:
    """Every shipped vocabulary, loaded once per process."""
    return load_vocabulary()
