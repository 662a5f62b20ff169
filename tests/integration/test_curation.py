"""Curator mappings applied: value concepts at harvest and by remap, coverage, proposals, the
GraphQL curator flow, and the shipped default set against the real IDC data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import DisclosureSettings, Settings, load_providers
from catalogue.imaging.normalise import coded, free_text
from catalogue.ontology.annotate import Annotator
from catalogue.ontology.default_mappings import DEFAULT_SET_PATH, build_default_set
from catalogue.ontology.sssom import (
    NO_TERM_FOUND,
    approved,
    parse_local,
    read_sssom,
    status_of,
    write_sssom,
)
from catalogue.ontology.vocabulary import shipped_vocabulary
from catalogue.services.curation import (
    DEFAULT_AUTHOR,
    apply_mappings,
    coverage,
    decide,
    propose_mappings,
    remap,
)
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import require
from tests.integration.test_harvest import providers_file, series_table

PROVIDER = "hospital"
PLAN = [("CHEST", 8), ("LUNG", 4), ("LUNG FIELDS", 3), ("LUNGS", 2), ("TORSO", 2), ("OTHER", 1)]
"""(body part, patients): each patient has a CT and an annotation series of that body part."""


def series_rows() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    patient = 0
    for body_part, patients in PLAN:
        for _ in range(patients):
            for s, modality in enumerate(("CT", "SEG" if patient % 3 else "ANN")):
                out.append(_row(patient, 0, s, body_part, modality))
            patient += 1
    out.append(_row(0, 1, 0, "LUNG", "CT"))  # patient 0 also has a lung study
    return out


def _row(patient: int, study: int, series: int, body_part: str, modality: str) -> dict[str, object]:
    return {
        "collection_id": "thorax",
        "PatientID": f"P{patient}",
        "StudyInstanceUID": f"1.2.{patient}.{study}",
        "SeriesInstanceUID": f"1.2.{patient}.{study}.{series}",
        "PatientSex": "F" if patient % 2 else "M",
        "PatientAge": f"{40 + patient:03d}Y",
        "StudyDate": "20210305",
        "Modality": modality,
        "BodyPartExamined": body_part,
        "Manufacturer": "SIEMENS" if patient % 2 else "GE Medical Systems",
        "instanceCount": 10,
    }


def expected_counts(rows: list[dict[str, object]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(field, stored value) -> (series, subjects), straight from the rows."""
    series: dict[tuple[str, str], int] = defaultdict(int)
    subjects: dict[tuple[str, str], set[object]] = defaultdict(set)
    for row in rows:
        for name, column, normalise in (
            ("body_part", "BodyPartExamined", coded),
            ("modality", "Modality", coded),
            ("manufacturer", "Manufacturer", free_text),
        ):
            value = normalise(row[column])
            assert value is not None
            series[(name, value)] += 1
            subjects[(name, value)].add(row["PatientID"])
    return {key: (n, len(subjects[key])) for key, n in series.items()}


@pytest.fixture
def harvested(tmp_path: Path, catalogue: Catalogue) -> Catalogue:
    table = series_table(tmp_path / "series.parquet", series_rows())
    body = f"""providers:
  - id: {PROVIDER}
    name: General Hospital
    sources:
      - kind: dicom-table
        path: {table}
        dataset_column: collection_id
"""
    report = harvest(catalogue, load_providers(providers_file(tmp_path, body)))
    assert report.ok, report.failed
    return catalogue


def values_of(catalogue: Catalogue, *concepts: str) -> set[str]:
    """The provider's body parts whose applied concepts hold any of `concepts`."""
    found = catalogue.cohort.concept_values("body_part", set(concepts))
    return {value for provider, value in found if provider == PROVIDER}


