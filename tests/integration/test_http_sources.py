"""Harvesting over HTTP from a real local server: the shared client, Hydra-paged `dcat` URLs,
`ckan`, `fdp` and `sparql` sources, and the faults real servers have.

Catalogues are built from the real examples in tests/data/dcat (and, where present, from
../shared/corpus: the FAIR Data Point files are AGPL and only read from there). Ground truth is
SPARQL over the raw files, never the harvester's output.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyoxigraph
import pytest
import yaml
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF
from rdflib.term import Node

from catalogue import __version__
from catalogue.config import ProvidersFile, Settings, load_providers
from catalogue.dcat.parser import reachable
from catalogue.domain.harvest import SourceReport
from catalogue.domain.identifiers import dataset_graph, provider_dataset_prefix
from catalogue.exceptions import ConfigError, UnreadableSourceError
from catalogue.net.http import HttpClient, HttpSettings
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue
from tests.conftest import EXACT
from tests.corpus import CORPUS
from tests.http_server import LocalServer, Reply, Request, local_server

DATA = Path(__file__).parent.parent / "data" / "dcat"
FILES = [
    DATA / "xnat_integration_test.ttl",
    DATA / "valid_project.ttl",
    DATA / "example_consus_ckan.ttl",
]
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")  # open: rdflib's closed one warns under pytest
MEDIA = {
    "turtle": "text/turtle",
    "xml": "application/rdf+xml",
    "json-ld": "application/ld+json",
    "nt": "application/n-triples",
}
FAST = HttpSettings(
    timeout=0.5, retries=2, backoff=0.01, max_backoff=0.2, per_host=2, max_bytes=2_000_000
)
DATASETS_QUERY = """
PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
SELECT ?id ?title WHERE {
  ?d a dcat:Dataset .
  OPTIONAL { ?d dct:identifier ?i FILTER(isLiteral(?i)) }
  OPTIONAL { ?d dct:title ?title }
  BIND(COALESCE(STR(?i), STR(?d)) AS ?id)
}"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shared fixture's settings with quick timeouts and retries."""
    return Settings(
        data_dir=tmp_path / "data", secret="test-secret-0123456789", disclosure=EXACT, http=FAST
    )


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


# ---- ground truth and fixtures built from the raw files ------------------------------------


def raw(*files: Path) -> Graph:
    graph = Graph()
    for file in files:
        graph.parse(file)
    return graph


def expected(graph: Graph) -> dict[str, frozenset[str]]:
    """Dataset identifier (a literal dct:identifier, else the IRI) -> its titles, by SPARQL."""
    out: dict[str, set[str]] = {}
    for row in graph.query(DATASETS_QUERY):
        identifier, title = row[0], row[1]  # type: ignore[index]
        out.setdefault(str(identifier), set()).update([str(title)] if title is not None else [])
    return {k: frozenset(v) for k, v in out.items()}


def identifier(graph: Graph, node: URIRef) -> str:
    """A dataset's identifier as the catalogue names it, by SPARQL over the raw graph."""
    rows = graph.query(
        DATASETS_QUERY.replace("?d a dcat:Dataset", f"BIND(<{node}> AS ?d) ?d a dcat:Dataset")
    )
    return str(next(iter(rows))[0])  # type: ignore[index]


def stored(catalogue: Catalogue, provider: str) -> dict[str, frozenset[str]]:
    """What the store holds for a provider, read back by the same SPARQL."""
    out: dict[str, frozenset[str]] = {}
    for name in catalogue.store.graph_names(provider_dataset_prefix(provider)):
        found = expected(catalogue.store.graph(name))
        assert len(found) == 1, name
        out.update(found)
    return out


def plain_triples(graph: Graph, node: URIRef) -> set[tuple[Any, Any, Any]]:
    """The triples without blank nodes of a dataset and of its distributions."""
    subjects = [node, *graph.objects(node, DCAT.distribution)]
    return {
        (s, p, o)
        for s in subjects
        if not isinstance(s, BNode)
        for p, o in graph.predicate_objects(s)
        if not isinstance(o, BNode)
    }


