"""What else than a description makes a dataset change in the feed: its computed summary (new
series features) and a remap of the curators' mappings; and a change is served only once the
catalogue serves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalogue.config import load_providers
from catalogue.dcat.serialiser import catalogue_graph
from catalogue.domain.models import Dataset, Provider
from catalogue.services.changes import changes_page
from catalogue.services.curation import decide, remap
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue
from tests.integration.test_harvest import providers_file, series_table

PROVIDER = "hospital"


def rows(patients: int, body_part: str) -> list[dict[str, Any]]:
    return [
        {
            "collection_id": "thorax",
            "PatientID": f"P{p}",
            "StudyInstanceUID": f"1.2.{p}",
            "SeriesInstanceUID": f"1.2.{p}.1",
            "PatientSex": "F" if p % 2 else "M",
            "PatientAge": f"{40 + p:03d}Y",
            "StudyDate": "20210305",
            "Modality": "CT",
            "BodyPartExamined": body_part,
            "Manufacturer": "SIEMENS",
            "instanceCount": 10,
        }
        for p in range(patients)
    ]


def setup(tmp_path: Path, catalogue: Catalogue, patients: int) -> Path:
    provider = Provider(id=PROVIDER, name="General Hospital")
    dataset = Dataset(
        provider_id=PROVIDER,
        identifier="thorax",
        iri="https://hospital.example/datasets/thorax",
        title="Thorax CT",
        description="Chest CT of a cohort.",
        access_rights="http://publications.europa.eu/resource/authority/access-right/PUBLIC",
    )
    graph = catalogue_graph(provider, "https://hospital.example/catalog", [dataset])
    graph.serialize(tmp_path / "catalog.ttl", format="turtle")
    series_table(tmp_path / "series.parquet", rows(patients, "LUNG FIELDS"))
    body = f"""providers:
  - id: {PROVIDER}
    name: General Hospital
    sources:
      - kind: dcat
        path: {tmp_path / "catalog.ttl"}
      - kind: dicom-table
        path: {tmp_path / "series.parquet"}
        dataset_column: collection_id
"""
    return providers_file(tmp_path, body)


def test_summaries_and_remaps_are_changes(tmp_path: Path, catalogue: Catalogue) -> None:
    providers = setup(tmp_path, catalogue, patients=6)
    assert harvest(catalogue, load_providers(providers)).ok
    first = changes_page(catalogue)
    assert [(c.identifier, c.kind) for c in first.changes] == [("thorax", "created")]
    created = first.changes[0].dataset
    assert created is not None and created.summary is not None
    assert created.summary.number_of_unique_individuals == 6
    # harvesting the same inputs again changes nothing, summaries included
    assert harvest(catalogue, load_providers(providers)).ok
    assert changes_page(catalogue, after=first.high_water).changes == []

    # more patients: only the summary changes, and the feed brings the new one
    series_table(tmp_path / "series.parquet", rows(9, "LUNG FIELDS"))
    assert harvest(catalogue, load_providers(providers)).ok
    second = changes_page(catalogue, after=first.high_water)
    assert [(c.identifier, c.kind) for c in second.changes] == [("thorax", "updated")]
    updated = second.changes[0].dataset
    assert updated is not None and updated.summary is not None
    assert updated.summary.number_of_unique_individuals == 9
    assert updated == catalogue.datasets.get(PROVIDER, "thorax")

    # a curator maps the raw body part; a remap re-annotates the dataset: a change
    assert "BPE:LUNG" not in updated.concepts
    decide(catalogue, "approved", (PROVIDER, "body_part", "LUNG FIELDS"), "BPE:LUNG", author="c")
    remap(catalogue)
    third = changes_page(catalogue, after=second.high_water)
    assert [(c.identifier, c.kind) for c in third.changes] == [("thorax", "updated")]
    remapped = third.changes[0].dataset
    assert remapped is not None and "BPE:LUNG" in remapped.concepts
    # a remap that changes nothing records nothing
    remap(catalogue)
    assert changes_page(catalogue, after=third.high_water).changes == []


def test_a_change_waits_until_the_catalogue_serves_it(tmp_path: Path, catalogue: Catalogue) -> None:
    providers = setup(tmp_path, catalogue, patients=3)
    assert harvest(catalogue, load_providers(providers)).ok
    start = changes_page(catalogue)
    # a harvest stopped between writing a dataset and indexing it (as a crash would leave it)
    catalogue.log.put_states(PROVIDER, "catalogue", 99, {"thorax": "another digest"})
    catalogue.log.put_states(PROVIDER, "catalogue", 99, {"later": "a digest"})
    catalogue.log.set_indexed(PROVIDER, ["later"], True)
    waiting = changes_page(catalogue, after=start.high_water)
    assert waiting.changes == [] and not waiting.has_next
    assert waiting.high_water == start.high_water  # nothing passed: the cursor stays
    catalogue.log.set_indexed(PROVIDER, ["thorax"], True)
    served = changes_page(catalogue, after=waiting.high_water)
    assert [(c.identifier, c.kind) for c in served.changes] == [
        ("thorax", "updated"),
        ("later", "created"),
    ]
