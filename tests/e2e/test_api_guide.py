"""Every GraphQL example of docs/api-guide.md runs, as the role named above it, against the IDC
demo served with authentication on, and answers without errors and with something in it.

Examples marked `writes` change the catalogue; they run on this module's own copy of the demo
(its DCAT-AP sources only), so the session's shared IDC demo stays as the other tests expect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import AuthSettings, Settings, load_providers
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.harvest_jobs import jobs_for
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT, NO_RATE_LIMITS, IdcDemo
from tests.providers import demo_dcat_only

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api-guide.md"
EXAMPLE = re.compile(r"<!-- run: (\w+)(, writes)? -->\n```graphql\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Example:
    role: Role
    writes: bool
    text: str
    line: int

    @property
    def name(self) -> str:
        return f"line{self.line}-{self.role.value}"


def examples() -> list[Example]:
    source = GUIDE.read_text()
    return [
        Example(Role(m[1]), bool(m[2]), m[3].strip(), source.count("\n", 0, m.start()) + 1)
        for m in EXAMPLE.finditer(source)
    ]


def test_every_graphql_block_of_the_guide_runs() -> None:
    blocks = re.findall(r"```graphql\n", GUIDE.read_text())
    found = examples()
    assert len(found) == len(blocks), "a graphql block of the guide has no `<!-- run: ... -->`"
    roles = {e.role for e in found}
    assert {Role.ANONYMOUS, Role.RESEARCHER, Role.CURATOR, Role.HARVESTER} <= roles
    assert any(e.writes for e in found)


def serve(catalogue: Catalogue, settings: Settings) -> tuple[TestClient, dict[Role, str]]:
    """The app over the catalogue with authentication on, and a token per signed-in role."""
    tokens = ApiTokenStore(settings.data_dir)
    secrets: dict[Role, str] = {
        role: tokens.create(f"guide-{role.value}-{id(catalogue)}", [role])
        for role in Role
        if role is not Role.ANONYMOUS
    }
    return TestClient(create_app(settings, catalogue=catalogue)), secrets


def run(client: TestClient, tokens: dict[Role, str], example: Example) -> dict[str, Any]:
    headers = (
        {}
        if example.role is Role.ANONYMOUS
        else {"Authorization": f"Bearer {tokens[example.role]}"}
    )
    response = client.post("/graphql", json={"query": example.text}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, f"{example.name}: {body['errors']}"
    data: dict[str, Any] = body["data"]
    for field, value in data.items():
        assert value, f"{example.name}: {field} came back empty: {value!r}"
    return data


@pytest.fixture(scope="module")
def demo_app(idc_demo: IdcDemo) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    settings = idc_demo.catalogue.settings.model_copy(update={"auth": AuthSettings()})
    client, tokens = serve(idc_demo.catalogue, settings)
    with client:
        yield client, tokens


@pytest.fixture(scope="module")
def writable_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    root = tmp_path_factory.mktemp("api-guide")
    providers = demo_dcat_only(request, root / "demo")
    settings = Settings(
        data_dir=root / "data",
        secret="guide-secret-0123456789",
        providers=providers,
        disclosure=EXACT,
        limits=NO_RATE_LIMITS,
    )
    with open_catalogue(settings) as opened:
        assert harvest(opened, load_providers(providers)).ok
        client, tokens = serve(opened, settings)
        with client:
            yield client, tokens
            jobs_for(client.app.state.context.view).wait()  # type: ignore[attr-defined]


READS = [e for e in examples() if not e.writes]
WRITES = [e for e in examples() if e.writes]


@pytest.mark.parametrize("example", READS, ids=[e.name for e in READS])
def test_read_example(demo_app: tuple[TestClient, dict[Role, str]], example: Example) -> None:
    run(*demo_app, example)


@pytest.mark.parametrize("example", WRITES, ids=[e.name for e in WRITES])
def test_write_example(writable_app: tuple[TestClient, dict[Role, str]], example: Example) -> None:
    run(*writable_app, example)


def test_examples_are_refused_to_anonymous_callers_where_the_guide_says_a_role(
    demo_app: tuple[TestClient, dict[Role, str]],
) -> None:
    client, _ = demo_app
    for example in READS:
        if example.role is Role.ANONYMOUS:
            continue
        body = client.post("/graphql", json={"query": example.text}).json()
        assert body["data"] is None, example.name
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}
