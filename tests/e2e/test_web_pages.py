"""The web pages without a browser: each shell renders in English with its texts from
catalogue/web/texts.py, static assets are served, /web/config.json tells the browser how to sign
in, and every GraphQL operation the pages' scripts send is valid for the schema and runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from graphql import parse, validate

from catalogue.api.app import create_app
from catalogue.api.graphql.schema import schema
from catalogue.config import AuthSettings, IssuerSettings, load_providers
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue
from catalogue.web import STATIC_DIR
from catalogue.web.router import browser_config
from catalogue.web.texts import TEXTS
from tests.integration.test_harvest import DATA, one_source

JS = STATIC_DIR / "js"
PAGES = {
    "/": (
        "search",
        [
            "q",
            "q-suggestions",
            "search-btn",
            "facets",
            "results",
            "total",
            "next-page",
            "prev-page",
            "signin",
        ],
    ),
    "/feasibility": (
        "feasibility",
        [
            "criteria",
            "scope",
            "run-feasibility",
            "total-subjects",
            "total-studies",
            "total-series",
            "chart-providers",
            "chart-datasets",
            "strata",
            "disclosure-note",
            "normalised-query",
            "download-json",
            "download-csv",
        ],
    ),
    "/curation": ("curation", ["unmapped", "runs", "reports", "signin"]),
    "/datasets/p0/some-dataset/view": (
        "dataset",
        ["distributions", "provider", "concepts", "summary", "validation"],
    ),
}


class _Page(HTMLParser):
    """What a test reads of a page: html lang, ids, module scripts, the texts blob, the text."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.ids: set[str] = set()
        self.modules: list[str] = []
        self.stylesheets: list[str] = []
        self.texts_blob = ""
        self.text: list[str] = []
        self._in_texts = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "script" and a.get("type") == "module":
            self.modules.append(str(a["src"]))
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(str(a["href"]))
        self._in_texts = tag == "script" and a.get("id") == "texts"

    def handle_endtag(self, tag: str) -> None:
        self._in_texts = False

    def handle_data(self, data: str) -> None:
        if self._in_texts:
            self.texts_blob += data
        elif data.strip():
            self.text.append(data.strip())


