"""The pure parts of federation: the total over provider cells, the hub-node message, the
features a node may refuse, and finding federated providers in a providers file."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from catalogue.api.node_responses import NodeResponses
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.federation import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    features,
    node_request,
    node_signature,
    read_federated_nodes,
    signature_ok,
)
from catalogue.exceptions import ConfigError
from catalogue.services.disclosure import DisclosedCount, PublishedCell
from catalogue.services.federation import UNAVAILABLE, total_of


def _cell(*values: int | None) -> PublishedCell:
    counts = [
        DisclosedCount(v, v is None, "exact", None if v is not None else "small") for v in values
    ]
    return PublishedCell(*counts)


def test_the_total_is_the_sum_when_every_provider_count_is_published() -> None:
    total, lower = total_of([_cell(3, 4, 10), _cell(5, 6, 7), _cell(0, 0, 0)])
    assert (total.subjects.value, total.studies.value, total.series.value) == (8, 10, 17)
    assert not total.subjects.suppressed and lower is None


def test_a_suppressed_or_unavailable_provider_makes_the_total_a_lower_bound() -> None:
    total, lower = total_of([_cell(30, None, 100), _cell(12, 20, 40)])
    assert total.subjects.value == 42 and not total.subjects.suppressed
    assert total.studies.suppressed and total.studies.reason == "incomplete"
    assert lower == (42, 20, 140)
    down = PublishedCell(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    total, lower = total_of([_cell(30, 31, 100), down])
    assert all(c.suppressed and c.value is None for c in total)
    assert lower == (30, 31, 100)
    _, lower = total_of([down])
    assert lower == (None, None, None)


def test_the_node_reads_the_query_the_hub_sent() -> None:
    query = CohortQuery.model_validate(
        {
            "datasets": {"providers": ["b", "a"], "cancerTypes": ["Lung"]},
            "subject": {"sex": ["F"], "age_min": 40},
            "series": [{"modality": ["ct "]}],
            "where": {"not": {"subject": {"diagnosis": ["c34"]}}},
        }
    )
    sent = node_request(query.normalised())
    assert sent.cohort_query().canonical_json() == query.canonical_json()
    assert features(sent.cohort_query()) == {
        "metadata-scope",
        "sex",
        "age",
        "series",
        "not",
        "diagnosis",
    }
    assert features(CohortQuery()) == set()


def test_federated_providers_come_from_the_providers_file(tmp_path: Path) -> None:
    assert read_federated_nodes(None) == {}
    plain = tmp_path / "plain.yaml"
    plain.write_text("providers:\n- id: a\n  name: A\n  sources: [{kind: dcat, path: x.ttl}]\n")
    assert read_federated_nodes(plain) == {}
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        "providers:\n- id: a\n  name: A\n  sources: [{kind: dcat, path: x.ttl}]\n"
        "- id: b\n  name: B\n  sources:\n  - {kind: federated-node, url: 'http://n.example/',"
        " token_env: NODE_B, timeout: 2}\n"
    )
    nodes = read_federated_nodes(mixed)
    assert list(nodes) == ["b"]
    assert nodes["b"].endpoint("/catalog") == "http://n.example/catalog"
    assert nodes["b"].timeout == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers:\n- id: b\n  sources: [{kind: federated-node, url: ftp://x}]\n")
    with pytest.raises(ConfigError):
        read_federated_nodes(broken)


def test_a_node_signature_covers_key_nonce_and_every_body_byte() -> None:
    body = b'{"disclosure":"exact","providers":[],"datasets":[]}'
    want = hmac.new(b"k1", b"n1\n" + body, hashlib.sha256).hexdigest()
    assert node_signature("k1", "n1", body) == f"sha256={want}"
    good = node_signature("k1", "n1", body)
    assert signature_ok("k1", "n1", body, good)
    assert not signature_ok("k2", "n1", body, good)  # another key
    assert not signature_ok("k1", "n2", body, good)  # a replay under a new nonce
    assert not signature_ok("k1", "n1", body.replace(b"[]", b"[ ]", 1), good)  # tampered
    assert not signature_ok("k1", "n1", body, None)  # unsigned


def test_a_node_signs_and_records_its_federation_responses_only(tmp_path: Path) -> None:
    async def answer(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"n": 1}, status_code=int(request.query_params.get("status", 200)))

    log = tmp_path / "traffic.jsonl"
    app = NodeResponses(
        Starlette(routes=[Route("/federation/feasibility", answer), Route("/health", answer)]),
        key="node-key",
        traffic_log=log,
    )
    with TestClient(app) as client:
        signed = client.get("/federation/feasibility", headers={NONCE_HEADER: "abc"})
        plain = client.get("/health", headers={NONCE_HEADER: "abc"})
        refused = client.get("/federation/feasibility?status=403")
    assert refused.status_code == 403
    assert refused.headers[SIGNATURE_HEADER] == node_signature("node-key", "", refused.content)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [
        {"path": "/federation/feasibility", "status": 200, "body": signed.text},
        {"path": "/federation/feasibility", "status": 403, "body": refused.text},
    ]
    want = hmac.new(b"node-key", b"abc\n" + signed.content, hashlib.sha256).hexdigest()
    assert signed.json() == {"n": 1}
    assert signed.headers[SIGNATURE_HEADER] == f"sha256={want}"
    assert int(signed.headers["content-length"]) == len(signed.content)
    assert SIGNATURE_HEADER not in plain.headers
