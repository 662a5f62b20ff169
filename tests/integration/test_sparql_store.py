"""The sparql graph store against a real Virtuoso: what Virtuoso does with one update request
(why the store builds its requests as it does), replacements that fail and must change nothing,
a crash in the middle of one, limits, authentication and timeouts."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from rdflib import Graph, Literal, URIRef

from catalogue.config import Settings, StoreSettings
from catalogue.exceptions import ConfigError, StoreError
from catalogue.services.runtime import open_catalogue
from catalogue.store.sparql import SparqlGraphStore, http_client
from tests.services.process import free_port
from tests.services.virtuoso import MAX_ROWS, PASSWORD, Virtuoso, launch

EX = "http://example.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"
DURATION = f"{XSD}duration"
NOWHERE = Path("unused")  # a remote store has no data folder


@pytest.fixture
def store(virtuoso: Virtuoso) -> Iterator[SparqlGraphStore]:
    """The store on the session's Virtuoso, emptied before and after the test."""
    opened = SparqlGraphStore.open(NOWHERE, virtuoso.store_settings())
    opened.replace_graphs({}, drop_prefix="")
    yield opened
    opened.replace_graphs({}, drop_prefix="")
    opened.close()


def numbered(label: str, subject: int, size: int = 3) -> Graph:
    graph = Graph()
    for i in range(size):
        graph.add((URIRef(f"{EX}{subject}"), URIRef(f"{EX}p{i}"), Literal(f"{label} {i}")))
    return graph


def values(server: Virtuoso, name: str) -> set[str]:
    """The objects in one graph, read with a query of our own, not through the store."""
    rows = server.select(f"SELECT ?o WHERE {{ GRAPH <{name}> {{ ?s ?p ?o }} }}")
    return {row["o"]["value"] for row in rows}


def graphs_under(server: Virtuoso, prefix: str) -> set[str]:
    rows = server.select(
        "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
        f'FILTER(STRSTARTS(STR(?g), "{prefix}")) }}'
    )
    return {row["g"]["value"] for row in rows}


# What Virtuoso does with one request of several operations


@pytest.mark.service
def test_virtuoso_keeps_what_ran_before_an_operation_that_signals(virtuoso: Virtuoso) -> None:
    """Its SPARQL handler commits after an error: a request is not all-or-nothing when an
    operation signals one (here DROP GRAPH without SILENT of a graph that does not exist)."""
    name = f"urn:test:{uuid4().hex}"
    assert virtuoso.update(
        f'INSERT DATA {{ GRAPH <{name}> {{ <{EX}a> <{EX}b> "old" }} }}'
    ).is_success
    answer = virtuoso.update(
        f"DROP SILENT GRAPH <{name}> ;\n"
        f'INSERT DATA {{ GRAPH <{name}> {{ <{EX}a> <{EX}b> "new" }} }} ;\n'
        f"DROP GRAPH <urn:test:absent:{uuid4().hex}>"
    )
    assert answer.status_code == 500
    assert values(virtuoso, name) == {"new"}
    virtuoso.update(f"DROP SILENT GRAPH <{name}>")


@pytest.mark.service
def test_virtuoso_loses_a_graph_when_a_drop_and_insert_meets_a_duration(
    virtuoso: Virtuoso,
) -> None:
    """Why the store probes literals first: `DROP; INSERT DATA` with an xsd:duration (which
    Virtuoso 7.2 cannot store) leaves the graph dropped."""
    name = f"urn:test:{uuid4().hex}"
    virtuoso.update(f'INSERT DATA {{ GRAPH <{name}> {{ <{EX}a> <{EX}b> "old" }} }}')
    answer = virtuoso.update(
        f"DROP SILENT GRAPH <{name}> ;\n"
        f'INSERT DATA {{ GRAPH <{name}> {{ <{EX}a> <{EX}b> "P1D"^^<{DURATION}> }} }}'
    )
    assert answer.status_code == 500
    assert "duration" in answer.text
    assert values(virtuoso, name) == set()


@pytest.mark.service
def test_virtuoso_rolls_back_a_request_whose_last_operation_kills_the_transaction(
    virtuoso: Virtuoso,
) -> None:
    """What the store's one-request replacement relies on: the request is one transaction, and
    a failure of the transaction (deadlock, timeout, disk, crash) undoes all of it."""
    first, second = f"urn:test:{uuid4().hex}", f"urn:test:{uuid4().hex}"
    virtuoso.update(
        f'INSERT DATA {{ GRAPH <{first}> {{ <{EX}a> <{EX}b> "old 1" }} '
        f'GRAPH <{second}> {{ <{EX}a> <{EX}b> "old 2" }} }}'
    )
    answer = virtuoso.update(
        f"DROP SILENT GRAPH <{first}> ;\n"
        f'INSERT DATA {{ GRAPH <{first}> {{ <{EX}a> <{EX}b> "new 1" }} }} ;\n'
        f"MOVE SILENT GRAPH <{first}> TO GRAPH <{second}> ;\n"
        f"INSERT {{ GRAPH <{first}> {{ <{EX}a> <{EX}b> ?x }} }} "
        "WHERE { BIND (bif:txn_error(6) AS ?x) }"
    )
    assert answer.status_code == 500
    assert "rolled back" in answer.text
    assert values(virtuoso, first) == {"old 1"}
    assert values(virtuoso, second) == {"old 2"}
    virtuoso.update(f"DROP SILENT GRAPH <{first}> ;\nDROP SILENT GRAPH <{second}>")