def descriptions(graph: Graph) -> list[tuple[URIRef, Graph]]:
    """Each dataset with everything reachable from it but other datasets and catalogues (what
    the served pages carry; the expected values come from SPARQL over the raw files)."""
    datasets = sorted(n for n in graph.subjects(RDF.type, DCAT.Dataset) if isinstance(n, URIRef))
    stop = set(datasets) | set(graph.subjects(RDF.type, DCAT.Catalog))

    def follow(_: Node, obj: Node) -> bool:
        return obj not in stop and (isinstance(obj, BNode) or (obj, None, None) in graph)

    return [(node, reachable(graph, [node], follow)) for node in datasets]


def catalogue_pages(
    graph: Graph,
    per_page: int,
    url: str,
    formats: Sequence[str] = ("turtle",),
    style: str = "ckan",
    since: datetime | None = None,
) -> list[tuple[str, bytes, str]]:
    """The datasets of a graph as a Hydra-paged catalogue at `url` (page N at `url?page=N`):
    (route, body, content type) per page. Styles: `ckan` (ckanext-dcat: PagedCollection with
    hydra:next and hydra:nextPage strings), `edp` (data.europa.eu: PartialCollectionView with
    an IRI) and `relative` (a relative reference)."""
    parts = descriptions(graph)
    chunks = [parts[i : i + per_page] for i in range(0, len(parts), per_page)] or [[]]
    path = urlsplit(url).path
    extra = f"modified_since={since:%Y-%m-%dT%H:%M:%S}&" if since else ""
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        page = Graph()
        catalog = URIRef(f"{url}#catalogue")
        page.add((catalog, RDF.type, DCAT.Catalog))
        for node, part in chunk:
            page += part
            page.add((catalog, DCAT.dataset, node))
        me = URIRef(f"{url}?{extra}page={number}")
        following = f"{url}?{extra}page={number + 1}"
        if number < len(chunks):
            if style == "ckan":
                page.add((me, RDF.type, HYDRA.PagedCollection))
                page.add((me, HYDRA.nextPage, Literal(following)))
                page.add((me, HYDRA.next, Literal(following)))
            elif style == "edp":
                page.add((me, RDF.type, HYDRA.PartialCollectionView))
                page.add((me, HYDRA.next, URIRef(following)))
            else:
                page.add((me, RDF.type, HYDRA.PartialCollectionView))
                relative = f"{path.rsplit('/', 1)[-1]}?{extra}page={number + 1}"
                page.add((me, HYDRA.next, Literal(relative)))
        fmt = formats[(number - 1) % len(formats)]
        route = path if number == 1 else f"{path}?{extra}page={number}"
        pages.append((route, page.serialize(format=fmt, encoding="utf-8"), MEDIA[fmt]))
    return pages


def serve(server: LocalServer, pages: list[tuple[str, bytes, str]]) -> None:
    for route, body, media in pages:
        server.route(route, Reply(body, content_type=media))


