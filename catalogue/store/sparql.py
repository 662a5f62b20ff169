"""GraphStore on a remote SPARQL 1.1 endpoint (Virtuoso, Fuseki, GraphDB...): the scale-out store.

Spoken to with httpx rather than rdflib's SPARQLUpdateStore: that store sends one triple pattern
per call, cannot put several operations in one request (the unit of atomicity here), has no
digest authentication or timeouts, and refuses blank nodes. rdflib still gives the terms.

The store keeps a registry graph of the graphs it wrote, so that it lists and counts only its
own graphs on an endpoint that also holds others (Virtuoso keeps its system graphs there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rdflib import RDF, XSD, BNode, Graph, URIRef
from rdflib.term import Identifier

from catalogue.dcat.terms import RdfGraph, rdflib_literal
from catalogue.exceptions import ConfigError, StoreError
from catalogue.store.sparql_update import (
    KEY,
    REGISTRY,
    SKOLEM,
    graph_iri,
    key,
    replace_request,
    string,
)

if TYPE_CHECKING:
    from catalogue.config import StoreSettings

RESULTS = "application/sparql-results+json"
UPDATE = "application/sparql-update; charset=utf-8"


class SparqlGraphStore:
    """Named graphs on a SPARQL 1.1 Query + Update endpoint; each replacement is one request."""

    page_size = 1000
    """Graph names read per query (at most the endpoint's row limit: Virtuoso's
    ResultSetMaxRows, and 10,000 for its sorted results)."""

    @classmethod
    def open(cls, path: Path, settings: StoreSettings) -> SparqlGraphStore:
        """Connect to `settings.url` (the data folder `path` is not used) and check it answers."""
        if settings.url is None:
            raise ConfigError(
                "the sparql graph store needs store.url (CATALOGUE_STORE__URL), "
                "the SPARQL 1.1 query endpoint"
            )
        update_url = settings.update_url or settings.url
        client = http_client(settings)
        store = cls(client, str(settings.url), str(update_url))
        try:
            store._select(f"SELECT ?g WHERE {{ GRAPH <{REGISTRY}> {{ ?g <{KEY}> ?k }} }} LIMIT 1")
        except StoreError as exc:
            client.close()
            raise StoreError(f"cannot open the SPARQL store at {settings.url}: {exc}") from exc
        return store

    def __init__(self, client: httpx.Client, url: str, update_url: str) -> None:
        self._client = client
        self.url, self.update_url = url, update_url

    def add_graphs(self, graphs: Mapping[str, RdfGraph]) -> None:
        """A replacement: one request is as fast here, and atomic."""
        self.replace_graphs(graphs)

    def replace_graphs(
        self, graphs: Mapping[str, RdfGraph], drop_prefix: str | None = None
    ) -> None:
        clear = self.graph_names(drop_prefix) if drop_prefix is not None else []
        request = replace_request(graphs, clear)
        if request is None:
            return
        body = request.text.encode()
        size = len(body)
        try:
            self._post(
                self.update_url,
                "the replacement",
                content=body,
                headers={"Content-Type": UPDATE},
            )
        except _UnansweredError as exc:
            raise StoreError(
                f"{str(exc).rstrip('.')}; the endpoint applies a replacement whole or not at all, "
                "so the store holds either the old graphs or the new ones"
            ) from exc
        except StoreError as exc:
            raise self._failed(request.probe, request.manifest, size, exc) from exc

    def graph(self, name: str) -> Graph:
        node = graph_iri(name)
        rows = self._select(
            "SELECT ?s ?p ?o ?n WHERE { { SELECT (COUNT(*) AS ?n) WHERE "
            f"{{ GRAPH {node} {{ ?s ?p ?o }} }} }} GRAPH {node} {{ ?s ?p ?o }} }}"
        )
        out = Graph()
        for row in rows:
            out.add((_subject(row["s"]), _predicate(row["p"]), _term(row["o"])))
        expected = int(rows[0]["n"]["value"]) if rows else 0
        if len(out) < expected:
            raise StoreError(
                f"the SPARQL endpoint returned {len(out)} of the {expected} triples of graph "
                f"{name}: raise its result row limit (Virtuoso: [SPARQL] ResultSetMaxRows)"
            )
        return out

    def graph_names(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        while True:
            # Virtuoso orders and compares long string literals wrongly unless they go through
            # STR(), and finds nothing for STRSTARTS(?x, ""): an empty prefix is no filter
            tests = [f"STRSTARTS(?k, {string(key(prefix))})"] if prefix else []
            if keys:
                tests.append(f"STR(?k) > {string(keys[-1])}")
            where = f" FILTER({' && '.join(tests)})" if tests else ""
            rows = self._select(
                f"SELECT ?k WHERE {{ GRAPH <{REGISTRY}> {{ ?g <{KEY}> ?k }}{where} }} "
                f"ORDER BY STR(?k) LIMIT {self.page_size}"
            )
            if not rows:
                return sorted(bytes.fromhex(k).decode() for k in keys)
            keys.extend(row["k"]["value"] for row in rows)

    def triple_count(self) -> int:
        rows = self._select(
            f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{REGISTRY}> {{ ?g <{KEY}> ?k }} "
            "GRAPH ?g { ?s ?p ?o } }"
        )
        return int(rows[0]["n"]["value"]) if rows else 0

    def close(self) -> None:
        self._client.close()

    def _select(self, query: str) -> list[dict[str, dict[str, str]]]:
        response = self._post(
            self.url, "a query", data={"query": query}, headers={"Accept": RESULTS}
        )
        try:
            rows: list[dict[str, dict[str, str]]] = response.json()["results"]["bindings"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the SPARQL endpoint {self.url} sent no JSON results") from exc
        return rows

    def _post(self, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.post(url, **kwargs)
        except httpx.TimeoutException as exc:
            waited = self._client.timeout.read
            raise _UnansweredError(
                f"the SPARQL endpoint {url} did not answer {what} within {waited:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise _UnansweredError(
                f"the SPARQL endpoint {url} did not answer {what}: {exc}"
            ) from exc
        if response.status_code == 401:
            raise StoreError(
                f"the SPARQL endpoint {url} refused the credentials (store.user, store.password, "
                "store.auth)"
            )
        if response.status_code >= 400:
            raise StoreError(
                f"the SPARQL endpoint {url} failed {what} (HTTP {response.status_code}): "
                f"{_message(response)}"
            )
        return response

    def _failed(self, probe: str, manifest: str, size: int, exc: StoreError) -> StoreError:
        """The error for a failed replacement, saying whether anything changed: the manifest
        exists only if the request got past the literal probe and its error was then committed
        (Virtuoso does that for errors an operation signals)."""
        try:
            rows = self._select(
                f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{manifest}> {{ ?s ?p ?o }} }}"
            )
            partial = bool(rows) and int(rows[0]["n"]["value"]) > 0
            self._post(
                self.update_url,
                "the clean-up",
                content=f"DROP SILENT GRAPH <{probe}> ;\nDROP SILENT GRAPH <{manifest}>".encode(),
                headers={"Content-Type": UPDATE},
            )
        except StoreError as check:
            return StoreError(
                f"graph replacement failed ({exc}); checking what changed failed too: {check}"
            )
        if partial:
            return StoreError(
                f"graph replacement failed part-way and the endpoint kept the "
                f"part before the failure: {exc}"
            )
        amount = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
        return StoreError(
            f"graph replacement failed, nothing changed (an update of {amount}): {exc}"
        )


def http_client(
    settings: StoreSettings, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The HTTP client for the endpoint: its credentials (digest or basic) and timeout."""
    auth: httpx.Auth | None = None
    if settings.user is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        auth_cls = httpx.DigestAuth if settings.auth == "digest" else httpx.BasicAuth
        auth = auth_cls(settings.user, password)
    return httpx.Client(
        auth=auth, timeout=settings.timeout, follow_redirects=False, transport=transport
    )


