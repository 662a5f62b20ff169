"""SSSOM mapping sets: the official examples validate and round-trip, broken sets are caught,
lexical proposals are never approved.

The official examples and the LinkML schema are read in place from the shared corpus
(../shared/corpus/sssom, BSD-3 / CC0); the tests that need them skip when it is absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalogue.exceptions import ConfigError, MappingError
from catalogue.ontology import sssom
from catalogue.ontology.sssom import (
    Candidate,
    Mapping,
    MappingSet,
    Problem,
    approved,
    condense,
    local_id,
    new_mapping_set,
    normalise_label,
    parse_local,
    propagate,
    propose,
    read_sssom,
    status_of,
    validate,
    write_sssom,
)
from tests.conftest import require
from tests.corpus import CORPUS

EXAMPLES = CORPUS / "sssom" / "examples"
SCHEMA = CORPUS / "sssom" / "schema" / "sssom_schema.yaml"
KNOWN_DEFECTS = {
    "schema/version.sssom.tsv": [("mapping_set_id", "the required slot mapping_set_id is missing")]
}
"""Official examples that break the schema: version.sssom.tsv has no mapping_set_id (required)."""


def _examples() -> list[str]:
    if not EXAMPLES.is_dir():
        return ["<corpus absent>"]
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.sssom.tsv"))


def _errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def _needs_corpus(request: pytest.FixtureRequest, path: Path) -> None:
    require(request.config, path.exists(), f"the SSSOM corpus is absent ({path})")


# -- the schema -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(request: pytest.FixtureRequest) -> dict[str, Any]:
    _needs_corpus(request, SCHEMA)
    loaded: dict[str, Any] = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return loaded


def test_embedded_enums_are_the_schemas(schema: dict[str, Any]) -> None:
    enums = {name: list(e["permissible_values"]) for name, e in schema["enums"].items()}
    assert list(sssom.ENTITY_TYPES) == enums["entity_type_enum"]
    assert list(sssom.PREDICATE_MODIFIERS) == enums["predicate_modifier_enum"]
    assert list(sssom.MAPPING_CARDINALITIES) == enums["mapping_cardinality_enum"]
    assert list(sssom.SSSOM_VERSIONS) == enums["sssom_version_enum"]
    pattern = schema["slots"]["mapping_justification"]["pattern"]
    justifications = re.fullmatch(r"\^semapv:\((.*)\)\$", pattern)
    assert justifications is not None
    assert [f"semapv:{j}" for j in justifications[1].split("|")] == list(
        sssom.MAPPING_JUSTIFICATIONS
    )


def test_models_carry_the_schemas_slots(schema: dict[str, Any]) -> None:
    classes, slots = schema["classes"], schema["slots"]
    assert list(Mapping.model_fields) == classes["mapping"]["slots"]
    assert list(MappingSet.model_fields) == classes["mapping set"]["slots"]
    names = set(classes["mapping"]["slots"]) | set(classes["mapping set"]["slots"])

    def ranged(kind: str) -> set[str]:
        return {n for n in names if slots[n].get("range", "string") == kind}

    assert ranged("EntityReference") == sssom.ENTITY_REFERENCE_SLOTS
    assert ranged("NonRelativeURI") == sssom.URI_SLOTS
    assert ranged("date") == sssom.DATE_SLOTS
    assert {
        n: (slots[n]["minimum_value"], slots[n]["maximum_value"]) for n in ranged("double")
    } == sssom.NUMBER_RANGES
    enum_slots = {n for n in names if slots[n].get("range", "").endswith("_enum")}
    assert enum_slots == set(sssom.ENUM_SLOTS)
    structured = {"curie_map", "mappings", "extension_definitions"}
    multivalued = {n for n in names if slots[n].get("multivalued")} - structured
    assert multivalued == sssom.MULTIVALUED
    for model in (Mapping, MappingSet):
        listed = {n for n, f in model.model_fields.items() if "list[str]" in str(f.annotation)}
        assert listed == sssom.MULTIVALUED & set(model.model_fields)
    propagated = [
        n for n in classes["mapping"]["slots"] if slots[n].get("annotations", {}).get("propagated")
    ]
    assert propagated == list(sssom.PROPAGATABLE)
    added = {n for n in names if slots[n].get("annotations", {}).get("added_in") == "1.1"}
    assert added == sssom.ADDED_IN_1_1
    usage = classes["mapping set"]["slot_usage"]
    assert {n for n, u in usage.items() if "annotations" in u} == sssom.SET_SLOTS_ADDED_IN_1_1
    assert {"mapping_set_id", "license"} == {
        n for n in classes["mapping set"]["slots"] if slots[n].get("required")
    } | {n for n, u in usage.items() if u.get("required")}


# -- the official examples ----------------------------------------------------------------------


@pytest.mark.parametrize("name", _examples())
def test_official_example_validates(request: pytest.FixtureRequest, name: str) -> None:
    _needs_corpus(request, EXAMPLES)
    mapping_set = read_sssom(EXAMPLES / name)
    assert mapping_set.mappings
    errors = [(p.column, p.message) for p in _errors(validate(mapping_set))]
    assert errors == KNOWN_DEFECTS.get(name, [])


@pytest.mark.parametrize("name", _examples())
def test_official_example_round_trips(request: pytest.FixtureRequest, name: str) -> None:
    _needs_corpus(request, EXAMPLES)
    original = read_sssom(EXAMPLES / name)
    text = write_sssom(original)
    again = read_sssom(text)
    assert again == original
    assert again.extensions == original.extensions
    assert [m.extensions for m in again.mappings] == [m.extensions for m in original.mappings]
    assert write_sssom(again) == text


def test_extension_slots_are_kept(request: pytest.FixtureRequest) -> None:
    _needs_corpus(request, EXAMPLES)
    mapping_set = read_sssom(EXAMPLES / "schema" / "extension-slots.sssom.tsv")
    assert mapping_set.extensions == {"ext_foo": "Foo A", "ext_undeclared_foo": "Foo B"}
    first = mapping_set.mappings[0].extensions
    assert first == {"ext_bar": "111", "ext_baz": "ORGENT:BAZ_0001", "ext_undeclared_baz": "BAZ A"}
    assert [d.slot_name for d in mapping_set.extension_definitions or []] == [
        "ext_bar",
        "ext_baz",
        "ext_foo",
    ]
    assert read_sssom(write_sssom(mapping_set)).mappings[2].extensions == {
        "ext_bar": "114",
        "ext_undeclared_baz": "Baz C",
    }


def test_external_metadata_reads_as_the_embedded_set(request: pytest.FixtureRequest) -> None:
    _needs_corpus(request, EXAMPLES)
    embedded = read_sssom(EXAMPLES / "embedded__foodie-inc-2022-05-01.sssom.tsv")
    table = EXAMPLES / "external__example1.sssom.tsv"
    explicit = read_sssom(table, EXAMPLES / "external__example1.sssom.yml")
    assert explicit == embedded
    assert read_sssom(table) == embedded  # the .sssom.yml beside it is found
    assert read_sssom(table.read_text(encoding="utf-8")).mapping_set_id is None  # text: no yml
    assert read_sssom(EXAMPLES / "external__mp-hp-exact-0.0.1.sssom.tsv") == read_sssom(
        EXAMPLES / "embedded__mp-hp-exact-0.0.1.sssom.tsv"
    )


def test_quoted_values_and_short_rows(request: pytest.FixtureRequest) -> None:
    _needs_corpus(request, EXAMPLES)
    foodie = read_sssom(EXAMPLES / "embedded__foodie-inc-2022-05-01.sssom.tsv")
    assert foodie.mappings[0].comment is not None
    assert '"whole"' in foodie.mappings[0].comment
    assert foodie.mappings[0].confidence == 0.95
    assert foodie.mapping_date == "2022-05-02"  # dates stay ISO strings
    rules = read_sssom(EXAMPLES / "schema" / "curation_rule_text2.sssom.tsv")
    assert rules.mappings[2].curation_rule_text is None  # a short row: missing cells are empty
    assert rules.creator_id == ["ror:02kvxyf05"]  # a lone scalar of a multivalued slot


def test_propagation_and_condensation(request: pytest.FixtureRequest) -> None:
    _needs_corpus(request, EXAMPLES)
    unmapped = read_sssom(EXAMPLES / "schema" / "no_term_found.sssom.tsv")
    spread = propagate(unmapped)
    assert spread.object_source is None
    assert [m.object_source for m in spread.mappings] == ["obo:mp", "obo:mp"]
    assert condense(spread) == unmapped
    assert not _errors(validate(spread))
    # a slot some mapping sets itself is not propagated
    foodie = propagate(read_sssom(EXAMPLES / "embedded__foodie-inc-2022-05-01.sssom.tsv"))
    assert foodie.object_source_version is not None
    assert foodie.mappings[0].subject_source == "KF_FOOD:DB"


# -- our own sets -------------------------------------------------------------------------------

TRICKY = [
    ("thoracic", "body_part", "CHESTABDPELVIS"),
    ("thoracic", "body_part", "WHOLE BODY"),
    ("idc", "cancer_type", "NSCLC / lung | 50% \\ é"),
    ("a/b", "manu facturer", 'GE "MEDICAL"\tSYSTEMS'),
]


def _our_set() -> MappingSet:
    mappings = []
    for index, (provider, field, value) in enumerate(TRICKY):
        mappings.append(
            Mapping(
                subject_id=local_id(provider, field, value),
                subject_label=value,
                subject_category=field,
                subject_source=sssom.local_source(provider),
                predicate_id="skos:exactMatch",
                object_id=f"SCT:{1000 + index}",
                object_label=f"label {index}\nwith a line break",
                mapping_justification=sssom.MANUAL_CURATION,
                author_id=["orcid:0000-0002-1825-0097"],
                author_label=["A|B", "C\\", "D\\|E"],
                mapping_date="2025-01-02",
                confidence=0.875,
                review_status="approved",
                ext_note=f"note {index}",
            )
        )
    made = new_mapping_set(
        mappings,
        mapping_set_id="https://example.org/sets/ours",
        license="https://creativecommons.org/publicdomain/zero/1.0/",
        title="Ours",
        version="7",
    )
    return made.model_copy(update={"ext_set_note": "kept"})


def test_our_set_validates_and_round_trips() -> None:
    ours = _our_set()
    assert validate(ours) == []
    text = write_sssom(ours)
    assert text.startswith("#curie_map:\n")
    again = read_sssom(text)
    assert again == ours
    assert again.mappings[3].author_label == ["A|B", "C\\", "D\\|E"]
    assert again.mappings[3].subject_label == 'GE "MEDICAL"\tSYSTEMS'
    assert again.mappings[0].extensions == {"review_status": "approved", "ext_note": "note 0"}
    assert again.extensions == {"ext_set_note": "kept"}
    assert approved(again) == {key: [f"SCT:{1000 + i}"] for i, key in enumerate(TRICKY)}


@pytest.mark.parametrize("key", TRICKY)
def test_local_ids_name_their_value(key: tuple[str, str, str]) -> None:
    curie = local_id(*key)
    assert curie.count("/") == 2
    assert parse_local(curie) == key
    assert parse_local(curie, prefixes={"OTHER"}) is None


def test_multivalued_escaping_follows_the_spec() -> None:
    # examples/schema/pipe-escaping.sssom.tsv of the SSSOM repository
    assert sssom.split_multivalued("Alice\\|Bob|Charlie") == ["Alice|Bob", "Charlie"]
    assert sssom.split_multivalued("Alice\\\\Bob|Charlie\\\\|David\\\\\\|Eve\\\\") == [
        "Alice\\Bob",
        "Charlie\\",
        "David\\|Eve\\",
    ]
    assert sssom.split_multivalued("a\\b") == ["a\\b"]  # a lone backslash is a backslash
    values = ["x|y", "back\\slash", "", "\\|"]
    assert sssom.split_multivalued(sssom.join_multivalued(values)) == values


# -- broken files raise -----------------------------------------------------------------------

HEADER = (
    "#curie_map:\n#  SCT: http://snomed.info/id/\n#  LOCAL: https://w3id.org/cancer-imaging-"
    "catalogue/local/\n#mapping_set_id: https://example.org/s\n#license: https://example.org/l\n"
)
COLUMNS = "subject_id\tpredicate_id\tobject_id\tmapping_justification\tconfidence\n"
ROW = "LOCAL:p/body_part/CHEST\tskos:exactMatch\tSCT:51185008\tsemapv:ManualMappingCuration\t0.9\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#curie_map: [\n" + COLUMNS + ROW, "not valid YAML"),
        ("#a: &x 1\n#b: *x\n" + COLUMNS + ROW, "anchors and aliases"),
        ("#- just\n#- a list\n" + COLUMNS + ROW, "YAML mapping"),
        ("#mappings: []\n" + COLUMNS + ROW, "must not hold the mappings"),
        (HEADER + "subject_id\tobject_id\tmapping_justification\n", "predicate_id"),
        (HEADER + COLUMNS.replace("mapping_justification", "x"), "mapping_justification"),
        (HEADER + COLUMNS.replace("confidence", "object_id"), "repeated columns object_id"),
        (HEADER, "no TSV header"),
        (HEADER + COLUMNS + ROW.replace("0.9", "high"), "line 7: confidence"),
        (HEADER + COLUMNS + ROW.replace("\n", "\textra\n"), "line 7: 6 values for 5 columns"),
        (HEADER + COLUMNS + '"unclosed\tskos:exactMatch\n', "bad TSV"),
        (HEADER + COLUMNS + 'a"b"\t"x"y\n', "bad TSV"),
        ("#curie_map: 3\n" + COLUMNS + ROW, "curie_map"),
    ],
)
def test_broken_files_raise(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=re.escape(message)):
        read_sssom(text)


def test_unreadable_files_raise(tmp_path: Path) -> None:
    latin = tmp_path / "latin.sssom.tsv"
    latin.write_bytes((HEADER + COLUMNS + ROW).replace("CHEST", "POITRINE é").encode("latin-1"))
    with pytest.raises(MappingError, match="not UTF-8"):
        read_sssom(latin)
    with pytest.raises(ConfigError, match="cannot read"):
        read_sssom(tmp_path / "missing.sssom.tsv")
    both = tmp_path / "both.sssom.tsv"
    both.write_text(HEADER + COLUMNS + ROW, encoding="utf-8")
    (tmp_path / "both.sssom.yml").write_text("license: https://example.org/l\n", encoding="utf-8")
    with pytest.raises(MappingError, match="embedded metadata block"):
        read_sssom(both, tmp_path / "both.sssom.yml")
    assert read_sssom(str(both)) == read_sssom(both)  # a string naming a file reads the file
    bom = tmp_path / "bom.sssom.tsv"
    bom.write_bytes(b"\xef\xbb\xbf" + (HEADER + COLUMNS + ROW).encode())
    assert read_sssom(bom) == read_sssom(both)


# -- broken sets give problems --------------------------------------------------------------------

BASE = (
    HEADER
    + "#extension_definitions:\n#  - slot_name: review_status\n"
    + "subject_id\tsubject_label\tpredicate_id\tobject_id\tmapping_justification\tconfidence"
    "\tmapping_date\treview_status\n"
    + "LOCAL:p/body_part/CHEST\tCHEST\tskos:exactMatch\tSCT:51185008\t"
    "semapv:ManualMappingCuration\t0.9\t2025-01-02\tapproved\n"
    + "LOCAL:p/body_part/LUNG\tLUNG\tskos:exactMatch\tSCT:39607008\tsemapv:LexicalMatching\t0.8"
    "\t2025-01-02\tproposed\n"
)
COLS, ROW1, ROW2 = 7, 9, 10
"""BASE: the index of its header line, the file lines of its two mappings."""


def _broken(old: str, new: str) -> list[Problem]:
    assert old in BASE
    return validate(read_sssom(BASE.replace(old, new, 1)))


@pytest.mark.parametrize(
    ("old", "new", "column", "line", "message"),
    [
        ("#mapping_set_id: https://example.org/s\n", "", "mapping_set_id", None, "required"),
        ("#license: https://example.org/l\n", "", "license", None, "required"),
        ("SCT:51185008", "FOO:51185008", "object_id", ROW1, "prefix FOO of FOO:51185008"),
        ("SCT:51185008", "http://snomed.info/id/51185008", "object_id", ROW1, "is an IRI"),
        ("SCT:51185008", "51185008", "object_id", ROW1, "not a CURIE"),
        ("\t0.9\t", "\t1.2\t", "confidence", ROW1, "1.2 is outside [0, 1]"),
        ("\t0.9\t", "\t-0.1\t", "confidence", ROW1, "outside"),
        ("semapv:LexicalMatching", "semapv:Guessing", "mapping_justification", ROW2, "SEMAPV"),
        ("\t2025-01-02\tapproved", "\t02/01/2025\tapproved", "mapping_date", ROW1, "ISO 8601"),
        ("\t2025-01-02\tapproved", "\t2025-02-30\tapproved", "mapping_date", ROW1, "ISO 8601"),
        ("LOCAL:p/body_part/CHEST\tCHEST", "\tCHEST", "subject_id", ROW1, "required"),
        ("\tskos:exactMatch\tSCT:51185008", "\t\tSCT:51185008", "predicate_id", ROW1, "required"),
        ("\tSCT:51185008", "\t", "object_id", ROW1, "required"),
        ("#  LOCAL", "#  skos: http://example.org/\n#  LOCAL", "curie_map", 1, "built-in"),
        ("#  SCT: http://snomed.info/id/", "#  SCT: snomed/", "curie_map", 1, "absolute IRI"),
        ("LOCAL:p/body_part/CHEST", "LOCAL:p/CHEST", "subject_id", ROW1, "LOCAL:<provider>"),
        ("\tapproved", "\tmaybe", "review_status", ROW1, "is not one of proposed"),
        (
            "semapv:ManualMappingCuration	0.9",
            "semapv:LexicalMatching	0.9",
            "review_status",
            ROW1,
            "an approved mapping needs a curator's justification",
        ),
        ("\tproposed", "\trejected", "review_status", ROW2, "predicate_modifier Not"),
    ],
)
def test_broken_sets_give_problems(
    old: str, new: str, column: str, line: int | None, message: str
) -> None:
    assert _errors(validate(read_sssom(BASE))) == []
    errors = _errors(_broken(old, new))
    assert [(p.column, p.line) for p in errors] == [(column, line)], errors
    assert message in errors[0].message


@pytest.mark.parametrize(
    ("columns", "values", "column", "message"),
    [
        ("subject_type", "owl klass", "subject_type", "is not one of"),
        ("predicate_modifier", "Maybe", "predicate_modifier", "is not one of 'Not'"),
        ("mapping_cardinality", "1:0", "mapping_cardinality", "only for object_id"),
        ("review_date", "2025-01-03", "review_date", "needs reviewer_id or reviewer_label"),
        ("reviewer_id\treviewer_agreement", "SCT:9\t-2", "reviewer_agreement", "outside [-1, 1]"),
        ("predicate_type", "rdfs literal", "predicate_type", "must not be"),
        ("see_also", "https://ok.org|not a uri", "see_also", "absolute URI"),
        ("author_id", "SCT:1|nobody", "author_id", "not a CURIE"),
    ],
)
def test_more_broken_slots(columns: str, values: str, column: str, message: str) -> None:
    lines = BASE.splitlines()
    lines[COLS] += f"\t{columns}"
    lines[COLS + 1] += f"\t{values}"
    problems = validate(read_sssom("#sssom_version: '1.1'\n" + "\n".join(lines) + "\n"))
    errors = [p for p in _errors(problems) if p.column == column]
    assert len(errors) == 1, problems
    assert message in errors[0].message
    assert errors[0].mapping == 0


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("SCT:r1", "record_id SCT:r1 is not unique"),
        ("", "record_id is used, so every mapping needs one"),
    ],
)
def test_record_ids_are_all_there_and_unique(second: str, message: str) -> None:
    lines = BASE.splitlines()
    lines[COLS] += "\trecord_id"
    lines[COLS + 1] += "\tSCT:r1"
    lines[COLS + 2] += f"\t{second}"
    errors = _errors(validate(read_sssom("#sssom_version: '1.1'\n" + "\n".join(lines) + "\n")))
    assert [(p.column, p.mapping, p.line, p.message) for p in errors] == [
        ("record_id", 1, ROW2 + 1, message)
    ]


def test_what_the_spec_allows_is_no_error() -> None:
    unmapped = BASE.replace("SCT:51185008", "sssom:NoTermFound")
    assert _errors(validate(read_sssom(unmapped))) == []  # a warning asks for an object_source
    assert _errors(validate(read_sssom(BASE.replace("skos:exactMatch", "SCT:116680003")))) == []
    literal = (
        "#mapping_set_id: https://example.org/s\n#license: https://example.org/l\n"
        "#curie_map:\n#  SCT: http://snomed.info/id/\n#subject_type: rdfs literal\n"
        "subject_label\tpredicate_id\tobject_id\tmapping_justification\n"
        "Chest\tskos:exactMatch\tSCT:51185008\tsemapv:ManualMappingCuration\n"
        "\tskos:exactMatch\tSCT:51185008\tsemapv:ManualMappingCuration\n"
    )
    problems = validate(read_sssom(literal))
    assert [(p.column, p.line) for p in _errors(problems)] == [("subject_label", 8)]


def test_warnings_for_shoulds() -> None:
    ignored = (
        HEADER.replace("#license", "#extension_definitions:\n#  - slot_name: subject_id\n#license")
        + COLUMNS
        + ROW
    )
    problems = validate(read_sssom(ignored))
    assert [(p.severity, p.column) for p in problems] == [("warning", "extension_definitions")]
    assert "standard slot" in problems[0].message
    assert str(problems[0]) == (
        "line 5, column extension_definitions: extension definition ignored: "
        "subject_id is a standard slot (warning)"
    )
    lines = BASE.splitlines()
    lines[COLS] += "\tpredicate_type"
    lines[COLS + 1] += "\towl annotation property"
    lines[COLS + 2] += "\towl annotation property"
    problems = validate(read_sssom("\n".join(lines) + "\n"))
    assert [(p.severity, p.column, p.line) for p in problems] == [
        ("warning", "predicate_type", ROW1)  # once per set, at its first use
    ]
    relative = BASE.replace("#license: https://example.org/l", "#license: licence.txt")
    problems = validate(read_sssom(relative))  # SSSOM 1.0 accepts relative URIs
    assert [(p.severity, p.column, p.line) for p in problems] == [("warning", "license", 5)]
    problems = validate(read_sssom("#sssom_version: '1.1'\n" + relative))
    assert [(p.severity, p.column, p.line) for p in problems] == [("error", "license", 6)]


# -- status and what harvests apply -------------------------------------------------------------


def test_approved_applies_only_approved_positive_mappings() -> None:
    def make(value: str, obj: str, justification: str, **slots: Any) -> Mapping:
        return Mapping(
            subject_id=local_id("thoracic", "body_part", value),
            predicate_id=slots.pop("predicate_id", "skos:exactMatch"),
            object_id=obj,
            mapping_justification=justification,
            **slots,
        )

    manual, lexical = sssom.MANUAL_CURATION, sssom.LEXICAL_MATCHING
    mappings = [
        make("CHESTABDPELVIS", "SCT:51185008", manual),
        make("CHESTABDPELVIS", "SCT:818981001", manual, review_status="approved"),
        make("CHESTABDPELVIS", "SCT:51185008", manual),  # a repeat adds nothing
        make("CHEST", "SCT:51185008", lexical),  # proposed
        make("CHEST", "SCT:43799004", manual, predicate_modifier="Not"),  # rejected
        make("CHEST", "SCT:39607008", manual, review_status="rejected", predicate_modifier="Not"),
        make("LUNG", "SCT:39607008", manual, predicate_id="skos:narrowMatch"),
        make("LUNG", "SCT:181216001", manual, predicate_id="skos:broadMatch"),
        make("WHOLE BODY", sssom.NO_TERM_FOUND, manual),
        make("HEAD", "SCT:69536005", lexical, review_status="approved"),
        Mapping(
            subject_id="OTHER:1",
            predicate_id="skos:exactMatch",
            object_id="SCT:1",
            mapping_justification=manual,
        ),
    ]
    mapping_set = new_mapping_set(
        mappings, mapping_set_id="https://example.org/s", license="https://example.org/l"
    )
    assert [status_of(m) for m in mappings[3:6]] == ["proposed", "rejected", "rejected"]
    assert approved(mapping_set) == {
        ("thoracic", "body_part", "CHESTABDPELVIS"): ["SCT:51185008", "SCT:818981001"],
        ("thoracic", "body_part", "LUNG"): ["SCT:181216001"],
        ("thoracic", "body_part", "HEAD"): ["SCT:69536005"],  # declared status wins (validate
    }  # reports the inconsistency)
    errors = _errors(validate(mapping_set))
    assert [(p.mapping, p.column) for p in errors] == [(9, "review_status"), (10, "subject_id")]


# -- proposals ------------------------------------------------------------------------------------

TERMS: dict[str, list[Candidate]] = {
    "Lung": [("SCT:39607008", "Lung", "label")],
    "lung": [("SCT:39607008", "Lung", "label"), ("SCT:39607008", "lung structure", "synonym")],
    "Non-small cell lung carcinoma": [("NCIT:C2926", "Non-small cell lung carcinoma", "label")],
    "non small cell lung carcinoma": [
        ("NCIT:C2926", "Non-Small Cell Lung Carcinoma", "label"),
        ("NCIT:C2926", "NSCLC", "synonym"),
    ],
    "nsclc": [("NCIT:C2926", "NSCLC", "synonym")],
    "lymph node": [
        ("SCT:59441001", "Lymph node structure", "label"),
        ("SCT:59441001", "Lymph nodes", "synonym"),
    ],
    "ct": [("DCM:CT", "Computed Tomography", "label")],
}  # fmt: skip


def _lookup(text: str) -> list[Candidate]:
    return TERMS.get(text, [])


def test_proposals_score_and_are_never_approved() -> None:
    values = [
        ("thoracic", "body_part", "Lung"),
        ("thoracic", "body_part", "LUNGS"),
        ("idc", "cancer_type", "NSCLC"),
        ("idc", "cancer_type", "Non-small cell lung carcinoma"),
        ("idc", "cancer_type", "  non_small   CELL lung-carcinoma!! "),
        ("thoracic", "body_part", "LYMPH  NODE"),
        ("thoracic", "modality", "CT"),  # the label differs: no proposal
        ("thoracic", "body_part", "CHESTABDPELVIS"),  # nothing found
        ("thoracic", "body_part", "Lung"),  # repeated
        ("thoracic", "body_part", " "),
    ]
    proposals = propose(values, _lookup, mapping_date="2025-01-02")
    got = [(parse_local(p.subject_id or ""), p.object_id, p.confidence) for p in proposals]
    assert got == [
        (("thoracic", "body_part", "Lung"), "SCT:39607008", 0.95),
        (("thoracic", "body_part", "LUNGS"), "SCT:39607008", 0.8),
        (("idc", "cancer_type", "NSCLC"), "NCIT:C2926", 0.8),
        (("idc", "cancer_type", "Non-small cell lung carcinoma"), "NCIT:C2926", 0.95),
        (("idc", "cancer_type", "  non_small   CELL lung-carcinoma!! "), "NCIT:C2926", 0.8),
        (("thoracic", "body_part", "LYMPH  NODE"), "SCT:59441001", 0.8),
    ]
    assert proposals[2].object_match_field == ["skos:altLabel"]
    assert proposals[5].comment == "normalised synonym match"
    for proposal in proposals:
        assert proposal.mapping_justification == sssom.LEXICAL_MATCHING
        assert proposal.extensions == {"review_status": "proposed"}
        assert status_of(proposal) == "proposed"
        local = parse_local(proposal.subject_id or "")
        assert local is not None
        assert (proposal.subject_label, proposal.subject_category) == (local.value, local.field)
    mapping_set = new_mapping_set(
        proposals, mapping_set_id="https://example.org/p", license="https://example.org/l"
    )
    assert validate(mapping_set) == []
    assert approved(mapping_set) == {}
    assert approved(read_sssom(write_sssom(mapping_set))) == {}


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("  Lymph   NODES ", "lymph node"),
        ("non-small-cell_lung carcinoma.", "non small cell lung carcinoma"),
        ("Ovaries", "ovary"),
        ("Sinuses", "sinus"),
        ("Pelvis", "pelvis"),
        ("Glass", "glass"),
        ("Ménière", "meniere"),
        ("CT", "ct"),
    ],
)
def test_normalised_labels(text: str, normal: str) -> None:
    assert normalise_label(text) == normal
