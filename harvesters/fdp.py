"""`fdp` sources: a FAIR Data Point, crawled from its root through its metadata resources.

From each resource's Turtle (content negotiation) the crawl follows `fdp:metadataCatalog`,
`r3d:dataCatalog`, `dcat:catalog` and `ldp:contains` to catalogs, series and containers, and
`dcat:dataset` (or an LDP container whose member relation is `dcat:dataset`, or a link to a
resource typed `dcat:Dataset`) to datasets. Fetches run concurrently, within the run's
per-host limit. A dataset or catalog that cannot be read is a warning and makes the listing
incomplete (nothing is deleted); the others go on. A root that cannot be read fails the source.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import ClassVar, Literal
from urllib.parse import urldefrag

from pydantic import Field, SecretStr
from rdflib import Graph, Namespace, URIRef

from catalogue.dcat.namespaces import DCAT, DCAT3, RDF
from catalogue.dcat.parser import iter_datasets
from catalogue.domain.harvest import (
    HarvestContext,
    HarvestedDataset,
    HarvestSink,
    SourceConfig,
    SourceReport,
)
from catalogue.exceptions import UnreadableSourceError
from catalogue.net.http import HttpClient, headers_field, plain_headers
from harvesters.rdf_http import RDF_ACCEPT, parse_fetched

LDP = Namespace("http://www.w3.org/ns/ldp#")
FDP = Namespace("https://w3id.org/fdp/fdp-o#")
R3D = Namespace("http://www.re3data.org/schema/3-0#")
_CONTAINER_LINKS = (FDP.metadataCatalog, R3D.dataCatalog, DCAT.catalog, LDP.contains)
_CONTAINER_TYPES = frozenset(
    {DCAT.Catalog, DCAT3.DatasetSeries, FDP.MetadataService, FDP.FAIRDataPoint}
)
_SKIPPED_MEMBERS = frozenset({DCAT.distribution, DCAT.service})
"""Members of these LDP containers are not followed (distributions are described inline)."""
_BATCH = 100
"""Datasets handed to the sink at once."""

Role = Literal["root", "container", "dataset"]


class FdpSource(SourceConfig):
    """A FAIR Data Point's root URL."""

    kind: Literal["fdp"]
    url: str = Field(pattern=r"^https?://", description="The FAIR Data Point's root URL.")
    headers: dict[str, SecretStr] = headers_field()
    max_resources: int = Field(
        default=100_000, ge=1, description="Most metadata resources fetched in one run."
    )


class FdpHarvester:
    """Crawls a FAIR Data Point's catalogs and fetches its datasets concurrently."""

    config_model: ClassVar[type[SourceConfig]] = FdpSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, FdpSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        _Crawl(ctx.http, source, ctx, sink, report).run()
        return report


class _Crawl:
    """One crawl: a queue of (URL, role) fetched by a thread pool, results handled here."""

    def __init__(
        self,
        http: HttpClient,
        source: FdpSource,
        ctx: HarvestContext,
        sink: HarvestSink,
        report: SourceReport,
    ) -> None:
        self._http = http
        self._source = source
        self._ctx = ctx
        self._sink = sink
        self._report = report
        self._headers = plain_headers(source.headers)
        self._seen: set[str] = set()
        self._listed: set[str] = set()
        self._batch: list[HarvestedDataset] = []
        self._capped = False

    def run(self) -> None:
        workers = self._http.settings.per_host
        with ThreadPoolExecutor(workers, thread_name_prefix="fdp") as pool:
            pending: dict[Future[Graph], tuple[str, Role]] = {}

            def submit(url: str, role: Role) -> None:
                key = urldefrag(url)[0]
                if key in self._seen:
                    return
                if len(self._seen) >= self._source.max_resources:
                    if not self._capped:
                        self._capped = True
                        self._report.incomplete(
                            f"stopped at max_resources={self._source.max_resources}"
                        )
                    return
                self._seen.add(key)
                pending[pool.submit(self._fetch, key)] = (key, role)

            submit(self._source.url, "root")
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        url, role = pending.pop(future)
                        self._handle(future, url, role, submit)
            finally:
                for future in pending:
                    future.cancel()
        self._flush()

    def _fetch(self, url: str) -> Graph:
        fetched = self._http.get(url, accept=RDF_ACCEPT, headers=self._headers)
        return parse_fetched(fetched, self._report.warn).graph()

    def _handle(
        self,
        future: Future[Graph],
        url: str,
        role: Role,
        submit: Callable[[str, Role], None],
    ) -> None:
        try:
            graph = future.result()
        except UnreadableSourceError as exc:
            if role == "root":
                raise
            self._report.incomplete(f"{role} not read: {exc}")
            return
        items = list(
            iter_datasets(graph, self._ctx.provider.id, lambda g: _dataset_nodes(g, url, role))
        )
        if role == "dataset" and not items:
            self._report.incomplete(f"{url}: listed as a dataset but describes no dcat:Dataset")
        for item in items:
            self._batch.append(item)
            self._listed.add(item.dataset.identifier)
        self._report.datasets = len(self._listed)
        if len(self._batch) >= _BATCH:
            self._flush()
        for link, link_role in _links(graph):
            submit(link, link_role)

    def _flush(self) -> None:
        if self._batch:
            self._sink.put_datasets(self._batch)
            self._batch = []


def _dataset_nodes(graph: Graph, url: str, role: Role) -> list[URIRef]:
    """The datasets a resource's document describes as itself: the node named by its URL, or,
    for a dataset link, every dcat:Dataset in it."""
    own = URIRef(url)
    if (own, RDF.type, DCAT.Dataset) in graph:
        return [own]
    if role != "dataset":
        return []
    return sorted(n for n in graph.subjects(RDF.type, DCAT.Dataset) if isinstance(n, URIRef))


def _links(graph: Graph) -> list[tuple[str, Role]]:
    """Every followed link of a document, with what it leads to."""
    out: list[tuple[str, Role]] = []
    for subject, predicate, target in graph:
        if not isinstance(target, URIRef) or not str(target).startswith(("http://", "https://")):
            continue
        if predicate == DCAT.dataset:
            out.append((str(target), _role(graph, target, "dataset")))
        elif predicate in _CONTAINER_LINKS:
            members = set(graph.objects(subject, LDP.hasMemberRelation))
            if predicate == LDP.contains and members & _SKIPPED_MEMBERS:
                continue
            default: Role = (
                "dataset" if predicate == LDP.contains and DCAT.dataset in members else "container"
            )
            out.append((str(target), _role(graph, target, default)))
    return sorted(out)


def _role(graph: Graph, node: URIRef, default: Role) -> Role:
    """What a linked resource is, by its type where the document states it."""
    types = set(graph.objects(node, RDF.type))
    if types & _CONTAINER_TYPES:
        return "container"
    if DCAT.Dataset in types:
        return "dataset"
    return default
