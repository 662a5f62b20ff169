"""DCAT-AP 3.0.1: the dataset and the classes its description uses, as far as real catalogues
(the SEMIC examples, CKAN, piveau, FAIR Data Points, Health-RI) use them.

Field names are the properties' local names in snake_case; the range decides the type: `str`
for an IRI, `Text` for a (multilingual) string, `Lit` for any literal (dates, identifiers), a
model for a described node (nested when blank). `str | Model` fields hold an IRI as `str` and
a blank node as the model.
"""

# Pydantic copies a field's mutable default for every instance.
# ruff: noqa: RUF012

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from rdflib.namespace import ODRL2, PROV, RDFS

from catalogue.dcat.namespaces import (
    ADMS,
    DCAT,
    DCAT3,
    DCATAP,
    DCTERMS,
    FOAF,
    LOCN,
    SKOS,
    SPDX,
    VCARD,
    XSD,
)
from catalogue.dcat.profiles.resource import Lit, Prop, Resource, Text


class Concept(Resource):
    """skos:Concept, when given as a blank node rather than a vocabulary IRI."""

    pref_label: Annotated[list[Text], Prop(SKOS.prefLabel)] = []
    notation: Annotated[list[Lit], Prop(SKOS.notation)] = []
    in_scheme: Annotated[list[str], Prop(SKOS.inScheme)] = []
    definition: Annotated[list[Text], Prop(SKOS.definition)] = []
    identifier: Annotated[list[Lit], Prop(DCTERMS.identifier)] = []


class Kind(Resource):
    """vcard:Kind, a contact point."""

    fn: Annotated[list[Text], Prop(VCARD.fn)] = []
    has_email: Annotated[list[str], Prop(VCARD.hasEmail)] = []
    has_url: Annotated[list[str], Prop(VCARD.hasURL)] = []
    has_telephone: Annotated[list[str], Prop(VCARD.hasTelephone)] = []
    has_uid: Annotated[list[str], Prop(VCARD.hasUID)] = []
    organization_name: Annotated[list[Text], Prop(VCARD["organization-name"])] = []


class Agent(Resource):
    """foaf:Agent: a publisher, creator or other responsible party."""

    name: Annotated[list[Text], Prop(FOAF.name)] = []
    type: Annotated[list[str | Concept], Prop(DCTERMS.type)] = []
    identifier: Annotated[list[Lit], Prop(DCTERMS.identifier)] = []
    homepage: Annotated[list[str], Prop(FOAF.homepage)] = []
    mbox: Annotated[list[str], Prop(FOAF.mbox)] = []
    contact_point: Annotated[list[Kind], Prop(DCAT.contactPoint)] = []


class Checksum(Resource):
    """spdx:Checksum of a distribution."""

    algorithm: Annotated[str | None, Prop(SPDX.algorithm)] = None
    checksum_value: Annotated[Lit | None, Prop(SPDX.checksumValue)] = None


class PeriodOfTime(Resource):
    """dct:PeriodOfTime: a temporal coverage or a retention period."""

    start_date: Annotated[Lit | None, Prop(DCAT.startDate)] = None
    end_date: Annotated[Lit | None, Prop(DCAT.endDate)] = None


class Location(Resource):
    """dct:Location, when not a gazetteer IRI."""

    geometry: Annotated[list[Lit], Prop(LOCN.geometry)] = []
    bbox: Annotated[list[Lit], Prop(DCAT.bbox)] = []
    centroid: Annotated[list[Lit], Prop(DCAT.centroid)] = []


class Identifier(Resource):
    """adms:Identifier: a secondary identifier such as a DOI."""

    notation: Annotated[list[Lit], Prop(SKOS.notation)] = []
    scheme_agency: Annotated[list[Text], Prop(ADMS.schemeAgency)] = []


class Relationship(Resource):
    """dcat:Relationship: a qualified relation to another resource."""

    relation: Annotated[list[str], Prop(DCTERMS.relation)] = []
    had_role: Annotated[list[str], Prop(DCAT.hadRole)] = []


class Attribution(Resource):
    """prov:Attribution: an agent with a role."""

    agent: Annotated[list[str | Agent], Prop(PROV.agent)] = []
    had_role: Annotated[list[str], Prop(DCAT.hadRole)] = []


