"""The harvest contract, as an external infrastructure sees it: a real GraphQL client (`gql`)
over HTTP against a real uvicorn server pages through the IDC demo catalogue with
`datasetChanges`, the providers change, the catalogue re-harvests, and the client fetches only
the delta and ends with the server's catalogue. The REST / DCAT-AP form lists the same feed.

The demo is harvested from its DCAT-AP sources only (its series tables add nothing to this
contract and take most of a harvest's time); the catalogue is this module's own copy."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import FOAF
from rdflib.term import Node

from catalogue.api.app import create_app
from catalogue.config import Settings, load_providers
from catalogue.dcat.namespaces import DCAT, DCTERMS, RDF
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.ingest import harvest, stored_datasets
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT
from tests.providers import demo_dcat_only

AS = Namespace("https://www.w3.org/ns/activitystreams#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")

DATASET_FIELDS = """fragment DatasetFields on Dataset {
  identifier iri title description keywords cancerTypes bodySites modalities license
  accessRights doi landingPage provider { id name homepage }
  summary { numberOfUniqueIndividuals numberOfRecords modalities bodyParts manufacturers }
  concepts { curie } }"""
CHANGES = (
    """query Changes($since: DateTime, $first: Int, $after: String) {
  datasetChanges(since: $since, first: $first, after: $after) {
    totalCount highWaterMark
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { kind provider identifier changedAt deletedAt
      dataset { ...DatasetFields } } } } }
"""
    + DATASET_FIELDS
)
LISTING = (
    """query Listing($after: String) {
  datasets(first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { ...DatasetFields } } } }
"""
    + DATASET_FIELDS
)

Key = tuple[str, str]
PAGE = 15
"""A page size whose full selection stays under the API's default cost limit."""


# -- the server and the demo catalogue --------------------------------------------------------


@dataclass
class Feed:
    url: str
    token: str
    catalogue: Catalogue
    demo: Path
    providers: Path

    def client(self) -> Client:
        """A downstream infrastructure's GraphQL client, with its harvester token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        transport = HTTPXTransport(url=f"{self.url}/graphql", headers=headers, timeout=60)
        return Client(transport=transport, fetch_schema_from_transport=True)

    def harvest(self, only: str | None = None) -> None:
        report = harvest(self.catalogue, load_providers(self.providers), only=only)
        assert report.ok, [s.error for s in report.failed]
        assert not [s.suspect for s in report.sources if s.suspect]


@pytest.fixture(scope="module")
def feed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Feed]:
    root = tmp_path_factory.mktemp("changes-feed")
    providers = demo_dcat_only(request, root / "demo")
    settings = Settings(data_dir=root / "data", secret="feed-secret-0123456789", disclosure=EXACT)
    with open_catalogue(settings) as opened:
        token = ApiTokenStore(settings.data_dir).create("downstream", [Role.HARVESTER])
        state = Feed("", token, opened, root / "demo", providers)
        state.harvest()
        with serve(create_app(settings, catalogue=opened)) as url:
            state.url = url
            yield state


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run the app under uvicorn in a thread, on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# -- the downstream harvester ----------------------------------------------------------------


@dataclass
class Harvested:
    """What a pass over the feed brought: the pages, every change in order, the cursor to go on
    from."""

    pages: int
    changes: list[dict[str, Any]]
    cursor: str
    total: int


def read_feed(
    session: Any,
    first: int,
    after: str | None = None,
    since: str | None = None,
    between_pages: Any = None,
) -> Harvested:
    """Page through `datasetChanges` until no next page; `between_pages(n, changes)` runs after
    page n."""
    changes: list[dict[str, Any]] = []
    pages, total = 0, -1
    while True:
        variables = {"first": first, "after": after, "since": since}
        result = session.execute(GraphQLRequest(CHANGES, variable_values=variables))
        page = result["datasetChanges"]
        pages += 1
        total = page["totalCount"]
        edges = page["edges"]
        changes.extend(e["node"] for e in edges)
        assert len(edges) <= first
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if edges:
            assert page["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        after = page["highWaterMark"]
        if not page["pageInfo"]["hasNextPage"]:
            return Harvested(pages, changes, after, total)
        assert edges and after == edges[-1]["cursor"]
        if between_pages is not None:
            between_pages(pages, changes)


def apply(copy: dict[Key, dict[str, Any]], changes: list[dict[str, Any]]) -> None:
    """A downstream catalogue applies changes in order: upsert, or delete on a tombstone."""
    for change in changes:
        key = (change["provider"], change["identifier"])
        if change["kind"] == "DELETED" or change["dataset"] is None:
            copy.pop(key, None)
        else:
            copy[key] = change["dataset"]


def server_listing(session: Any) -> dict[Key, dict[str, Any]]:
    """The server's catalogue as its `datasets` query lists it."""
    found: dict[Key, dict[str, Any]] = {}
    after, total = None, -1
    while True:
        page = session.execute(GraphQLRequest(LISTING, variable_values={"after": after}))
        page = page["datasets"]
        total = page["totalCount"]
        for edge in page["edges"]:
            node = edge["node"]
            key = (node["provider"]["id"], node["identifier"])
            assert key not in found
            found[key] = node
        if not page["pageInfo"]["hasNextPage"]:
            assert len(found) == total
            return found
        after = page["pageInfo"]["endCursor"]


