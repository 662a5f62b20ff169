"""Harvests over GraphQL: runs and validation reports against the harvest log's SQLite file,
a harvest started in the server and polled to its end, one harvest at a time, and the datasets'
published details against the DCAT files read with rdflib."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF

from catalogue.api.app import create_app
from catalogue.config import Settings, load_providers
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.harvest_jobs import jobs_for
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT
from tests.http_server import LocalServer, Reply, Request, local_server
from tests.integration.test_harvest import DATA

DCAT = Namespace("http://www.w3.org/ns/dcat#")  # open: rdflib's closed one warns under pytest
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
EX = Namespace("https://example.org/api-test/")
XSD_INTEGER = URIRef("http://www.w3.org/2001/XMLSchema#nonNegativeInteger")

FILES = {
    "xnat": DATA / "xnat_integration_test.ttl",
    "ckan": DATA / "example_consus_ckan.ttl",
    "bees": DATA / "semic-dcat-ap-3.0.1" / "example-bee-population.ttl",
}
"""Providers harvested before the server starts, each from one file of tests/data."""


def detailed_file(path: Path) -> Path:
    """A dataset with what the test data lacks: byte size, media type, download URL, a
    publisher with an IRI, a contact point with a URL."""
    graph = Graph()
    ds, dist, agent, contact = EX.ds, EX["ds/dist"], EX.publisher, BNode()
    graph.add((ds, RDF.type, DCAT.Dataset))
    graph.add((ds, DCTERMS.identifier, Literal("detailed")))
    graph.add((ds, DCTERMS.title, Literal("Detailed", lang="en")))
    graph.add((ds, DCTERMS.description, Literal("A dataset with every detail.", lang="en")))
    graph.add(
        (ds, DCAT.theme, URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL"))
    )
    graph.add((ds, DCAT.distribution, dist))
    graph.add((dist, RDF.type, DCAT.Distribution))
    graph.add((dist, DCTERMS.title, Literal("Images")))
    graph.add((dist, DCAT.accessURL, URIRef("https://example.org/access")))
    graph.add((dist, DCAT.downloadURL, URIRef("https://example.org/images.zip")))
    media = URIRef("https://www.iana.org/assignments/media-types/application/zip")
    graph.add((dist, DCAT.mediaType, media))
    graph.add((dist, DCAT.byteSize, Literal("5000000000", datatype=XSD_INTEGER)))
    graph.add((ds, DCTERMS.publisher, agent))
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal("Example Imaging Centre")))
    graph.add((ds, DCAT.contactPoint, contact))
    graph.add((contact, RDF.type, VCARD.Kind))
    graph.add((contact, VCARD.fn, Literal("Imaging data desk")))
    graph.add((contact, VCARD.hasEmail, URIRef("mailto:desk@example.org")))
    graph.add((contact, VCARD.hasURL, URIRef("https://example.org/contact")))
    graph.serialize(path, format="turtle")
    return path


# ---- ground truth from the files, with rdflib ---------------------------------------------------


def _one(graph: Graph, node: Any, prop: URIRef) -> str | None:
    values = sorted(str(v) for v in graph.objects(node, prop))
    return values[0] if values else None


def _name(graph: Graph, node: Any, prop: URIRef) -> str | None:
    """A literal, English or untagged first."""
    values = [v for v in graph.objects(node, prop) if isinstance(v, Literal)]
    for language in ("en", None):
        tagged = sorted(str(v).strip() for v in values if v.language == language)
        if tagged:
            return tagged[0]
    return sorted(str(v).strip() for v in values)[0] if values else None


def expected_details(path: Path) -> dict[str, dict[str, Any]]:
    """identifier -> themes, distributions, publisher and contact points, as the API should
    show them, read from the file."""
    graph = Graph().parse(path)
    out = {}
    for ds in graph.subjects(RDF.type, DCAT.Dataset):
        identifier = _name(graph, ds, DCTERMS.identifier) or str(ds)
        distributions = []
        for dist in graph.objects(ds, DCAT.distribution):
            size = _one(graph, dist, DCAT.byteSize)
            distributions.append(
                {
                    "iri": str(dist) if isinstance(dist, URIRef) else None,
                    "title": _name(graph, dist, DCTERMS.title),
                    "accessURLs": sorted(str(u) for u in graph.objects(dist, DCAT.accessURL)),
                    "downloadURLs": sorted(str(u) for u in graph.objects(dist, DCAT.downloadURL)),
                    "mediaType": _one(graph, dist, DCAT.mediaType),
                    "format": _one(graph, dist, DCTERMS.format),
                    "byteSize": None if size is None else float(size),
                    "license": _one(graph, dist, DCTERMS.license),
                }
            )
        publishers = [
            (_name(graph, a, FOAF.name), str(a) if isinstance(a, URIRef) else None)
            for a in graph.objects(ds, DCTERMS.publisher)
        ]
        publishers = [p for p in publishers if p[0] or p[1]]
        publisher = None
        if publishers:
            name, iri = max(publishers, key=lambda p: (p[0] or p[1] or "", p[1] or ""))
            publisher = {"name": name, "iri": iri}
        contacts = [
            {
                "name": _name(graph, c, VCARD.fn),
                "email": (_one(graph, c, VCARD.hasEmail) or "").removeprefix("mailto:") or None,
                "url": _one(graph, c, VCARD.hasURL),
            }
            for c in graph.objects(ds, DCAT.contactPoint)
        ]
        out[identifier] = {
            "themes": sorted(str(t) for t in graph.objects(ds, DCAT.theme)),
            "distributions": sorted(distributions, key=json.dumps),
            "publisher": publisher,
            "contactPoints": sorted(contacts, key=json.dumps),
        }
    return out


SOURCE_COLUMNS = [
    "provider",
    "source",
    "kind",
    "ok",
    "error",
    "complete",
    "listed",
    "new",
    "updated",
    "unchanged",
    "deleted",
    "rejected",
    "series",
    "suspect",
    "skipped",
    "warnings",
    "normalisations",
]


def _source(row: tuple[Any, ...]) -> dict[str, Any]:
    """A source_runs row (without its run id) as the API names its fields."""
    source = dict(zip(SOURCE_COLUMNS, row[1:], strict=True))
    source["ok"], source["complete"] = bool(source["ok"]), bool(source["complete"])
    skipped = json.loads(source["skipped"])
    source["skipped"] = [{"reason": k, "count": v} for k, v in sorted(skipped.items())]
    source["warnings"] = json.loads(source["warnings"])
    source["normalisations"] = json.loads(source["normalisations"])
    return source


def log_runs(data_dir: Path) -> list[dict[str, Any]]:
    """The runs and their sources straight from the harvest log's SQLite file, newest first."""
    with sqlite3.connect(data_dir / "harvest-log.sqlite") as db:
        runs = db.execute(
            "SELECT id, started, ended, ok, mapping_version FROM runs ORDER BY id DESC"
        ).fetchall()
        return [
            {
                "id": run_id,
                "started": started,
                "ended": ended,
                "ok": None if ok is None else bool(ok),
                "mappingVersion": mapping,
                "sources": [
                    _source(row)
                    for row in db.execute(
                        "SELECT * FROM source_runs WHERE run_id = ? ORDER BY rowid", [run_id]
                    )
                ],
            }
            for run_id, started, ended, ok, mapping in runs
        ]


