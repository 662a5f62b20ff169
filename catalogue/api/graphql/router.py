"""The GraphQL HTTP endpoint: every error of every answer (parse, validation, limits,
resolvers, extensions) goes through catalogue.api.errors.client_error; a rate-limited answer
is HTTP 429 with Retry-After."""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from catalogue.api.errors import HTTP_CODES, client_error, graphql_body


class CatalogueGraphQLRouter(GraphQLRouter[Any, None]):
    """strawberry's FastAPI router with the catalogue's error codes and masking."""

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """strawberry's refusals of a malformed HTTP request (plain text) as coded JSON."""
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            code = HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
            return JSONResponse(graphql_body(code, exc.reason), exc.status_code)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [client_error(e) for e in result.errors]
        return process_result(result)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        answers = response_data if isinstance(response_data, list) else [response_data]
        waits = [
            extensions.get("retryAfter", 1)
            for answer in answers
            for error in answer.get("errors") or ()
            if isinstance(error, dict)
            and isinstance(extensions := error.get("extensions"), dict)
            and extensions.get("code") == "RATE_LIMITED"
        ]
        if waits:
            sub_response.status_code = 429
            sub_response.headers["Retry-After"] = str(max(waits))
        return super().create_response(response_data, sub_response)
