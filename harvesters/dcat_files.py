"""`dcat` sources: DCAT-AP catalogues in files (Turtle, RDF/XML, JSON-LD, N-Triples)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from catalogue.dcat.parser import iter_datasets
from catalogue.dcat.rdf_io import guess_format, read_rdf
from catalogue.domain.harvest import (
    HarvestContext,
    HarvestedDataset,
    HarvestSink,
    SourceConfig,
    SourceReport,
)
from catalogue.exceptions import UnreadableSourceError

_RDF_SUFFIXES = {".ttl", ".turtle", ".rdf", ".xml", ".owl", ".nt", ".jsonld", ".json", ".n3"}


class DcatSource(SourceConfig):
    """A DCAT catalogue file, or a folder of them."""

    kind: Literal["dcat"]
    path: Path
    format: Literal["turtle", "xml", "json-ld", "nt", "n3"] | None = None


class DcatFileHarvester:
    """Parses each file whole before anything is written, so a bad file changes nothing."""

    config_model: ClassVar[type[SourceConfig]] = DcatSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DcatSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        path = ctx.resolve(source.path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _RDF_SUFFIXES)
        elif path.exists():
            files = [path]
        else:
            raise UnreadableSourceError(f"{path}: no such file or folder")
        errors = []
        items: dict[str, HarvestedDataset] = {}
        for file in files:
            try:
                graph = read_rdf(file, source.format or guess_format(file))
            except UnreadableSourceError as exc:
                if len(files) == 1:
                    raise
                report.skip("unreadable file")
                errors.append(str(exc))
                continue
            for dataset, subgraph in iter_datasets(graph, ctx.provider.id):
                items[dataset.identifier] = HarvestedDataset(dataset, subgraph)
        sink.put_datasets(list(items.values()))
        report.datasets = len(items)
        if errors:
            report.ok = False
            report.error = "; ".join(errors)
        return report
