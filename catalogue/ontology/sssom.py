"""Curator term mappings as SSSOM mapping sets: models, SSSOM/TSV reading and writing, validation.

The models follow the SSSOM LinkML schema (mapping-commons/sssom, `sssom_schema.yaml`, SSSOM 1.1):
`Mapping` and `MappingSet` carry every standard slot, in the schema's order, and keep any other
column or metadata key (extension slots, defined or not) as pydantic extras, so that
read -> write -> read gives an equal set. Reading keeps the file's layout: set-level slots stay on
the set (`propagate` and `condense` apply the spec's propagation rules on demand) and the order of
the mappings is kept. Writing is the canonical SSSOM/TSV layout otherwise (curie_map first, slots
in schema order, extensions after the standard slots sorted on their property, quotes only where
needed), except that numbers are written exactly rather than rounded to three digits.

A provider's local value is a subject in our namespace: `subject_id` is
`LOCAL:<provider>/<field>/<value>` (each part percent-encoded; LOCAL ->
https://w3id.org/cancer-imaging-catalogue/local/), `subject_label` the raw value,
`subject_source` `LOCAL:<provider>`, `subject_category` the field (body_part, modality,
manufacturer, cancer_type...). Objects are standard codes (SCT, NCIT, DCM... CURIEs).

Review status. SSSOM has no status slot. Our sets carry the extension slot `review_status`
(`proposed`, `approved`, `rejected`), declared in `extension_definitions` with the property
`catalogue:reviewStatus`; it is authoritative. The standard slots are kept consistent with it, so
that a consumer ignoring extensions still reads the set right:

    review_status  mapping_justification                            predicate_modifier
    proposed       semapv:LexicalMatching (any machine justification)  -
    approved       semapv:ManualMappingCuration or MappingReview       -
    rejected       semapv:ManualMappingCuration                        Not

A rejected mapping is thus a curated negative mapping ("value is not an exact match of code"): it
stays on record, so the matcher does not propose it again, and nobody applies it. A set without
the extension (someone else's) gets its status from the standard slots by the same table.

`predicate_id` may be any CURIE (the spec: "implementations MUST accept any arbitrary predicate");
`approved` applies only the predicates in `APPLIED_PREDICATES`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, TypeVar
from urllib.parse import quote, unquote

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from catalogue.exceptions import MappingError
from catalogue.ontology.curie import CURIE_PREFIXES, VOCAB_BASE

# -- vocabulary of the specification (copied from sssom_schema.yaml and the spec pages) --------

BUILTIN_PREFIXES: Final[dict[str, str]] = {
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "semapv": "https://w3id.org/semapv/vocab/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "sssom": "https://w3id.org/sssom/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "linkml": "https://w3id.org/linkml/",
}
"""Prefixes a set may use without declaring them (spec-intro.md, "IRI prefixes")."""

# Enumerations, copied from the `enums:` of sssom_schema.yaml (tests compare them with it).
ENTITY_TYPES: Final = (
    "owl class",
    "owl object property",
    "owl data property",
    "owl annotation property",
    "owl named individual",
    "skos concept",
    "rdfs resource",
    "rdfs class",
    "rdfs literal",
    "rdfs datatype",
    "rdf property",
    "composed entity expression",
)
PREDICATE_MODIFIERS: Final = ("Not",)
MAPPING_CARDINALITIES: Final = ("1:1", "1:n", "n:1", "n:n", "1:0", "0:1", "0:0")
SSSOM_VERSIONS: Final = ("1.0", "1.1")
# The `pattern` of the mapping_justification slot.
MAPPING_JUSTIFICATIONS: Final = tuple(
    f"semapv:{name}"
    for name in (
        "MappingReview",
        "ManualMappingCuration",
        "LogicalReasoning",
        "LexicalMatching",
        "CompositeMatching",
        "UnspecifiedMatching",
        "SemanticSimilarityThresholdMatching",
        "LexicalSimilarityThresholdMatching",
        "MappingChaining",
        "MappingInversion",
        "StructuralMatching",
        "InstanceBasedMatching",
        "BackgroundKnowledgeBasedMatching",
    )
)

# Slot ranges of sssom_schema.yaml (tests compare them with it).
ENTITY_REFERENCE_SLOTS: Final = frozenset(
    {
        "author_id", "creator_id", "curation_rule", "issue_tracker_item", "mapping_justification",
        "mapping_source", "mapping_tool_id", "object_id", "object_match_field",
        "object_preprocessing", "object_source", "predicate_id", "record_id", "reviewer_id",
        "subject_id", "subject_match_field", "subject_preprocessing", "subject_source",
    }
)  # fmt: skip
URI_SLOTS: Final = frozenset(
    {"issue_tracker", "license", "mapping_provider", "mapping_set_id", "mapping_set_source",
     "see_also"}
)  # fmt: skip
DATE_SLOTS: Final = frozenset({"mapping_date", "publication_date", "review_date"})
NUMBER_RANGES: Final[dict[str, tuple[float, float]]] = {
    "confidence": (0.0, 1.0),
    "mapping_set_confidence": (0.0, 1.0),
    "similarity_score": (0.0, 1.0),
    "reviewer_agreement": (-1.0, 1.0),
}
ENUM_SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "subject_type": ENTITY_TYPES,
    "object_type": ENTITY_TYPES,
    "predicate_type": ENTITY_TYPES,
    "predicate_modifier": PREDICATE_MODIFIERS,
    "mapping_cardinality": MAPPING_CARDINALITIES,
    "sssom_version": SSSOM_VERSIONS,
}
MULTIVALUED: Final = frozenset(
    {
        "author_id", "author_label", "cardinality_scope", "creator_id", "creator_label",
        "curation_rule", "curation_rule_text", "mapping_set_source", "match_string",
        "object_match_field", "object_preprocessing", "reviewer_id", "reviewer_label", "see_also",
        "subject_match_field", "subject_preprocessing",
    }
)  # fmt: skip
"""Multivalued slots other than curie_map, mappings and extension_definitions."""
PROPAGATABLE: Final = (
    "subject_type", "subject_source", "subject_source_version", "object_type", "object_source",
    "object_source_version", "predicate_type", "mapping_provider", "cardinality_scope",
    "mapping_tool", "mapping_tool_id", "mapping_tool_version", "mapping_date", "curation_rule",
    "curation_rule_text", "subject_match_field", "object_match_field", "subject_preprocessing",
    "object_preprocessing", "similarity_measure",
)  # fmt: skip
"""Slots annotated `propagated: true` in the schema, in its order."""
ADDED_IN_1_1: Final = frozenset(
    {"cardinality_scope", "mapping_set_confidence", "mapping_tool_id", "predicate_type",
     "record_id", "review_date", "reviewer_agreement", "sssom_version"}
)  # fmt: skip
SET_SLOTS_ADDED_IN_1_1: Final = frozenset(
    {"similarity_measure", "curation_rule", "curation_rule_text"}
)
"""Slots that exist on mappings since 1.0 but on the set only since 1.1 (schema slot_usage)."""
VALUES_ADDED_IN_1_1: Final = {"composed entity expression", "0:0"}

NO_TERM_FOUND: Final = "sssom:NoTermFound"
MANUAL_CURATION: Final = "semapv:ManualMappingCuration"
MAPPING_REVIEW: Final = "semapv:MappingReview"
LEXICAL_MATCHING: Final = "semapv:LexicalMatching"
_UNDEFINED_PROPERTY = "http://sssom.invalid/"
_URI_OR_CURIE = "https://w3id.org/linkml/uriorcurie"  # compared case-insensitively

# -- our conventions ---------------------------------------------------------------------------

LOCAL_PREFIX: Final = "LOCAL"
LOCAL_NAMESPACE: Final = "https://w3id.org/cancer-imaging-catalogue/local/"
VOCAB_PREFIX: Final = "catalogue"
VOCAB_NAMESPACE: Final = VOCAB_BASE
DEFAULT_CURIE_MAP: Final[dict[str, str]] = {
    LOCAL_PREFIX: LOCAL_NAMESPACE,
    VOCAB_PREFIX: VOCAB_NAMESPACE,
    **CURIE_PREFIXES,
    "UBERON": "http://purl.obolibrary.org/obo/UBERON_",
    "orcid": "https://orcid.org/",
}
"""The prefixes of our own sets: the local namespace, our vocabulary, the shipped vocabularies'
prefixes (`catalogue.ontology.curie`) and ORCID for curators."""

REVIEW_STATUS: Final = "review_status"
ReviewStatus = Literal["proposed", "approved", "rejected"]
REVIEW_STATUSES: Final[tuple[ReviewStatus, ...]] = ("proposed", "approved", "rejected")
HUMAN_JUSTIFICATIONS: Final = frozenset({MANUAL_CURATION, MAPPING_REVIEW})
APPLIED_PREDICATES: Final = frozenset(
    {
        "skos:exactMatch",
        "skos:closeMatch",
        "skos:broadMatch",
        "owl:equivalentClass",
        "owl:sameAs",
        "rdfs:subClassOf",
    }
)
"""Predicates under which an approved mapping's object may stand for the local value (the object
is the value, or broader than it); narrowMatch and relatedMatch are kept but not applied."""

ValueKey = tuple[str, str, str]
"""(provider, field, raw value)."""
Candidate = tuple[str, str, str]
"""What a vocabulary lookup returns: (CURIE, label, kind); kind "label" is a preferred label,
anything else (such as "synonym") another label of the term."""

_CURIE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*):(.*)$", re.DOTALL)
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- models --------------------------------------------------------------------------------------


class _Slots(BaseModel):
    """Standard slots as fields, any other slot as an extra; equality ignores file positions."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, _Slots):
            return NotImplemented
        return self.__dict__ == other.__dict__ and self.model_extra == other.model_extra

    @property
    def extensions(self) -> dict[str, Any]:
        """The non-standard slots (extension slots, defined or not), by name."""
        return dict(self.model_extra or {})


