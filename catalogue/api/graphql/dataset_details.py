"""GraphQL types of a dataset's details: distributions, publisher, contact points, and its
validation status (loaded for a whole page of datasets in one query)."""

from __future__ import annotations

import asyncio

import strawberry
from strawberry.dataloader import DataLoader

from catalogue.domain import models
from catalogue.services.harvest_log import HarvestLog
from catalogue.services.harvest_log import ValidationStatus as ValidationStatusRecord


@strawberry.type(description="A distribution of a dataset (dcat:Distribution), as published.")
class Distribution:
    iri: str | None = strawberry.field(description="Null when the distribution has no IRI.")
    title: str | None
    description: str | None
    access_urls: list[str] = strawberry.field(name="accessURLs")
    download_urls: list[str] = strawberry.field(name="downloadURLs")
    media_type: str | None = strawberry.field(description="dcat:mediaType (IANA media type).")
    format: str | None = strawberry.field(description="dct:format (a file type IRI).")
    byte_size: float | None = strawberry.field(
        description="dcat:byteSize, in bytes (a Float: sizes can pass 2^31)."
    )
    license: str | None
    access_rights: str | None

    @classmethod
    def of(cls, d: models.Distribution) -> Distribution:
        return cls(
            iri=d.iri,
            title=d.title,
            description=d.description,
            access_urls=list(d.access_urls),
            download_urls=list(d.download_urls),
            media_type=d.media_type,
            format=d.format,
            byte_size=None if d.byte_size is None else float(d.byte_size),
            license=d.license,
            access_rights=d.access_rights,
        )


@strawberry.type(description="An agent, such as a dataset's publisher.")
class Agent:
    name: str | None = strawberry.field(description="foaf:name; null when it has none.")
    iri: str | None = strawberry.field(description="Null for an agent without an IRI.")

    @classmethod
    def publisher_of(cls, d: models.Dataset) -> Agent | None:
        if d.publisher is None:
            return None
        named = d.publisher != d.publisher_iri  # the model names an agent by IRI if nameless
        return cls(name=d.publisher if named else None, iri=d.publisher_iri)


@strawberry.type(
    description="A contact point of a dataset (a vCard), as its provider publishes it."
)
class ContactPoint:
    name: str | None
    email: str | None = strawberry.field(description="Without the mailto: scheme.")
    url: str | None
    iri: str | None

    @classmethod
    def of(cls, c: models.ContactPoint) -> ContactPoint:
        return cls(name=c.name, email=c.email, url=c.url, iri=c.iri)


@strawberry.type(
    description="A dataset's newest SHACL validation (DCAT-AP 3, HealthDCAT-AP, imaging "
    "extension), made when a harvest found it new or changed."
)
class ValidationStatus:
    conforms: bool
    violations: int
    run_id: int = strawberry.field(description="The harvest run that validated it.")
    checked_at: str | None = strawberry.field(description="When that run started (UTC).")

    @classmethod
    def of(cls, s: ValidationStatusRecord) -> ValidationStatus:
        return cls(
            conforms=s.conforms, violations=s.violations, run_id=s.run_id, checked_at=s.checked_at
        )


DatasetKey = tuple[str, str]
_LOADER = "_validation_status_loader"


def validation_loader(info: strawberry.Info) -> DataLoader[DatasetKey, ValidationStatus | None]:
    """The request's loader of validation statuses: the datasets of a page in one query."""
    context = info.context
    loader: DataLoader[DatasetKey, ValidationStatus | None] | None = getattr(context, _LOADER, None)
    if loader is None:
        log: HarvestLog = context.view.catalogue.log

        async def load(keys: list[DatasetKey]) -> list[ValidationStatus | None]:
            found = await asyncio.to_thread(log.latest_validations, keys)
            return [ValidationStatus.of(found[k]) if k in found else None for k in keys]

        loader = DataLoader(load_fn=load)
        setattr(context, _LOADER, loader)
    return loader
