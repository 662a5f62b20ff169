"""Catalogue metadata: providers and datasets as typed values, independent of RDF."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Provider(BaseModel):
    """A data provider: a hospital, repository or research infrastructure."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    homepage: str | None = None


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
    number_of_unique_individuals: int | None = Field(
        default=None, description="As declared by the provider (HealthDCAT-AP)."
    )

    @property
    def key(self) -> tuple[str, str]:
        """Datasets are identified within their provider."""
        return (self.provider_id, self.identifier)