class _UnansweredError(StoreError):
    """No answer came: the request may or may not have been applied."""


def _message(response: httpx.Response) -> str:
    """The endpoint's error, without the echoed query (Virtuoso repeats it in full) or HTML."""
    text = response.text.split("\n\nSPARQL query:", 1)[0]
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    return text[:400] or response.reason_phrase


def _term(value: dict[str, str]) -> Identifier:
    """An rdflib term from a SPARQL JSON results binding; skolem IRIs become blank nodes, and
    literals keep the lexical form the endpoint gives."""
    kind, text = value["type"], value["value"]
    if kind == "uri":
        return BNode(text.removeprefix(SKOLEM)) if text.startswith(SKOLEM) else URIRef(text)
    if kind == "bnode":
        return BNode(text)
    datatype = value.get("datatype")
    if datatype == _LANG_STRING:  # the type of a tagged string, which some endpoints name
        datatype = None
    elif datatype == _BOOLEAN:  # Virtuoso keeps booleans as integers: back to true and false
        text = _BOOLEANS.get(text, text)
    return rdflib_literal(text, datatype, value.get("xml:lang"))


_LANG_STRING, _BOOLEAN = str(RDF.langString), str(XSD.boolean)
_BOOLEANS = {"1": "true", "0": "false"}


def _subject(value: dict[str, str]) -> URIRef | BNode:
    term = _term(value)
    if not isinstance(term, URIRef | BNode):
        raise StoreError(f"the SPARQL endpoint sent a literal subject: {value}")
    return term


def _predicate(value: dict[str, str]) -> URIRef:
    term = _term(value)
    if not isinstance(term, URIRef):
        raise StoreError(f"the SPARQL endpoint sent a predicate that is not an IRI: {value}")
    return term