class ExtensionDefinition(BaseModel):
    """A defined extension slot (SSSOM `extension definition`); unexpected keys are kept."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    slot_name: str | None = None
    property: str | None = None
    type_hint: str | None = None


class Mapping(_Slots):
    """One mapping record: the slots of the SSSOM `mapping` class, in the schema's order."""

    record_id: str | None = None
    subject_id: str | None = None
    subject_label: str | None = None
    subject_category: str | None = None
    predicate_id: str | None = None
    predicate_label: str | None = None
    predicate_modifier: str | None = None
    object_id: str | None = None
    object_label: str | None = None
    object_category: str | None = None
    mapping_justification: str | None = None
    author_id: list[str] | None = None
    author_label: list[str] | None = None
    reviewer_id: list[str] | None = None
    reviewer_label: list[str] | None = None
    creator_id: list[str] | None = None
    creator_label: list[str] | None = None
    license: str | None = None
    subject_type: str | None = None
    subject_source: str | None = None
    subject_source_version: str | None = None
    object_type: str | None = None
    object_source: str | None = None
    object_source_version: str | None = None
    predicate_type: str | None = None
    mapping_provider: str | None = None
    mapping_source: str | None = None
    mapping_cardinality: str | None = None
    cardinality_scope: list[str] | None = None
    mapping_tool: str | None = None
    mapping_tool_id: str | None = None
    mapping_tool_version: str | None = None
    mapping_date: str | None = None
    publication_date: str | None = None
    review_date: str | None = None
    confidence: float | None = None
    reviewer_agreement: float | None = None
    curation_rule: list[str] | None = None
    curation_rule_text: list[str] | None = None
    subject_match_field: list[str] | None = None
    object_match_field: list[str] | None = None
    match_string: list[str] | None = None
    subject_preprocessing: list[str] | None = None
    object_preprocessing: list[str] | None = None
    similarity_score: float | None = None
    similarity_measure: str | None = None
    see_also: list[str] | None = None
    issue_tracker_item: str | None = None
    other: str | None = None
    comment: str | None = None

    _line: int | None = PrivateAttr(default=None)