# Replacements that fail


@pytest.mark.service
def test_a_literal_virtuoso_cannot_store_fails_the_replacement_and_changes_nothing(
    store: SparqlGraphStore, virtuoso: Virtuoso
) -> None:
    before = {"urn:g:d:1": numbered("one", 1), "urn:g:d:2": numbered("two", 2)}
    store.replace_graphs(before)
    last = numbered("three", 3)
    last.add((URIRef(f"{EX}3"), URIRef(f"{EX}resolution"), Literal("P1D", datatype=DURATION)))
    with pytest.raises(StoreError, match=r"nothing changed.*duration"):
        store.replace_graphs(
            {"urn:g:d:1": numbered("uno", 1), "urn:g:d:2": Graph(), "urn:g:d:3": last},
            drop_prefix="urn:g:d:",
        )
    assert store.graph_names("urn:g:") == ["urn:g:d:1", "urn:g:d:2"]
    assert values(virtuoso, "urn:g:d:1") == {"one 0", "one 1", "one 2"}
    assert values(virtuoso, "urn:g:d:2") == {"two 0", "two 1", "two 2"}
    assert values(virtuoso, "urn:g:d:3") == set()
    assert store.triple_count() == 6
    assert graphs_under(virtuoso, "urn:catalogue:store:") == {"urn:catalogue:store:graphs"}


@pytest.mark.service
def test_an_update_larger_than_virtuoso_reads_fails_and_changes_nothing(
    store: SparqlGraphStore, virtuoso: Virtuoso
) -> None:
    """Virtuoso reads at most 16 MB of one request: the limit of one atomic replacement."""
    store.replace_graphs({"urn:g:big": numbered("kept", 1)})
    huge = Graph()
    for i in range(18):
        huge.add((URIRef(f"{EX}{i}"), URIRef(f"{EX}text"), Literal(f"{i} " + "x" * 1_000_000)))
    with pytest.raises(StoreError, match=r"nothing changed \(an update of 18\.\d MB\)"):
        store.replace_graphs({"urn:g:big": huge})
    assert values(virtuoso, "urn:g:big") == {"kept 0", "kept 1", "kept 2"}


