"""The GraphQL API over HTTP on a small harvested catalogue: search, paging, errors, health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import DisclosureSettings, load_providers
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue
from tests.integration.test_harvest import one_source, rows, series_table
from tests.providers import hospital


@pytest.fixture
def client(tmp_path: Path, catalogue: Catalogue) -> Iterator[TestClient]:
    series = rows(30, dataset="lung-ct") + rows(4, dataset="rare", prefix="R")
    assert harvest(catalogue, load_providers(hospital(tmp_path, series))).ok
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as test_client:
        yield test_client


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_health_and_graphiql(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_providers_and_dataset_paging(client: TestClient) -> None:
    data = gql(client, "{ providers { id name } }")["data"]
    assert data["providers"] == [{"id": "hospital", "name": "General Hospital"}]
    query = """query($after: String) { datasets(first: 1, after: $after) {
        totalCount edges { cursor node { identifier title provider { id } } }
        pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
    seen, after = [], None
    while True:
        conn = gql(client, query, after=after)["data"]["datasets"]
        assert conn["totalCount"] == 2
        seen += [e["node"]["identifier"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(
        [
            "http://localhost:8080/data/archive/projects/protected_optin",
            "http://localhost:8080/data/archive/projects/public_optin",
        ]
    )
    found = gql(client, '{ datasets(search: "protected") { edges { node { identifier } } } }')
    assert found["data"]["datasets"]["edges"][0]["node"]["identifier"].endswith("protected_optin")


def test_feasibility_exact(client: TestClient) -> None:
    result = gql(
        client,
        """{ feasibility(query: { subject: { sex: [FEMALE] },
        series: [{ modality: ["seg"], bodyPart: ["chest"] }] }) {
        subjects { value suppressed precision } studies { value } series { value }
        byProvider { provider { id name } subjects { value } }
        byDataset { dataset { identifier } subjects { value suppressed } } } }""",
    )
    f = result["data"]["feasibility"]
    # rows(): odd patients are female; every patient has one CT and one SEG series
    assert f["subjects"] == {"value": 15 + 2, "suppressed": False, "precision": "exact"}
    assert f["studies"]["value"] == 17
    assert f["series"]["value"] == 17
    assert f["byProvider"] == [
        {"provider": {"id": "hospital", "name": "General Hospital"}, "subjects": {"value": 17}}
    ]
    by_dataset = {d["dataset"]["identifier"]: d["subjects"]["value"] for d in f["byDataset"]}
    assert by_dataset == {"lung-ct": 15, "rare": 2}


def test_default_disclosure_suppresses(client: TestClient, catalogue: Catalogue) -> None:
    # default rules without noise, so the rounded values can be stated
    catalogue.settings.disclosure = DisclosureSettings(epsilon=None)
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as strict:
        f = gql(
            strict,
            """{ feasibility(query: {}) { subjects { value suppressed precision }
            byDataset { dataset { identifier } subjects { value suppressed } } } }""",
        )["data"]["feasibility"]
    assert f["subjects"] == {"value": 35, "suppressed": False, "precision": "rounded to 5"}
    by_dataset = {d["dataset"]["identifier"]: d["subjects"] for d in f["byDataset"]}
    assert by_dataset["rare"] == {"value": None, "suppressed": True}
    # lung-ct (30) would give rare away as the provider's 35 minus 30: suppressed with it
    assert by_dataset["lung-ct"] == {"value": None, "suppressed": True}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            '{ feasibility(query: { datasets: { providers: ["nowhere"] } }) { subjects { value } } }',  # noqa: E501
            "unknown provider(s): nowhere",
        ),
        (
            "{ feasibility(query: { subject: { ageMin: 70, ageMax: 20 } }) { subjects { value } } }",  # noqa: E501
            "ageMin is greater than ageMax",
        ),
        ('{ datasets(after: "!!!") { totalCount } }', "invalid cursor"),
        ("{ datasets(first: 100000) { totalCount } }", "first must be between 0 and 100"),
        ("{ feasibility(query: { subject: { sex: [ALIEN] } }) { subjects { value } } }", "ALIEN"),
    ],
)
def test_errors_are_clear(client: TestClient, query: str, message: str) -> None:
    errors = gql(client, query)["errors"]
    assert message in errors[0]["message"]
    assert "Traceback" not in str(errors)


def test_unknown_dataset_is_an_error(client: TestClient) -> None:
    query = '{ feasibility(query: { datasets: { datasets: ["lung-ct", "atlantis"] } }) { subjects { value } } }'  # noqa: E501
    assert gql(client, query)["errors"][0]["message"] == "unknown dataset(s): atlantis"


def test_dataset_summaries_are_disclosure_controlled(tmp_path: Path, catalogue: Catalogue) -> None:
    catalogue.settings.disclosure = DisclosureSettings()
    table = series_table(
        tmp_path / "s.parquet", rows(30, dataset="lung-ct") + rows(4, dataset="rare", prefix="R")
    )
    described = tmp_path / "catalog.ttl"
    described.write_text(
        """@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
        <http://example.org/lung-ct> a dcat:Dataset ; dct:identifier "lung-ct" ;
            dct:title "Lung CT"@en ."""
    )
    (tmp_path / "providers.yaml").write_text(
        "providers:\n"
        + one_source(
            "h", f"kind: dicom-table\n        path: {table}\n        dataset_column: collection_id"
        )
        + f"      - kind: dcat\n        path: {described}\n"
    )
    assert harvest(catalogue, load_providers(tmp_path / "providers.yaml")).ok
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as c:
        data = gql(
            c,
            """{ lung: dataset(provider: "h", identifier: "lung-ct") { summary {
            numberOfUniqueIndividuals numberOfRecords minTypicalAge maxTypicalAge
            modalities bodyParts manufacturers } } }""",
        )["data"]
    # rows(): one study per patient, ages 40 + i, every patient has a CT and a SEG of the chest
    assert data["lung"]["summary"] == {
        "numberOfUniqueIndividuals": 30,
        "numberOfRecords": 30,
        "minTypicalAge": 40,
        "maxTypicalAge": 69,
        "modalities": ["CT", "SEG"],
        "bodyParts": ["CHEST"],
        "manufacturers": ["siemens"],
    }
    rare = catalogue.store.graph("urn:catalogue:graph:summary:h:rare")
    text = rare.serialize(format="nt")
    assert "numberOfUniqueIndividuals" not in text and "CHEST" not in text
