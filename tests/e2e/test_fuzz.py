"""Property-based fuzzing (schemathesis) of the GraphQL schema and the REST routes of the app
over a small real catalogue: whatever is asked, valid or not, the answer is never a server
error, never shows a stack trace and stays bounded in size. Derandomised, so a CI run is
reproducible; the example counts keep it to a minute or two."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.schemas import BaseSchema

from catalogue.api.app import create_app
from catalogue.config import AuthSettings, LimitSettings, Settings
from catalogue.services.runtime import open_catalogue
from tests.conftest import EXACT
from tests.e2e.test_limits import harvested

MAX_BODY = 5_000_000
STACK_TRACE = ("Traceback (most recent call last)", 'File "')

FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app over a harvested catalogue; every role (auth disabled) so that every field is
    reached, exact counts and no rate limits so that feasibility runs each time."""
    root = tmp_path_factory.mktemp("fuzz")
    configured = Settings(
        data_dir=root / "data",
        secret="fuzz-secret-0123456789",
        disclosure=EXACT,
        auth=AuthSettings(disabled=True),
        limits=LimitSettings(feasibility_per_user=None, feasibility_per_ip=None),
    )
    with open_catalogue(configured) as catalogue:
        harvested(Path(root), catalogue)
        configured.providers = root / "providers.yaml"  # for the harvestProvider mutation
        yield create_app(configured, catalogue=catalogue)


def fuzz(schema: BaseSchema, modes: tuple[GenerationMode, ...]) -> list[str]:
    """Fuzz every operation of the schema in each mode; the operations fuzzed."""
    done = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode in modes:

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Case[Any]) -> None:
                check(case.call())

            try:
                run()
            except Unsatisfiable:  # no invalid request of a route without parameters
                assert mode is GenerationMode.NEGATIVE
        done.append(operation.label)
    return done


def check(response: Response) -> None:
    """No server error, no stack trace, a bounded body."""
    text = response.content.decode("utf-8", "replace")
    assert response.status_code < 500, text[:2000]
    for marker in STACK_TRACE:
        assert marker not in text, text[:2000]
    assert len(response.content) < MAX_BODY
    if response.headers.get("content-type", [""])[0].startswith("application/json"):
        body = json.loads(text)
        errors = body.get("errors") if isinstance(body, dict) else None
        for error in errors or ():  # a GraphQL answer: every error coded, none unexpected
            code = (error.get("extensions") or {}).get("code")
            assert code and code != "INTERNAL_SERVER_ERROR", text[:2000]


def test_graphql_fuzz(app: FastAPI) -> None:
    schema = schemathesis.graphql.from_asgi("/graphql", app)
    fuzzed = fuzz(schema, tuple(GenerationMode))
    assert {"Query.feasibility", "Query.datasets", "Mutation.proposeMapping"} <= set(fuzzed)


def test_rest_fuzz(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = fuzz(schema, tuple(GenerationMode))
    assert {"GET /catalog", "GET /health"} <= set(fuzzed)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GRAPHQL_WORDS = st.sampled_from(
    [
        "{",
        "}",
        "(",
        ")",
        ":",
        "$n",
        "query",
        "mutation",
        "fragment",
        "on",
        "...",
        "first",
        "1",
        "-1",
        "datasets",
        "feasibility",
        "providers",
        "edges",
        "node",
        "strata",
        "[",
        "]",
        '"x"',
    ]
)


def test_graphql_raw_requests(app: FastAPI) -> None:
    """Malformed requests: arbitrary JSON bodies, and documents of GraphQL words in any order."""
    with TestClient(app) as client:

        @FUZZ
        @given(body=st.dictionaries(st.sampled_from(["query", "variables", "operationName"]), JSON))
        def any_body(body: dict[str, object]) -> None:
            check_raw(client.post("/graphql", json=body))

        @FUZZ
        @given(words=st.lists(GRAPHQL_WORDS, max_size=40), variables=JSON)
        def any_document(words: list[str], variables: object) -> None:
            body = {"query": " ".join(words), "variables": {"n": variables}}
            check_raw(client.post("/graphql", json=body))

        any_body()
        any_document()


def check_raw(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:2000]
    body = response.json()
    for error in body.get("errors") or ():
        code = error["extensions"]["code"]
        assert code != "INTERNAL_SERVER_ERROR", response.text[:2000]
    assert "Traceback" not in response.text
