"""A real HTTP server on 127.0.0.1 for harvesting tests: routes, scripted faults, a request log.

`LocalServer` runs the standard library's ThreadingHTTPServer in a thread on a free port. A
route answers with `Reply`s in turn (the last one repeats) or with a function of the request,
so a test can script a page that fails twice and then recovers, hangs, sends no length, or is
answered by a real engine (a SPARQL endpoint over pyoxigraph).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "text/turtle"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a server that hangs)."""
    length: bool = True
    """Send Content-Length; False streams the body until the connection closes."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


Answer = Reply | Callable[[Request], Reply]


class LocalServer:
    """Serves routes on 127.0.0.1; `requests` logs what came, `max_in_flight` the most at once."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, *answers: Answer) -> None:
        """Answer `path` (or exactly `path?query`) with these in turn, the last repeating."""
        with self._lock:
            self.routes[path] = list(answers)
            self._served.pop(path, None)

    def to(self, path: str) -> list[Request]:
        """The requests that came for a path (any query)."""
        return [r for r in self.requests if r.path == path]

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request, raw_query: str) -> Reply:
        with self._lock:
            self.requests.append(request)
            key = f"{request.path}?{raw_query}" if raw_query else request.path
            if key not in self.routes:
                key = request.path
            answers = self.routes.get(key)
            if not answers:
                return Reply(b"not found", 404, "text/plain")
            index = self._served.get(key, 0)
            self._served[key] = index + 1
            answer = answers[min(index, len(answers) - 1)]
        return answer(request) if callable(answer) else answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(size) if size else b"",
                    time.monotonic(),
                )
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:  # in flight from arrival until the answer starts (inside the client's wait)
                    reply = server._answer(request, parts.query)
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                try:
                    self.send_response(reply.status)
                    if reply.content_type:
                        self.send_header("Content-Type", reply.content_type)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


@contextmanager
def local_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()
