"""`dcat` sources: DCAT-AP catalogues in files or at a URL (Turtle, RDF/XML, JSON-LD, N-Triples).

A URL is read page by page when the catalogue is Hydra-paged (harvesters/hydra.py)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator

from catalogue.dcat.parser import iter_parsed_datasets
from catalogue.dcat.rdf_io import RDF_SUFFIXES, read_rdf_triples
from catalogue.dcat.terms import gc_frozen
from catalogue.domain.harvest import (
    HarvestContext,
    HarvestedDataset,
    HarvestSink,
    SourceConfig,
    SourceReport,
)
from catalogue.exceptions import UnreadableSourceError
from catalogue.net.http import headers_field, plain_headers
from harvesters.hydra import Listing, harvest_pages

BATCH = 500
"""Datasets handed to the sink at once: the store loads one batch while the next is read."""


class DcatSource(SourceConfig):
    """A DCAT catalogue file, a folder of them, or a URL (exactly one of `path` and `url`)."""

    kind: Literal["dcat"]
    path: Path | None = None
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="A catalogue's URL; Hydra pages (hydra:next / hydra:nextPage) are followed.",
    )
    format: Literal["turtle", "trig", "xml", "json-ld", "nt", "nquads", "n3"] | None = Field(
        default=None,
        description="Force a parser; by default from the extension, or for a URL from the "
        "Content-Type, the URL's suffix and then the body.",
    )
    headers: dict[str, SecretStr] = headers_field()
    max_pages: int = Field(default=10_000, ge=1, description="Most pages read from a URL.")

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` and `url`")
        return self


class DcatFileHarvester:
    """Parses each file whole before anything from it is written, so a bad file changes
    nothing (in a folder, the others are still read); a URL is written a page at a time, and a
    page that fails fails the source (what earlier pages wrote stays, nothing is deleted)."""

    config_model: ClassVar[type[SourceConfig]] = DcatSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DcatSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        if source.url is not None:
            listing = Listing(
                source.url, None, plain_headers(source.headers), source.format, source.max_pages
            )
            harvest_pages(ctx.http, listing, ctx, sink, report)
            return report
        assert source.path is not None
        path = ctx.resolve(source.path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in RDF_SUFFIXES)
        elif path.exists():
            files = [path]
        else:
            raise UnreadableSourceError(f"{path}: no such file or folder")
        errors = []
        listed: set[str] = set()
        for file in files:
            try:
                parsed = read_rdf_triples(file, source.format)
            except UnreadableSourceError as exc:
                if len(files) == 1:
                    raise
                report.skip("unreadable file")
                errors.append(str(exc))
                continue
            with gc_frozen():  # its terms, kept while the file is read
                batch: list[HarvestedDataset] = []
                for item in iter_parsed_datasets(parsed, ctx.provider.id):
                    batch.append(item)
                    listed.add(item.dataset.identifier)
                    if len(batch) == BATCH:
                        sink.put_datasets(batch)
                        batch = []
                if batch:
                    sink.put_datasets(batch)
            del parsed, batch
        report.datasets = len(listed)
        if errors:
            report.ok = False
            report.error = "; ".join(errors)
        return report
