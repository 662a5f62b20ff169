"""The hub's channel to its nodes, against a real HTTP/1.1 server on loopback: every question to
a node goes over that node's kept-alive connections (not a new client per question), questions
to one node run in parallel, and a closed channel refuses new questions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalogue.domain.cohort import CohortQuery
from catalogue.domain.federation import FederatedNodeSource
from catalogue.exceptions import QueryError
from catalogue.services.federation import NodeChannel

ANSWER = json.dumps({"disclosure": "node rules", "providers": [], "datasets": []}).encode()


class FakeNode(ThreadingHTTPServer):
    """Answers every POST with an empty node answer after `delay` seconds; records the client
    port of each request and the most requests it held at once."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.ports: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: FakeNode

    def do_POST(self) -> None:
        node = self.server
        with node.lock:
            node.ports.append(self.client_address[1])
            node.in_flight += 1
            node.most_in_flight = max(node.most_in_flight, node.in_flight)
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(node.delay)
        with node.lock:
            node.in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serving(delay: float) -> Iterator[FakeNode]:
    server = FakeNode(delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def quick() -> Iterator[FakeNode]:
    yield from _serving(0.0)


@pytest.fixture
def slow() -> Iterator[FakeNode]:
    yield from _serving(0.5)


def _source(provider: str, node: FakeNode) -> FederatedNodeSource:
    return FederatedNodeSource.model_validate(
        {"id": f"{provider}-node", "kind": "federated-node", "url": node.url, "timeout": 10}
    )


def test_questions_to_a_node_reuse_its_connection(quick: FakeNode, slow: FakeNode) -> None:
    nodes = {"a": _source("a", quick), "b": _source("b", slow)}
    channel = NodeChannel(nodes)
    try:
        for _ in range(6):
            outcome = channel.ask("a", CohortQuery(), False).result(timeout=10)
            assert outcome.answer is not None, outcome.reason
        assert len(quick.ports) == 6
        assert len(set(quick.ports)) == 1  # one connection, kept alive across questions
        assert slow.ports == []  # no other node was asked
    finally:
        channel.close()


def test_questions_to_one_node_run_in_parallel(slow: FakeNode) -> None:
    nodes = {"b": _source("b", slow)}
    channel = NodeChannel(nodes)
    try:
        asked = [channel.ask("b", CohortQuery(), False) for _ in range(4)]
        outcomes = [f.result(timeout=10) for f in asked]
        assert all(o.answer is not None for o in outcomes)
        assert slow.most_in_flight >= 2
    finally:
        channel.close()
    with pytest.raises(QueryError, match="closed"):
        channel.ask("b", CohortQuery(), False)