@pytest.mark.service
def test_a_crash_during_a_replacement_leaves_the_old_graphs_or_the_new(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Virtuoso killed (SIGKILL) while it applies a replacement, then restarted on its files:
    every graph is as before, or every graph is as replaced, never a mix."""
    server = launch(request, tmp_path / "virtuoso")
    try:
        old = {f"urn:g:crash:{i:02d}": numbered("old", i, 20) for i in range(30)}
        new = {f"urn:g:crash:{i:02d}": numbered("new", i, 4000) for i in range(30)}
        setup = SparqlGraphStore.open(NOWHERE, server.store_settings())
        setup.replace_graphs(old)
        setup.close()
        sent = threading.Event()

        def on_request(sending: httpx.Request) -> None:
            if sending.headers.get("content-type", "").startswith("application/sparql-update"):
                sent.set()

        client = http_client(server.store_settings())
        client.event_hooks = {"request": [on_request]}
        writer = SparqlGraphStore(client, server.url, server.url)
        failures: list[StoreError] = []

        def replace() -> None:
            try:
                writer.replace_graphs(new)
            except StoreError as exc:
                failures.append(exc)

        thread = threading.Thread(target=replace)
        thread.start()
        assert sent.wait(120)
        time.sleep(0.5)  # the request is in; Virtuoso takes several seconds to apply it
        server.kill()
        thread.join(120)
        writer.close()
        server.start()
        reopened = SparqlGraphStore.open(NOWHERE, server.store_settings())
        assert reopened.graph_names("urn:g:crash:") == sorted(old)
        outcomes = set()
        for name in old:
            triples = set(reopened.graph(name))
            outcomes.add(
                "old" if triples == set(old[name]) else "new" if triples == set(new[name]) else name
            )
        reopened.close()
        assert failures, "the replacement finished before the kill: nothing was crashed"
        assert outcomes in ({"old"}, {"new"})
        if outcomes == {"old"}:
            assert "whole or not at all" in str(failures[0])
    finally:
        server.stop()


# Limits


@pytest.mark.service
def test_a_graph_larger_than_the_row_limit_is_an_error_not_a_short_read(
    store: SparqlGraphStore,
) -> None:
    """Virtuoso cuts every result at ResultSetMaxRows, CONSTRUCT without saying so: the store
    counts the triples in the same query and refuses a short read."""
    big = Graph()
    for i in range(MAX_ROWS + 1):
        big.add((URIRef(f"{EX}s"), URIRef(f"{EX}n"), Literal(i)))
    store.replace_graphs({"urn:g:rows": big})
    assert store.triple_count() == MAX_ROWS + 1
    with pytest.raises(StoreError, match=rf"{MAX_ROWS} of the {MAX_ROWS + 1}.*ResultSetMaxRows"):
        store.graph("urn:g:rows")


@pytest.mark.service
def test_iris_virtuoso_would_cut_short_are_refused(store: SparqlGraphStore) -> None:
    """Virtuoso 7.2 keeps 1,879 bytes of a longer IRI, silently: the store takes 1,800."""
    longest = "urn:g:long:" + "é" * ((1800 - len("urn:g:long:")) // 2)
    assert len(longest.encode()) <= 1800
    store.replace_graphs({longest: numbered("kept", 1)})
    assert store.graph_names("urn:g:long:") == [longest]
    too_long = longest + "ab"
    with pytest.raises(StoreError, match="longer than 1800 bytes"):
        store.replace_graphs({too_long: numbered("x", 1)})
    subject = Graph()
    subject.add((URIRef(too_long), URIRef(f"{EX}p"), Literal("x")))
    with pytest.raises(StoreError, match="longer than 1800 bytes"):
        store.replace_graphs({longest: subject})
    assert store.graph_names("urn:g:long:") == [longest]
    assert set(store.graph(longest)) == set(numbered("kept", 1))


@pytest.mark.service
def test_graph_names_page_through_the_registry(store: SparqlGraphStore) -> None:
    suffixes = ["a", "B", "Z", "z", "é", "日本", "😀", "%41", "a:b", "a-", "aa", "~", "0", "9z"]
    names = [f"urn:g:page:{s}{i}" for s in suffixes for i in range(3)]
    store.replace_graphs({name: numbered(name, 1, 1) for name in names})
    store.page_size = 4
    assert store.graph_names("urn:g:page:") == sorted(names)
    assert store.graph_names("urn:g:page:a") == sorted(n for n in names if "page:a" in n)
    assert store.graph_names() == sorted(names)


# Authentication, timeouts, configuration


@pytest.mark.service
def test_wrong_credentials_are_a_clear_error(virtuoso: Virtuoso) -> None:
    settings = virtuoso.store_settings(password="not-the-password")
    with pytest.raises(StoreError, match="refused the credentials") as caught:
        SparqlGraphStore.open(NOWHERE, settings)
    assert "not-the-password" not in str(caught.value)


def test_basic_authentication_and_endpoint_errors() -> None:
    """Basic credentials on every request; an HTML error page becomes a one-line error."""
    seen: list[str] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        if b"COUNT" in request.content:
            count = {"type": "literal", "datatype": f"{XSD}integer", "value": "7"}
            return httpx.Response(200, json={"results": {"bindings": [{"n": count}]}})
        return httpx.Response(503, html="<html><body><h1>Busy</h1><p>come back later</p></body>")

    settings = StoreSettings(
        backend="sparql", url="http://sparql.test/q", user="reader", password="pw", auth="basic"
    )
    client = http_client(settings, httpx.MockTransport(endpoint))
    store = SparqlGraphStore(client, "http://sparql.test/q", "http://sparql.test/u")
    assert store.triple_count() == 7
    with pytest.raises(StoreError, match=r"failed a query \(HTTP 503\): Busy come back later$"):
        store.graph_names()
    store.close()
    assert seen == ["Basic " + base64.b64encode(b"reader:pw").decode()] * 2


def test_an_endpoint_that_does_not_answer_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/sparql"
        settings = StoreSettings(backend="sparql", url=url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"did not answer a query within 0\.5 s"):
            SparqlGraphStore.open(NOWHERE, settings)
        assert time.monotonic() - started < 10


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    settings = StoreSettings(backend="sparql", url=f"http://127.0.0.1:{free_port()}/sparql")
    with pytest.raises(StoreError, match=r"cannot open the SPARQL store at .* did not answer"):
        SparqlGraphStore.open(NOWHERE, settings)


def test_the_sparql_store_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="CATALOGUE_STORE__URL"):
        SparqlGraphStore.open(NOWHERE, StoreSettings(backend="sparql"))


@pytest.mark.service
def test_the_catalogue_opens_the_sparql_store_from_its_environment(
    virtuoso: Virtuoso, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CATALOGUE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CATALOGUE_STORE__BACKEND", "sparql")
    monkeypatch.setenv("CATALOGUE_STORE__URL", virtuoso.url)
    monkeypatch.setenv("CATALOGUE_STORE__USER", "dba")
    monkeypatch.setenv("CATALOGUE_STORE__PASSWORD", PASSWORD)
    settings = Settings()
    with open_catalogue(settings) as catalogue:
        assert isinstance(catalogue.store, SparqlGraphStore)
        catalogue.store.replace_graphs({"urn:g:env": numbered("env", 1)})
        assert set(catalogue.store.graph("urn:g:env")) == set(numbered("env", 1))
        catalogue.store.replace_graphs({}, drop_prefix="urn:g:env")
    assert not (tmp_path / "data" / "store").exists()