def _read(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture
def client(tmp_path: Path, catalogue: Catalogue) -> Iterator[TestClient]:
    body = "providers:\n" + "".join(
        one_source(f"p{i}", f"kind: dcat\n        path: {DATA / name}")
        for i, name in enumerate(["valid_project.ttl", "example_consus_ckan.ttl"])
    )
    (tmp_path / "providers.yaml").write_text(body)
    assert harvest(catalogue, load_providers(tmp_path / "providers.yaml")).ok
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as test_client:
        yield test_client


def _operations() -> dict[str, str]:
    """The exported template literals of queries.js, by name."""
    source = (JS / "queries.js").read_text()
    found = dict(re.findall(r"export const (\w+) = `([^`]*)`;", source))
    assert len(found) == source.count("export const ")
    return found


def test_pages_render_in_english_with_their_texts(client: TestClient) -> None:
    for path, (page, ids) in PAGES.items():
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        read = _read(answer.text)
        assert read.lang == "en"
        assert set(ids) <= read.ids, (path, set(ids) - read.ids)
        assert json.loads(read.texts_blob) == {"common": TEXTS["common"], page: TEXTS[page]}
        assert read.modules == [f"/static/js/{page}.js"]  # one module per page
        visible = " ".join(read.text)
        assert TEXTS["common"]["site_name"] in visible
        assert TEXTS["common"]["nav_feasibility"] in visible
        if "title" in TEXTS[page] and page != "dataset":
            assert f"{TEXTS[page]['title']} · {TEXTS['common']['site_name']}" in visible


def test_dataset_page_links_its_rdf_and_the_rdf_route_still_answers(client: TestClient) -> None:
    query = "{ datasets(first: 10) { edges { node { identifier provider { id } } } } }"
    edges = client.post("/graphql", json={"query": query}).json()["data"]["datasets"]["edges"]
    assert any("/" in e["node"]["identifier"] for e in edges)  # IRIs as identifiers too
    for edge in edges:
        node = edge["node"]
        view = quote(f"/datasets/{node['provider']['id']}/{node['identifier']}/view", safe="/")
        html = client.get(view).text
        assert f'data-identifier="{node["identifier"]}"' in html
        links = re.findall(r'<a class="rdf" href="([^"]+)" type="text/turtle">', html)
        assert len(links) == 1
        rdf = client.get(links[0], headers={"Accept": "text/turtle"})
        assert rdf.status_code == 200, links[0]
        assert rdf.headers["content-type"].startswith("text/turtle")
        assert node["identifier"] in rdf.text or "dcat:Dataset" in rdf.text


def test_static_assets_are_served(client: TestClient) -> None:
    css = client.get("/static/css/site.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    for module in sorted(JS.glob("*.js")):
        answer = client.get(f"/static/js/{module.name}")
        assert answer.status_code == 200
        assert "javascript" in answer.headers["content-type"]
        for imported in re.findall(r'from "\./([\w.]+)"', answer.text):
            assert (JS / imported).is_file(), (module.name, imported)
    assert client.get("/static/js/nothing.js").status_code == 404


def test_config_json_without_and_with_sign_in(client: TestClient) -> None:
    assert client.get("/web/config.json").json() == {
        "graphql": "/graphql",
        "lang": "en",
        "authDisabled": True,
        "issuers": [],
    }
    auth = AuthSettings(
        issuers=[
            IssuerSettings(issuer="https://idp.example/realms/a", audience=["api", "other"]),
            IssuerSettings(
                issuer="https://idp.example/realms/b", audience="api", web_client_id="catalogue-web"
            ),
        ]
    )
    assert browser_config(auth) == {
        "graphql": "/graphql",
        "lang": "en",
        "authDisabled": False,
        "issuers": [
            {"issuer": "https://idp.example/realms/a", "clientId": "api"},
            {"issuer": "https://idp.example/realms/b", "clientId": "catalogue-web"},
        ],
    }


def test_every_query_of_the_scripts_is_valid_for_the_schema() -> None:
    operations = _operations()
    assert {"SEARCH", "CONCEPTS", "DATASET", "FEASIBILITY", "APPROVE", "REJECT"} <= set(operations)
    for name, text in operations.items():
        assert "${" not in text, name
        errors = validate(schema._schema, parse(text))
        assert not errors, (name, errors)
    for module in JS.glob("*.js"):  # no operation is written anywhere else
        if module.name != "queries.js":
            assert not re.search(r"`\s*(query|mutation)\b", module.read_text()), module.name


def test_every_text_the_scripts_ask_for_exists() -> None:
    for module in JS.glob("*.js"):
        for key in re.findall(r'\bt\("([\w.]+)"', module.read_text()):
            group, _, name = key.rpartition(".")
            assert name in TEXTS[group or "common"], (module.name, key)


def _run(client: TestClient, name: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/graphql", json={"query": _operations()[name], "variables": variables})
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, (name, body)
    data: dict[str, Any] = body["data"]
    return data


def test_the_scripts_operations_run_on_a_harvested_catalogue(client: TestClient) -> None:
    providers = _run(client, "PROVIDERS", {})["providers"]
    assert sorted(p["id"] for p in providers) == ["p0", "p1"]
    everything = _run(client, "SEARCH", {"search": None, "filter": None, "after": None, "first": 1})
    total = everything["datasets"]["totalCount"]
    assert total >= 2 and len(everything["datasets"]["edges"]) == 1
    assert everything["datasets"]["pageInfo"]["hasNextPage"]
    by_provider = _run(client, "SEARCH", {"filter": {"providers": ["p1"]}, "first": 20})
    facet = next(f for f in everything["datasets"]["facets"] if f["field"] == "PROVIDER")
    p1 = next(v["count"] for v in facet["values"] if v["value"] == "p1")
    assert by_provider["datasets"]["totalCount"] == p1
    node = everything["datasets"]["edges"][0]["node"]
    key = {"provider": node["provider"]["id"], "identifier": node["identifier"]}
    dataset = _run(client, "DATASET", key)["dataset"]
    assert dataset["title"] == node["title"]
    assert dataset["validation"] is None or isinstance(dataset["validation"]["conforms"], bool)
    listed = _run(client, "PROVIDER_DATASETS", {"provider": key["provider"]})["datasets"]["edges"]
    assert node["identifier"] in {e["node"]["identifier"] for e in listed}
    assert isinstance(_run(client, "REPORTS", key)["validationReports"], list)
    runs = _run(client, "RUNS", {})["harvestRuns"]
    assert {s["provider"] for s in runs[0]["sources"]} == {"p0", "p1"}
    assert isinstance(_run(client, "UNMAPPED", {})["unmappedValues"], list)
    assert isinstance(_run(client, "CONCEPTS", {"search": "lung"})["concepts"], list)
    feasibility = _run(
        client,
        "FEASIBILITY",
        {
            "query": {
                "where": {
                    "allOf": [
                        {"series": {"modality": ["CT"]}},
                        {"not": {"subject": {"sex": ["MALE"]}}},
                    ]
                }
            },
            "strata": [["SEX"], ["AGE_BAND"], ["MODALITY"]],
        },
    )["feasibility"]
    assert [t["dimensions"] for t in feasibility["strata"]] == [["SEX"], ["AGE_BAND"], ["MODALITY"]]
    assert feasibility["explanation"]["disclosure"]
