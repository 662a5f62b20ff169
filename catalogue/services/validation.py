"""SHACL validation of one harvested dataset description, as the harvest log records it."""

from __future__ import annotations

from rdflib import Graph

from catalogue.dcat.validation import validate
from catalogue.services.harvest_log import ValidationRecord


def validate_description(graph: Graph) -> ValidationRecord:
    """Validate against DCAT-AP 3 and the HealthDCAT-AP shapes of the dataset's access level."""
    report = validate(graph)
    return ValidationRecord(report.conforms, len(report.violations), report.text())
