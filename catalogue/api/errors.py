"""Errors as clients see them, decided in one place: every error carries a code (the
`code` of catalogue.exceptions, or a GraphQL request code), and anything unexpected is masked
as "Unexpected error." with a correlation id that the log repeats beside the traceback."""

from __future__ import annotations

import logging
import math
import re
import uuid
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from graphql import GraphQLError, GraphQLSyntaxError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from catalogue.exceptions import CatalogueError, RateLimitedError

log = logging.getLogger(__name__)

UNEXPECTED = "Unexpected error."
INTERNAL = "INTERNAL_SERVER_ERROR"
BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

STATUS = {
    "BAD_REQUEST": 400,
    BAD_USER_INPUT: 400,
    PARSE_FAILED: 400,
    VALIDATION_FAILED: 400,
    QUERY_TOO_COMPLEX: 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "NOT_ACCEPTABLE": 406,
    "BUDGET_EXHAUSTED": 429,
    "RATE_LIMITED": 429,
    INTERNAL: 500,
    "TIMEOUT": 503,
}
"""The HTTP status of each code on the REST routes."""

_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than"
    r"|Source contains more than|Document is nested too deeply|introspection depth"
)
"""Messages of the depth, alias, token and length limits (strawberry and graphql-core)."""


def log_unexpected(error: BaseException, where: str) -> str:
    """Log an unexpected error with its traceback; the correlation id the client is given."""
    correlation = uuid.uuid4().hex
    log.error(
        "unexpected error %s in %s",
        correlation,
        where,
        exc_info=(type(error), error, error.__traceback__),
    )
    return correlation


def extensions_of(error: CatalogueError) -> dict[str, Any]:
    """What a client is told besides the message: the code, and when to retry."""
    extensions: dict[str, Any] = {"code": error.code}
    if isinstance(error, RateLimitedError):
        extensions["retryAfter"] = max(1, math.ceil(error.retry_after))
    return extensions


def client_error(error: GraphQLError, where: str = "GraphQL") -> GraphQLError:
    """A GraphQL error as the client sees it: coded, and masked when unexpected."""
    original = error.original_error
    if isinstance(original, CatalogueError) and original.code != INTERNAL:
        return _with(error, error.message, extensions_of(original))
    if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        return _with(error, error.message, dict(original.extensions or {}))
    if original is None or _is_variable_error(error):
        code = (error.extensions or {}).get("code") or _request_code(error)
        return _with(error, error.message, {**(error.extensions or {}), "code": code})
    correlation = log_unexpected(original, f"{where} {'.'.join(map(str, error.path or ()))}")
    return _with(error, UNEXPECTED, {"code": INTERNAL, "correlationId": correlation})


def _is_variable_error(error: GraphQLError) -> bool:
    """graphql-core's refusal of a variable's value (a scalar's parser raised)."""
    return error.path is None and error.message.startswith("Variable '$")


def _request_code(error: GraphQLError) -> str:
    if _TOO_COMPLEX.search(error.message):
        return QUERY_TOO_COMPLEX
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    if error.message.startswith("Variable '$"):
        return BAD_USER_INPUT
    return VALIDATION_FAILED


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def error_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The JSON body of a REST error."""
    return {"error": message, "code": code, **more}


def graphql_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    """The JSON body of a GraphQL error answered outside GraphQL execution."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code, **more}}]}


async def catalogue_error_response(request: Request, exc: Exception) -> JSONResponse:
    """A CatalogueError raised by a REST route: its code and message, or masked."""
    assert isinstance(exc, CatalogueError)
    if exc.code == INTERNAL:
        correlation = log_unexpected(exc, f"{request.method} {request.url.path}")
        return JSONResponse(error_body(INTERNAL, UNEXPECTED, correlationId=correlation), 500)
    extensions = extensions_of(exc)
    headers = {}
    if "retryAfter" in extensions:
        headers["Retry-After"] = str(extensions["retryAfter"])
    body = error_body(exc.code, str(exc), **{k: v for k, v in extensions.items() if k != "code"})
    return JSONResponse(body, STATUS.get(exc.code, 400), headers=headers)


async def validation_error_response(request: Request, exc: Exception) -> JSONResponse:
    """A request that does not match a route's parameters (422): the message names each
    field; `detail` keeps FastAPI's own list."""
    assert isinstance(exc, RequestValidationError)
    details = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
    parts = []
    for item in details:
        where = ".".join(str(p) for p in item.get("loc", ()))
        parts.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", ""))
    message = "; ".join(parts) or "invalid request"
    return JSONResponse(error_body(BAD_USER_INPUT, message, detail=details), 422)


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE"}


async def http_error_response(request: Request, exc: Exception) -> Response:
    """An HTTPException (404 of an unknown dataset...): FastAPI's `detail` plus the code."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    code = HTTP_CODES.get(exc.status_code, INTERNAL if exc.status_code >= 500 else BAD_USER_INPUT)
    detail = exc.detail if exc.status_code < 500 else UNEXPECTED
    body = error_body(code, str(detail), detail=detail)
    return JSONResponse(body, exc.status_code, headers=exc.headers)