class Statement(Resource):
    """A resource known by its label: rights, licence, provenance statements, documents."""

    label: Annotated[list[Text], Prop(RDFS.label)] = []


class RightsStatement(Statement):
    """dct:RightsStatement."""


class ProvenanceStatement(Statement):
    """dct:ProvenanceStatement."""


class LicenseDocument(Statement):
    """dct:LicenseDocument."""

    type: Annotated[list[str | Concept], Prop(DCTERMS.type)] = []


class Document(Statement):
    """foaf:Document: a page about the dataset."""

    title: Annotated[list[Text], Prop(DCTERMS.title)] = []


class DataService(Resource):
    """dcat:DataService: an API giving access to distributions or datasets."""

    title: Annotated[list[Text], Prop(DCTERMS.title)] = []
    description: Annotated[list[Text], Prop(DCTERMS.description)] = []
    endpoint_url: Annotated[list[str], Prop(DCAT.endpointURL)] = []
    endpoint_description: Annotated[list[str], Prop(DCAT.endpointDescription)] = []
    serves_dataset: Annotated[list[str], Prop(DCAT.servesDataset)] = []
    access_rights: Annotated[str | RightsStatement | None, Prop(DCTERMS.accessRights)] = None
    license: Annotated[str | LicenseDocument | None, Prop(DCTERMS.license)] = None
    conforms_to: Annotated[list[str], Prop(DCTERMS.conformsTo)] = []
    keyword: Annotated[list[Text], Prop(DCAT.keyword)] = []
    theme: Annotated[list[str], Prop(DCAT.theme)] = []
    contact_point: Annotated[list[Kind], Prop(DCAT.contactPoint)] = []
    publisher: Annotated[list[Agent], Prop(DCTERMS.publisher)] = []
    landing_page: Annotated[list[str], Prop(DCAT.landingPage)] = []
    format: Annotated[list[str], Prop(DCTERMS.format)] = []
    applicable_legislation: Annotated[list[str], Prop(DCATAP.applicableLegislation)] = []


class Distribution(Resource):
    """dcat:Distribution: one accessible form of a dataset."""

    title: Annotated[list[Text], Prop(DCTERMS.title)] = []
    description: Annotated[list[Text], Prop(DCTERMS.description)] = []
    access_url: Annotated[list[str], Prop(DCAT.accessURL)] = []
    download_url: Annotated[list[str], Prop(DCAT.downloadURL)] = []
    access_service: Annotated[list[str | DataService], Prop(DCAT.accessService)] = []
    media_type: Annotated[str | None, Prop(DCAT.mediaType)] = None
    format: Annotated[str | None, Prop(DCTERMS.format)] = None
    compress_format: Annotated[str | None, Prop(DCAT.compressFormat)] = None
    package_format: Annotated[str | None, Prop(DCAT.packageFormat)] = None
    license: Annotated[str | LicenseDocument | None, Prop(DCTERMS.license)] = None
    access_rights: Annotated[str | RightsStatement | None, Prop(DCTERMS.accessRights)] = None
    rights: Annotated[list[str | RightsStatement], Prop(DCTERMS.rights)] = []
    byte_size: Annotated[int | None, Prop(DCAT.byteSize, XSD.nonNegativeInteger)] = None
    checksum: Annotated[Checksum | None, Prop(SPDX.checksum)] = None
    issued: Annotated[Lit | None, Prop(DCTERMS.issued)] = None
    modified: Annotated[Lit | None, Prop(DCTERMS.modified)] = None
    language: Annotated[list[str], Prop(DCTERMS.language)] = []
    conforms_to: Annotated[list[str], Prop(DCTERMS.conformsTo)] = []
    status: Annotated[str | None, Prop(ADMS.status)] = None
    availability: Annotated[str | None, Prop(DCATAP.availability)] = None
    applicable_legislation: Annotated[list[str], Prop(DCATAP.applicableLegislation)] = []
    page: Annotated[list[str | Document], Prop(FOAF.page)] = []
    has_policy: Annotated[list[str], Prop(ODRL2.hasPolicy)] = []
    spatial_resolution_in_meters: Annotated[Lit | None, Prop(DCAT.spatialResolutionInMeters)] = None
    temporal_resolution: Annotated[Lit | None, Prop(DCAT.temporalResolution)] = None