def test_a_new_catalogue_starts_from_the_default_set(settings: Settings) -> None:
    with open_catalogue(settings) as first:
        versions = first.mappings.versions()
        assert [(v.version, v.author, v.action) for v in versions] == [
            (1, DEFAULT_AUTHOR, "import")
        ]
        assert first.mappings.approved_map()[("*", "cancer_type", "Lung Cancer")] == ["NCIT:C7377"]
        exported = first.mappings.export_set()
        assert exported.mapping_set_id != read_sssom(DEFAULT_SET_PATH).mapping_set_id
        assert exported.mapping_set_source == [read_sssom(DEFAULT_SET_PATH).mapping_set_id]
    with open_catalogue(settings) as again:  # not imported twice
        assert again.mappings.version() == 1


def test_coverage_counts_match_the_rows(harvested: Catalogue) -> None:
    rows = coverage(harvested, PROVIDER)
    assert {(r.field, r.value): (r.series, r.subjects) for r in rows} == expected_counts(
        series_rows()
    )
    how = {(r.field, r.value): r.how for r in rows}
    assert how[("body_part", "CHEST")] == "standard"
    assert how[("body_part", "OTHER")] == "no-term"  # the default set's decision
    assert how[("body_part", "TORSO")] == "unmapped"
    assert how[("modality", "ANN")] == "unmapped"
    assert how[("manufacturer", "siemens")] == "unmapped"
    unmapped = coverage(harvested, PROVIDER, "body_part", unmapped=True)
    assert [r.value for r in unmapped] == ["LUNG FIELDS", "LUNGS", "TORSO"]  # most series first
    # the harvest applied the mapping set and recorded its version
    version = harvested.mappings.version()
    assert harvested.cohort.mapping_version() == version
    assert harvested.cohort.mapping_version(PROVIDER) == version
    assert harvested.log.runs(1)[0].mapping_version == version
    assert values_of(harvested, "BPE:LUNG") == {"LUNG"}


def test_an_approved_mapping_applies_with_its_ancestors_after_remap(harvested: Catalogue) -> None:
    runs = len(harvested.log.runs(100))
    _, version = decide(
        harvested, "approved", (PROVIDER, "body_part", "LUNG FIELDS"), "BPE:LUNG", author="cur"
    )
    assert values_of(harvested, "BPE:LUNG") == {"LUNG"}  # not applied before a remap
    report = remap(harvested)
    assert report.version == version
    assert report.values[PROVIDER] > 0
    assert values_of(harvested, "BPE:LUNG") == {"LUNG", "LUNG FIELDS"}
    chest = "BPE:CHEST"
    assert chest in shipped_vocabulary().ancestors("BPE:LUNG")
    assert {"LUNG", "LUNG FIELDS", "CHEST"} <= values_of(harvested, chest)  # expansion
    # the approval's own closure matches the annotator's
    annotator = harvested.annotator()
    assert annotator.annotate(PROVIDER, "body_part", ["LUNG FIELDS"]) >= {"BPE:LUNG", chest}
    # applied without a harvest; the version is recorded
    assert len(harvested.log.runs(100)) == runs
    assert harvested.cohort.mapping_version() == version


def test_rejections_are_not_applied(harvested: Catalogue) -> None:
    key = (PROVIDER, "body_part", "TORSO")
    decide(harvested, "approved", key, "BPE:CHEST", author="cur")
    remap(harvested)
    assert "TORSO" in values_of(harvested, "BPE:CHEST")
    decide(harvested, "rejected", key, "BPE:CHEST", author="cur", comment="the whole trunk")
    # a rejected standard term is not applied either: LUNG is an Annex L defined term
    decide(harvested, "rejected", (PROVIDER, "body_part", "LUNG"), "BPE:LUNG", author="cur")
    remap(harvested)
    assert "TORSO" not in values_of(harvested, "BPE:CHEST", "BPE:TRUNK")
    assert "LUNG" not in values_of(harvested, "BPE:LUNG")
    assert harvested.annotator().concepts(PROVIDER, "body_part", "LUNG") == frozenset()
    # another provider's LUNG would still be the standard term
    assert harvested.annotator().concepts("elsewhere", "body_part", "LUNG") == {"BPE:LUNG"}
    [rejected] = [
        m for m in harvested.mappings.mappings(status="rejected") if m.object_id == "BPE:CHEST"
    ]
    assert rejected.predicate_modifier == "Not"