class MappingSet(_Slots):
    """A mapping set: the slots of the SSSOM `mapping set` class, in the schema's order."""

    sssom_version: str | None = None
    curie_map: dict[str, str] = Field(default_factory=dict)
    mappings: list[Mapping] = Field(default_factory=list)
    mapping_set_id: str | None = None
    mapping_set_version: str | None = None
    mapping_set_source: list[str] | None = None
    mapping_set_title: str | None = None
    mapping_set_description: str | None = None
    mapping_set_confidence: float | None = None
    creator_id: list[str] | None = None
    creator_label: list[str] | None = None
    license: str | None = None
    subject_type: str | None = None
    subject_source: str | None = None
    subject_source_version: str | None = None
    object_type: str | None = None
    object_source: str | None = None
    object_source_version: str | None = None
    predicate_type: str | None = None
    mapping_provider: str | None = None
    cardinality_scope: list[str] | None = None
    mapping_tool: str | None = None
    mapping_tool_id: str | None = None
    mapping_tool_version: str | None = None
    mapping_date: str | None = None
    publication_date: str | None = None
    subject_match_field: list[str] | None = None
    object_match_field: list[str] | None = None
    subject_preprocessing: list[str] | None = None
    object_preprocessing: list[str] | None = None
    similarity_measure: str | None = None
    curation_rule: list[str] | None = None
    curation_rule_text: list[str] | None = None
    see_also: list[str] | None = None
    issue_tracker: str | None = None
    other: str | None = None
    comment: str | None = None
    extension_definitions: list[ExtensionDefinition] | None = None

    _key_lines: dict[str, int] = PrivateAttr(default_factory=dict)

    def expand(self, curie: str) -> str | None:
        """The IRI of a CURIE under this set's prefixes (and the built-in ones), or None."""
        match = _CURIE.match(curie)
        if match is None:
            return None
        base = self.curie_map.get(match[1], BUILTIN_PREFIXES.get(match[1]))
        return None if base is None else base + match[2]


REVIEW_STATUS_DEFINITION: Final = ExtensionDefinition(
    slot_name=REVIEW_STATUS, property=f"{VOCAB_PREFIX}:reviewStatus"
)


class LocalValue(NamedTuple):
    """A provider's local value, as a LOCAL subject names it."""

    provider: str
    field: str
    value: str


