"""SKOS concept schemes as the build assembles them, and their deterministic Turtle text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from catalogue.ontology.curie import CURIE_PREFIXES, VOCAB_BASE

PREFIXES = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dct": "http://purl.org/dc/terms/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "catalogue": VOCAB_BASE,
    **CURIE_PREFIXES,
}
_LOCAL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?")


@dataclass
class Label:
    text: str
    language: str = "en"


@dataclass
class ConceptRecord:
    """One concept being built: labels, notation, and links as IRIs."""

    iri: str
    pref: list[Label] = field(default_factory=list)
    alt: list[Label] = field(default_factory=list)
    hidden: list[Label] = field(default_factory=list)
    definition: list[Label] = field(default_factory=list)
    notation: str | None = None
    broader: set[str] = field(default_factory=set)
    exact: set[str] = field(default_factory=set)
    close: set[str] = field(default_factory=set)
    schemes: set[str] = field(default_factory=set)
    """Further schemes it is in, beside the one being built (an official scheme IRI)."""

    def add_alt(self, text: str, language: str = "en") -> None:
        """An alternative label, unless it repeats a label the concept has."""
        taken = {(x.text.casefold(), x.language) for x in (*self.pref, *self.alt, *self.hidden)}
        if (text.casefold(), language) not in taken:
            self.alt.append(Label(text, language))

    def add_hidden(self, text: str, language: str = "en") -> None:
        taken = {(x.text.casefold(), x.language) for x in (*self.pref, *self.alt, *self.hidden)}
        if (text.casefold(), language) not in taken:
            self.hidden.append(Label(text, language))


@dataclass
class CollectionRecord:
    iri: str
    label: str
    members: set[str]


@dataclass
class SchemeRecord:
    """One vocabulary: its scheme's metadata, concepts and collections."""

    key: str
    title: str
    description: str
    version: str
    sources: list[str]
    licences: list[str]
    rights: str
    concepts: dict[str, ConceptRecord] = field(default_factory=dict)
    collections: list[CollectionRecord] = field(default_factory=list)

    @property
    def iri(self) -> str:
        return f"{VOCAB_BASE}{self.key}"

    def concept(self, iri: str) -> ConceptRecord:
        """The concept of this IRI, added when new."""
        if iri not in self.concepts:
            self.concepts[iri] = ConceptRecord(iri)
        return self.concepts[iri]


def term(iri: str) -> str:
    """A prefixed name when a prefix and a plain local part allow it, else `<iri>`."""
    best = ""
    for prefix, namespace in PREFIXES.items():
        fits = iri.startswith(namespace) and _LOCAL.fullmatch(iri[len(namespace) :])
        if fits and (not best or len(namespace) > len(PREFIXES[best])):
            best = prefix
    return f"{best}:{iri[len(PREFIXES[best]) :]}" if best else f"<{iri}>"


def literal(text: str, language: str | None = None) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"@{language}' if language else f'"{escaped}"'


def _labels(labels: Iterable[Label]) -> list[str]:
    return sorted({literal(x.text, x.language) for x in labels})


def _block(subject: str, pairs: list[tuple[str, list[str]]]) -> str:
    lines = [f"    {predicate} {' , '.join(objects)}" for predicate, objects in pairs if objects]
    return f"{term(subject)}\n" + " ;\n".join(lines) + " .\n"


def to_turtle(scheme: SchemeRecord) -> str:
    """The scheme as Turtle: prefixes, the scheme, collections, then concepts by IRI."""
    known = set(scheme.concepts)
    tops = sorted(c.iri for c in scheme.concepts.values() if not c.broader & known)
    head = [
        ("a", ["skos:ConceptScheme"]),
        ("dct:title", [literal(scheme.title, "en")]),
        ("dct:description", [literal(scheme.description, "en")]),
        ("owl:versionInfo", [literal(scheme.version)]),
        ("dct:source", [f"<{s}>" for s in scheme.sources]),
        ("dct:license", [f"<{s}>" for s in scheme.licences]),
        ("dct:rights", [literal(scheme.rights, "en")]),
    ]
    blocks = [_block(scheme.iri, head)]
    blocks.append(
        f"# {len(scheme.concepts)} concepts, {len(tops)} top concepts (skos:topConceptOf)\n"
    )
    for collection in scheme.collections:
        members = sorted(term(m) for m in collection.members)
        blocks.append(
            _block(
                collection.iri,
                [
                    ("a", ["skos:Collection"]),
                    ("skos:prefLabel", [literal(collection.label, "en")]),
                    ("skos:member", members),
                ],
            )
        )
    top_set = set(tops)
    in_scheme = term(scheme.iri)
    for iri in sorted(scheme.concepts):
        c = scheme.concepts[iri]
        pairs = [
            ("a", ["skos:Concept"]),
            ("skos:inScheme", [in_scheme, *sorted(term(s) for s in c.schemes)]),
            ("skos:topConceptOf", [in_scheme] if iri in top_set else []),
            ("skos:notation", [literal(c.notation)] if c.notation else []),
            ("skos:prefLabel", _labels(c.pref)),
            ("skos:altLabel", _labels(c.alt)),
            ("skos:hiddenLabel", _labels(c.hidden)),
            ("skos:definition", _labels(c.definition)),
            ("skos:broader", sorted(term(b) for b in c.broader)),
            ("skos:exactMatch", sorted(term(m) for m in c.exact)),
            ("skos:closeMatch", sorted(term(m) for m in c.close)),
        ]
        blocks.append(_block(iri, pairs))
    text = "\n".join(blocks)
    used = [p for p, ns in PREFIXES.items() if f"{p}:" in text or ns == PREFIXES["rdf"]]
    header = "".join(f"@prefix {p}: <{PREFIXES[p]}> .\n" for p in used)
    return f"{header}\n{text}"
