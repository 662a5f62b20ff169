"""Curation: providers' raw values, the concepts the curators' mappings give them, and applying
those to the cohort index. The CLI and the GraphQL API both go through these functions.

- `apply_mappings` (at the end of each provider's harvest) and `remap` (every provider, after the
  curators changed the mapping set; no re-harvest) write the cohort index's value concepts: for
  each distinct raw body part, modality and manufacturer of a provider, the closure of its
  concepts under `Catalogue.annotator()`, with the mapping set version that gave them.
- `coverage`: per provider and field, each raw value, the series and subjects holding it, its
  concepts and how it got them (approved mapping, standard term...). Counts are exact: the API
  discloses them.
- `propose_mappings`: lexical proposals for the unmapped values, stored as proposed (never
  applied until a curator approves them); `decide`: one curator's proposal, approval or
  rejection; `find_mappings`, `mapping_set_text`: reading the set.
- `import_default_set`: the shipped default set, taken in by an empty mapping store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from catalogue.exceptions import MappingError, QueryError
from catalogue.ontology.annotate import FIELD_SCHEMES, Annotator, mapping_keys
from catalogue.ontology.default_mappings import DEFAULT_SET_PATH, load_default_set
from catalogue.ontology.sssom import (
    NO_TERM_FOUND,
    Candidate,
    Mapping,
    ReviewStatus,
    ValueKey,
    local_id,
    local_source,
    parse_local,
    propose,
    write_sssom,
)
from catalogue.ontology.vocabulary import Vocabulary
from catalogue.services.mappings import DEFAULT_SET_ID, DEFAULT_TITLE, MappingStore

if TYPE_CHECKING:
    from catalogue.services.runtime import Catalogue

FIELDS: Final = ("body_part", "modality", "manufacturer")
"""The cohort index fields whose raw values get concepts."""
DEFAULT_AUTHOR: Final = "catalogue:default"
"""Who imports the shipped default set into a new catalogue's mapping store."""
MATCHER_AUTHOR: Final = "catalogue:matcher"
"""Who records the automatic lexical proposals."""
CURATOR_PROPOSAL: Final = "semapv:UnspecifiedMatching"
"""The justification of a proposal a person makes (a curator's decision is ManualMappingCuration,
which a proposal must not claim)."""

Resolution = Literal["approved", "shared", "standard", "no-term", "unmapped"]
"""How a raw value got its concepts: an approved mapping for its provider, or for every provider
('*'); being a standard term of the field's vocabularies; none, by a curator's approved
sssom:NoTermFound; none, not mapped yet."""
RESOLUTIONS: Final[dict[Resolution, str]] = {
    "approved": "approved mapping",
    "shared": "approved mapping (every provider)",
    "standard": "standard term",
    "no-term": "no code (curated)",
    "unmapped": "unmapped",
}


@dataclass(frozen=True)
class ValueCoverage:
    """One raw value of one provider's field, how much data holds it, and its concepts."""

    provider: str
    field: str
    value: str
    series: int
    subjects: int
    how: Resolution
    concepts: tuple[tuple[str, str], ...]
    """The value's direct concepts (closure not included) as (CURIE, label)."""

    @property
    def mapped(self) -> bool:
        """Whether a curator or the vocabularies decided the value (codes or no code)."""
        return self.how != "unmapped"


@dataclass(frozen=True)
class RemapReport:
    """What `remap` did: the mapping set version applied, values per provider, datasets
    reindexed per provider."""

    version: int
    values: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProposalReport:
    """The proposals `propose_mappings` made, and the mapping set version after storing them."""

    proposals: list[Mapping]
    version: int


# -- applying ---------------------------------------------------------------------------------


def providers(catalogue: Catalogue) -> list[str]:
    """The providers the cohort index holds series of."""
    return sorted({provider for provider, _ in catalogue.cohort.scopes()})


def value_concept_rows(
    annotator: Annotator, catalogue: Catalogue, provider_id: str
) -> list[tuple[str, str, str]]:
    """(field, raw value, concept) for every distinct raw value of the provider's fields, each
    concept of the value's closure."""
    rows: list[tuple[str, str, str]] = []
    for name in FIELDS:
        for value in sorted(catalogue.cohort.distinct_values(provider_id, name)):
            closure = annotator.annotate(provider_id, name, [value])
            rows.extend((name, value, concept) for concept in sorted(closure))
    return rows


def apply_mappings(catalogue: Catalogue, provider_id: str, run_id: int | None = None) -> int:
    """Recompute a provider's value concepts with the current mapping set; its version. With
    `run_id`, the version is also recorded on that harvest run."""
    annotator = catalogue.annotator()
    rows = value_concept_rows(annotator, catalogue, provider_id)
    catalogue.cohort.replace_value_concepts(provider_id, rows, annotator.version)
    if run_id is not None:
        catalogue.log.record_mapping_version(run_id, annotator.version)
    return annotator.version


