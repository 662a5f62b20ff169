"""Catalogue metadata: providers and datasets as typed values, independent of RDF."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Provider(BaseModel):
    """A data provider: a hospital, repository or research infrastructure."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    homepage: str | None = None


class DatasetSummary(BaseModel):
    """What the catalogue computed from a dataset's features, after disclosure control: counts
    are published or absent (suppressed), ages are widened to 5-year bounds, and only values
    held by at least `threshold` subjects are listed."""

    model_config = ConfigDict(frozen=True)

    number_of_unique_individuals: int | None = None
    number_of_records: int | None = None
    min_typical_age: int | None = None
    max_typical_age: int | None = None
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    manufacturers: tuple[str, ...] = ()


class Distribution(BaseModel):
    """A dcat:Distribution of a dataset, as its provider describes it."""

    model_config = ConfigDict(frozen=True)

    iri: str | None = Field(default=None, description="None for a blank node.")
    title: str | None = None
    description: str | None = None
    access_urls: tuple[str, ...] = ()
    download_urls: tuple[str, ...] = ()
    media_type: str | None = None
    format: str | None = None
    byte_size: int | None = None
    license: str | None = None
    access_rights: str | None = None


class ContactPoint(BaseModel):
    """A dataset's dcat:contactPoint (a vCard): public metadata its provider publishes."""

    model_config = ConfigDict(frozen=True)

    iri: str | None = Field(default=None, description="None for a blank node.")
    name: str | None = None
    email: str | None = Field(default=None, description="Without its mailto: scheme.")
    url: str | None = None


class Dataset(BaseModel):
    """A dataset as the catalogue shows it: DCAT-AP core plus the imaging extension."""

    model_config = ConfigDict(frozen=True)

    provider_id: str
    identifier: str
    iri: str
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    cancer_types: tuple[str, ...] = ()
    body_sites: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    license: str | None = None
    access_rights: str | None = None
    doi: str | None = None
    landing_page: str | None = None
    publisher: str | None = None
    publisher_iri: str | None = Field(
        default=None, description="The IRI of the publisher `publisher` names, if it has one."
    )
    distributions: tuple[Distribution, ...] = ()
    contact_points: tuple[ContactPoint, ...] = ()
    number_of_unique_individuals: int | None = Field(
        default=None, description="As declared by the provider (HealthDCAT-AP)."
    )
    summary: DatasetSummary | None = Field(
        default=None, description="Computed by the catalogue from harvested features."
    )
    concepts: tuple[str, ...] = Field(
        default=(),
        description="CURIEs of the concepts its cancer types, body sites or parts, modalities "
        "and access rights stand for, with their exact matches and ancestors (a closure), "
        "sorted; set by the catalogue before indexing, never written to DCAT.",
    )

    @property
    def key(self) -> tuple[str, str]:
        """Datasets are identified within their provider."""
        return (self.provider_id, self.identifier)