@dataclass(frozen=True)
class Problem:
    """One way a mapping set breaks the SSSOM rules (or ours); errors are values."""

    message: str
    column: str | None = None
    """The slot (TSV column or metadata key) at fault."""
    line: int | None = None
    """1-based line in the SSSOM/TSV text the set was read from, when known."""
    mapping: int | None = None
    """Index of the mapping in `MappingSet.mappings`; None for the set's metadata."""
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        if self.line is None and self.mapping is not None:
            where.append(f"mapping {self.mapping + 1}")
        if self.column is not None:
            where.append(f"column {self.column}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{self.message}" + (" (warning)" if self.severity == "warning" else "")


# -- identifiers of local values ------------------------------------------------------------------


def local_id(provider: str, field: str, value: str, prefix: str = LOCAL_PREFIX) -> str:
    """The subject CURIE of a provider's raw value: LOCAL:<provider>/<field>/<value>."""
    return f"{prefix}:{quote(provider, safe='')}/{quote(field, safe='')}/{quote(value, safe='')}"


def local_source(provider: str, prefix: str = LOCAL_PREFIX) -> str:
    """The subject_source CURIE of a provider: LOCAL:<provider>."""
    return f"{prefix}:{quote(provider, safe='')}"


def parse_local(curie: str, prefixes: Iterable[str] = (LOCAL_PREFIX,)) -> LocalValue | None:
    """The (provider, field, value) a LOCAL subject names, or None if it names none."""
    match = _CURIE.match(curie)
    if match is None or match[1] not in set(prefixes):
        return None
    parts = match[2].split("/")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    return LocalValue(*(unquote(part) for part in parts))


def local_prefixes(mapping_set: MappingSet) -> set[str]:
    """The prefix names the set gives our local namespace."""
    return {name for name, iri in mapping_set.curie_map.items() if iri == LOCAL_NAMESPACE}


# -- review status ----------------------------------------------------------------------------


def status_of(mapping: Mapping) -> ReviewStatus:
    """The mapping's review status: its `review_status`, else read off the standard slots."""
    declared = mapping.extensions.get(REVIEW_STATUS)
    for status in REVIEW_STATUSES:
        if declared == status:
            return status
    if mapping.predicate_modifier == "Not":
        return "rejected"
    if mapping.mapping_justification in HUMAN_JUSTIFICATIONS:
        return "approved"
    return "proposed"


def approved(mapping_set: MappingSet) -> dict[ValueKey, list[str]]:
    """(provider, field, raw value) -> the codes approved for it, as harvests apply them.

    Only approved, non-negated mappings of LOCAL subjects under `APPLIED_PREDICATES` count;
    sssom:NoTermFound (an approved "no code") maps the value to nothing.
    """
    prefixes = local_prefixes(mapping_set)
    out: dict[ValueKey, list[str]] = {}
    for mapping in mapping_set.mappings:
        if (
            status_of(mapping) != "approved"
            or mapping.predicate_modifier is not None
            or mapping.predicate_id not in APPLIED_PREDICATES
            or mapping.subject_id is None
            or mapping.object_id is None
            or mapping.object_id == NO_TERM_FOUND
        ):
            continue
        local = parse_local(mapping.subject_id, prefixes)
        if local is None:
            continue
        codes = out.setdefault((local.provider, local.field, local.value), [])
        if mapping.object_id not in codes:
            codes.append(mapping.object_id)
    return out


def new_mapping_set(
    mappings: Iterable[Mapping],
    *,
    mapping_set_id: str,
    license: str,
    title: str | None = None,
    version: str | None = None,
    curie_map: dict[str, str] | None = None,
) -> MappingSet:
    """A set in our conventions: our prefixes and the `review_status` extension declared."""
    return MappingSet(
        sssom_version="1.1",
        curie_map={**DEFAULT_CURIE_MAP, **(curie_map or {})},
        mappings=list(mappings),
        mapping_set_id=mapping_set_id,
        mapping_set_version=version,
        mapping_set_title=title,
        license=license,
        extension_definitions=[REVIEW_STATUS_DEFINITION],
    )


# -- propagation --------------------------------------------------------------------------------


def propagate(mapping_set: MappingSet) -> MappingSet:
    """The set with its propagatable slots copied down to every mapping (SSSOM/TSV rules).

    A slot moves only when no mapping has a value of its own; a set without mappings is kept.
    """
    if not mapping_set.mappings:
        return mapping_set
    moved: dict[str, Any] = {}
    for slot in PROPAGATABLE:
        value = getattr(mapping_set, slot)
        if value is not None and all(getattr(m, slot) is None for m in mapping_set.mappings):
            moved[slot] = value
    if not moved:
        return mapping_set
    mappings = [_copied(m, moved) for m in mapping_set.mappings]
    return _copied(mapping_set, {**dict.fromkeys(moved), "mappings": mappings})


def condense(mapping_set: MappingSet) -> MappingSet:
    """The set with each propagatable slot that all mappings share moved up onto the set."""
    if not mapping_set.mappings:
        return mapping_set
    moved: dict[str, Any] = {}
    for slot in PROPAGATABLE:
        values = [getattr(m, slot) for m in mapping_set.mappings]
        first = values[0]
        if first is None or any(value != first for value in values):
            continue
        if getattr(mapping_set, slot) not in (None, first):
            continue
        moved[slot] = first
    if not moved:
        return mapping_set
    mappings = [_copied(m, dict.fromkeys(moved)) for m in mapping_set.mappings]
    return _copied(mapping_set, {**moved, "mappings": mappings})


_M = TypeVar("_M", bound=BaseModel)


def _copied(model: _M, update: dict[str, Any]) -> _M:
    """A copy with `update` applied (lists copied, so copies never share them)."""
    fresh = {k: list(v) if isinstance(v, list) else v for k, v in update.items()}
    return model.model_copy(update=fresh)


# -- reading --------------------------------------------------------------------------------------


class _MetadataLoader(yaml.SafeLoader):
    """A safe loader with YAML 1.2 core-schema scalars: dates stay strings, yes/no stay words."""


_MetadataLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MetadataLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_sssom(source: Path | str, external_metadata: Path | None = None) -> MappingSet:
    """Read an SSSOM/TSV mapping set.

    `source` is a file (a `Path`, or a one-line string naming an existing file) or the TSV text
    itself. The metadata is the embedded `#`-prefixed YAML block, or `external_metadata` (a
    .sssom.yml file); a file without an embedded block also finds `<name>.sssom.yml` beside it.
    A set that breaks SSSOM rules is returned (see `validate`); one that cannot be read (bad
    YAML or TSV, a required column missing, a value of the wrong type) raises `MappingError`.
    """
    if isinstance(source, Path) or _names_file(source):
        path = Path(source)
        label = str(path)
        text = _read_text(path)
        if external_metadata is None and not text.lstrip("\ufeff").startswith("#"):
            external_metadata = _sibling_metadata(path)
    else:
        label, text = "mapping set", source
    meta_text = None if external_metadata is None else _read_text(external_metadata)
    return _parse(text, meta_text, label)


def _names_file(text: str) -> bool:
    if not text or "\n" in text or "\t" in text or len(text) > 4096:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False


def _sibling_metadata(path: Path) -> Path | None:
    stem = path.name.removesuffix(".tsv")
    for name in (f"{stem}.yml", f"{stem}.sssom.yml"):
        candidate = path.with_name(name)
        if candidate.is_file():
            return candidate
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping set {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path} is not UTF-8 ({exc})") from exc


def _parse(text: str, meta_text: str | None, label: str) -> MappingSet:
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    header_count = 0
    while header_count < len(lines) and lines[header_count].startswith("#"):
        header_count += 1
    key_lines: dict[str, int] = {}
    if meta_text is not None:
        if header_count:
            raise MappingError(
                f"{label}: external metadata given, but the TSV has an embedded metadata block"
            )
        metadata = _load_yaml(meta_text.removeprefix("\ufeff"), f"{label} (metadata)")
    else:
        yaml_lines = _unprefixed(lines[:header_count])
        metadata = _load_yaml("\n".join(yaml_lines), label)
        for number, line in enumerate(yaml_lines, start=1):
            key = re.match(r"^([A-Za-z_][\w.-]*)\s*:", line)
            if key is not None:
                key_lines.setdefault(key[1], number)
    mappings = _read_mappings("\n".join(lines[header_count:]), header_count + 1, label)
    values = _metadata_values(metadata, label)
    try:
        mapping_set = MappingSet.model_validate({**values, "mappings": mappings})
    except ValidationError as exc:
        raise MappingError(f"{label}: bad metadata: {_describe(exc)}") from exc
    mapping_set._key_lines = key_lines
    return mapping_set


def _unprefixed(lines: list[str]) -> list[str]:
    """The metadata block's lines without '#' and the spaces every line puts after it."""
    if not lines:
        return []
    first = lines[0][1:]
    indent = len(first) - len(first.lstrip(" "))
    out = []
    for line in lines:
        body = line[1:]
        spaces = len(body) - len(body.lstrip(" "))
        out.append(body[min(spaces, indent) :])
    return out


def _load_yaml(text: str, label: str) -> dict[str, Any]:
    try:
        for event in yaml.parse(text, Loader=_MetadataLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise MappingError(f"{label}: YAML anchors and aliases are not allowed in SSSOM")
            if isinstance(event, yaml.DocumentStartEvent) and (event.version or event.tags):
                raise MappingError(f"{label}: YAML directives are not allowed in SSSOM")
            if isinstance(event, yaml.ScalarEvent) and event.tag and not any(event.implicit):
                raise MappingError(f"{label}: YAML tags are not allowed in SSSOM ({event.tag})")
            if isinstance(event, yaml.CollectionStartEvent) and event.tag:
                raise MappingError(f"{label}: YAML tags are not allowed in SSSOM ({event.tag})")
        loader = _MetadataLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise MappingError(f"{label}: the metadata is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise MappingError(f"{label}: the metadata must be a YAML mapping of slot names")
    return data


def _metadata_values(metadata: dict[str, Any], label: str) -> dict[str, Any]:
    if "mappings" in metadata:
        raise MappingError(f"{label}: the metadata block must not hold the mappings")
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if (
            key in MULTIVALUED and key in MappingSet.model_fields
        ) or key == "extension_definitions":
            value = value if isinstance(value, list) else [value]  # a lone value may be a scalar
            if not value:
                continue
        out[key] = value
    return out


def _read_mappings(table: str, first_line: int, label: str) -> list[Mapping]:
    reader = csv.reader(io.StringIO(table, newline=""), delimiter="\t", quotechar='"', strict=True)
    header: list[str] | None = None
    mappings: list[Mapping] = []
    failures: list[str] = []
    consumed = 0
    try:
        for record in reader:
            line, consumed = first_line + consumed, reader.line_num
            if not record or (header is not None and record == [""]):
                continue
            if header is None:
                header = _checked_header(record, line, label)
                continue
            mapping = _row(header, record, line, failures)
            if mapping is not None:
                mappings.append(mapping)
    except csv.Error as exc:
        raise MappingError(f"{label}, line {first_line + consumed}: bad TSV: {exc}") from exc
    if header is None:
        raise MappingError(f"{label}: no TSV header line after the metadata")
    if failures:
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        raise MappingError(f"{label}: " + "; ".join(failures[:10]) + more)
    return mappings


def _checked_header(record: list[str], line: int, label: str) -> list[str]:
    while len(record) > 1 and record[-1] == "":
        record = record[:-1]
    if "" in record:
        raise MappingError(f"{label}, line {line}: an empty column name in the TSV header")
    duplicates = sorted({name for name in record if record.count(name) > 1})
    if duplicates:
        raise MappingError(f"{label}, line {line}: repeated columns {', '.join(duplicates)}")
    missing = [name for name in ("predicate_id", "mapping_justification") if name not in record]
    for side in ("subject", "object"):
        if f"{side}_id" not in record and f"{side}_label" not in record:
            missing.append(f"{side}_id")
    if missing:
        raise MappingError(f"{label}, line {line}: required columns missing: {', '.join(missing)}")
    return record


def _row(header: list[str], record: list[str], line: int, failures: list[str]) -> Mapping | None:
    if len(record) > len(header):
        if any(record[len(header) :]):
            failures.append(f"line {line}: {len(record)} values for {len(header)} columns")
            return None
        record = record[: len(header)]
    values: dict[str, Any] = {}
    for name, cell in zip(header, record, strict=False):
        if cell != "":
            multivalued = name in MULTIVALUED and name in Mapping.model_fields
            values[name] = split_multivalued(cell) if multivalued else cell
    try:
        mapping = Mapping.model_validate(values)
    except ValidationError as exc:
        failures.append(f"line {line}: {_describe(exc)}")
        return None
    mapping._line = line
    return mapping


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        + (f" ({error['input']!r})" if not isinstance(error["input"], dict | list) else "")
        for error in exc.errors()
    )


def split_multivalued(cell: str) -> list[str]:
    """The values of a multivalued TSV cell: `|` separates, `\\|` and `\\\\` escape."""
    values: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(cell):
        char = cell[index]
        following = cell[index + 1] if index + 1 < len(cell) else ""
        if char == "\\" and following in ("|", "\\"):
            current.append(following)
            index += 2
            continue
        if char == "|":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    values.append("".join(current))
    return values


def join_multivalued(values: Iterable[str]) -> str:
    """A multivalued TSV cell: the values escaped and joined with `|`."""
    return "|".join(value.replace("\\", "\\\\").replace("|", "\\|") for value in values)


# -- writing --------------------------------------------------------------------------------------


def write_sssom(mapping_set: MappingSet) -> str:
    """The set as SSSOM/TSV with its metadata embedded (see the module docstring for the layout)."""
    metadata = _metadata_for_yaml(mapping_set)
    lines = []
    if metadata:
        dumped = yaml.safe_dump(
            metadata, sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        lines = ["#" + line for line in dumped.splitlines()]
    columns = _columns(mapping_set)
    lines.append("\t".join(columns))
    for mapping in mapping_set.mappings:
        lines.append("\t".join(_cell(_slot(mapping, column)) for column in columns))
    return "\n".join(lines) + "\n"


def _metadata_for_yaml(mapping_set: MappingSet) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if mapping_set.curie_map:
        out["curie_map"] = dict(sorted(mapping_set.curie_map.items()))
    for name in MappingSet.model_fields:
        value = getattr(mapping_set, name)
        if name in ("curie_map", "mappings") or value is None or value == []:
            continue
        if name == "extension_definitions":
            value = [definition.model_dump(exclude_none=True) for definition in value]
        out[name] = list(value) if isinstance(value, list) else value
    extras = mapping_set.extensions
    for name in _extension_order(mapping_set, extras):
        if extras[name] is not None:
            out[name] = extras[name]
    return out


def _columns(mapping_set: MappingSet) -> list[str]:
    used = [
        name
        for name in Mapping.model_fields
        if any(getattr(m, name) not in (None, []) for m in mapping_set.mappings)
    ]
    if not mapping_set.mappings:
        used = ["subject_id", "predicate_id", "object_id", "mapping_justification"]
    extra_names: dict[str, None] = {}
    for mapping in mapping_set.mappings:
        extra_names.update(dict.fromkeys(k for k, v in mapping.extensions.items() if v is not None))
    return used + _extension_order(mapping_set, extra_names)


def _extension_order(mapping_set: MappingSet, names: Iterable[str]) -> list[str]:
    """Extension slot names sorted on their property IRI (canonical SSSOM/TSV)."""
    properties: dict[str, str] = {}
    for definition in mapping_set.extension_definitions or []:
        if definition.slot_name and definition.property:
            iri = mapping_set.expand(definition.property) or definition.property
            properties.setdefault(definition.slot_name, iri)
    return sorted(names, key=lambda name: (properties.get(name, _UNDEFINED_PROPERTY + name), name))


def _slot(mapping: Mapping, column: str) -> Any:
    if column in Mapping.model_fields:
        return getattr(mapping, column)
    return mapping.extensions.get(column)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        text = join_multivalued(str(v) for v in value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    if any(char in text for char in '\t\n\r"'):
        return '"' + text.replace('"', '""') + '"'
    return text


# -- validation ------------------------------------------------------------------------------------


def validate(mapping_set: MappingSet) -> list[Problem]:
    """Every way the set breaks the SSSOM schema and specification, or our conventions.

    Errors break a MUST of the spec or a rule of the schema (required slots, ranges, enums,
    CURIE prefixes declared, dates ISO 8601, confidences in range...); warnings break a SHOULD
    or make an extension definition void.
    """
    return _Validator(mapping_set).run()


class _Validator:
    def __init__(self, mapping_set: MappingSet) -> None:
        self.ms = mapping_set
        self.problems: list[Problem] = []
        self.version_1_1 = mapping_set.sssom_version == "1.1"
        self.local = local_prefixes(mapping_set)
        self.reported_1_1: set[str] = set()
        self.definitions = self._usable_definitions()

    def run(self) -> list[Problem]:
        self._check_metadata()
        for index, mapping in enumerate(self.ms.mappings):
            self._check_mapping(index, mapping)
        self._check_record_ids()
        return self.problems

    # reporting
    def _add(
        self,
        message: str,
        column: str | None,
        mapping: int | None = None,
        severity: Literal["error", "warning"] = "error",
    ) -> None:
        if mapping is None:
            line = self.ms._key_lines.get(column) if column is not None else None
        else:
            line = self.ms.mappings[mapping]._line
        self.problems.append(Problem(message, column, line, mapping, severity))

    # the set
    def _check_metadata(self) -> None:
        ms = self.ms
        for slot in ("mapping_set_id", "license"):
            if getattr(ms, slot) in (None, ""):
                self._add(f"the required slot {slot} is missing", slot)
        for prefix, iri in ms.curie_map.items():
            if not _NCNAME.match(prefix):
                self._add(f"curie_map: {prefix!r} is not a valid prefix name", "curie_map")
            if not _ABSOLUTE_URI.match(iri):
                self._add(f"curie_map: {prefix} -> {iri!r} is not an absolute IRI", "curie_map")
            builtin = BUILTIN_PREFIXES.get(prefix)
            if builtin is not None and iri != builtin:
                self._add(
                    f"curie_map: the built-in prefix {prefix} must expand to {builtin}, not {iri}",
                    "curie_map",
                )
        for name in MappingSet.model_fields:
            value = getattr(ms, name)
            if value is None or name in ("curie_map", "mappings", "extension_definitions"):
                continue
            self._check_slot(name, value, None)
            if not self.version_1_1 and (name in ADDED_IN_1_1 or name in SET_SLOTS_ADDED_IN_1_1):
                self._needs_1_1(name, None)
        self._check_extensions(ms.extensions, None)

    def _usable_definitions(self) -> dict[str, ExtensionDefinition]:
        """The extension definitions that hold; the others are reported and ignored."""
        usable: dict[str, ExtensionDefinition] = {}
        properties: set[str] = set()
        standard = set(Mapping.model_fields) | set(MappingSet.model_fields)
        for definition in self.ms.extension_definitions or []:
            name = definition.slot_name
            why = None
            if not name or not _NCNAME.match(name):
                why = f"its slot_name {name!r} is not an NCName"
            elif name in standard:
                why = f"{name} is a standard slot"
            elif definition.model_extra:
                why = f"unexpected keys {', '.join(sorted(definition.model_extra))}"
            elif definition.property is not None and self.ms.expand(definition.property) is None:
                why = f"its property {definition.property!r} is not a CURIE of a known prefix"
            elif definition.type_hint is not None and self.ms.expand(definition.type_hint) is None:
                why = f"its type_hint {definition.type_hint!r} is not a CURIE of a known prefix"
            elif name in usable:
                why = f"{name} is defined twice"
            elif definition.property is not None and definition.property in properties:
                why = f"property {definition.property} is used by another definition"
            if why is not None:
                self._add(
                    f"extension definition ignored: {why}",
                    "extension_definitions",
                    severity="warning",
                )
                continue
            assert name is not None
            usable[name] = definition
            if definition.property is not None:
                properties.add(definition.property)
        return usable

    # one mapping
    def _check_mapping(self, index: int, m: Mapping) -> None:
        effective = self._effective
        for side in ("subject", "object"):
            literal = effective(m, f"{side}_type") == "rdfs literal"
            required = f"{side}_label" if literal else f"{side}_id"
            if getattr(m, required) in (None, ""):
                self._add(f"the required slot {required} is missing", required, index)
        for slot in ("predicate_id", "mapping_justification"):
            if getattr(m, slot) in (None, ""):
                self._add(f"the required slot {slot} is missing", slot, index)
        for name in Mapping.model_fields:
            value = getattr(m, name)
            if value is not None:
                self._check_slot(name, value, index)
                if name in ADDED_IN_1_1 and not self.version_1_1:
                    self._needs_1_1(name, index)
        if m.predicate_type in ("rdfs literal", "composed entity expression"):
            self._add(f"predicate_type must not be {m.predicate_type!r}", "predicate_type", index)
        for slot, what in (
            ("review_date", "a review date"),
            ("reviewer_agreement", "an agreement"),
        ):
            if getattr(m, slot) is not None and not (m.reviewer_id or m.reviewer_label):
                self._add(f"{what} needs reviewer_id or reviewer_label", slot, index)
        self._check_no_term_found(index, m)
        self._check_extensions(m.extensions, index)
        self._check_local(index, m)
        self._check_review_status(index, m)

    def _effective(self, m: Mapping, slot: str) -> Any:
        value = getattr(m, slot)
        if value is None and slot in PROPAGATABLE:
            return getattr(self.ms, slot)
        return value

    def _check_no_term_found(self, index: int, m: Mapping) -> None:
        subject_none, object_none = m.subject_id == NO_TERM_FOUND, m.object_id == NO_TERM_FOUND
        fits = {(False, True): "1:0", (True, False): "0:1", (True, True): "0:0"}
        cardinality = m.mapping_cardinality or ""
        sides = {"1:0": "object_id", "0:1": "subject_id", "0:0": "subject_id and object_id"}
        if cardinality in sides and fits.get((subject_none, object_none)) != cardinality:
            self._add(
                f"mapping_cardinality {cardinality} is only for {sides[cardinality]} "
                "sssom:NoTermFound",
                "mapping_cardinality",
                index,
            )
        for side, none in (("subject", subject_none), ("object", object_none)):
            if none and self._effective(m, f"{side}_source") is None:
                self._add(
                    f"sssom:NoTermFound as {side}_id should come with a {side}_source",
                    f"{side}_source",
                    index,
                    "warning",
                )
        for name in Mapping.model_fields:
            if name in ("subject_id", "object_id"):
                continue
            value = getattr(m, name)
            values = value if isinstance(value, list) else [value]
            if NO_TERM_FOUND in values:
                self._add(
                    "sssom:NoTermFound belongs in subject_id or object_id only",
                    name,
                    index,
                    "warning",
                )

    def _check_record_ids(self) -> None:
        with_ids = [m.record_id for m in self.ms.mappings if m.record_id]
        if not with_ids:
            return
        seen: set[str] = set()
        for index, m in enumerate(self.ms.mappings):
            if not m.record_id:
                self._add("record_id is used, so every mapping needs one", "record_id", index)
            elif m.record_id in seen:
                self._add(f"record_id {m.record_id} is not unique", "record_id", index)
            else:
                seen.add(m.record_id)

    def _check_local(self, index: int, m: Mapping) -> None:
        if m.subject_id is None:
            return
        match = _CURIE.match(m.subject_id)
        if match is None or match[1] not in self.local:
            return
        local = parse_local(m.subject_id, self.local)
        if local is None:
            self._add(
                "a local subject must be LOCAL:<provider>/<field>/<value>, each part "
                "percent-encoded",
                "subject_id",
                index,
            )
            return
        if m.subject_label is not None and m.subject_label != local.value:
            self._add(
                f"subject_label {m.subject_label!r} is not the value {local.value!r} "
                "its subject_id names",
                "subject_label",
                index,
                "warning",
            )
        if m.subject_category is not None and m.subject_category != local.field:
            self._add(
                f"subject_category {m.subject_category!r} is not the field {local.field!r} "
                "its subject_id names",
                "subject_category",
                index,
                "warning",
            )

    def _check_review_status(self, index: int, m: Mapping) -> None:
        declared = m.extensions.get(REVIEW_STATUS)
        if declared is None:
            return
        if REVIEW_STATUS not in self.definitions:
            self._add(
                "review_status is used without an extension definition",
                REVIEW_STATUS,
                index,
                "warning",
            )
        if declared not in REVIEW_STATUSES:
            self._add(
                f"review_status {declared!r} is not one of {', '.join(REVIEW_STATUSES)}",
                REVIEW_STATUS,
                index,
            )
            return
        human = m.mapping_justification in HUMAN_JUSTIFICATIONS
        negated = m.predicate_modifier == "Not"
        if declared == "approved" and (not human or negated):
            self._add(
                "an approved mapping needs a curator's justification "
                "(semapv:ManualMappingCuration or semapv:MappingReview) and no predicate_modifier",
                REVIEW_STATUS,
                index,
            )
        elif declared == "rejected" and not negated:
            self._add(
                "a rejected mapping needs predicate_modifier Not, or tools that ignore "
                "review_status read it as a mapping",
                REVIEW_STATUS,
                index,
            )
        elif declared == "proposed" and (human or negated):
            self._add(
                "a proposed mapping with a curator's justification or a negation reads as "
                "reviewed to tools that ignore review_status",
                REVIEW_STATUS,
                index,
                "warning",
            )

    # slots
    def _check_slot(self, name: str, value: Any, index: int | None) -> None:
        values = value if isinstance(value, list) else [value]
        for item in values:
            if name in ENTITY_REFERENCE_SLOTS:
                self._check_curie(name, item, index)
            if name in URI_SLOTS and not _ABSOLUTE_URI.match(item):
                self._add(
                    f"{item!r} is not an absolute URI",
                    name,
                    index,
                    "error" if self.version_1_1 else "warning",
                )
            if name in DATE_SLOTS and not _is_iso_date(item):
                self._add(f"{item!r} is not an ISO 8601 date (YYYY-MM-DD)", name, index)
            if name in NUMBER_RANGES:
                low, high = NUMBER_RANGES[name]
                if not low <= item <= high:
                    self._add(f"{item} is outside [{low:g}, {high:g}]", name, index)
            if name in ENUM_SLOTS:
                allowed = ENUM_SLOTS[name]
                if item not in allowed:
                    self._add(
                        f"{item!r} is not one of {', '.join(repr(a) for a in allowed)}", name, index
                    )
                elif item in VALUES_ADDED_IN_1_1 and not self.version_1_1:
                    self._needs_1_1(f"{name} {item!r}", index, column=name)
        if name == "mapping_justification" and value not in MAPPING_JUSTIFICATIONS:
            self._add(
                f"{value!r} is not a SEMAPV mapping justification "
                "(semapv:ManualMappingCuration, semapv:LexicalMatching...)",
                name,
                index,
            )

    def _check_curie(self, name: str, value: str, index: int | None) -> None:
        match = _CURIE.match(value)
        if match is None or not match[2]:
            self._add(f"{value!r} is not a CURIE (prefix:identifier)", name, index)
        elif match[2].startswith("//"):
            self._add(f"{value!r} is an IRI; SSSOM/TSV identifiers are CURIEs", name, index)
        elif match[1] not in self.ms.curie_map and match[1] not in BUILTIN_PREFIXES:
            self._add(f"the prefix {match[1]} of {value} is not in the curie_map", name, index)

    def _check_extensions(self, extras: dict[str, Any], index: int | None) -> None:
        for name, value in extras.items():
            if value is None:
                continue
            if isinstance(value, dict | list):
                self._add(f"the extension slot {name} must hold a single plain value", name, index)
                continue
            definition = self.definitions.get(name)
            hint = definition.type_hint if definition is not None else None
            iri = (self.ms.expand(hint) or "").casefold() if hint else ""
            text = str(value).casefold() if isinstance(value, bool) else str(value)
            checks: dict[str, Callable[[str], bool]] = {
                BUILTIN_PREFIXES["xsd"] + "integer": lambda v: (
                    re.fullmatch(r"[+-]?\d+", v) is not None
                ),
                BUILTIN_PREFIXES["xsd"] + "double": _is_number,
                BUILTIN_PREFIXES["xsd"] + "boolean": lambda v: v in ("true", "false"),
                BUILTIN_PREFIXES["xsd"] + "date": _is_iso_date,
                _URI_OR_CURIE: lambda v: self.ms.expand(v) is not None,
            }
            check = next((c for key, c in checks.items() if key.casefold() == iri), None)
            if check is not None and not check(text):
                self._add(
                    f"{value!r} does not fit the type_hint {hint} of {name}", name, index, "warning"
                )

    def _needs_1_1(self, what: str, index: int | None, column: str | None = None) -> None:
        if what in self.reported_1_1:  # once per slot or value, at its first use
            return
        self.reported_1_1.add(what)
        self._add(
            f"{what} is SSSOM 1.1; the set should declare sssom_version: '1.1'",
            column or what,
            index,
            "warning",
        )


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# -- automatic proposals ---------------------------------------------------------------------------

EXACT_LABEL_CONFIDENCE: Final = 0.95
NORMALISED_CONFIDENCE: Final = 0.8
MATCHER: Final = "cancer-imaging-catalogue lexical matcher"


def normalise_label(text: str) -> str:
    """A label for loose comparison: casefolded, accents, punctuation and plurals dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = re.sub(r"[\W_]+", " ", bare.casefold()).split()
    return " ".join(_singular(word) for word in words)


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "uses")):
        return word[:-2]
    return word[:-1]


def propose(
    values: Iterable[ValueKey],
    lookup: Callable[[str], Sequence[Candidate]],
    *,
    mapping_date: str | None = None,
) -> list[Mapping]:
    """Lexical proposals for local values, never approved.

    `lookup(text)` returns candidate terms (CURIE, label, kind); it is asked for the raw value
    and for its normalised form. A raw value equal to a term's preferred label (kind "label")
    gives confidence 0.95; equal labels or synonyms once normalised (`normalise_label`) give 0.8.
    Each proposal is a skos:exactMatch justified by semapv:LexicalMatching with review_status
    "proposed"; the best candidates come first.
    """
    today = mapping_date or datetime.now(UTC).date().isoformat()
    proposals: list[Mapping] = []
    seen: set[ValueKey] = set()
    for provider, field, raw in values:
        if (provider, field, raw) in seen or not raw.strip():
            continue
        seen.add((provider, field, raw))
        wanted = normalise_label(raw)
        best: dict[str, tuple[float, str, str, str]] = {}
        for query in dict.fromkeys((raw, wanted)):
            for curie, label, kind in lookup(query) if query else ():
                if kind == "label" and label == raw:
                    score, how = EXACT_LABEL_CONFIDENCE, "exact label match"
                elif wanted and normalise_label(label) == wanted:
                    which = "label" if kind == "label" else "synonym"
                    score, how = NORMALISED_CONFIDENCE, f"normalised {which} match"
                else:
                    continue
                if curie not in best or score > best[curie][0]:
                    best[curie] = (score, label, kind, how)
        for curie, (score, label, kind, how) in sorted(
            best.items(), key=lambda item: (-item[1][0], item[0])
        ):
            proposals.append(
                Mapping(
                    subject_id=local_id(provider, field, raw),
                    subject_label=raw,
                    subject_category=field,
                    predicate_id="skos:exactMatch",
                    object_id=curie,
                    object_label=label,
                    mapping_justification=LEXICAL_MATCHING,
                    subject_source=local_source(provider),
                    mapping_tool=MATCHER,
                    mapping_date=today,
                    confidence=score,
                    object_match_field=["skos:prefLabel" if kind == "label" else "skos:altLabel"],
                    match_string=[label],
                    comment=how,
                    review_status="proposed",
                )
            )
    return proposals