def stored_keys(feed: Feed) -> set[Key]:
    """The datasets the graph store holds, read from the store itself."""
    providers = [p.id for p in load_providers(feed.providers).providers]
    return {(p, d.identifier) for p in providers for d in stored_datasets(feed.catalogue, p)}


# -- changing the providers' inputs -----------------------------------------------------------


def catalog_file(feed: Feed, provider: str) -> Path:
    return feed.demo / provider / "catalog.ttl"


def node_of(graph: Graph, identifier: str) -> URIRef:
    nodes = [s for s in graph.subjects(DCTERMS.identifier, Literal(identifier))]
    assert len(nodes) == 1, identifier
    node = nodes[0]
    assert isinstance(node, URIRef)
    return node


def identifiers(feed: Feed, provider: str) -> list[str]:
    graph = Graph().parse(catalog_file(feed, provider))
    return sorted(
        str(graph.value(d, DCTERMS.identifier)) for d in graph.subjects(RDF.type, DCAT.Dataset)
    )


def retitle(feed: Feed, provider: str, identifier: str, title: str) -> None:
    path = catalog_file(feed, provider)
    graph = Graph().parse(path)
    node = node_of(graph, identifier)
    graph.set((node, DCTERMS.title, Literal(title, lang="en")))
    graph.serialize(path, format="turtle")


def delete(feed: Feed, provider: str, identifier: str) -> None:
    path = catalog_file(feed, provider)
    graph = Graph().parse(path)
    node = node_of(graph, identifier)
    pending: list[Node] = [node]
    while pending:  # the dataset and the blank nodes only it uses
        subject = pending.pop()
        for triple in list(graph.triples((subject, None, None))):
            graph.remove(triple)
            if not isinstance(triple[2], URIRef | Literal):
                pending.append(triple[2])
    graph.remove((None, DCAT.dataset, node))
    graph.serialize(path, format="turtle")


def add_copy(feed: Feed, provider: str, identifier: str, new: str) -> None:
    """A new dataset: an existing one's URI-valued and literal properties under a new IRI."""
    path = catalog_file(feed, provider)
    graph = Graph().parse(path)
    node = node_of(graph, identifier)
    copy = URIRef(f"{node}-{new}")
    for _, predicate, value in list(graph.triples((node, None, None))):
        if isinstance(value, URIRef | Literal):
            graph.add((copy, predicate, value))
    graph.set((copy, DCTERMS.identifier, Literal(new)))
    graph.set((copy, DCTERMS.title, Literal(f"Feed test dataset {new}", lang="en")))
    for catalog in list(graph.subjects(DCAT.dataset, node)):
        graph.add((catalog, DCAT.dataset, copy))
    graph.serialize(path, format="turtle")


# -- the contract -----------------------------------------------------------------------------


