"""HealthDCAT-AP (release 8, namespace http://healthdataportal.eu/ns/health#) on DCAT-AP 3.

Release 8: counts and typical ages as xsd:nonNegativeInteger, the health category and theme,
coding systems and (free text since release 6) code values, the health data access body and
its coordinator, the retention period, analytics distributions, structured data and its
variables (a CSVW table group), the custodian (GeoDCAT-AP), and CPOV contact points
(cv:contactPoint) and publisher types on the agents. Properties of earlier releases that real
catalogues still send (publisherNote, publisherType and trustedDataHolder on the dataset,
trustedDataHolder on the publisher) are read too, so nothing typed is lost on older inputs.
"""

# Pydantic copies a field's mutable default for every instance.
# ruff: noqa: RUF012

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from catalogue.dcat.namespaces import CV, DCTERMS, DPV, GEODCATAP, HEALTHDCATAP, XSD
from catalogue.dcat.profiles.dcatap import Agent, Concept, Dataset, Distribution, PeriodOfTime
from catalogue.dcat.profiles.resource import Lit, Prop, Resource, Text, TypedLiteral

_COUNT = XSD.nonNegativeInteger


class ContactPoint(Resource):
    """cv:ContactPoint (Core Vocabularies), the agents' contact point since release 6."""

    email: Annotated[list[Lit], Prop(CV.email)] = []
    contact_page: Annotated[list[str], Prop(CV.contactPage)] = []
    telephone: Annotated[list[Lit], Prop(CV.telephone)] = []


class HealthAgent(Agent):
    """A publisher, health data access body or custodian."""

    description: Annotated[list[Text], Prop(DCTERMS.description)] = []
    """The publisher note (release 7 and later)."""
    cv_contact_point: Annotated[list[str | ContactPoint], Prop(CV.contactPoint)] = []
    publisher_type: Annotated[list[str], Prop(HEALTHDCATAP.publisherType)] = []
    """Health Publisher Types vocabulary (release 8 puts it on the publisher)."""
    trusted_data_holder: Annotated[
        bool | None, Prop(HEALTHDCATAP.trustedDataHolder, XSD.boolean)
    ] = None
    """Release 5; removed in release 7."""


class HealthDataset(Dataset):
    """A dataset with the HealthDCAT-AP properties."""

    publisher: Annotated[Sequence[HealthAgent], Prop(DCTERMS.publisher)] = []
    hdab: Annotated[list[str | HealthAgent], Prop(HEALTHDCATAP.hdab)] = []
    hdab_coordinator: Annotated[list[str | HealthAgent], Prop(HEALTHDCATAP.hdabCoordinator)] = []
    custodian: Annotated[list[str | HealthAgent], Prop(GEODCATAP.custodian)] = []
    health_category: Annotated[list[str | Concept], Prop(HEALTHDCATAP.healthCategory)] = []
    health_theme: Annotated[list[str | Concept], Prop(HEALTHDCATAP.healthTheme)] = []
    has_coding_system: Annotated[list[str], Prop(HEALTHDCATAP.hasCodingSystem)] = []
    has_code_values: Annotated[
        list[str | Concept | Text | TypedLiteral], Prop(HEALTHDCATAP.hasCodeValues)
    ] = []
    number_of_records: Annotated[int | None, Prop(HEALTHDCATAP.numberOfRecords, _COUNT)] = None
    number_of_unique_individuals: Annotated[
        int | None, Prop(HEALTHDCATAP.numberOfUniqueIndividuals, _COUNT)
    ] = None
    min_typical_age: Annotated[int | None, Prop(HEALTHDCATAP.minTypicalAge, _COUNT)] = None
    max_typical_age: Annotated[int | None, Prop(HEALTHDCATAP.maxTypicalAge, _COUNT)] = None
    population_coverage: Annotated[list[Text], Prop(HEALTHDCATAP.populationCoverage)] = []
    retention_period: Annotated[PeriodOfTime | None, Prop(HEALTHDCATAP.retentionPeriod)] = None
    analytics: Annotated[list[str | Distribution], Prop(HEALTHDCATAP.analytics)] = []
    has_structured_data: Annotated[
        bool | None, Prop(HEALTHDCATAP.hasStructuredData, XSD.boolean)
    ] = None
    has_variables: Annotated[list[str | Resource], Prop(HEALTHDCATAP.hasVariables)] = []
    has_legal_basis: Annotated[list[str | Resource], Prop(DPV.hasLegalBasis)] = []
    has_purpose: Annotated[list[str | Resource], Prop(DPV.hasPurpose)] = []
    has_personal_data: Annotated[list[str | Resource], Prop(DPV.hasPersonalData)] = []
    publisher_note: Annotated[list[Text], Prop(HEALTHDCATAP.publisherNote)] = []
    """Release 5 and earlier; release 7 uses the publisher's dct:description."""
    publisher_type: Annotated[list[str], Prop(HEALTHDCATAP.publisherType)] = []
    """Release 5 and earlier; release 7 uses the publisher's dct:type."""
    trusted_data_holder: Annotated[
        bool | None, Prop(HEALTHDCATAP.trustedDataHolder, XSD.boolean)
    ] = None
    """Release 5 and earlier, on the dataset."""


MODELS: tuple[type[Resource], ...] = (ContactPoint, HealthAgent, HealthDataset)
