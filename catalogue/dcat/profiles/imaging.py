"""The catalogue's imaging extension (namespace CIM) on HealthDCAT-AP: what a cancer-imaging
dataset holds. Each value is a vocabulary IRI (SNOMED CT, DICOM, NCIt...) or a text label."""

# Pydantic copies a field's mutable default for every instance.
# ruff: noqa: RUF012

from __future__ import annotations

from typing import Annotated

from catalogue.dcat.namespaces import CIM
from catalogue.dcat.profiles.healthdcatap import HealthDataset
from catalogue.dcat.profiles.resource import Prop, Resource, Text


class ImagingDataset(HealthDataset):
    """A HealthDCAT-AP dataset with its imaging content."""

    modality: Annotated[list[str | Text], Prop(CIM.modality)] = []
    body_site: Annotated[list[str | Text], Prop(CIM.bodySite)] = []
    """Tumour sites the provider declares."""
    body_part_examined: Annotated[list[str | Text], Prop(CIM.bodyPartExamined)] = []
    """Body parts examined, as the catalogue derives them from the series."""
    manufacturer: Annotated[list[str | Text], Prop(CIM.manufacturer)] = []
    cancer_type: Annotated[list[str | Text], Prop(CIM.cancerType)] = []


MODELS: tuple[type[Resource], ...] = (ImagingDataset,)