def test_proposals_are_not_applied_until_approved(harvested: Catalogue) -> None:
    report = propose_mappings(harvested, PROVIDER)
    proposed = {(parse_local(m.subject_id or ""), m.object_id) for m in report.proposals}
    lungs = parse_local(f"LOCAL:{PROVIDER}/body_part/LUNGS")
    assert (lungs, "BPE:LUNG") in proposed
    assert all(status_of(m) == "proposed" for m in harvested.mappings.mappings(status="proposed"))
    assert report.version == harvested.mappings.version()
    remap(harvested)
    assert "LUNGS" not in values_of(harvested, "BPE:LUNG")
    assert [r.value for r in coverage(harvested, PROVIDER, "body_part", unmapped=True)] == [
        "LUNG FIELDS",
        "LUNGS",
        "TORSO",
    ]
    decide(harvested, "approved", (PROVIDER, "body_part", "LUNGS"), "BPE:LUNG", author="cur")
    apply_mappings(harvested, PROVIDER)
    assert "LUNGS" in values_of(harvested, "BPE:LUNG")
    # proposing again keeps the curator's approval
    propose_mappings(harvested, PROVIDER)
    assert ("hospital", "body_part", "LUNGS") in harvested.mappings.approved_map()


@pytest.fixture
def client(harvested: Catalogue) -> Iterator[TestClient]:
    with TestClient(create_app(harvested.settings, catalogue=harvested)) as test_client:
        yield test_client


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]  # type: ignore[no-any-return]


CHANGE = """mutation($comment: String, $value: String!, $object: String!) {
  %s(provider: "hospital", field: "body_part", value: $value, object: $object,
     comment: $comment) {
    version mapping { provider field value object objectLabel status predicate authors }
  }
}"""


def test_graphql_propose_approve_remap_export(client: TestClient, harvested: Catalogue) -> None:
    unmapped = gql(
        client,
        """{ unmappedValues(provider: "hospital", field: "body_part") {
            value series { value suppressed } subjects { value } proposals { object } } }""",
    )["unmappedValues"]
    counts = expected_counts(series_rows())
    assert [u["value"] for u in unmapped] == ["LUNG FIELDS", "LUNGS", "TORSO"]
    series = counts[("body_part", "LUNG FIELDS")][0]
    assert unmapped[0]["series"] == {"value": series, "suppressed": False}
    proposed = gql(
        client, CHANGE % "proposeMapping", comment="p", value="TORSO", object="BPE:TRUNK"
    )
    change = proposed["proposeMapping"]
    assert change["mapping"]["status"] == "PROPOSED"
    assert change["mapping"]["objectLabel"] == "Trunk"
    listed = gql(client, '{ mappings(status: PROPOSED, provider: "hospital") { value object } }')
    assert {"value": "TORSO", "object": "BPE:TRUNK"} in listed["mappings"]
    query = '{ unmappedValues(provider: "hospital") { value proposals { object } } }'
    proposals = {u["value"]: u["proposals"] for u in gql(client, query)["unmappedValues"]}
    assert proposals["TORSO"] == [{"object": "BPE:TRUNK"}]
    approved_change = gql(
        client, CHANGE % "approveMapping", comment="a", value="TORSO", object="BPE:TRUNK"
    )["approveMapping"]
    assert approved_change["mapping"]["status"] == "APPROVED"
    assert approved_change["version"] == change["version"] + 1
    assert "TORSO" not in values_of(harvested, "BPE:TRUNK")
    remapped = gql(client, "mutation { remap { version values datasets } }")["remap"]
    assert remapped["version"] == approved_change["version"]
    assert "TORSO" in values_of(harvested, "BPE:TRUNK")
    exported = gql(client, "{ mappingSet { version sssom } }")["mappingSet"]
    assert exported["version"] == remapped["version"]
    mapping_set = read_sssom(exported["sssom"])
    assert write_sssom(mapping_set) == exported["sssom"]  # round trip
    assert approved(mapping_set)[(PROVIDER, "body_part", "TORSO")] == ["BPE:TRUNK"]
    assert ("*", "cancer_type", "Lung Cancer") in approved(mapping_set)  # the default set


