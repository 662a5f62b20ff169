"""Federated feasibility over slices of the IDC demo, in exact mode: three node processes
(`catalogue serve` with node mode on, each holding one provider's slice), a hub in-process that
holds two providers itself and asks the nodes for the other three, and a reference catalogue
that harvested all five slices centrally. Every federated answer must equal the reference's,
per provider, per dataset and in total; nodes that hang, fail or refuse the hub's credential
are reported unavailable within their timeout while the other counts stay right. Every node
signs its answers and the hub refuses impostors; the last test reads every response the nodes
sent during the module (their traffic logs) and checks that it holds only aggregates."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import AuthSettings, LinkageSettings, Settings, load_providers
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.federation import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    FederatedNodeSource,
    NodeRequest,
    node_signature,
)
from catalogue.domain.linkage import MAX_RANK, REGISTERS, HllSketch
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.feasibility import Feasibility, FeasibilityService
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT, NO_RATE_LIMITS, require
from tests.http_server import LocalServer, Reply, Request
from tests.reference.idc_sql import matching_patients
from tests.services.process import start_catalogue_serve, stop, wait_serving

MIRROR = "thoracic-mirror"
"""A provider holding a copy of the thoracic slice: the same patients at two nodes."""
NODES = {
    "node-a": "thoracic",
    "node-b": "breast",
    "node-c": "genitourinary",
    "node-d": MIRROR,
}
CENTRAL = ("abdominal", "neuro-head-neck")
PROVIDERS = (*NODES.values(), *CENTRAL)
SLICE_SERIES = 2500
"""Each provider keeps its smallest collections up to about this many series."""
SECRET = "federation-test-secret-0123456789"
LINKAGE_KEY = "federation-key-agreed-by-the-providers"
"""The federation key every provider here computes linkage codes with."""
TIMEOUT = 3.0

EXACT_ENV = {
    "CATALOGUE_DISCLOSURE__THRESHOLD": "1",
    "CATALOGUE_DISCLOSURE__ROUNDING": "1",
    "CATALOGUE_DISCLOSURE__PUBLISH_ZERO": "true",
    "CATALOGUE_DISCLOSURE__EPSILON": "none",
    "CATALOGUE_DISCLOSURE__BUDGET_DAILY": "none",
    "CATALOGUE_DISCLOSURE__BUDGET_TOTAL": "none",
    "CATALOGUE_DISCLOSURE__DIFFERENCING": "false",
}

CELL = "subjects { value suppressed } studies { value suppressed } series { value suppressed }"
FEASIBILITY = f"""query($q: FeasibilityQuery!) {{ feasibility(query: $q) {{ {CELL}
  lowerBound {{ subjects studies series }}
  byProvider {{ provider {{ id }} status reason {CELL} }}
  byDataset {{ dataset {{ identifier provider {{ id }} }} {CELL} }} }} }}"""


@dataclass
class Node:
    name: str
    provider: str
    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    traffic: Path
    """Every /federation response body the node sent (CATALOGUE_NODE__TRAFFIC_LOG)."""

    @property
    def key(self) -> str:
        """The node's response key (CATALOGUE_NODE__RESPONSE_KEY), which the hub also holds."""
        return _node_key(self.name)


def _node_key(name: str) -> str:
    return f"response-key-of-{name}-0123456789"


@dataclass
class Federation:
    reference: Catalogue
    hub: Catalogue
    client: TestClient
    """The hub's API."""
    reference_client: TestClient
    nodes: dict[str, Node]
    datasets: dict[str, list[str]]
    """The collections each provider's slice holds."""
    demo: Path
    """The IDC demo folder (its collections.csv maps collections to providers)."""