def providers(tmp_path: Path, sources: dict[str, dict[str, Any]]) -> ProvidersFile:
    """A providers file with one source per provider, written and read as an operator would."""
    data = {
        "providers": [
            {"id": p, "name": p.upper(), "sources": [{"id": "main", **s}]}
            for p, s in sources.items()
        ]
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_providers(path)


def by_provider(report: HarvestReport) -> dict[str, SourceReport]:
    return {s.provider_id: s for s in report.sources}


# ---- the client on its own ----------------------------------------------------------------


def test_client_retries_transient_errors_and_names_itself(server: LocalServer) -> None:
    server.route("/flaky", Reply(b"", 500), Reply(b"", 502), Reply(b"done", content_type="a/b"))
    server.route("/gone", Reply(b"no such page", 404, "text/plain"))
    server.route("/down", Reply(b"still down", 503, "text/plain"))
    with HttpClient(FAST) as client:
        fetched = client.get(f"{server.url}/flaky", accept="text/turtle")
        assert (fetched.body, fetched.status, fetched.content_type) == (b"done", 200, "a/b")
        with pytest.raises(UnreadableSourceError, match=r"/gone: HTTP 404 Not Found: no such"):
            client.get(f"{server.url}/gone")
        with pytest.raises(UnreadableSourceError, match=r"/down: HTTP 503 .* after 3 attempts"):
            client.get(f"{server.url}/down")
    assert len(server.to("/flaky")) == 3
    assert len(server.to("/gone")) == 1  # a 4xx is not retried
    assert len(server.to("/down")) == FAST.retries + 1
    agent = server.to("/flaky")[0].headers["user-agent"]
    assert agent.startswith(f"cancer-imaging-catalogue/{__version__}")
    assert server.to("/flaky")[0].headers["accept"] == "text/turtle"


def test_client_times_out_a_hanging_server(server: LocalServer) -> None:
    server.route("/hang", Reply(b"late", delay=1.5))
    started = time.monotonic()
    with (
        HttpClient(FAST.model_copy(update={"timeout": 0.3, "retries": 1})) as client,
        pytest.raises(UnreadableSourceError, match=r"/hang: no answer within 0.3s after 2"),
    ):
        client.get(f"{server.url}/hang")
    assert time.monotonic() - started < 1.4
    assert len(server.to("/hang")) == 2


def test_client_honours_retry_after_up_to_its_cap(server: LocalServer) -> None:
    server.route("/busy", Reply(b"", 429, headers={"Retry-After": "1"}), Reply(b"ok"))
    server.route("/very-busy", Reply(b"", 503, headers={"Retry-After": "3600"}), Reply(b"ok"))
    with HttpClient(FAST.model_copy(update={"max_backoff": 5})) as client:
        assert client.get(f"{server.url}/busy").body == b"ok"
    first, second = server.to("/busy")
    assert second.at - first.at >= 0.95
    started = time.monotonic()
    with HttpClient(FAST) as client:  # max_backoff 0.2 caps the hour asked for
        assert client.get(f"{server.url}/very-busy").body == b"ok"
    assert time.monotonic() - started < 1.0


def test_backoff_grows_with_jitter_and_reads_http_dates() -> None:
    pauses: list[float] = []
    later = datetime.now(UTC) + timedelta(seconds=30)
    answers = iter(
        [
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(
                503, headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")}
            ),
            httpx.Response(200, content=b"ok"),
        ]
    )
    settings = HttpSettings(retries=4, backoff=1.0, max_backoff=100.0)
    transport = httpx.MockTransport(lambda request: next(answers))
    with HttpClient(settings, transport=transport, sleep=pauses.append) as client:
        assert client.get("http://provider.example/catalog").body == b"ok"
    assert 0.5 <= pauses[0] <= 1.0
    assert 1.0 <= pauses[1] <= 2.0
    assert 2.0 <= pauses[2] <= 4.0
    assert 27 <= pauses[3] <= 30  # Retry-After as an HTTP date, under the cap


def test_client_caps_response_size_while_streaming(server: LocalServer) -> None:
    server.route("/declared", Reply(b"x" * 5000))
    server.route("/streamed", Reply(b"x" * 5000, length=False))
    server.route("/exact", Reply(b"x" * 1000, length=False))
    with HttpClient(FAST.model_copy(update={"max_bytes": 1000})) as client:
        with pytest.raises(UnreadableSourceError, match=r"/declared: response of 5000 bytes"):
            client.get(f"{server.url}/declared")
        with pytest.raises(UnreadableSourceError, match=r"/streamed: .*cap of 1000 bytes"):
            client.get(f"{server.url}/streamed")
        assert len(client.get(f"{server.url}/exact").body) == 1000


def test_client_limits_requests_at_once_per_host(server: LocalServer) -> None:
    server.route("/slow", Reply(b"ok", delay=0.3))
    with HttpClient(FAST) as client:
        threads = [
            threading.Thread(target=client.get, args=(f"{server.url}/slow",)) for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(server.to("/slow")) == 6
    assert server.max_in_flight == FAST.per_host


def test_client_posts_forms(server: LocalServer) -> None:
    server.route("/form", lambda request: Reply(request.body, content_type="text/plain"))
    with HttpClient(FAST) as client:
        fetched = client.post_form(f"{server.url}/form", {"query": "ASK {}", "g": ["a", "b"]})
    assert parse_qs(fetched.body.decode()) == {"query": ["ASK {}"], "g": ["a", "b"]}
    assert server.to("/form")[0].headers["content-type"] == "application/x-www-form-urlencoded"


# ---- dcat URLs with Hydra paging ----------------------------------------------------------


def test_paged_catalogues_in_every_serialisation(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    serve(server, catalogue_pages(graph, 1, f"{server.url}/mixed/catalog", list(MEDIA)))
    serve(server, catalogue_pages(graph, 3, f"{server.url}/edp/catalog", style="edp"))
    serve(server, catalogue_pages(graph, 2, f"{server.url}/rel/catalog", style="relative"))
    sources = {
        name: {"kind": "dcat", "url": f"{server.url}/{name}/catalog"}
        for name in ("mixed", "edp", "rel")
    }
    report = harvest(catalogue, providers(tmp_path, sources))

    assert report.ok, report.failed
    truth = expected(graph)
    assert len(truth) == 4
    for name in sources:
        source = by_provider(report)[name]
        assert (source.datasets, source.complete, source.warnings) == (4, True, [])
        assert stored(catalogue, name) == truth
    pages = [r.query.get("page", ["1"])[0] for r in server.to("/mixed/catalog")]
    assert pages == ["1", "2", "3", "4"]  # turtle, RDF/XML, JSON-LD, N-Triples, each once
    assert len(server.to("/edp/catalog")) == 2
    assert len(server.to("/rel/catalog")) == 2
    for node, _ in descriptions(graph):
        kept = catalogue.store.graph(dataset_graph("mixed", identifier(graph, node)))
        assert plain_triples(kept, node) == plain_triples(graph, node)
    assert "text/turtle" in server.to("/mixed/catalog")[0].headers["accept"]


def descriptions_graph(graph: Graph, node: URIRef) -> Graph:
    return dict(descriptions(graph))[node]


def test_health_catalogue_from_the_corpus_paged_by_five(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    path = CORPUS / "healthdcat-ap" / "mvd-health-demo" / "health-catalog.ttl"
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared corpus is read in place)")
    graph = raw(path)
    serve(server, catalogue_pages(graph, 5, f"{server.url}/health/catalog", style="edp"))
    report = harvest(
        catalogue,
        providers(tmp_path, {"health": {"kind": "dcat", "url": f"{server.url}/health/catalog"}}),
    )
    assert report.ok, report.failed
    truth = expected(graph)
    assert len(truth) == 21
    assert stored(catalogue, "health") == truth
    assert len(server.to("/health/catalog")) == 5


FAULTS: dict[str, tuple[Reply, str]] = {
    "hang": (Reply(b"", delay=2.0), "no answer within 0.5s after 3 attempts"),
    "server error": (Reply(b"boom", 500, "text/plain"), "HTTP 500 Internal Server Error after 3"),
    "empty": (Reply(b""), "empty response"),
    "html": (Reply(b"<!DOCTYPE html><html>Log in</html>", content_type="text/html"), "HTML page"),
    "oversize": (Reply(b"# padding\n" * 250_000, length=False), "size cap of 2000000 bytes"),
    "malformed": (Reply((DATA / "truncated_piveau_catalog.ttl").read_bytes()), "not valid turtle"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_page_fails_its_source_alone_and_deletes_nothing(
    fault: str, server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    pages = catalogue_pages(graph, 1, f"{server.url}/flaky/catalog")
    serve(server, pages)
    server.route("/steady/catalog.ttl", Reply((DATA / "valid_project.ttl").read_bytes()))
    sources = {
        "flaky": {"kind": "dcat", "url": f"{server.url}/flaky/catalog"},
        "steady": {"kind": "dcat", "url": f"{server.url}/steady/catalog.ttl"},
    }
    assert harvest(catalogue, providers(tmp_path, sources)).ok
    before = catalogue.store.graph_names(provider_dataset_prefix("flaky"))
    assert len(before) == 4

    reply, message = FAULTS[fault]
    server.route(pages[2][0], reply)  # the third page
    both = raw(DATA / "valid_project.ttl", DATA / "example_consus_ckan.ttl")
    server.route("/steady/catalog.ttl", Reply(both.serialize(format="turtle", encoding="utf-8")))
    report = harvest(catalogue, providers(tmp_path, sources), allow_deletions=True)

    flaky, steady = by_provider(report)["flaky"], by_provider(report)["steady"]
    assert not flaky.ok
    assert "/flaky/catalog?page=3" in (flaky.error or "")
    assert message in (flaky.error or "")
    assert catalogue.store.graph_names(provider_dataset_prefix("flaky")) == before
    assert steady.ok
    assert stored(catalogue, "steady") == expected(both)


def test_server_errors_that_recover_are_retried(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    pages = catalogue_pages(graph, 2, f"{server.url}/p/catalog")
    serve(server, pages)
    route, body, media = pages[1]
    server.route(route, Reply(b"", 500), Reply(b"", 503), Reply(body, content_type=media))
    report = harvest(
        catalogue, providers(tmp_path, {"p": {"kind": "dcat", "url": f"{server.url}/p/catalog"}})
    )
    assert report.ok, report.failed
    assert stored(catalogue, "p") == expected(graph)
    assert [r.query.get("page", ["1"])[0] for r in server.to("/p/catalog")] == ["1", "2", "2", "2"]


def test_wrong_content_types_are_read_by_suffix_or_body(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    for name, media in (("plain", "text/plain"), ("mislabelled", "application/rdf+xml")):
        for route, body, _ in catalogue_pages(graph, 2, f"{server.url}/{name}/catalog"):
            server.route(route, Reply(body, content_type=media))
    xml = (
        (CORPUS / "ckanext-dcat" / "dcat" / "catalog.rdf").read_bytes() if CORPUS.exists() else None
    )
    sources = {
        name: {"kind": "dcat", "url": f"{server.url}/{name}/catalog"}
        for name in ("plain", "mislabelled")
    }
    if xml is not None:  # RDF/XML from a .rdf URL sent as octet-stream: the suffix decides
        server.route("/ckan-dump/catalog.rdf", Reply(xml, content_type="application/octet-stream"))
        sources["dump"] = {"kind": "dcat", "url": f"{server.url}/ckan-dump/catalog.rdf"}
    report = harvest(catalogue, providers(tmp_path, sources))
    assert report.ok, report.failed
    assert stored(catalogue, "plain") == expected(graph)
    assert by_provider(report)["plain"].warnings == []
    assert stored(catalogue, "mislabelled") == expected(graph)
    warnings = by_provider(report)["mislabelled"].warnings
    assert len(warnings) == 2
    assert all("served as application/rdf+xml but is turtle" in w for w in warnings)
    if xml is not None:
        assert stored(catalogue, "dump") == expected(Graph().parse(data=xml, format="xml"))


def test_bodies_that_only_look_like_another_format_are_read_as_served(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    catalog = "[ a <http://www.w3.org/ns/dcat#Catalog> ] .\n"  # Turtle opening with `[`
    turtle = catalog.encode() + graph.serialize(format="nt", encoding="utf-8")
    xml = graph.serialize(format="xml", encoding="utf-8")
    commented = b"<!-- exported -->\n" + xml[xml.index(b"?>") + 2 :].lstrip()
    assert turtle.startswith(b"[") and commented.startswith(b"<!--")
    server.route("/bracket/catalog", Reply(turtle, content_type="text/turtle"))
    server.route("/comment/catalog", Reply(commented, content_type="application/rdf+xml"))
    sources = {
        name: {"kind": "dcat", "url": f"{server.url}/{name}/catalog"}
        for name in ("bracket", "comment")
    }
    report = harvest(catalogue, providers(tmp_path, sources))
    assert report.ok, report.failed
    for name in sources:
        assert stored(catalogue, name) == expected(graph)
        assert by_provider(report)[name].warnings == []


def test_paging_loops_and_caps_stop_with_a_warning_and_delete_nothing(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    url = f"{server.url}/loop/catalog"
    pages = catalogue_pages(graph, 1, url)
    serve(server, pages)
    first, *_ = catalogue_pages(graph, 1, f"{server.url}/same/catalog")
    server.route(first[0], Reply(first[1]))  # a server that ignores ?page= (same content)
    serve(server, catalogue_pages(graph, 1, f"{server.url}/capped/catalog"))
    sources: dict[str, dict[str, Any]] = {
        "loop": {"kind": "dcat", "url": url},
        "same": {"kind": "dcat", "url": f"{server.url}/same/catalog"},
        "capped": {"kind": "dcat", "url": f"{server.url}/capped/catalog", "max_pages": 2},
    }
    assert by_provider(harvest(catalogue, providers(tmp_path, {"loop": sources["loop"]})))[
        "loop"
    ].complete
    before = catalogue.store.graph_names(provider_dataset_prefix("loop"))
    assert len(before) == 4

    looped = Graph().parse(data=pages[1][1], format="turtle")  # page 2 now links to page 1
    for subject, value in list(looped.subject_objects(HYDRA.next)):
        looped.remove((subject, HYDRA.next, value))
        looped.remove((subject, HYDRA.nextPage, None))
        looped.add((subject, HYDRA.nextPage, Literal(url)))
    server.route(pages[1][0], Reply(looped.serialize(format="turtle", encoding="utf-8")))
    report = harvest(catalogue, providers(tmp_path, sources), allow_deletions=True)

    assert report.ok, report.failed
    loop, same, capped = (by_provider(report)[p] for p in ("loop", "same", "capped"))
    assert (loop.complete, loop.datasets) == (False, 2)
    assert "page 2 links back to" in loop.warnings[0]
    assert catalogue.store.graph_names(provider_dataset_prefix("loop")) == before
    assert (same.complete, same.datasets) == (False, 1)
    assert "page 2 repeats an earlier page's content" in same.warnings[0]
    assert (capped.complete, capped.datasets) == (False, 2)
    assert "stopped at max_pages=2" in capped.warnings[0]
    assert len(server.to("/same/catalog")) == 2


def test_dcat_source_needs_exactly_one_location(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of `path` and `url`"):
        providers(tmp_path, {"p": {"kind": "dcat", "path": "a.ttl", "url": "http://x.example/"}})
    with pytest.raises(ConfigError, match="exactly one of `path` and `url`"):
        providers(tmp_path, {"p": {"kind": "dcat"}})


# ---- ckan ---------------------------------------------------------------------------------


def test_ckan_lists_incrementally_between_full_listings(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    graph = raw(*FILES)
    modified = {node: datetime(2023, 5, 1, tzinfo=UTC) for node, _ in descriptions(graph)}
    url = f"{server.url}/portal/catalog.ttl"

    def catalog(request: Request) -> Reply:
        """ckanext-dcat's catalog endpoint: 2 datasets a page, `modified_since` as UTC."""
        page = int(request.query.get("page", ["1"])[0])
        since_text = request.query.get("modified_since", [None])[0]
        since = datetime.fromisoformat(since_text).replace(tzinfo=UTC) if since_text else None
        listed = Graph()
        for node in modified:
            if since is None or modified[node] >= since:
                listed += descriptions_graph(graph, node)
        pages = catalogue_pages(listed, 2, url, since=since)
        return Reply(pages[min(page, len(pages)) - 1][1])

    server.route("/portal/catalog.ttl", catalog)
    source = {"kind": "ckan", "url": f"{server.url}/portal", "full_every": 2}
    started = datetime.now(UTC)
    first = by_provider(harvest(catalogue, providers(tmp_path, {"ckan": source})))["ckan"]
    ended = datetime.now(UTC)
    assert (first.ok, first.complete, first.datasets) == (True, True, 4)
    assert all("modified_since" not in r.query for r in server.to("/portal/catalog.ttl"))
    assert len(server.to("/portal/catalog.ttl")) == 2
    assert (catalogue.settings.data_dir / "harvest-state" / "ckan" / "main.json").exists()

    changed = URIRef("http://example.eu/set/data/test-dataset")  # example_consus_ckan.ttl
    graph.set((changed, DCTERMS.title, Literal("Renamed on the portal")))
    modified[changed] = datetime.now(UTC)
    server.requests.clear()
    second = by_provider(harvest(catalogue, providers(tmp_path, {"ckan": source})))["ckan"]
    assert (second.ok, second.complete, second.datasets) == (True, False, 1)
    (request,) = server.to("/portal/catalog.ttl")
    since = datetime.fromisoformat(request.query["modified_since"][0]).replace(tzinfo=UTC)
    overlap = timedelta(seconds=600)
    assert started - overlap - timedelta(seconds=1) <= since <= ended - overlap
    assert stored(catalogue, "ckan") == expected(
        graph
    )  # renamed; the partial listing deleted nothing

    server.requests.clear()
    third = by_provider(harvest(catalogue, providers(tmp_path, {"ckan": source})))["ckan"]
    assert (third.ok, third.complete, third.datasets) == (True, True, 4)  # full_every: 2
    assert all("modified_since" not in r.query for r in server.to("/portal/catalog.ttl"))


# ---- fdp ----------------------------------------------------------------------------------

FDP = CORPUS / "fdp-gdi-ckanext"
HOSTS = {
    "https://fair.healthinformationportal.eu/": "hip/",
    "https://health-ri.sandbox.semlab-leiden.nl/": "hri/",
    "https://example.org/": "exo/",
    "http://example.org/": "ex/",
    "https://example.com/": "com/",
}
CATALOG = "hip/catalog/1c75c2c9-d2cc-44cb-aaa8-cf8c11515c8d"
DATASET_FILES = {
    "hip/dataset/898ca4b8-197b-4d40-bc81-d9cd88197670": (
        "dataset_898ca4b8-197b-4d40-bc81-d9cd88197670.ttl"
    ),
    "hri/dataset/d9956191-1aff-4181-ac8b-16b829135ed5": "dataset_cbioportal.ttl",
    "exo/dataset/with-accessservice": "dataset_with-accessservice.ttl",
}


def local_fdp(server: LocalServer) -> dict[str, bytes]:
    """The real FDP responses with their hosts mapped onto the local server, plus the links
    the corpus lacks: root -> its two catalogs, catalog -> the three dataset files."""
    base = server.url

    def read(name: str) -> str:
        text = (FDP / name).read_text()
        for host, prefix in HOSTS.items():
            text = text.replace(host, f"{base}/{prefix}")
        return text

    root = read("root_fdp_response_no_catalogs.ttl") + (
        f"<{base}/com/fdp> <https://w3id.org/fdp/fdp-o#metadataCatalog> <{base}/{CATALOG}> ;\n"
        f"    <http://www.re3data.org/schema/3-0#dataCatalog> <{base}/ex/Catalog1> .\n"
    )
    links = ", ".join(f"<{base}/{path}>" for path in DATASET_FILES)
    catalog = read("fdp_catalog.ttl") + f"\n<{base}/{CATALOG}> <{DCAT.dataset}> {links} .\n"
    series = read("root_fdp_response.ttl")
    docs = {"com/fdp": root, CATALOG: catalog}
    docs.update({path: read(name) for path, name in DATASET_FILES.items()})
    docs.update({f"ex/{name}": series for name in ("Catalog1", "DatasetSeries1", "Dataset1")})
    return {path: text.encode() for path, text in docs.items()}


def test_fair_data_point_crawl(server: LocalServer, catalogue: Catalogue, tmp_path: Path) -> None:
    if not FDP.exists():
        pytest.skip(f"{FDP} is not here (AGPL files are read from the shared corpus only)")
    docs = local_fdp(server)
    for path, body in docs.items():
        delay = 0.3 if path in DATASET_FILES else 0.0
        server.route(f"/{path}", Reply(body, delay=delay))
    sources = {
        "fdp": {"kind": "fdp", "url": f"{server.url}/com/fdp"},
        "fdp-down": {"kind": "fdp", "url": f"{server.url}/nowhere"},
    }
    report = harvest(catalogue, providers(tmp_path, sources))

    truth = expected(raw_docs(docs, [*DATASET_FILES, "ex/Dataset1"]))
    assert len(truth) == 4
    fdp = by_provider(report)["fdp"]
    assert (fdp.ok, fdp.datasets, fdp.complete) == (True, 4, False)
    assert stored(catalogue, "fdp") == truth
    (warning,) = fdp.warnings  # the catalog's own dataset is not served
    assert "dataset/125c32c0-3aa8-4277-92f6-34acdd058d43: HTTP 404" in warning
    assert server.max_in_flight == FAST.per_host  # datasets fetched at once, within the limit
    down = by_provider(report)["fdp-down"]
    assert not down.ok
    assert "/nowhere: HTTP 404" in (down.error or "")

    server.route("/hri/dataset/d9956191-1aff-4181-ac8b-16b829135ed5", Reply(b"", 500))
    again = by_provider(harvest(catalogue, providers(tmp_path, sources), allow_deletions=True))
    assert (again["fdp"].ok, again["fdp"].complete, again["fdp"].datasets) == (True, False, 3)
    assert any("d9956191" in w and "HTTP 500" in w for w in again["fdp"].warnings)
    assert stored(catalogue, "fdp") == truth  # the unread dataset stays


def raw_docs(docs: dict[str, bytes], paths: list[str]) -> Graph:
    graph = Graph()
    for path in paths:
        graph.parse(data=docs[path], format="turtle")
    return graph


# ---- sparql -------------------------------------------------------------------------------


def sparql_endpoint(store: pyoxigraph.Store) -> Callable[[Request], Reply]:
    """A SPARQL 1.1 Protocol endpoint over pyoxigraph: query by GET or form POST; graph
    results (CONSTRUCT) as Turtle or N-Triples."""

    def answer(request: Request) -> Reply:
        form = parse_qs(request.body.decode()) if request.method == "POST" else request.query
        try:
            results = store.query(form["query"][0])
        except SyntaxError as exc:
            return Reply(f"Parse error: {exc}".encode(), 400, "text/plain")
        if not isinstance(results, pyoxigraph.QueryTriples):
            return Reply(b"only graph queries here", 400, "text/plain")
        fmt = pyoxigraph.RdfFormat.N_TRIPLES
        if "text/turtle" in request.headers.get("accept", ""):
            fmt = pyoxigraph.RdfFormat.TURTLE
        body = results.serialize(format=fmt) or b""
        if fmt == pyoxigraph.RdfFormat.TURTLE:  # as Virtuoso or Fuseki: a prefix, or a comment
            body = b"@prefix dcat: <http://www.w3.org/ns/dcat#> .\n# results\n" + body
        return Reply(body, content_type=fmt.media_type)

    return answer


def test_sparql_endpoint_default_paged_and_custom_queries(
    server: LocalServer, catalogue: Catalogue, tmp_path: Path
) -> None:
    store = pyoxigraph.Store()
    for file in FILES:
        store.load(path=str(file), format=pyoxigraph.RdfFormat.TURTLE)
    server.route("/sparql", sparql_endpoint(store))
    endpoint = f"{server.url}/sparql"
    custom = (
        "PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>\n"
        "CONSTRUCT { ?d a dcat:Dataset ; dct:title ?t } WHERE { ?d a dcat:Dataset ; dct:title ?t }"
    )
    sources: dict[str, dict[str, Any]] = {
        "whole": {"kind": "sparql", "url": endpoint},
        "paged": {"kind": "sparql", "url": endpoint, "page_size": 2},
        "custom": {"kind": "sparql", "url": endpoint, "query": custom, "method": "get"},
        "broken": {"kind": "sparql", "url": endpoint, "query": "CONSTRUCT WHERE { ?s ?p }"},
    }
    report = harvest(catalogue, providers(tmp_path, sources))

    graph = raw(*FILES)
    truth = expected(graph)
    for name in ("whole", "paged"):
        assert by_provider(report)[name].ok
        assert by_provider(report)[name].datasets == 4
        assert stored(catalogue, name) == truth
    for node, _ in descriptions(graph):
        kept = catalogue.store.graph(dataset_graph("paged", identifier(graph, node)))
        assert plain_triples(kept, node) == plain_triples(graph, node)
    posted = [parse_qs(r.body.decode())["query"][0] for r in server.to("/sparql") if r.body]
    offsets = [q.split("OFFSET ")[1].split()[0] for q in posted if "LIMIT 2 " in q]
    assert offsets == ["0", "2", "4"]  # the third page comes back short (empty)

    by_iri = {
        str(n): frozenset(map(str, graph.objects(n, DCTERMS.title))) for n, _ in descriptions(graph)
    }
    assert stored(catalogue, "custom") == by_iri  # no dct:identifier asked for: IRIs identify
    for iri in by_iri:
        kept = catalogue.store.graph(dataset_graph("custom", iri))
        assert set(kept.predicates()) == {RDF.type, DCTERMS.title}
    assert [r.method for r in server.requests if "query" in r.query] == ["GET"]

    broken = by_provider(report)["broken"]
    assert not broken.ok
    assert "/sparql: HTTP 400 Bad Request: Parse error" in (broken.error or "")


def test_paged_sparql_queries_need_the_paging_marker(tmp_path: Path) -> None:
    query = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
    source = {"kind": "sparql", "url": "http://x.example/sparql", "query": query, "page_size": 5}
    with pytest.raises(ConfigError, match=r"needs the \{\{paging\}\} marker"):
        providers(tmp_path, {"p": source})
