"""API limits over HTTP on a small harvested catalogue: operation depth, aliases, tokens, length
and cost, page size caps, timeouts, feasibility rate limits, error codes and masking."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.api.graphql import limits as graphql_limits
from catalogue.api.ratelimit import FeasibilityRateLimits, TokenBuckets
from catalogue.api.routes import dcat as dcat_routes
from catalogue.config import AuthSettings, DisclosureSettings, LimitSettings, load_providers
from catalogue.domain.principal import Role
from catalogue.exceptions import StoreError
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.feasibility import FeasibilityService
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue
from tests.integration.test_harvest import rows
from tests.providers import hospital

UNLIMITED = {"feasibility_per_user": None, "feasibility_per_ip": None}
DATASETS_5 = "{ datasets(first: 5) { edges { node { identifier } } } }"
# cost by the documented rule: identifier 1; node 1 + 1; edges 1 + 1 x 2 (edges: counted by
# first); datasets 1 + 5 x 3
DATASETS_5_COST = 16
FEASIBILITY = "{ feasibility(query: {}) { subjects { value } } }"
# 1 + FEASIBILITY_COST (100) + subjects (1 + value 1)
FEASIBILITY_COST = 103


def harvested(tmp_path: Path, catalogue: Catalogue) -> Catalogue:
    """The catalogue with one provider: two DCAT datasets and a DICOM table of 34 subjects."""
    series = rows(30, dataset="lung-ct") + rows(4, dataset="rare", prefix="R")
    assert harvest(catalogue, load_providers(hospital(tmp_path, series))).ok
    return catalogue


@pytest.fixture
def ready(tmp_path: Path, catalogue: Catalogue) -> Catalogue:
    return harvested(tmp_path, catalogue)


def app_of(catalogue: Catalogue, **limits: Any) -> FastAPI:
    """The app under these limits (rate limits off unless given)."""
    catalogue.settings.limits = LimitSettings(**{**UNLIMITED, **limits})
    return create_app(catalogue.settings, catalogue=catalogue)


@contextmanager
def serving(
    catalogue: Catalogue, address: str = "testclient", **limits: Any
) -> Iterator[TestClient]:
    """A client, from this address, of the app under these limits."""
    with TestClient(app_of(catalogue, **limits), client=(address, 50000)) as client:
        yield client


def post(client: TestClient, query: str, status: int = 200, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


def code_of(body: dict[str, Any]) -> str:
    return str(error_of(body)["extensions"]["code"])


# -- operation limits ------------------------------------------------------------------------


def test_depth_limit(ready: Catalogue) -> None:
    shallow = "{ datasets { edges { node { identifier } } } }"  # depth 3
    deep = "{ datasets { edges { node { provider { id } } } } }"  # depth 4
    with serving(ready, max_depth=3) as client:
        assert "errors" not in post(client, shallow)
        body = post(client, deep)
    assert body["data"] is None
    assert code_of(body) == "QUERY_TOO_COMPLEX"
    assert "exceeds maximum operation depth of 3" in error_of(body)["message"]


def test_depth_counts_fragments(ready: Catalogue) -> None:
    query = """{ datasets { ...Page } } fragment Page on DatasetConnection {
        edges { node { provider { id } } } }"""
    with serving(ready, max_depth=3) as client:
        assert code_of(post(client, query)) == "QUERY_TOO_COMPLEX"


def test_alias_limit(ready: Catalogue) -> None:
    two = "{ a: providers { id } b: providers { id } }"
    three = "{ a: providers { id } b: providers { id } c: providers { name } }"
    with serving(ready, max_aliases=2) as client:
        assert post(client, two)["data"]["b"] == [{"id": "hospital"}]
        body = post(client, three)
    assert code_of(body) == "QUERY_TOO_COMPLEX"
    assert "3 aliases found. Allowed: 2" in error_of(body)["message"]


def test_token_limit_counts_comments(ready: Catalogue) -> None:
    with serving(ready, max_tokens=12) as client:
        assert "errors" not in post(client, "{ providers { id name } }")  # 6 tokens
        padded = "{ providers { id name } }" + "\n# padding" * 10
        body = post(client, padded)
    assert code_of(body) == "QUERY_TOO_COMPLEX"
    assert "Document contains more than 12 tokens" in error_of(body)["message"]


def test_length_limit(ready: Catalogue) -> None:
    long_search = '{ datasets(search: "' + "x" * 300 + '") { totalCount } }'
    with serving(ready, max_query_length=200) as client:
        body = post(client, long_search)
    assert code_of(body) == "QUERY_TOO_COMPLEX"
    assert "more than 200 code points" in error_of(body)["message"]


def test_cost_limit(ready: Catalogue) -> None:
    with serving(ready, max_cost=DATASETS_5_COST) as client:
        assert len(post(client, DATASETS_5)["data"]["datasets"]["edges"]) == 2
    with serving(ready, max_cost=DATASETS_5_COST - 1) as client:
        body = post(client, DATASETS_5)
        assert body["data"] is None
        assert code_of(body) == "QUERY_TOO_COMPLEX"
        assert f"estimated cost {DATASETS_5_COST} is over the limit" in error_of(body)["message"]
        # a variable's value counts like a literal; a smaller page costs less
        variable = "query($n: Int!) { datasets(first: $n) { edges { node { identifier } } } }"
        assert code_of(post(client, variable, n=5)) == "QUERY_TOO_COMPLEX"
        assert "errors" not in post(client, variable, n=4)  # 1 + 4 x 3 = 13
        defaulted = "query($n: Int = 5) { datasets(first: $n) { edges { node { identifier } } } }"
        assert code_of(post(client, defaulted)) == "QUERY_TOO_COMPLEX"


def test_a_connection_page_multiplies_its_items_only(ready: Catalogue) -> None:
    query = "{ datasets(first: 5) { totalCount facets { field } edges { node { identifier } } } }"
    # datasets 1 + totalCount 1 + facets (1 + 7 facets x field 1) + 5 x (edges 1 + node 2)
    cost = 1 + 1 + (1 + 7) + 5 * 3
    with serving(ready, max_cost=cost) as client:
        assert post(client, query)["data"]["datasets"]["totalCount"] == 2
    with serving(ready, max_cost=cost - 1) as client:
        assert f"estimated cost {cost} is over" in error_of(post(client, query))["message"]


def test_feasibility_and_strata_cost_more(ready: Catalogue) -> None:
    strata = "{ feasibility(query: {}, strata: [[SEX], [MODALITY]]) { subjects { value } } }"
    with serving(ready, max_cost=FEASIBILITY_COST) as client:
        assert post(client, FEASIBILITY)["data"]["feasibility"]["subjects"]["value"] == 34
        assert code_of(post(client, strata)) == "QUERY_TOO_COMPLEX"
    with serving(ready, max_cost=FEASIBILITY_COST + 2 * graphql_limits.STRATA_COST) as client:
        assert "errors" not in post(client, strata)


def test_fragments_spread_often_are_counted_once_per_selection(ready: Catalogue) -> None:
    spreads = " ".join(["...Ids"] * 50)
    query = f"{{ providers {{ {spreads} }} }} fragment Ids on Provider {{ id }}"
    # providers 1 + 20 (its list size) x (id 1)
    with serving(ready, max_cost=21) as client:
        assert post(client, query)["data"]["providers"] == [{"id": "hospital"}]


# -- page sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cap"),
    [
        ("{ datasets(first: 101) { totalCount } }", 100),
        ("{ datasets(first: -1) { totalCount } }", 100),
        ('{ concepts(search: "lung", first: 101) { curie } }', 100),
        ("{ unmappedValues(first: 1001) { value } }", 1000),
        ("{ mappings(first: 1001) { value } }", 1000),
        ("{ mappings(first: -5) { value } }", 1000),
    ],
)
def test_page_size_caps(ready: Catalogue, query: str, cap: int) -> None:
    with serving(ready) as client:
        body = post(client, query)
    assert body["data"] is None
    assert code_of(body) == "BAD_USER_INPUT"
    assert f"first must be between 0 and {cap}" in error_of(body)["message"]


def test_page_size_cap_of_a_variable(ready: Catalogue) -> None:
    query = "query($n: Int!) { datasets(first: $n) { totalCount } }"
    with serving(ready) as client:
        assert "first must be between 0 and 100" in error_of(post(client, query, n=500))["message"]
        assert post(client, query, n=100)["data"]["datasets"]["totalCount"] == 2


def test_mappings_first_bounds_the_list(ready: Catalogue) -> None:
    with serving(ready) as client:
        for value in ("LUNGS", "THORAX", "PELVIS"):
            post(
                client,
                """mutation($v: String!) { proposeMapping(provider: "hospital",
                field: "body_part", value: $v, object: "UBERON:0002048") { version } }""",
                v=value,
            )
        ours = '{ mappings(provider: "hospital", status: PROPOSED, first: %d) { value } }'
        everything = post(client, ours % 1000)["data"]["mappings"]
        two = post(client, ours % 2)["data"]["mappings"]
    assert sorted(m["value"] for m in everything) == ["LUNGS", "PELVIS", "THORAX"]
    assert two == everything[:2]


# -- timeouts --------------------------------------------------------------------------------


@contextmanager
def blocked(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Iterator[threading.Event]:
    """Make `owner.name` block until released (or 30 s); yields the event it finished."""
    release, finished = threading.Event(), threading.Event()
    original = getattr(owner, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        try:
            return original(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(owner, name, slow)
    try:
        yield finished
    finally:
        release.set()


def test_graphql_timeout(ready: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        serving(ready, timeout=0.5) as client,
        blocked(monkeypatch, FeasibilityService, "run") as finished,
    ):
        body = post(client, FEASIBILITY, status=503)
        assert not finished.is_set()  # answered while the resolver's thread still ran
    assert body["data"] is None
    assert code_of(body) == "TIMEOUT"
    assert "longer than 0.5 s" in error_of(body)["message"]


def test_rest_timeout(ready: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        serving(ready, timeout=0.5) as client,
        blocked(monkeypatch, dcat_routes, "catalogue_page") as finished,
    ):
        response = client.get("/catalog")
        assert not finished.is_set()
        assert client.get("/health").status_code == 200  # the server still answers
    assert response.status_code == 503
    assert response.json()["code"] == "TIMEOUT"


# -- rate limits -----------------------------------------------------------------------------


def test_rate_limit_per_address(ready: Catalogue) -> None:
    limits = {"feasibility_per_ip": 1, "feasibility_ip_burst": 2}
    with serving(ready, "10.0.0.1", **limits) as client:
        for _ in range(2):
            assert "errors" not in post(client, FEASIBILITY)
        response = client.post("/graphql", json={"query": FEASIBILITY})
        # searching is not rate limited
        assert "errors" not in post(client, "{ datasets { totalCount } }")
    assert response.status_code == 429
    error = error_of(response.json())
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "this address" in error["message"]
    # one token a minute: the next comes within a minute
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    assert response.headers["Retry-After"] == str(error["extensions"]["retryAfter"])


def test_each_alias_takes_a_token(ready: Catalogue) -> None:
    three = "{ a: feasibility(query: {}) { subjects { value } } b: feasibility(query: {}) {\
        subjects { value } } c: feasibility(query: {}) { subjects { value } } }"
    with serving(ready, feasibility_per_ip=1, feasibility_ip_burst=2) as client:
        body = post(client, three, status=429)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["RATE_LIMITED"]


def test_rate_limit_per_user_across_addresses(ready: Catalogue) -> None:
    ready.settings.auth = AuthSettings()  # sign-in on: the user is the API token's
    secret = ApiTokenStore(ready.settings.data_dir).create("alice", [Role.RESEARCHER])
    signed_in = {"Authorization": f"Bearer {secret}"}
    app = app_of(ready, feasibility_per_user=1, feasibility_user_burst=2)
    answers = []
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"):
        with TestClient(app, client=(address, 50000)) as client:
            response = client.post("/graphql", json={"query": FEASIBILITY}, headers=signed_in)
            if address == "10.0.0.3":  # another user from the same address is not limited
                anonymous = client.post("/graphql", json={"query": "{ providers { id } }"})
                assert anonymous.status_code == 200
        answers.append((response.status_code, response.json().get("errors")))
    assert [status for status, _ in answers] == [200, 200, 429, 429]
    assert answers[0][1] is None
    assert answers[2][1][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "this user" in answers[2][1][0]["message"]


def test_rate_limits_take_from_both_or_neither() -> None:
    now = [0.0]
    limits = FeasibilityRateLimits(
        LimitSettings(
            feasibility_per_user=6,  # one token each 10 s
            feasibility_user_burst=2,
            feasibility_per_ip=60,
            feasibility_ip_burst=3,
        ),
        clock=lambda: now[0],
    )
    limits.check("alice", "10.0.0.1")
    limits.check("alice", "10.0.0.2")
    with pytest.raises(Exception, match="this user") as refused:
        limits.check("alice", "10.0.0.1")
    assert refused.value.retry_after == pytest.approx(10.0)  # type: ignore[attr-defined]
    # the refusal took no token from the address: bob still has 2 there
    limits.check("bob", "10.0.0.1")
    limits.check("bob", "10.0.0.1")
    with pytest.raises(Exception, match="this address"):
        limits.check("carol", "10.0.0.1")
    now[0] = 10.0  # alice has one token again; the address refilled (1 a second)
    limits.check("alice", "10.0.0.1")
    with pytest.raises(Exception, match="this user"):
        limits.check("alice", "10.0.0.3")


def test_idle_buckets_are_forgotten() -> None:
    buckets = TokenBuckets(per_minute=60, burst=5, max_keys=3)
    for i in range(3):
        buckets.take(f"user{i}", now=0.0)
    assert len(buckets) == 3
    buckets.take("user3", now=1.0)  # over max_keys: the least recently used goes
    assert len(buckets) == 3
    assert buckets.tokens("user0", now=1.0) == 5  # forgotten: a full bucket
    buckets.take("user4", now=100.0)  # long after: the others refilled and are swept
    assert len(buckets) == 1


def test_rate_limit_off(ready: Catalogue) -> None:
    with serving(ready, feasibility_per_ip=0, feasibility_per_user=None) as client:
        for _ in range(25):
            assert "errors" not in post(client, FEASIBILITY)


# -- error codes and masking -----------------------------------------------------------------


def test_request_error_codes(ready: Catalogue) -> None:
    with serving(ready) as client:
        parse = post(client, "{ datasets { ")
        unknown = post(client, "{ datasets { nope } }")
        bad_variable = post(
            client, "query($n: Int!) { datasets(first: $n) { totalCount } }", n="many"
        )
        bad_input = post(
            client,
            "{ feasibility(query: { subject: { ageMin: 70, ageMax: 20 } }) { subjects { value } } }",  # noqa: E501
        )
    assert code_of(parse) == "GRAPHQL_PARSE_FAILED"
    assert code_of(unknown) == "GRAPHQL_VALIDATION_FAILED"
    assert "'nope'" in error_of(unknown)["message"]
    assert code_of(bad_variable) == "BAD_USER_INPUT"
    assert "$n" in error_of(bad_variable)["message"]
    assert code_of(bad_input) == "BAD_USER_INPUT"
    assert "ageMin is greater than ageMax" in error_of(bad_input)["message"]


def test_budget_exhausted(ready: Catalogue) -> None:
    ready.settings.disclosure = DisclosureSettings(
        threshold=1, rounding=1, epsilon=1.0, budget_daily=1.5, differencing=False
    )
    with serving(ready) as client:
        assert "errors" not in post(client, FEASIBILITY)  # spends 1.0 of 1.5
        # (the same query again would be answered as before, without spending)
        body = post(client, FEASIBILITY.replace("{}", "{ subject: { sex: [FEMALE] } }"))
    assert code_of(body) == "BUDGET_EXHAUSTED"


def test_unexpected_errors_are_masked(
    ready: Catalogue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk /srv/secret/index is corrupt")

    def store_down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("cannot open the store at /srv/secret/store")

    with serving(ready) as client, caplog.at_level(logging.ERROR, logger="catalogue.api.errors"):
        monkeypatch.setattr(CatalogueView, "search", broken)
        graphql = client.post("/graphql", json={"query": "{ datasets { totalCount } }"})
        monkeypatch.setattr(CatalogueView, "search", store_down)
        store = client.post("/graphql", json={"query": "{ datasets { totalCount } }"})
        monkeypatch.setattr(dcat_routes, "catalogue_page", broken)
        rest = client.get("/catalog")
    for response in (graphql, store, rest):
        assert "secret" not in response.text
        assert "Traceback" not in response.text
    errors = [error_of(graphql.json()), error_of(store.json())]
    assert [e["message"] for e in errors] == ["Unexpected error."] * 2
    assert [e["extensions"]["code"] for e in errors] == ["INTERNAL_SERVER_ERROR"] * 2
    assert errors[0]["path"] == ["datasets"]
    assert rest.status_code == 500
    assert rest.json()["error"] == "Unexpected error."
    assert rest.json()["code"] == "INTERNAL_SERVER_ERROR"
    ids = [e["extensions"]["correlationId"] for e in errors] + [rest.json()["correlationId"]]
    assert len(set(ids)) == 3
    logged = {r.getMessage().split()[2]: r for r in caplog.records}
    for correlation in ids:  # the log has each id with its traceback
        record = logged[correlation]
        assert record.exc_info is not None and record.exc_info[1] is not None
    assert "corrupt" in str(logged[ids[0]].exc_info[1])  # type: ignore[index]


def test_rest_errors_name_the_field(ready: Catalogue) -> None:
    with serving(ready) as client:
        too_big = client.get("/catalog", params={"page_size": 100_000})
        not_int = client.get("/catalog", params={"page": "first"})
        missing = client.get("/datasets/nowhere/nothing")
    assert too_big.status_code == 422
    assert too_big.json()["code"] == "BAD_USER_INPUT"
    assert "query.page_size" in too_big.json()["error"]
    assert too_big.json()["detail"][0]["loc"] == ["query", "page_size"]
    assert "query.page" in not_int.json()["error"]
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"


def test_malformed_graphql_requests_are_coded(ready: Catalogue) -> None:
    with serving(ready) as client:
        not_json = client.post(
            "/graphql", content=b"{nope", headers={"content-type": "application/json"}
        )
        batch = client.post("/graphql", json=[{"query": "{ providers { id } }"}])
    for response in (not_json, batch):
        assert response.status_code == 400
        assert code_of(response.json()) == "BAD_REQUEST"
    assert error_of(not_json.json())["message"] == "Unable to parse request body as JSON"