def _slice(demo: Path, out: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Each provider's catalogue and its smallest collections' series; provider entries."""
    entries: dict[str, dict[str, Any]] = {}
    kept: dict[str, list[str]] = {}
    listed = yaml.safe_load((demo / "providers.yaml").read_text())["providers"]
    for provider in listed:
        pid = provider["id"]
        if pid not in PROVIDERS:
            continue
        folder = out / pid
        folder.mkdir(parents=True)
        shutil.copy(demo / pid / "catalog.ttl", folder / "catalog.ttl")
        source = str(demo / pid / "series.parquet")
        sizes = duckdb.execute(
            f"SELECT collection_id, count(*) n FROM read_parquet('{source}') "
            "GROUP BY 1 ORDER BY 2, 1"
        ).fetchall()
        chosen, total = [], 0
        for collection, n in sizes:
            if total + n <= SLICE_SERIES:
                chosen.append(str(collection))
                total += n
        kept[pid] = chosen
        duckdb.execute(
            f"COPY (SELECT * FROM read_parquet('{source}') WHERE list_contains($1, "
            f"collection_id)) TO '{folder / 'series.parquet'}' (FORMAT parquet)",
            [chosen],
        )
        entries[pid] = {
            "id": pid,
            "name": provider["name"],
            "homepage": provider["homepage"],
            "sources": [
                {"kind": "dcat", "id": "catalogue", "path": str(folder / "catalog.ttl")},
                {
                    "kind": "dicom-table",
                    "id": "idc-series",
                    "path": str(folder / "series.parquet"),
                    "dataset_column": "collection_id",
                },
            ],
        }
    return entries, kept


def _mirror(entries: dict[str, dict[str, Any]], kept: dict[str, list[str]], out: Path) -> None:
    """Add MIRROR: the thoracic slice's patients and catalogue again, under its own IRIs."""
    source, folder = out / "thoracic", out / MIRROR
    folder.mkdir()
    shutil.copy(source / "series.parquet", folder / "series.parquet")
    catalog = (source / "catalog.ttl").read_text(encoding="utf-8")
    (folder / "catalog.ttl").write_text(
        catalog.replace("/demo/thoracic", f"/demo/{MIRROR}"), encoding="utf-8"
    )
    entries[MIRROR] = {
        **entries["thoracic"],
        "id": MIRROR,
        "name": "Thoracic Imaging Mirror",
        "homepage": f"https://w3id.org/cancer-imaging-catalogue/demo/{MIRROR}",
        "sources": [
            {**source_entry, "path": str(folder / Path(source_entry["path"]).name)}
            for source_entry in entries["thoracic"]["sources"]
        ],
    }
    kept[MIRROR] = list(kept["thoracic"])


def _write(path: Path, providers: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"providers": providers}, sort_keys=False))
    return path


def _settings(data_dir: Path, providers: Path | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        providers=providers,
        secret=SECRET,
        disclosure=EXACT,
        auth=AuthSettings(disabled=True),
        limits=NO_RATE_LIMITS,
        linkage=LinkageSettings(key=LINKAGE_KEY),
    )


def _harvested(settings: Settings) -> Catalogue:
    opened = open_catalogue(settings)
    assert settings.providers is not None
    report = harvest(opened, load_providers(settings.providers))
    assert all(s.ok for s in report.sources), [s.error for s in report.sources if not s.ok]
    return opened


def _start_node(root: Path, name: str, entry: dict[str, Any], extra: dict[str, str]) -> Node:
    data_dir = root / name
    providers = _write(root / f"{name}.yaml", [entry])
    node_settings = _settings(data_dir, providers)
    _harvested(node_settings).close()
    token = ApiTokenStore(data_dir).create("hub", [Role.HUB])
    settings = {
        **EXACT_ENV,
        "CATALOGUE_SECRET": SECRET,
        "CATALOGUE_NODE__ENABLED": "true",
        "CATALOGUE_NODE__RESPONSE_KEY": _node_key(name),
        "CATALOGUE_NODE__TRAFFIC_LOG": str(root / f"{name}-traffic.jsonl"),
        "CATALOGUE_LINKAGE__KEY": LINKAGE_KEY,
        "CATALOGUE_NODE__SKETCHES": "true",
        **extra,
    }
    process, url = start_catalogue_serve(data_dir, settings, root / f"{name}.log")
    return Node(name, entry["id"], url, token, data_dir, process, root / f"{name}-traffic.jsonl")


def _wait_up(node: Node) -> None:
    wait_serving(node.process, node.url, node.data_dir.parent / f"{node.name}.log", 60)