def test_full_then_incremental_harvest_ends_equal_to_the_server(feed: Feed) -> None:
    with feed.client() as session:
        # a full pass, 7 at a time; after page 2 a dataset of page 1 changes at its provider
        moved: dict[str, Any] = {}

        def change_one(page: int, seen: list[dict[str, Any]]) -> None:
            if page != 2:
                return
            first = seen[0]
            moved.update(provider=first["provider"], identifier=first["identifier"])
            retitle(feed, first["provider"], first["identifier"], "Retitled while paging")
            feed.harvest(only=first["provider"])

        full = read_feed(session, first=7, between_pages=change_one)
        assert full.pages > 10
        copy: dict[Key, dict[str, Any]] = {}
        apply(copy, full.changes)
        moved_key = (moved["provider"], moved["identifier"])
        seen = [(c["provider"], c["identifier"]) for c in full.changes]
        # each dataset once, but the one that changed while paging came again, later
        assert seen.count(moved_key) == 2
        assert len(seen) == len(set(seen)) + 1
        assert copy[moved_key]["title"] == "Retitled while paging"
        assert {c["kind"] for c in full.changes} <= {"CREATED", "UPDATED"}
        listing = server_listing(session)
        assert copy == listing
        assert set(copy) == stored_keys(feed)

        # the providers change: new datasets, new titles, deletions (within the safeguard)
        added = {("breast", "feed_new_breast"), ("abdominal", "feed_new_abdominal")}
        for provider, new in sorted(added):
            add_copy(feed, provider, identifiers(feed, provider)[0], new)
        changed = {
            ("neuro-head-neck", identifiers(feed, "neuro-head-neck")[1]),
            ("genitourinary", identifiers(feed, "genitourinary")[2]),
            ("thoracic", identifiers(feed, "thoracic")[3]),
        }
        for provider, identifier in sorted(changed):
            retitle(feed, provider, identifier, f"New title of {identifier}")
        deleted = {
            ("multi-site", identifiers(feed, "multi-site")[0]),
            ("multi-site", identifiers(feed, "multi-site")[5]),
            ("thoracic", identifiers(feed, "thoracic")[-1]),
        }
        assert not (deleted | changed) & {moved_key}
        for provider, identifier in sorted(deleted):
            delete(feed, provider, identifier)
        before_harvest = datetime.now().astimezone()
        time.sleep(0.01)
        feed.harvest()

        # only the delta, from the saved cursor, 2 at a time
        delta = read_feed(session, first=2, after=full.cursor)
        kinds = {(c["provider"], c["identifier"]): c["kind"] for c in delta.changes}
        assert len(kinds) == len(delta.changes)
        assert kinds == {
            **dict.fromkeys(added, "CREATED"),
            **dict.fromkeys(changed, "UPDATED"),
            **dict.fromkeys(deleted, "DELETED"),
        }
        for change in delta.changes:
            stamp = datetime.fromisoformat(change["changedAt"])
            assert stamp.utcoffset() == timedelta(0) and stamp >= before_harvest
            if change["kind"] == "DELETED":  # a tombstone
                assert change["deletedAt"] == change["changedAt"]
                assert change["dataset"] is None
            else:
                assert change["deletedAt"] is None
                assert change["dataset"]["identifier"] == change["identifier"]
        apply(copy, delta.changes)
        listing = server_listing(session)
        assert copy == listing
        assert set(copy) == stored_keys(feed)
        for key in changed:
            assert copy[key]["title"] == f"New title of {key[1]}"
        assert not set(copy) & deleted

        # the same delta by time (inclusive), and nothing after the delta's high-water mark
        by_time = read_feed(session, first=PAGE, since=before_harvest.isoformat())
        assert by_time.changes == delta.changes
        last = delta.changes[-1]
        at_last = read_feed(session, first=PAGE, since=last["changedAt"])
        assert last in at_last.changes
        just_after = datetime.fromisoformat(last["changedAt"]) + timedelta(microseconds=1)
        assert last not in read_feed(session, PAGE, since=just_after.isoformat()).changes
        assert read_feed(session, first=5, after=delta.cursor).changes == []

        # a fresh full export ends with the same catalogue
        fresh = read_feed(session, first=PAGE)
        again: dict[Key, dict[str, Any]] = {}
        apply(again, fresh.changes)
        assert again == copy
        assert fresh.total == len(fresh.changes) == len(copy) + len(deleted)
        tombstones = {(c["provider"], c["identifier"]) for c in fresh.changes if c["deletedAt"]}
        assert tombstones == deleted