def remap(catalogue: Catalogue) -> RemapReport:
    """Apply the current mapping set everywhere without harvesting: every provider's value
    concepts, then the datasets index (re-annotated from the graph store), recording the
    datasets whose served entry changed in the change log (the changes feed lists them)."""
    from catalogue.services.ingest import reindex_all  # ingest imports this module

    version = catalogue.annotator().version
    values = {}
    for provider_id in providers(catalogue):
        version = apply_mappings(catalogue, provider_id)
        values[provider_id] = sum(
            len(catalogue.cohort.distinct_values(provider_id, name)) for name in FIELDS
        )
    served = {d.key: d for d in catalogue.datasets.all()}
    reindexed = reindex_all(catalogue)
    catalogue.log.record_updates(d.key for d in catalogue.datasets.all() if served.get(d.key) != d)
    return RemapReport(version=version, values=values, datasets=reindexed)


# -- coverage ---------------------------------------------------------------------------------


def no_term_keys(store: MappingStore) -> frozenset[ValueKey]:
    """(provider, field, raw value) that curators approved sssom:NoTermFound for."""
    keys = set()
    for mapping in store.mappings(status="approved"):
        local = parse_local(mapping.subject_id or "")
        if local is not None and mapping.object_id == NO_TERM_FOUND:
            keys.add((local.provider, local.field, local.value))
    return frozenset(keys)


def resolve(
    annotator: Annotator, no_term: frozenset[ValueKey], provider_id: str, name: str, value: str
) -> tuple[Resolution, frozenset[str]]:
    """How a raw value gets its direct concepts, and which."""
    concepts = annotator.concepts(provider_id, name, value)
    own, shared = mapping_keys(provider_id, name, value)
    if own in annotator.approved:
        return "approved", concepts
    if shared in annotator.approved:
        return "shared", concepts
    if concepts:
        return "standard", concepts
    if own in no_term or shared in no_term:
        return "no-term", concepts
    return "unmapped", concepts


def _checked(catalogue: Catalogue, provider: str | None, name: str | None) -> list[str]:
    if name is not None and name not in FIELDS:
        raise QueryError(f"unknown field {name!r} (known: {', '.join(FIELDS)})")
    known = providers(catalogue)
    if provider is not None and provider not in known:
        raise QueryError(f"no series from provider {provider!r} (known: {', '.join(known)})")
    return known if provider is None else [provider]


def coverage(
    catalogue: Catalogue,
    provider: str | None = None,
    field_name: str | None = None,
    unmapped: bool = False,
) -> list[ValueCoverage]:
    """Every raw value of the providers' fields (or one provider's, one field's), most series
    first per provider and field; only the unmapped ones with `unmapped`."""
    annotator = catalogue.annotator()
    vocabulary = annotator.vocabulary
    no_term = no_term_keys(catalogue.mappings)
    out = []
    for provider_id in _checked(catalogue, provider, field_name):
        for name in FIELDS if field_name is None else (field_name,):
            counts = catalogue.cohort.distinct_values(provider_id, name)
            for value, (series, subjects) in sorted(
                counts.items(), key=lambda item: (-item[1][0], item[0])
            ):
                how, concepts = resolve(annotator, no_term, provider_id, name, value)
                if unmapped and how != "unmapped":
                    continue
                labelled = tuple((c, _label(vocabulary, c)) for c in sorted(concepts))
                out.append(ValueCoverage(provider_id, name, value, series, subjects, how, labelled))
    return out


def _label(vocabulary: Vocabulary, curie: str) -> str:
    return vocabulary[curie].label() if curie in vocabulary else curie


# -- proposals and decisions --------------------------------------------------------------------


def vocabulary_lookup(
    vocabulary: Vocabulary, schemes: Sequence[str] | None = None
) -> Callable[[str], list[Candidate]]:
    """A lookup for `sssom.propose` over the vocabulary (only `schemes`, if given): one
    candidate per label of each concept `Vocabulary.lookup` finds, kind "label" for a preferred
    label and "synonym" for the others (and the notation)."""

    def lookup(text: str) -> list[Candidate]:
        found: list[Candidate] = []
        for concept in vocabulary.lookup(text):
            if schemes is not None and concept.scheme not in schemes:
                continue
            found.extend((concept.curie, label, "label") for label in concept.pref_labels.values())
            for labels in (*concept.alt_labels.values(), *concept.hidden_labels.values()):
                found.extend((concept.curie, label, "synonym") for label in labels)
            if concept.notation:
                found.append((concept.curie, concept.notation, "synonym"))
        return found

    return lookup