@pytest.fixture(scope="module")
def federation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    try:
        from examples.demo.idc import build
    except Exception as exc:  # the optional demo dependency
        require(request.config, False, f"idc-index-data is not installed ({exc})")
        raise
    root = tmp_path_factory.mktemp("federation")
    demo = Path(build(root / "demo")).parent
    entries, kept = _slice(demo, root / "slices")
    _mirror(entries, kept, root / "slices")
    nodes: dict[str, Node] = {}
    opened: list[Catalogue] = []
    try:
        for name, provider in NODES.items():
            extra = {  # node-b refuses diagnosis criteria and sends no sketches; node-c serves
                # nothing but node routes
                "node-b": {
                    "CATALOGUE_NODE__REFUSE": '["diagnosis"]',
                    "CATALOGUE_NODE__SKETCHES": "false",
                },
                "node-c": {"CATALOGUE_NODE__EXCLUSIVE": "true"},
            }.get(name, {})
            nodes[name] = _start_node(root, name, entries[provider], extra)
        reference = _harvested(
            _settings(root / "reference", _write(root / "all.yaml", list(entries.values())))
        )
        opened.append(reference)
        for node in nodes.values():
            _wait_up(node)
        hub_providers = [entries[p] for p in CENTRAL] + [
            {
                "id": node.provider,
                "name": entries[node.provider]["name"],
                "sources": [
                    {
                        "kind": "federated-node",
                        "id": "node",
                        "url": node.url,
                        "token": node.token,
                        "node_key": node.key,
                        "timeout": TIMEOUT,
                    }
                ],
            }
            for node in nodes.values()
        ]
        hub = _harvested(_settings(root / "hub", _write(root / "hub.yaml", hub_providers)))
        opened.append(hub)
        with (
            TestClient(create_app(hub.settings, hub)) as client,
            TestClient(create_app(reference.settings, reference)) as reference_client,
        ):
            yield Federation(reference, hub, client, reference_client, nodes, kept, demo)
    finally:
        for node in nodes.values():
            node.process.terminate()  # all at once, then each waited for
        for node in nodes.values():
            stop(node.process, 20)
        for catalogue in opened:
            catalogue.close()


Counts = tuple[int | None, int | None, int | None]


def _gql_cell(cell: dict[str, Any]) -> Counts:
    return (cell["subjects"]["value"], cell["studies"]["value"], cell["series"]["value"])


def _ref_cell(cell: Any) -> Counts:
    return (cell.subjects.value, cell.studies.value, cell.series.value)