def rest_members(feed: Feed, accept: str, page_size: int) -> tuple[Graph, int]:
    """Every page of GET /changes merged, following hydra:next; and how many pages."""
    merged, pages = Graph(), 0
    url: str | None = f"{feed.url}/changes?page_size={page_size}"
    headers = {"Authorization": f"Bearer {feed.token}", "Accept": accept}
    while url is not None:
        response = httpx.get(url, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(accept)
        page = Graph().parse(data=response.text, format="json-ld" if "json" in accept else "turtle")
        pages += 1
        merged += page
        views = list(page.subjects(RDF.type, HYDRA.PartialCollectionView))
        assert len(views) == 1
        following = page.value(views[0], HYDRA.next)
        url = None if following is None else str(following)
    return merged, pages


def test_rest_feed_lists_the_graphql_members(feed: Feed) -> None:
    with feed.client() as session:
        graphql = read_feed(session, first=PAGE).changes
    expected = {
        (f"{feed.url}/datasets/{c['provider']}/{c['identifier']}", c["kind"]) for c in graphql
    }
    kinds: dict[Node, str] = {AS.Create: "CREATED", AS.Update: "UPDATED", AS.Delete: "DELETED"}
    for accept in ("text/turtle", "application/ld+json"):
        graph, pages = rest_members(feed, accept, page_size=40)
        assert pages == -(-len(graphql) // 40)
        collection = URIRef(f"{feed.url}/changes")
        activities = set(graph.objects(collection, HYDRA.member))
        found = set()
        for activity in activities:
            (kind,) = [kinds[t] for t in graph.objects(activity, RDF.type) if t in kinds]
            record = str(graph.value(activity, AS.object))
            assert graph.value(activity, AS.published) is not None
            found.add((str(record), kind))
        assert found == expected
    # the records: live ones point at their dataset's DCAT-AP description, deleted ones are
    # tombstones and their record IRI answers 404
    by_record = {f"{feed.url}/datasets/{c['provider']}/{c['identifier']}": c for c in graphql}
    for iri_text, change in by_record.items():
        node = URIRef(iri_text)
        if change["kind"] == "DELETED":
            assert (node, RDF.type, AS.Tombstone) in graph
            assert graph.value(node, AS.deleted) is not None
        else:
            iri = URIRef(change["dataset"]["iri"])
            assert graph.value(node, FOAF.primaryTopic) == iri
            assert (iri, RDF.type, DCAT.Dataset) in graph
    live = next(r for r, c in by_record.items() if c["kind"] != "DELETED")
    gone = next(r for r, c in by_record.items() if c["kind"] == "DELETED")
    served = httpx.get(live, headers={"Accept": "text/turtle"}, timeout=60)
    assert served.status_code == 200
    iri = URIRef(by_record[live]["dataset"]["iri"])
    assert (iri, RDF.type, DCAT.Dataset) in Graph().parse(data=served.text, format="turtle")
    assert httpx.get(gone, timeout=60).status_code == 404


def test_bad_arguments_are_clear_errors(feed: Feed) -> None:
    with feed.client() as session:

        def error(**variables: Any) -> str:
            request = GraphQLRequest(CHANGES, variable_values={"first": PAGE, **variables})
            with pytest.raises(TransportQueryError) as raised:
                session.execute(request)
            return str(raised.value)

        assert "no time zone" in error(since="2025-01-01T00:00:00")
        assert "DateTime" in error(since="yesterday")
        assert "invalid changes cursor" in error(after="not-a-cursor")
        small = GraphQLRequest("{ datasetChanges(first: 501) { totalCount } }")
        with pytest.raises(TransportQueryError, match="between 0 and 500"):
            session.execute(small)
        cursor = read_feed(session, first=PAGE).cursor
        kind, _, seq = base64.urlsafe_b64decode(cursor).decode().split(":")
        foreign = base64.urlsafe_b64encode(f"{kind}:0123abcd:{seq}".encode()).decode()
        assert "not of this catalogue's change log" in error(after=foreign)
        ahead = base64.urlsafe_b64encode(f"{kind}:{_}:{int(seq) + 1000}".encode()).decode()
        assert "not of this catalogue's change log" in error(after=ahead)
    headers = {"Authorization": f"Bearer {feed.token}"}
    for query, message in (
        ("since=2025-01-01T00:00:00", "no time zone"),
        ("since=yesterday", "not an ISO 8601 date-time"),
        ("after=xyz", "invalid changes cursor"),
    ):
        response = httpx.get(f"{feed.url}/changes?{query}", headers=headers, timeout=60)
        assert response.status_code == 400 and message in response.json()["detail"], query
    assert httpx.get(f"{feed.url}/changes?page_size=501", headers=headers).status_code == 422


def test_the_feed_is_for_harvesters(feed: Feed) -> None:
    """Without the harvester role (the default policy), neither form answers."""
    anonymous = httpx.get(f"{feed.url}/changes", timeout=60)
    assert anonymous.status_code == 401
    response = httpx.post(
        f"{feed.url}/graphql",
        json={"query": "{ datasetChanges(first: 1) { totalCount } }"},
        timeout=60,
    )
    body = response.json()
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