def test_graphql_counts_are_disclosed_and_errors_clean(
    client: TestClient, harvested: Catalogue
) -> None:
    harvested.settings.disclosure = DisclosureSettings(epsilon=None)  # threshold 10, rounding 5
    unmapped = gql(
        client,
        '{ unmappedValues(field: "body_part") { value series { value suppressed } '
        "subjects { value suppressed } } }",
    )["unmappedValues"]
    assert all(u["subjects"] == {"value": None, "suppressed": True} for u in unmapped)
    response = client.post(
        "/graphql",
        json={
            "query": CHANGE % "approveMapping",
            "variables": {"comment": "a", "value": "TORSO", "object": "NCIT:C0000000"},
        },
    ).json()
    assert "not a concept of the shipped vocabularies" in response["errors"][0]["message"]
    response = client.post(
        "/graphql", json={"query": '{ unmappedValues(field: "colour") { value } }'}
    ).json()
    assert "unknown field 'colour'" in response["errors"][0]["message"]


# -- the shipped default set ----------------------------------------------------------------


def test_the_default_set_is_generated_reproducibly() -> None:
    shipped = read_sssom(DEFAULT_SET_PATH)
    assert write_sssom(build_default_set()) == DEFAULT_SET_PATH.read_text(encoding="utf-8")
    vocabulary = shipped_vocabulary()
    for mapping in shipped.mappings:
        assert status_of(mapping) == "approved"
        local = parse_local(mapping.subject_id or "")
        assert local is not None and local.provider == "*"
        assert mapping.object_id == NO_TERM_FOUND or mapping.object_id in vocabulary


def test_the_default_set_covers_the_idc_data(request: pytest.FixtureRequest) -> None:
    """Every BodyPartExamined value of 100 series or more and every collection cancer type of
    idc-index-data resolves: by the default set (a code or a curated no-code) or as a standard
    term."""
    try:
        from examples.demo.idc import _split, idc_paths

        series_path, collections_path, _ = idc_paths()
    except Exception as exc:  # the optional demo dependency
        require(request.config, False, f"idc-index-data is not installed ({exc})")
        raise
    import duckdb

    default_set = read_sssom(DEFAULT_SET_PATH)
    annotator = Annotator(shipped_vocabulary(), approved=approved(default_set))
    decided = {
        (local.field, local.value)
        for m in default_set.mappings
        if (local := parse_local(m.subject_id or "")) is not None
    }
    con = duckdb.connect()
    body_parts: dict[str, int] = defaultdict(int)
    for value, n in con.execute(
        "SELECT BodyPartExamined, count(*) FROM read_parquet($1) "
        "WHERE BodyPartExamined IS NOT NULL GROUP BY 1",
        [str(series_path)],
    ).fetchall():
        body_parts[coded(value) or ""] += n  # as the harvest stores it
    cancer_types = {
        cancer_type
        for (text,) in con.execute(
            "SELECT cancer_types FROM read_parquet($1)", [str(collections_path)]
        ).fetchall()
        for cancer_type in _split(text)
    }
    wanted = [("body_part", v) for v, n in body_parts.items() if n >= 100]
    wanted += [("cancer_type", v) for v in cancer_types]
    assert len(wanted) > 150
    missing = [
        (name, value)
        for name, value in wanted
        if (name, value) not in decided and not annotator.concepts("*", name, value)
    ]
    assert missing == []