class Dataset(Resource):
    """dcat:Dataset as DCAT-AP 3 describes it (plus dct:license, which catalogues often put
    on the dataset rather than on its distributions)."""

    title: Annotated[list[Text], Prop(DCTERMS.title)] = []
    description: Annotated[list[Text], Prop(DCTERMS.description)] = []
    keyword: Annotated[list[Text], Prop(DCAT.keyword)] = []
    theme: Annotated[list[str], Prop(DCAT.theme)] = []
    type: Annotated[list[str | Concept], Prop(DCTERMS.type)] = []
    identifier: Annotated[list[Lit], Prop(DCTERMS.identifier)] = []
    other_identifier: Annotated[list[str | Identifier], Prop(ADMS.identifier)] = []
    alternative: Annotated[list[Text], Prop(DCTERMS.alternative)] = []
    publisher: Annotated[Sequence[Agent], Prop(DCTERMS.publisher)] = []
    """A Sequence so that a later profile may narrow it to its own agent model."""
    creator: Annotated[list[str | Agent], Prop(DCTERMS.creator)] = []
    contact_point: Annotated[list[Kind], Prop(DCAT.contactPoint)] = []
    distribution: Annotated[list[Distribution], Prop(DCAT.distribution)] = []
    sample: Annotated[list[str | Distribution], Prop(ADMS.sample)] = []
    access_rights: Annotated[str | RightsStatement | None, Prop(DCTERMS.accessRights)] = None
    license: Annotated[str | LicenseDocument | None, Prop(DCTERMS.license)] = None
    landing_page: Annotated[list[str], Prop(DCAT.landingPage)] = []
    page: Annotated[list[str | Document], Prop(FOAF.page)] = []
    language: Annotated[list[str], Prop(DCTERMS.language)] = []
    spatial: Annotated[list[str | Location], Prop(DCTERMS.spatial)] = []
    temporal: Annotated[list[str | PeriodOfTime], Prop(DCTERMS.temporal)] = []
    issued: Annotated[Lit | None, Prop(DCTERMS.issued)] = None
    modified: Annotated[Lit | None, Prop(DCTERMS.modified)] = None
    accrual_periodicity: Annotated[str | None, Prop(DCTERMS.accrualPeriodicity)] = None
    conforms_to: Annotated[list[str], Prop(DCTERMS.conformsTo)] = []
    version: Annotated[Lit | None, Prop(DCAT3.version)] = None
    version_notes: Annotated[list[Text], Prop(ADMS.versionNotes)] = []
    has_version: Annotated[list[str], Prop(DCAT3.hasVersion)] = []
    is_version_of: Annotated[list[str], Prop(DCAT3.isVersionOf)] = []
    in_series: Annotated[list[str], Prop(DCAT3.inSeries)] = []
    source: Annotated[list[str], Prop(DCTERMS.source)] = []
    relation: Annotated[list[str], Prop(DCTERMS.relation)] = []
    is_referenced_by: Annotated[list[str], Prop(DCTERMS.isReferencedBy)] = []
    qualified_relation: Annotated[list[Relationship], Prop(DCAT.qualifiedRelation)] = []
    qualified_attribution: Annotated[list[str | Attribution], Prop(PROV.qualifiedAttribution)] = []
    provenance: Annotated[list[str | ProvenanceStatement], Prop(DCTERMS.provenance)] = []
    applicable_legislation: Annotated[list[str], Prop(DCATAP.applicableLegislation)] = []
    hvd_category: Annotated[list[str], Prop(DCATAP.hvdCategory)] = []
    spatial_resolution_in_meters: Annotated[Lit | None, Prop(DCAT.spatialResolutionInMeters)] = None
    temporal_resolution: Annotated[Lit | None, Prop(DCAT.temporalResolution)] = None


MODELS: tuple[type[Resource], ...] = (
    Concept,
    Kind,
    Agent,
    Checksum,
    PeriodOfTime,
    Location,
    Identifier,
    Relationship,
    Attribution,
    Statement,
    RightsStatement,
    ProvenanceStatement,
    LicenseDocument,
    Document,
    DataService,
    Distribution,
    Dataset,
)
