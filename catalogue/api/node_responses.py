"""Node mode: what happens to every /federation response on its way out. Its body is signed
with the node's response key, so that the hub knows the answer came from this node and answers
this question (docs/federation.md, "Each side authenticates the other"), and is appended to
the traffic log when one is set (`CATALOGUE_NODE__TRAFFIC_LOG`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalogue.domain.federation import NONCE_HEADER, SIGNATURE_HEADER, node_signature

PREFIX = "/federation/"
_LOG_LOCK = threading.Lock()


class NodeResponses:
    """ASGI middleware: buffers each /federation/* response (they are small: counts only), adds
    SIGNATURE_HEADER over the request's nonce and the exact body bytes when a key is set, and
    appends `{"path", "status", "body"}` as one JSON line to `traffic_log` when one is set."""

    def __init__(self, app: ASGIApp, key: str | None, traffic_log: Path | None = None) -> None:
        self.app = app
        self.key = key
        self.traffic_log = traffic_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        wanted = NONCE_HEADER.lower().encode()
        nonce = next((v.decode("latin-1") for k, v in scope["headers"] if k == wanted), "")
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(body)).encode()))
            if self.key is not None:
                signature = node_signature(self.key, nonce, body)
                headers.append((SIGNATURE_HEADER.lower().encode(), signature.encode()))
            if self.traffic_log is not None:
                self._record(str(scope["path"]), int(start["status"]), body)
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, buffered_send)

    def _record(self, path: str, status: int, body: bytes) -> None:
        assert self.traffic_log is not None
        line = json.dumps({"path": path, "status": status, "body": body.decode("utf-8")})
        with _LOG_LOCK, self.traffic_log.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