# ---- the server ------------------------------------------------------------------------------


class Gate:
    """Holds the HTTP source's answer until released: a harvest that is still running."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.asked = threading.Event()
        self.open = threading.Event()

    def __call__(self, request: Request) -> Reply:
        self.asked.set()
        self.open.wait(20)
        return Reply(self.body)


@dataclass
class Server:
    client: TestClient
    catalogue: Catalogue
    data_dir: Path
    curator: dict[str, str]
    gate: Gate
    files: dict[str, Path]

    def gql(self, query: str, auth: bool = True, **variables: Any) -> dict[str, Any]:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=self.curator if auth else {},
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def data(self, query: str, **variables: Any) -> dict[str, Any]:
        result = self.gql(query, **variables)
        assert "errors" not in result, result["errors"]
        return result["data"]  # type: ignore[no-any-return]


@pytest.fixture
def web() -> Iterator[LocalServer]:
    with local_server() as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, web: LocalServer) -> Iterator[Server]:
    files = {**FILES, "detailed": detailed_file(tmp_path / "detailed.ttl")}
    gate = Gate(DATA.joinpath("valid_project.ttl").read_bytes())
    web.route("/catalog.ttl", gate)
    body = "providers:\n"
    for provider, path in files.items():
        body += f"  - id: {provider}\n    name: {provider.title()}\n    sources:\n"
        body += f"      - kind: dcat\n        path: {path}\n"
    body += "  - id: gated\n    name: Gated\n    sources:\n      - kind: dcat\n"
    body += f"        url: {web.url}/catalog.ttl\n"
    providers = tmp_path / "providers.yaml"
    providers.write_text(body)
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, secret="test-secret-0123456789", disclosure=EXACT, providers=providers
    )
    curator = ApiTokenStore(data_dir).create("curator-1", [Role.CURATOR])
    with open_catalogue(settings) as catalogue:
        parsed = load_providers(providers)
        for provider in files:
            assert harvest(catalogue, parsed, only=provider).ok
        with TestClient(create_app(settings, catalogue=catalogue)) as client:
            yield Server(
                client, catalogue, data_dir, {"Authorization": f"Bearer {curator}"}, gate, files
            )
            gate.open.set()
            jobs_for(client.app.state.context.view).wait(30)  # type: ignore[attr-defined]


RUN_FIELDS = """id started ended ok state mappingVersion sources { provider source kind ok error
    complete listed new updated unchanged deleted rejected series suspect
    skipped { reason count } warnings normalisations }"""


def _without_state(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "state"}


# ---- runs and reports ------------------------------------------------------------------------


def test_runs_equal_the_harvest_log(server: Server) -> None:
    runs = server.data(f"{{ harvestRuns(last: 10) {{ {RUN_FIELDS} }} }}")["harvestRuns"]
    logged = log_runs(server.data_dir)
    assert len(logged) == len(server.files)
    assert [_without_state(r) for r in runs] == logged
    assert {r["state"] for r in runs} == {"SUCCEEDED"}
    # each run harvested one provider: every dataset of its file was new
    for run in logged:
        (source,) = run["sources"]
        assert source["new"] == len(expected_details(server.files[source["provider"]]))
    two = server.data("{ harvestRuns(last: 2) { id } }")["harvestRuns"]
    assert [r["id"] for r in two] == [r["id"] for r in logged[:2]]
    one = server.data(
        f"query($id: Int!) {{ harvestRun(id: $id) {{ {RUN_FIELDS} }} }}", id=logged[-1]["id"]
    )
    assert _without_state(one["harvestRun"]) == logged[-1]
    assert server.data("{ harvestRun(id: 999) { id } }")["harvestRun"] is None
    assert (
        "last must be between"
        in server.gql("{ harvestRuns(last: 1000) { id } }")["errors"][0]["message"]
    )


def test_validation_reports_of_a_dataset_with_a_violation(server: Server) -> None:
    # the xnat datasets lack a health data access body, which HealthDCAT-AP requires
    graph = Graph().parse(FILES["xnat"])
    lacking = sorted(
        str(row[0])  # type: ignore[index]
        for row in graph.query(
            "SELECT ?d WHERE { ?d a dcat:Dataset FILTER NOT EXISTS { ?d health:hdab ?h } }",
            initNs={"dcat": DCAT, "health": HEALTH},
        )
    )
    assert lacking
    query = """query($id: String!) { validationReports(provider: "xnat", identifier: $id) {
        runId conforms violations report } }"""
    for identifier in lacking:
        reports = server.data(query, id=identifier)["validationReports"]
        with sqlite3.connect(server.data_dir / "harvest-log.sqlite") as db:
            rows = db.execute(
                "SELECT run_id, conforms, violations, report FROM validation_reports "
                "WHERE provider = 'xnat' AND identifier = ? ORDER BY rowid DESC",
                [identifier],
            ).fetchall()
        assert len(rows) == 1
        assert reports == [
            {"runId": r, "conforms": bool(c), "violations": v, "report": t} for r, c, v, t in rows
        ]
        (report,) = reports
        assert not report["conforms"] and report["violations"] >= 1
        assert "Violation healthdcatap:hdab" in report["report"]
        # the public status of the dataset says the same, with the run's start
        status = server.data(
            """query($id: String!) { dataset(provider: "xnat", identifier: $id) {
                validation { conforms violations runId checkedAt } } }""",
            id=identifier,
        )["dataset"]["validation"]
        started = {r["id"]: r["started"] for r in log_runs(server.data_dir)}
        assert status == {
            "conforms": False,
            "violations": report["violations"],
            "runId": report["runId"],
            "checkedAt": started[report["runId"]],
        }
    unknown = server.data('{ validationReports(provider: "xnat", identifier: "nope") { runId } }')
    assert unknown["validationReports"] == []


def test_curator_fields_need_the_curator_role(server: Server) -> None:
    for query in (
        "{ harvestRuns { id } }",
        "{ harvestRun(id: 1) { id } }",
        '{ validationReports(provider: "xnat", identifier: "x") { runId } }',
        'mutation { harvestProvider(provider: "xnat") { id } }',
    ):
        result = server.gql(query, auth=False)
        assert result.get("data") is None, query
        assert "curator" in result["errors"][0]["message"], query
    assert len(log_runs(server.data_dir)) == len(server.files)  # nothing was started


# ---- a harvest started over the API -------------------------------------------------------------


def _poll(server: Server, run_id: int) -> dict[str, Any]:
    query = f"query($id: Int!) {{ harvestRun(id: $id) {{ {RUN_FIELDS} }} }}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = server.data(query, id=run_id)["harvestRun"]
        if run["state"] != "RUNNING":
            return run  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running")


def test_harvest_provider_runs_in_the_background_one_at_a_time(server: Server) -> None:
    before = {r["id"] for r in log_runs(server.data_dir)}
    mutation = """mutation($p: ID!) {
        harvestProvider(provider: $p) { id state ended sources { provider } } }"""
    started = server.data(mutation, p="gated")["harvestProvider"]
    assert started["id"] not in before
    assert started["state"] == "RUNNING" and started["ended"] is None
    assert server.gate.asked.wait(20)  # the harvest is waiting for the source's answer
    # a second trigger, of any provider, is refused while the first runs
    refused = server.gql(mutation, p="xnat")
    assert refused["data"] is None
    message = refused["errors"][0]["message"]
    assert "already running" in message and f"run {started['id']}" in message
    assert refused["errors"][0]["extensions"]["code"] == "CONFLICT"
    # and so is a remap, which would re-annotate the datasets under the harvest
    remap = server.gql("mutation { remap { version } }")
    assert remap["data"] is None
    assert remap["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert f"run {started['id']}" in remap["errors"][0]["message"]
    assert server.data("{ harvestRuns(last: 1) { id state } }")["harvestRuns"] == [
        {"id": started["id"], "state": "RUNNING"}
    ]
    nothing = server.data('{ datasets(filter: {providers: ["gated"]}) { totalCount } }')
    assert nothing["datasets"]["totalCount"] == 0
    server.gate.open.set()
    done = _poll(server, started["id"])
    assert done["state"] == "SUCCEEDED" and done["ok"] is True
    logged = {r["id"]: r for r in log_runs(server.data_dir)}
    assert _without_state(done) == logged[started["id"]]
    assert set(logged) == before | {started["id"]}
    # the read view sees what was harvested
    expected = expected_details(DATA / "valid_project.ttl")
    (source,) = done["sources"]
    assert (source["provider"], source["listed"], source["new"]) == (
        "gated",
        len(expected),
        len(expected),
    )
    found = server.data(
        '{ datasets(filter: {providers: ["gated"]}) { totalCount edges { node { identifier } } } }'
    )["datasets"]
    assert found["totalCount"] == len(expected)
    assert {e["node"]["identifier"] for e in found["edges"]} == set(expected)
    # and another harvest may start now; harvesting the same file again changes nothing
    again = server.data(mutation, p="xnat")["harvestProvider"]
    rerun = _poll(server, again["id"])
    assert _without_state(rerun) == log_runs(server.data_dir)[0]
    (source,) = rerun["sources"]
    assert rerun["state"] == "SUCCEEDED" and source["listed"] == len(
        expected_details(FILES["xnat"])
    )
    assert (source["unchanged"], source["new"]) == (len(expected_details(FILES["xnat"])), 0)


def test_harvest_of_an_unknown_provider_is_refused(server: Server) -> None:
    result = server.gql('mutation { harvestProvider(provider: "nowhere") { id } }')
    assert result["data"] is None
    message = result["errors"][0]["message"]
    assert "unknown provider 'nowhere'" in message and "xnat" in message
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(log_runs(server.data_dir)) == len(server.files)


# ---- dataset details for researchers --------------------------------------------------------


DETAILS = """query($after: String) { datasets(first: 2, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { identifier provider { id } themes
      distributions { iri title accessURLs downloadURLs mediaType format byteSize license }
      publisher { name iri } contactPoints { name email url }
      validation { conforms runId } concepts { curie label } } } } }"""


def test_dataset_details_match_the_files(server: Server) -> None:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:  # pages of two: the validation statuses are loaded per page
        page = server.gql(DETAILS, auth=False, after=after)
        assert "errors" not in page, page["errors"]
        connection = page["data"]["datasets"]
        nodes += [e["node"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    expected = {p: expected_details(path) for p, path in server.files.items()}
    assert {(n["provider"]["id"], n["identifier"]) for n in nodes} == {
        (p, i) for p, found in expected.items() for i in found
    }
    with sqlite3.connect(server.data_dir / "harvest-log.sqlite") as db:
        validated = {
            (p, i): (bool(c), r)
            for p, i, c, r in db.execute(
                "SELECT provider, identifier, conforms, run_id FROM validation_reports"
            )
        }
    for node in nodes:
        provider, identifier = node["provider"]["id"], node["identifier"]
        want = expected[provider][identifier]
        assert node["themes"] == want["themes"]
        assert sorted(node["distributions"], key=json.dumps) == want["distributions"]
        assert node["publisher"] == want["publisher"]
        assert sorted(node["contactPoints"], key=json.dumps) == want["contactPoints"]
        conforms, run_id = validated[(provider, identifier)]
        assert node["validation"] == {"conforms": conforms, "runId": run_id}
        for concept in node["concepts"]:
            assert concept["label"]
    detailed = next(n for n in nodes if n["identifier"] == "detailed")
    assert detailed["distributions"][0]["byteSize"] == 5_000_000_000
    assert detailed["publisher"] == {
        "name": "Example Imaging Centre",
        "iri": str(EX.publisher),
    }
    ckan = next(n for n in nodes if n["provider"]["id"] == "ckan")
    assert len(ckan["distributions"]) == 9
