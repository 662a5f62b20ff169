"""Feasibility criteria given as concepts: a body part CURIE expands to its descendants and to
every raw value mapped to them (approved mappings applied, rejected ones not); a cancer type
CURIE scopes the datasets whose cancer types map below it."""

from __future__ import annotations

from pathlib import Path

from catalogue.config import load_providers
from catalogue.dcat.serialiser import catalogue_graph
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.models import Dataset, Provider
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.curation import decide, remap
from catalogue.services.feasibility import FeasibilityService
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue
from tests.integration.test_curation import PROVIDER, harvested, series_rows
from tests.integration.test_harvest import providers_file, series_table

__all__ = ["harvested"]  # the fixture


def patients_with(*body_parts: str) -> int:
    """Subjects with a series of one of `body_parts`, straight from the generated rows."""
    return len({r["PatientID"] for r in series_rows() if r["BodyPartExamined"] in body_parts})


def subjects(catalogue: Catalogue, *body_parts: str) -> int:
    query = CohortQuery.model_validate({"series": [{"body_part": list(body_parts)}]})
    return catalogue.cohort.count(query).total.subjects


def test_a_body_part_concept_finds_its_descendants_and_mapped_values(
    harvested: Catalogue,
) -> None:
    # CHEST and LUNG are DICOM defined terms; LUNG lies within CHEST in the shipped hierarchy
    assert subjects(harvested, "BPE:CHEST") == patients_with("CHEST", "LUNG")
    assert subjects(harvested, "BPE:LUNG") == patients_with("LUNG")
    # SCT's lung is the same concept as BPE:LUNG (skos:exactMatch)
    assert subjects(harvested, "SCT:39607008") == patients_with("LUNG")
    # a raw value is matched as it is
    assert subjects(harvested, "LUNGS") == patients_with("LUNGS")
    # an approved mapping brings LUNGS under lung, and so under chest, once applied
    decide(harvested, "approved", (PROVIDER, "body_part", "LUNGS"), "BPE:LUNG", author="ann")
    assert subjects(harvested, "BPE:LUNG") == patients_with("LUNG")  # not applied yet
    remap(harvested)
    assert subjects(harvested, "BPE:LUNG") == patients_with("LUNG", "LUNGS")
    assert subjects(harvested, "BPE:CHEST") == patients_with("CHEST", "LUNG", "LUNGS")
    # a rejected mapping is not applied, nor the standard term it rejects
    decide(harvested, "rejected", (PROVIDER, "body_part", "LUNG"), "BPE:LUNG", author="ann")
    remap(harvested)
    assert subjects(harvested, "BPE:LUNG") == patients_with("LUNGS")
    # raw and concept values mix as alternatives
    assert subjects(harvested, "BPE:LUNG", "OTHER") == patients_with("LUNGS", "OTHER")


def test_a_cancer_type_concept_scopes_datasets_below_it(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    rows = series_rows()
    for row in rows:  # two datasets: half the patients in each
        row["collection_id"] = "nsclc" if int(str(row["PatientID"])[1:]) % 2 else "breast"
    table = series_table(tmp_path / "series.parquet", rows)
    provider = Provider(id=PROVIDER, name="General Hospital")
    described = [
        Dataset(provider_id=PROVIDER, identifier="nsclc", iri="http://example.org/nsclc",
                title="NSCLC CT", cancer_types=("Non-small Cell Lung Cancer",)),
        Dataset(provider_id=PROVIDER, identifier="breast", iri="http://example.org/breast",
                title="Breast MR", cancer_types=("Breast Cancer",)),
    ]  # fmt: skip
    catalog = tmp_path / "catalog.ttl"
    catalogue_graph(provider, "http://example.org/catalog", described).serialize(
        catalog, format="turtle"
    )
    body = f"""providers:
  - id: {PROVIDER}
    name: General Hospital
    sources:
      - kind: dcat
        path: {catalog}
      - kind: dicom-table
        path: {table}
        dataset_column: collection_id
"""
    assert harvest(catalogue, load_providers(providers_file(tmp_path, body))).ok
    service = FeasibilityService(CatalogueView(catalogue))
    in_dataset = {
        name: len({r["PatientID"] for r in rows if r["collection_id"] == name})
        for name in ("nsclc", "breast")
    }

    def total(cancer_types: list[str]) -> int | None:
        query = CohortQuery.model_validate({"datasets": {"cancer_types": cancer_types}})
        return service.run(query).total.subjects.value

    # NSCLC (NCIT:C2926) lies below Lung Carcinoma (NCIT:C4878) and Neoplasm (NCIT:C3262)
    assert total(["NCIT:C4878"]) == in_dataset["nsclc"]
    assert total(["NCIT:C2926"]) == in_dataset["nsclc"]
    assert total(["NCIT:C3262"]) == in_dataset["nsclc"] + in_dataset["breast"]
    assert total(["NCIT:C9335"]) == in_dataset["breast"]  # Malignant Breast Neoplasm
    # a raw value is compared as a name
    assert total(["non-small cell lung cancer"]) == in_dataset["nsclc"]
