"""The curators' mapping store: propose, approve and reject flows, versions, SSSOM export/import."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.exceptions import MappingError
from catalogue.ontology import sssom
from catalogue.ontology.sssom import (
    Candidate,
    Mapping,
    MappingSet,
    local_id,
    propose,
    read_sssom,
    status_of,
    validate,
    write_sssom,
)
from catalogue.services.mappings import MappingStore
from tests.conftest import require
from tests.corpus import CORPUS

ORCID = "orcid:0000-0002-1825-0097"
CHEST = ("thoracic", "body_part", "CHEST")
LUNGS = ("thoracic", "body_part", "Lungs")
CAP = ("thoracic", "body_part", "CHESTABDPELVIS")
NSCLC = ("idc", "cancer_type", "NSCLC")
TERMS: dict[str, list[Candidate]] = {
    "chest": [("SCT:51185008", "Chest", "label")],
    "lung": [("SCT:39607008", "Lung", "label")],
    "nsclc": [("NCIT:C2926", "NSCLC", "synonym")],
}


def _lookup(text: str) -> list[Candidate]:
    return TERMS.get(text.casefold(), [])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MappingStore]:
    with MappingStore.in_data_dir(tmp_path / "data") as opened:
        yield opened


def _proposals() -> list[Mapping]:
    return propose([CHEST, LUNGS, NSCLC, CAP], _lookup, mapping_date="2025-01-02")


def _without_version(mapping_set: MappingSet) -> MappingSet:
    return mapping_set.model_copy(update={"mapping_set_version": None})


def test_a_new_store_is_empty(store: MappingStore, tmp_path: Path) -> None:
    assert (tmp_path / "data" / "mappings.sqlite").is_file()
    assert store.version() == 0
    assert store.versions() == []
    exported = store.export_set()
    assert exported.mappings == []
    assert exported.mapping_set_version == "0"
    assert validate(exported) == []
    assert store.approved_map() == {}


def test_proposals_wait_for_a_curator(store: MappingStore) -> None:
    assert store.propose(_proposals(), author="matcher") == 1
    assert [status_of(m) for m in store.mappings()] == ["proposed"] * 3
    assert store.approved_map() == {}
    # the same proposals again, even on another day, change nothing
    later = propose([CHEST, LUNGS, NSCLC], _lookup, mapping_date="2025-02-03")
    assert store.propose(later, author="matcher") == 1
    assert [v.action for v in store.versions()] == ["propose"]


def test_approve_a_proposal(store: MappingStore) -> None:
    store.propose(_proposals(), author="matcher")
    approved = store.approve(CHEST, "SCT:51185008", author=ORCID)
    assert store.version() == 2
    assert status_of(approved) == "approved"
    assert approved.mapping_justification == sssom.MANUAL_CURATION
    assert approved.author_id == [ORCID]
    assert approved.object_label == "Chest"  # kept from the proposal
    assert approved.mapping_tool is None  # the matcher's account is dropped
    assert approved.confidence is None
    assert approved.comment is None
    assert store.approved_map() == {CHEST: ["SCT:51185008"]}
    # approving again changes nothing; a new proposal does not override the curator
    assert store.approve(CHEST, "SCT:51185008", author=ORCID) == approved
    assert store.propose(_proposals(), author="matcher") == 2
    assert status_of(store.mappings(status="approved")[0]) == "approved"


def test_a_curator_maps_without_a_proposal(store: MappingStore) -> None:
    first = store.approve(CAP, "SCT:51185008", author="Alice Curator", object_label="Chest")
    second = store.approve(CAP, "SCT:818981001", author="Alice Curator", confidence=0.9)
    assert first.author_label == ["Alice Curator"]  # not a CURIE: a label
    assert first.author_id is None
    assert first.subject_id == local_id(*CAP)
    assert (first.subject_label, first.subject_category) == ("CHESTABDPELVIS", "body_part")
    assert second.confidence == 0.9
    assert store.approved_map() == {CAP: ["SCT:51185008", "SCT:818981001"]}
    assert store.version() == 2


def test_reject_keeps_the_mapping_negated(store: MappingStore) -> None:
    store.propose(_proposals(), author="matcher")
    store.approve(LUNGS, "SCT:39607008", author="alice", comment="plural of lung")
    rejected = store.reject(LUNGS, "SCT:39607008", author="bob")
    assert store.version() == 3
    assert rejected.predicate_modifier == "Not"
    assert rejected.mapping_justification == sssom.MANUAL_CURATION
    assert rejected.comment == "plural of lung"  # a curator's comment stays
    assert status_of(rejected) == "rejected"
    assert store.approved_map() == {}
    assert store.approved_map(version=2) == {LUNGS: ["SCT:39607008"]}
    assert store.approved_map(version=1) == {}
    # a rejected proposal is not proposed again
    assert store.propose(_proposals(), author="matcher") == 3
    assert status_of(store.mappings()[-1]) == "rejected"
    # and a curator may change their mind
    store.approve(LUNGS, "SCT:39607008", author="carol")
    assert store.approved_map() == {LUNGS: ["SCT:39607008"]}
    history = [(v.version, v.author, v.action) for v in store.versions()]
    assert history == [
        (1, "matcher", "propose"),
        (2, "alice", "approve"),
        (3, "bob", "reject"),
        (4, "carol", "approve"),
    ]


def test_a_change_that_does_not_validate_is_refused(store: MappingStore) -> None:
    with pytest.raises(MappingError, match="the prefix FOO of FOO:1 is not in the curie_map"):
        store.approve(CHEST, "FOO:1", author="alice")
    with pytest.raises(MappingError, match=r"1.5 is outside \[0, 1\]"):
        store.approve(CHEST, "SCT:51185008", author="alice", confidence=1.5)
    with pytest.raises(MappingError, match="is an IRI"):
        store.reject(CHEST, "http://snomed.info/id/51185008", author="alice")
    with pytest.raises(MappingError, match="cannot claim"):
        store.propose([store_mapping(sssom.MANUAL_CURATION)], author="matcher")
    with pytest.raises(MappingError, match="LOCAL subjects"):
        store.propose([store_mapping(sssom.LEXICAL_MATCHING, subject="SCT:1")], author="x")
    assert store.version() == 0
    assert store.mappings() == []
    assert store.add_prefix("FOO", "https://example.org/foo/", author="alice") == 1
    assert store.add_prefix("FOO", "https://example.org/foo/", author="alice") == 1
    store.approve(CHEST, "FOO:1", author="alice")
    assert store.approved_map() == {CHEST: ["FOO:1"]}
    with pytest.raises(MappingError, match="absolute IRI"):
        store.add_prefix("BAR", "bar/", author="alice")


def store_mapping(justification: str, subject: str = local_id(*CHEST)) -> Mapping:
    return Mapping(
        subject_id=subject,
        predicate_id="skos:exactMatch",
        object_id="SCT:51185008",
        mapping_justification=justification,
    )


def test_export_then_import_into_a_fresh_store(store: MappingStore, tmp_path: Path) -> None:
    store.propose(_proposals(), author="matcher")
    store.approve(CHEST, "SCT:51185008", author=ORCID)
    store.reject(LUNGS, "SCT:39607008", author="bob", comment="not the organ")
    store.approve(CAP, "SCT:51185008", author="alice")
    exported = store.export_set()
    assert exported.mapping_set_version == "4"
    assert validate(exported) == []
    text = write_sssom(exported)
    with MappingStore(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.import_set(read_sssom(text), author="importer") == 1
        again = fresh.export_set()
        assert _without_version(again) == _without_version(exported)
        assert fresh.approved_map() == store.approved_map()
        # importing the same set again changes nothing
        assert fresh.import_set(read_sssom(text), author="importer") == 1
        assert write_sssom(_without_version(again)) == write_sssom(_without_version(exported))


def test_import_keeps_extension_columns_and_propagates(store: MappingStore, tmp_path: Path) -> None:
    text = (
        "#curie_map:\n#  LOCAL: https://w3id.org/cancer-imaging-catalogue/local/\n"
        "#  SCT: http://snomed.info/id/\n#  EX: https://example.org/\n"
        "#mapping_set_id: https://example.org/imported\n#license: https://example.org/l\n"
        "#mapping_date: '2024-12-01'\n#ext_origin: spreadsheet\n"
        "#extension_definitions:\n#  - slot_name: ext_row\n#    property: EX:row\n"
        "subject_id\tpredicate_id\tobject_id\tmapping_justification\text_row\n"
        f"{local_id(*CHEST)}\tskos:exactMatch\tSCT:51185008\tsemapv:ManualMappingCuration\t1\n"
        f"{local_id(*LUNGS)}\tskos:exactMatch\tSCT:39607008\tsemapv:LexicalMatching\t2\n"
    )
    assert store.import_set(read_sssom(text), author="alice") == 1
    exported = store.export_set()
    assert exported.mapping_set_id == "https://example.org/imported"  # adopted by an empty store
    assert exported.extensions == {"ext_origin": "spreadsheet"}
    assert exported.mapping_date is None  # propagated onto the mappings
    assert [m.mapping_date for m in exported.mappings] == ["2024-12-01"] * 2
    assert [m.extensions for m in exported.mappings] == [
        {"ext_row": "1", "review_status": "approved"},
        {"ext_row": "2", "review_status": "proposed"},
    ]
    names = [d.slot_name for d in exported.extension_definitions or []]
    assert names == ["ext_row", "review_status"]
    assert validate(exported) == []
    assert store.approved_map() == {CHEST: ["SCT:51185008"]}


def test_imports_that_cannot_be_taken(store: MappingStore, request: pytest.FixtureRequest) -> None:
    base = store.export_set()
    bad = base.model_copy(
        update={"license": None, "mappings": [store_mapping(sssom.MANUAL_CURATION)]}
    )
    with pytest.raises(MappingError, match="license"):
        store.import_set(bad, author="x")
    twice = base.model_copy(update={"mappings": [store_mapping(sssom.MANUAL_CURATION)] * 2})
    with pytest.raises(MappingError, match="two mappings"):
        store.import_set(twice, author="x")
    clash = base.model_copy(
        update={
            "curie_map": {**base.curie_map, "SCT": "http://example.org/sct/"},
            "mappings": [store_mapping(sssom.MANUAL_CURATION)],
        }
    )
    with pytest.raises(
        MappingError, match=re.escape("prefix SCT is http://snomed.info/id/ in the store")
    ):
        store.import_set(clash, author="x")
    assert store.version() == 0
    assert store.export_set().mappings == []
    foreign = CORPUS / "sssom" / "examples" / "embedded__mp-hp-exact-0.0.1.sssom.tsv"
    require(request.config, foreign.is_file(), "the SSSOM corpus is absent")
    with pytest.raises(MappingError, match="LOCAL subjects"):
        store.import_set(read_sssom(foreign), author="x")


def test_the_store_persists(tmp_path: Path) -> None:
    with MappingStore(tmp_path / "m.sqlite") as store:
        store.propose(_proposals(), author="matcher")
        store.approve(NSCLC, "NCIT:C2926", author=ORCID)
        exported = store.export_set()
    with MappingStore(tmp_path / "m.sqlite") as reopened:
        assert reopened.version() == 2
        assert reopened.export_set() == exported
        assert reopened.approved_map() == {NSCLC: ["NCIT:C2926"]}
        with pytest.raises(MappingError, match="no version 3"):
            reopened.export_set(version=3)
