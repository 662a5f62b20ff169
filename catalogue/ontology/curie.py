"""CURIE prefixes of the shipped vocabularies, and CURIE <-> IRI conversion."""

from __future__ import annotations

import re
from collections.abc import Mapping

VOCAB_BASE = "https://w3id.org/cancer-imaging-catalogue/vocab/"
"""Namespace of the catalogue's own concept schemes (and of the BodyPartExamined concepts)."""

CURIE_PREFIXES: Mapping[str, str] = {
    "NCIT": "http://purl.obolibrary.org/obo/NCIT_",
    "DOID": "http://purl.obolibrary.org/obo/DOID_",
    "ICD10CM": "http://purl.bioontology.org/ontology/ICD10CM/",
    "SCT": "http://snomed.info/id/",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM/",
    "BPE": f"{VOCAB_BASE}body-part-examined/",
    "ACCESS_RIGHT": "http://publications.europa.eu/resource/authority/access-right/",
}
"""CURIE prefix -> namespace IRI of every concept the shipped vocabularies hold or link to."""

# longest namespace first, so that a namespace nested in another one wins
_NAMESPACES = re.compile(
    "|".join(re.escape(ns) for ns in sorted(CURIE_PREFIXES.values(), key=len, reverse=True))
)
_PREFIX_OF = {namespace: prefix for prefix, namespace in CURIE_PREFIXES.items()}


def to_iri(curie: str) -> str:
    """The IRI of a CURIE such as `NCIT:C2926`; ValueError for an unknown prefix."""
    prefix, sep, local = curie.partition(":")
    namespace = CURIE_PREFIXES.get(prefix)
    if not sep or namespace is None or not local:
        raise ValueError(f"not a CURIE with a known prefix ({', '.join(CURIE_PREFIXES)}): {curie}")
    return namespace + local


def to_curie(iri: str) -> str:
    """The CURIE of an IRI in one of the known namespaces; ValueError for any other IRI."""
    curie = curie_or_none(iri)
    if curie is None:
        raise ValueError(f"no known CURIE prefix for {iri}")
    return curie


def curie_or_none(iri: str) -> str | None:
    """The CURIE of an IRI, or None when no known namespace holds it."""
    match = _NAMESPACES.match(iri)
    if match is None or match.end() == len(iri):
        return None
    return f"{_PREFIX_OF[match.group()]}:{iri[match.end() :]}"


_CURIE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(\S+)$")


def is_curie(text: str) -> bool:
    """Whether `text` is a CURIE of a known prefix (case-insensitive), e.g. `SCT:39607008`."""
    match = _CURIE.match(text)
    return match is not None and match[1].upper() in CURIE_PREFIXES