def _ask(client: TestClient, query: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": FEASIBILITY, "variables": {"q": query}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    result: dict[str, Any] = body["data"]["feasibility"]
    return result


def _providers(result: dict[str, Any]) -> dict[str, Counts]:
    return {p["provider"]["id"]: _gql_cell(p) for p in result["byProvider"]}


def _datasets(result: dict[str, Any]) -> dict[tuple[str, str], Counts]:
    return {
        (d["dataset"]["provider"]["id"], d["dataset"]["identifier"]): _gql_cell(d)
        for d in result["byDataset"]
    }


def _queries(kept: dict[str, list[str]]) -> list[dict[str, Any]]:
    one_node = kept["breast"][-1]
    one_central = kept["abdominal"][-1]
    return [
        {},
        {"subject": {"sex": ["FEMALE"]}},
        {"subject": {"sex": ["MALE", "OTHER"]}},
        {"subject": {"ageMin": 50, "ageMax": 70}},
        {"subject": {"ageMax": 17}},
        {"series": [{"modality": ["CT"]}]},
        {"series": [{"modality": ["MR"], "bodyPart": ["BREAST"]}]},
        {"series": [{"modality": ["CT"]}, {"modality": ["PT"]}]},
        {"series": [{"modality": ["CT"]}, {"modality": ["SEG"]}], "sameStudy": True},
        {"series": [{"manufacturer": ["SIEMENS"]}]},
        {"series": [{"modality": ["CT"], "sliceThicknessMax": 2.5}]},
        {"studies": [{"yearMin": 2000, "yearMax": 2010}]},
        {"where": {"not": {"series": {"modality": ["CT"]}}}},
        {
            "where": {
                "anyOf": [
                    {"series": {"modality": ["MG"]}},
                    {"allOf": [{"subject": {"sex": ["MALE"]}}, {"series": {"modality": ["MR"]}}]},
                ]
            }
        },
        {"datasets": {"providers": ["thoracic"]}},
        {"datasets": {"providers": ["breast", "abdominal"]}, "series": [{"modality": ["MR"]}]},
        {"datasets": {"providers": ["abdominal", "neuro-head-neck"]}},
        {"datasets": {"datasets": [one_node, one_central]}, "subject": {"ageMin": 40}},
        {"series": [{"bodyPart": ["lung", " chest "]}], "subject": {"sex": ["FEMALE"]}},
        {"datasets": {"cancerTypes": ["Lung Cancer", "Breast Cancer", "NCIT:C4872"]}},
    ]


def test_federated_answers_equal_the_central_catalogue(federation: Federation) -> None:
    queries = _queries(federation.datasets)
    compared_nodes = 0
    for query in queries:
        got = _ask(federation.client, query)
        want = _ask(federation.reference_client, query)
        assert [p["status"] for p in got["byProvider"]] == ["OK"] * len(got["byProvider"])
        assert got["lowerBound"] is None
        providers = _providers(got)
        assert providers == _providers(want), query
        assert _datasets(got) == _datasets(want), query
        assert _gql_cell(got) == _gql_cell(want), query
        compared_nodes += len(set(providers) & set(NODES.values()))
    assert len(queries) >= 15
    assert compared_nodes >= 2 * len(queries)  # most answers did come from the nodes


def test_every_hub_request_is_logged_at_the_node_with_its_normalised_query(
    federation: Federation,
) -> None:
    query = {"subject": {"sex": ["FEMALE"]}, "series": [{"modality": ["ct "]}]}
    _ask(federation.client, query)
    node = federation.nodes["node-a"]
    with sqlite3.connect(node.data_dir / "audit.sqlite") as con:
        rows = con.execute("SELECT user, project, query FROM feasibility_audit").fetchall()
    normal = CohortQuery.model_validate(
        {"subject": {"sex": ["F"]}, "series": [{"modality": ["CT"]}]}
    ).normalised()
    scoped = normal.model_copy(
        update={"datasets": normal.datasets.model_copy(update={"providers": ("thoracic",)})}
    )
    assert ("hub:token:hub", "federation", scoped.canonical_json()) in rows
    hub_audit = federation.hub.settings.data_dir / "audit.sqlite"
    with sqlite3.connect(hub_audit) as con:
        recorded = con.execute(
            "SELECT published FROM feasibility_audit WHERE query = ? AND release_key LIKE "
            "'federated:%'",
            [normal.canonical_json()],
        ).fetchall()
    assert recorded and json.loads(recorded[-1][0])["unavailable"] == {}


def test_a_node_refuses_what_it_does_not_allow_and_the_rest_is_answered(
    federation: Federation,
) -> None:
    query = {"subject": {"diagnosis": ["C50"]}}
    got = _ask(federation.client, query)
    status = {p["provider"]["id"]: (p["status"], p["reason"]) for p in got["byProvider"]}
    assert status["breast"][0] == "UNAVAILABLE"
    assert "diagnosis" in status["breast"][1]
    assert {s for p, (s, _) in status.items() if p != "breast"} == {"OK"}
    assert got["subjects"]["suppressed"] and got["subjects"]["value"] is None
    want = _providers(_ask(federation.reference_client, query))
    assert got["lowerBound"]["subjects"] == sum(c[0] or 0 for p, c in want.items() if p != "breast")
    assert {p: c for p, c in _providers(got).items() if p != "breast"} == {
        p: c for p, c in want.items() if p != "breast"
    }


def test_nodes_that_hang_fail_or_refuse_the_credential_are_unavailable(
    federation: Federation,
) -> None:
    hanging, failing = LocalServer().start(), LocalServer().start()
    hanging.route("/federation/feasibility", Reply(b"{}", delay=30, content_type="text/plain"))
    failing.route("/federation/feasibility", Reply(b"boom", 500, "text/plain"))
    good, mirror = federation.nodes["node-c"], federation.nodes["node-d"]
    wrong = federation.nodes["node-a"]
    try:
        nodes = {
            "thoracic": FederatedNodeSource(
                kind="federated-node", url=hanging.url, timeout=TIMEOUT
            ),
            "breast": FederatedNodeSource(kind="federated-node", url=failing.url, timeout=TIMEOUT),
            "genitourinary": FederatedNodeSource(
                kind="federated-node", url=good.url, token=good.token, timeout=TIMEOUT
            ),
            MIRROR: FederatedNodeSource(
                kind="federated-node", url=mirror.url, token=mirror.token, timeout=TIMEOUT
            ),
        }
        service = FeasibilityService(CatalogueView(federation.hub), nodes=nodes)
        query = CohortQuery.model_validate({"series": [{"modality": ["CT"]}]})
        started = time.monotonic()
        answer = service.run(query)
        assert time.monotonic() - started < TIMEOUT + 5  # not the 30 s the hanging node takes
        assert set(answer.unavailable) == {"thoracic", "breast"}
        assert "within" in answer.unavailable["thoracic"]
        assert "500" in answer.unavailable["breast"]
        _check_rest(federation, answer, query, {"thoracic", "breast"})

        wrong_token = {
            **nodes,
            "thoracic": FederatedNodeSource(
                kind="federated-node", url=wrong.url, token="not-the-token", timeout=TIMEOUT
            ),
            "breast": FederatedNodeSource(
                kind="federated-node",
                url=federation.nodes["node-b"].url,
                token=federation.nodes["node-b"].token,
                timeout=TIMEOUT,
            ),
        }
        service = FeasibilityService(CatalogueView(federation.hub), nodes=wrong_token)
        answer = service.run(query)
        assert set(answer.unavailable) == {"thoracic"}
        assert "401" in answer.unavailable["thoracic"]
        _check_rest(federation, answer, query, {"thoracic"})
    finally:
        hanging.stop()
        failing.stop()


def _check_rest(
    federation: Federation, answer: Feasibility, query: CohortQuery, down: set[str]
) -> None:
    """Unavailable providers are suppressed, never zero; every other count is the reference's."""
    want = FeasibilityService(CatalogueView(federation.reference)).run(query)
    expected = {p.id: _ref_cell(c) for p, c in want.by_provider}
    got = {p.id: _ref_cell(c) for p, c in answer.by_provider}
    assert {p: got[p] for p in down} == {p: (None, None, None) for p in down}
    assert {p: c for p, c in got.items() if p not in down} == {
        p: c for p, c in expected.items() if p not in down
    }
    assert answer.total.subjects.suppressed and answer.total.subjects.reason == "incomplete"
    assert answer.lower_bound is not None
    assert answer.lower_bound[0] == sum(c[0] or 0 for p, c in expected.items() if p not in down)
    datasets = {(d.provider_id, d.identifier): _ref_cell(c) for d, c in answer.by_dataset}
    assert datasets == {
        (d.provider_id, d.identifier): _ref_cell(c)
        for d, c in want.by_dataset
        if d.provider_id not in down
    }


def test_strata_across_federated_providers_are_refused_with_a_reason(
    federation: Federation,
) -> None:
    response = federation.client.post(
        "/graphql",
        json={
            "query": "query($q: FeasibilityQuery!) { feasibility(query: $q, strata: [[SEX]]) "
            "{ subjects { value } } }",
            "variables": {"q": {}},
        },
    )
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "federated" in errors[0]["message"]


def test_a_node_answers_only_the_hub(federation: Federation) -> None:
    node = federation.nodes["node-b"]
    body = {"query": json.loads(CohortQuery().canonical_json())}
    anonymous = httpx.post(f"{node.url}/federation/feasibility", json=body, timeout=10)
    assert anonymous.status_code == 401
    researcher = ApiTokenStore(node.data_dir).create("someone", [Role.RESEARCHER])
    refused = httpx.post(
        f"{node.url}/federation/feasibility",
        json=body,
        headers={"Authorization": f"Bearer {researcher}"},
        timeout=10,
    )
    assert refused.status_code == 403
    answered = httpx.post(
        f"{node.url}/federation/feasibility",
        json=body,
        headers={"Authorization": f"Bearer {node.token}"},
        timeout=10,
    )
    assert answered.status_code == 200
    assert {p["id"] for p in answered.json()["providers"]} == {"breast"}


def test_an_exclusive_node_serves_nothing_but_the_node_routes(federation: Federation) -> None:
    exclusive, open_node = federation.nodes["node-c"], federation.nodes["node-a"]
    ask = {"query": "{ providers { id } }"}
    assert httpx.post(f"{exclusive.url}/graphql", json=ask, timeout=10).status_code == 404
    assert httpx.get(f"{exclusive.url}/", timeout=10).status_code == 404
    assert httpx.get(f"{exclusive.url}/catalog", timeout=10).status_code == 200
    assert httpx.post(f"{open_node.url}/graphql", json=ask, timeout=10).status_code == 200


def _impostor_answer(provider: str) -> bytes:
    """A well-formed node answer: what an impostor would send to make up counts."""
    count = {"value": 999, "suppressed": False, "precision": "exact", "reason": None}
    cell = {"subjects": count, "studies": count, "series": count}
    answer = {"disclosure": "exact", "providers": [{"id": provider, "cell": cell}], "datasets": []}
    return json.dumps(answer).encode()


def test_the_hub_refuses_answers_not_signed_by_the_node(federation: Federation) -> None:
    real = federation.nodes["node-a"]
    body = _impostor_answer(real.provider)

    def wrongly_signed(request: Request) -> Reply:
        nonce = request.headers.get(NONCE_HEADER.lower(), "")
        signed = node_signature("not-the-node-key", nonce, body)
        return Reply(body, 200, "application/json", {SIGNATURE_HEADER: signed})

    old = httpx.post(  # a genuine signed answer to an earlier question, replayed
        f"{real.url}/federation/feasibility",
        json={"query": json.loads(CohortQuery().canonical_json())},
        headers={"Authorization": f"Bearer {real.token}", NONCE_HEADER: "an-earlier-nonce"},
        timeout=10,
    )
    assert old.status_code == 200
    assert old.headers[SIGNATURE_HEADER] == node_signature(
        real.key, "an-earlier-nonce", old.content
    )
    replay = Reply(
        old.content, 200, "application/json", {SIGNATURE_HEADER: old.headers[SIGNATURE_HEADER]}
    )
    unsigned, wrong, replaying = LocalServer().start(), LocalServer().start(), LocalServer().start()
    unsigned.route("/federation/feasibility", Reply(body, 200, "application/json"))
    wrong.route("/federation/feasibility", wrongly_signed)
    replaying.route("/federation/feasibility", replay)
    try:
        for server in (unsigned, wrong, replaying):
            nodes = {
                "thoracic": FederatedNodeSource(
                    kind="federated-node", url=server.url, node_key=real.key, timeout=TIMEOUT
                )
            }
            service = FeasibilityService(CatalogueView(federation.hub), nodes=nodes)
            answer = service.run(
                CohortQuery.model_validate({"datasets": {"providers": ["thoracic"]}})
            )
            assert answer.unavailable == {"thoracic": "bad node signature"}, server.url
            assert all(c.value is None for _, cell in answer.by_provider for c in cell)
            assert server.requests and server.requests[-1].headers.get(NONCE_HEADER.lower())
        # the real node, but the hub holds another key for it
        mistaken = {
            "thoracic": FederatedNodeSource(
                kind="federated-node",
                url=real.url,
                token=real.token,
                node_key="not-the-node-key",
                timeout=TIMEOUT,
            )
        }
        service = FeasibilityService(CatalogueView(federation.hub), nodes=mistaken)
        answer = service.run(CohortQuery())
        assert answer.unavailable == {"thoracic": "bad node signature"}
        # with the right key the real node's answers pass (as in every test above)
        right = {
            "thoracic": FederatedNodeSource(
                kind="federated-node", url=real.url, token=real.token, node_key=real.key
            )
        }
        service = FeasibilityService(CatalogueView(federation.hub), nodes=right)
        assert service.run(CohortQuery()).unavailable == {}
    finally:
        for server in (unsigned, wrong, replaying):
            server.stop()


DISTINCT = """query($q: FeasibilityQuery!) {
  feasibility(query: $q, distinctSubjects: true, explain: true) {
  byProvider { provider { id } subjects { value } } explanation { normalisedQuery }
  distinctSubjects { estimate { value suppressed precision } relativeError lower upper
    providers { id } leftOut { provider { id } reason } } } }"""

LINKED = ("thoracic", MIRROR, "genitourinary", "abdominal", "neuro-head-neck")
"""The providers whose subjects the hub's estimate counts: all but breast, whose node sends
no sketches."""


def _true_distinct(federation: Federation, normalised: dict[str, Any], providers: set[str]) -> int:
    """Distinct PatientIDs among the matching subjects of `providers`' slices, by plain SQL over
    the raw IDC table (the mirror's patients are the thoracic slice's), for the question as the
    API normalised it."""
    from examples.demo.idc import idc_paths

    real = {"thoracic" if p == MIRROR else p for p in providers}
    scopes = [(p, c) for p in real for c in federation.datasets[p]]
    domain = NodeRequest(query=normalised).cohort_query()
    with duckdb.connect() as con:
        matched = matching_patients(
            con, idc_paths()[0], federation.demo / "collections.csv", domain, scopes
        )
    return len({patient for provider, patient in matched if provider in real})


def _distinct(client: TestClient, query: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": DISTINCT, "variables": {"q": query}})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    result: dict[str, Any] = body["data"]["feasibility"]
    return result


def test_distinct_subjects_across_overlapping_providers_are_estimated_within_the_bound(
    federation: Federation, figures: Callable[[str], None]
) -> None:
    queries: list[dict[str, Any]] = [
        {},
        {"subject": {"sex": ["FEMALE"]}},
        {"series": [{"modality": ["CT"]}]},
        {"subject": {"ageMin": 50, "ageMax": 70}},
        {"where": {"not": {"series": {"modality": ["CT"]}}}},
        {"datasets": {"providers": list(LINKED)}, "series": [{"modality": ["PT"]}]},
    ]
    overlapping = 0
    for query in queries:
        for client, counted, left_out in (
            (federation.client, set(LINKED), {"breast"}),  # the hub: 4 nodes, 2 central
            (federation.reference_client, {*LINKED, "breast"}, set()),  # all central
        ):
            scope = query.get("datasets", {}).get("providers")
            if scope:
                counted, left_out = counted & set(scope), left_out & set(scope)
            got = _distinct(client, query)
            found = got["distinctSubjects"]
            assert {p["id"] for p in found["providers"]} == counted, query
            reasons = {o["provider"]["id"]: o["reason"] for o in found["leftOut"]}
            assert set(reasons) == left_out
            assert all("sends no sketches" in r for r in reasons.values()), reasons
            normalised = got["explanation"]["normalisedQuery"]
            truth = _true_distinct(federation, normalised, counted)
            estimate = found["estimate"]["value"]
            bound = found["relativeError"] * truth + 1  # + 1: the estimate is rounded
            counts = {p["provider"]["id"]: p["subjects"]["value"] for p in got["byProvider"]}
            naive = sum(counts[p] for p in counted)
            where = "hub" if client is federation.client else "central"
            figures(
                f"{where} {json.dumps(query, sort_keys=True)}: estimate {estimate}, "
                f"true {truth}, relative error {abs(estimate - truth) / max(truth, 1):.2%} "
                f"(stated {found['relativeError']:.2%}), naive sum {naive}"
            )
            assert abs(estimate - truth) <= bound, (query, estimate, truth)
            assert found["lower"] <= truth
            assert (found["upper"] is None) == bool(left_out)
            assert found["upper"] is None or truth <= found["upper"]
            if counts["thoracic"]:  # the mirror's patients are counted twice in the sum
                assert naive - truth >= counts["thoracic"] > bound
                overlapping += 1
    assert overlapping >= 8


# Keep this test last: it reads what the nodes sent during every test above.

UID = re.compile(r"\d+(?:\.\d+){3,}")
"""A DICOM UID (digits and dots)."""
PSEUDONYM = re.compile(r"(?i)\b[0-9a-f]{16,}\b|-?\d{10,}")
"""A pseudonym as text: 16 hex digits or more, or the signed 64-bit integer of identifiers.py."""
COUNT_KEYS = {"value", "suppressed", "precision", "reason"}
REASONS = {None, "small", "zero", "complementary", "differencing", "noise"}


def _slice_identifiers(node: Node) -> tuple[set[str], set[str], int]:
    """The node slice's PatientIDs, its Study and Series UIDs, and its number of series rows, read
    from the parquet file the node harvested."""
    path = node.data_dir.parent / "slices" / node.provider / "series.parquet"
    rows = duckdb.execute(
        f"SELECT PatientID, StudyInstanceUID, SeriesInstanceUID FROM read_parquet('{path}')"
    ).fetchall()
    patients = {str(r[0]) for r in rows if r[0]}
    uids = {str(u) for r in rows for u in r[1:] if u}
    return patients, uids, len(rows)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _check_count(count: Any, most: int) -> None:
    """One published count: only the wire keys; a number only as `value`, an int the node's rules
    (threshold 1, rounding 1 here) publish and no more than the slice's series rows."""
    assert isinstance(count, dict) and set(count) == COUNT_KEYS, count
    value = count["value"]
    assert isinstance(count["suppressed"], bool) and count["suppressed"] == (value is None)
    if value is not None:
        assert type(value) is int and 0 <= value <= most, count
    assert count["precision"] == "exact" and count["reason"] in REASONS, count


def _check_cell(cell: Any, most: int) -> None:
    assert isinstance(cell, dict) and set(cell) == {"subjects", "studies", "series"}, cell
    for count in cell.values():
        _check_count(count, most)


def _check_sketch(sketch: dict[str, Any], node: Node) -> int:
    """A sketch entry: its provider, the federation key's public name and a register array of
    ranks (decoded: HllSketch refuses anything else), or why it is withheld. The registers'
    text is then blanked, so that the scan for identifiers reads every other string."""
    assert sketch["provider"] == node.provider
    registers = sketch.get("registers")
    if registers is None:
        assert set(sketch) == {"provider", "key_id", "registers", "withheld"}, sketch
        assert sketch["withheld"] and sketch["key_id"] is None
        return 0
    assert set(sketch) == {"provider", "key_id", "registers", "withheld"}, sketch
    assert sketch["withheld"] is None and re.fullmatch(r"[0-9a-f]{12}", sketch["key_id"])
    decoded = HllSketch.decode(registers).registers
    assert len(decoded) == REGISTERS and max(decoded) <= MAX_RANK
    sketch["registers"] = ""
    return 1


def test_every_response_a_node_sent_holds_only_aggregates(federation: Federation) -> None:
    for node in federation.nodes.values():
        patients, uids, rows = _slice_identifiers(node)
        assert patients and uids
        lines = [json.loads(line) for line in node.traffic.read_text().splitlines()]
        answers = [line for line in lines if line["status"] == 200]
        assert len(answers) >= len(_queries(federation.datasets)), node.name  # it did record
        disclosures = set()
        sketched = 0
        for line in lines:
            assert set(line) == {"path", "status", "body"}
            assert line["path"] == "/federation/feasibility"
            body = json.loads(line["body"])
            if line["status"] != 200:  # a refusal: the REST error body, a message and a code
                assert line["status"] in (401, 403) and set(body) == {"error", "code"}, body
            else:
                assert set(body) - {"sketches"} == {"disclosure", "providers", "datasets"}, body
                disclosures.add(body["disclosure"])
                for sketch in body.get("sketches", []):
                    sketched += _check_sketch(sketch, node)
                assert [p["id"] for p in body["providers"]] in ([], [node.provider])
                for provider in body["providers"]:
                    assert set(provider) == {"id", "cell"}
                    _check_cell(provider["cell"], rows)
                for dataset in body["datasets"]:
                    assert set(dataset) == {"provider", "identifier", "cell"}
                    assert dataset["provider"] == node.provider
                    assert dataset["identifier"] in federation.datasets[node.provider]
                    _check_cell(dataset["cell"], rows)
            for text in _strings(body):
                assert not UID.search(text) and not PSEUDONYM.search(text), (node.name, text)
                assert not any(p in text for p in patients), (node.name, text)
            assert not any(u in line["body"] for u in uids)
        assert len(disclosures) == 1, disclosures  # the node's rules, the same in every answer
        assert (sketched > 0) == (node.name != "node-b"), node.name  # node-b sends none
