"""The last line of every HTTP request: a per-request timeout and a masked answer to anything
that escaped the routes' own error handling (catalogue.api.errors)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalogue.api.errors import INTERNAL, UNEXPECTED, error_body, graphql_body, log_unexpected
from catalogue.api.state import app_value
from catalogue.config import LimitSettings

DEFAULT_TIMEOUT = 30.0


class RequestGuard:
    """Answers 503 TIMEOUT when a request runs longer than `app.state.limits.timeout` seconds,
    without waiting for it (a resolver's thread cannot be cancelled; its late answer is
    dropped), and 500 with a correlation id when a request raised unexpectedly."""

    def __init__(self, app: ASGIApp, graphql_path: str = "/graphql") -> None:
        self.app = app
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if abandoned:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=_timeout(scope))
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                correlation = log_unexpected(error, f"{scope['method']} {scope['path']}")
                if not started:
                    await self._answer(scope, send, 500, INTERNAL, UNEXPECTED, correlation)
            return
        abandoned = True
        task.cancel()
        task.add_done_callback(_retrieve)
        if started:  # the body was under way: end it
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        message = f"the request took longer than {_timeout(scope):g} s and was abandoned"
        await self._answer(scope, send, 503, "TIMEOUT", message, None)

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        correlation: str | None,
    ) -> None:
        more: dict[str, Any] = {"correlationId": correlation} if correlation else {}
        path: str = scope.get("path", "")
        graphql = path == self.graphql_path or path.startswith(self.graphql_path + "/")
        body = graphql_body(code, message, **more) if graphql else error_body(code, message, **more)
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def _timeout(scope: Scope) -> float:
    limits = app_value(scope.get("app"), "limits", LimitSettings)
    return float(limits.timeout) if limits is not None else DEFAULT_TIMEOUT


def _retrieve(task: asyncio.Future[None]) -> None:
    """Collect an abandoned request's outcome, so that asyncio does not report it."""
    if not task.cancelled():
        task.exception()