def propose_mappings(
    catalogue: Catalogue, provider: str | None = None, field_name: str | None = None
) -> ProposalReport:
    """Lexical proposals for the unmapped raw values, from the vocabularies of each value's
    field, stored as proposed (a curator's earlier decision on a pair stands)."""
    unmapped = coverage(catalogue, provider, field_name, unmapped=True)
    vocabulary = catalogue.annotator().vocabulary
    proposals: list[Mapping] = []
    for name in FIELDS:
        schemes = FIELD_SCHEMES.get(name)
        keys = [(c.provider, c.field, c.value) for c in unmapped if c.field == name]
        if schemes and keys:
            proposals.extend(propose(keys, vocabulary_lookup(vocabulary, schemes)))
    store = catalogue.mappings
    version = store.propose(proposals, author=MATCHER_AUTHOR) if proposals else store.version()
    return ProposalReport(proposals, version)


def decide(
    catalogue: Catalogue,
    status: ReviewStatus,
    key: ValueKey,
    object_id: str,
    *,
    author: str,
    predicate_id: str | None = None,
    comment: str | None = None,
) -> tuple[Mapping, int]:
    """A curator proposes, approves or rejects the mapping of (provider, field, raw value) to
    `object_id`; the mapping as stored and the set version after. An approval must name a
    concept of the shipped vocabularies (or sssom:NoTermFound); MappingError otherwise."""
    provider, name, value = key
    if not provider.strip() or not name.strip() or not value:
        raise MappingError("a mapping needs a provider ('*' for all), a field and a value")
    vocabulary = catalogue.annotator().vocabulary
    known = object_id in vocabulary or object_id == NO_TERM_FOUND
    if status == "approved" and not known:
        raise MappingError(f"{object_id} is not a concept of the shipped vocabularies")
    label = vocabulary[object_id].label() if object_id in vocabulary else None
    store = catalogue.mappings
    if status == "approved":
        mapping = store.approve(
            key, object_id, author=author, predicate_id=predicate_id, object_label=label,
            comment=comment,
        )  # fmt: skip
    elif status == "rejected":
        mapping = store.reject(
            key, object_id, author=author, predicate_id=predicate_id, object_label=label,
            comment=comment,
        )  # fmt: skip
    else:
        proposal = Mapping(
            subject_id=local_id(*key),
            subject_label=value,
            subject_category=name,
            subject_source=local_source(provider),
            predicate_id=predicate_id or "skos:exactMatch",
            object_id=object_id,
            object_label=label,
            mapping_justification=CURATOR_PROPOSAL,
            author_label=[author],
            comment=comment,
        )
        store.propose([proposal], author=author)
        mapping = next(
            m for m in find_mappings(catalogue, None, provider, name) if _is(m, key, object_id)
        )
    return mapping, store.version()


def _is(mapping: Mapping, key: ValueKey, object_id: str) -> bool:
    local = parse_local(mapping.subject_id or "")
    return local is not None and tuple(local) == key and mapping.object_id == object_id


def find_mappings(
    catalogue: Catalogue,
    status: ReviewStatus | None = None,
    provider: str | None = None,
    field_name: str | None = None,
) -> list[Mapping]:
    """The current mappings, optionally of one status, provider and field."""
    out = []
    for mapping in catalogue.mappings.mappings(status=status):
        local = parse_local(mapping.subject_id or "")
        if local is None:
            continue
        if (provider is None or local.provider == provider) and (
            field_name is None or local.field == field_name
        ):
            out.append(mapping)
    return out


def mapping_key(mapping: Mapping) -> ValueKey | None:
    """The (provider, field, raw value) a stored mapping is about."""
    local = parse_local(mapping.subject_id or "")
    return None if local is None else (local.provider, local.field, local.value)


def mapping_set_text(catalogue: Catalogue, version: int | None = None) -> tuple[str, int]:
    """The mapping set (now, or at `version`) as SSSOM/TSV, and its version."""
    exported = catalogue.mappings.export_set(version)
    return write_sssom(exported), int(exported.mapping_set_version or 0)


# -- the default set ----------------------------------------------------------------------------


def import_default_set(store: MappingStore, path: Path = DEFAULT_SET_PATH) -> int:
    """Take the shipped default set into a store as the catalogue's starting point; the new
    version. The store keeps its own identity; the default set is named as its source."""
    shipped = load_default_set(path)
    started = shipped.model_copy(
        update={
            "mapping_set_id": DEFAULT_SET_ID,
            "mapping_set_title": DEFAULT_TITLE,
            "mapping_set_description": (
                f"Started from the shipped default set {shipped.mapping_set_id} "
                f"(version {shipped.mapping_set_version})."
            ),
            "mapping_set_source": [shipped.mapping_set_id] if shipped.mapping_set_id else None,
        }
    )
    return store.import_set(started, author=DEFAULT_AUTHOR)
