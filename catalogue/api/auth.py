"""Authentication: a request's bearer token -> the `Principal` who asks.

`Authorization: Bearer <jwt>` is an OIDC access token of a configured issuer, verified against
the issuer's JWKS (fetched without blocking, cached, refetched for an unknown key id); `Bearer
cat_...` is an API token. No header is an anonymous caller; a bad token is refused (HTTP 401),
never taken for anonymous.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse

from catalogue.api.authz import PUBLIC
from catalogue.api.errors import error_body, graphql_body
from catalogue.config import AuthSettings, IssuerSettings
from catalogue.domain.principal import Principal, Role
from catalogue.exceptions import AuthenticationError, PermissionDeniedError
from catalogue.services.api_tokens import PREFIX, ApiTokenStore

log = logging.getLogger(__name__)

PROJECT_HEADER = "x-catalogue-project"
JWKS_TIMEOUT = 10.0
DISABLED_WARNING = (
    "authentication is DISABLED (auth.disabled): every caller has every role, curation "
    "included; use this only for a local demo"
)


def project_of(request: Request) -> str:
    """The X-Catalogue-Project header, which only splits a user's privacy budget."""
    return request.headers.get(PROJECT_HEADER, "default").strip()[:100] or "default"


def anonymous(request: Request, roles: frozenset[Role] = frozenset()) -> Principal:
    """A caller without a token, known by its address."""
    host = request.client.host if request.client else "unknown"
    return Principal(user=f"anonymous@{host}", project=project_of(request), roles=roles)


@dataclass
class _Jwks:
    """One issuer's signing keys, as last fetched."""

    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched: float = float("-inf")
    url: str | None = None


class Authenticator:
    """Turns a request into a Principal under the deployment's AuthSettings."""

    def __init__(self, settings: AuthSettings, tokens: ApiTokenStore) -> None:
        self.settings = settings
        self.tokens = tokens
        self._issuers = {i.issuer: i for i in settings.issuers}
        self._jwks: dict[str, _Jwks] = {}

    async def principal(self, request: Request) -> Principal:
        """Who asks; raises AuthenticationError for a token that is not valid."""
        if self.settings.disabled:
            return anonymous(request, roles=PUBLIC)
        header = request.headers.get("authorization")
        if header is None:
            return anonymous(request)
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.casefold() != "bearer" or not credentials:
            raise AuthenticationError("the Authorization header must be `Bearer <token>`")
        if credentials.startswith(PREFIX):
            return await self._api_token(credentials, request)
        return await self._jwt(credentials, request)

    async def _api_token(self, secret: str, request: Request) -> Principal:
        token = await asyncio.to_thread(self.tokens.verify, secret)
        if token is None:
            raise AuthenticationError("the API token is unknown or revoked")
        return Principal(
            user=f"token:{token.name}",
            project=project_of(request),
            roles=token.roles,
            authenticated=True,
        )

    async def _jwt(self, token: str, request: Request) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the bearer token is not a valid JWT: {exc}") from exc
        issuer = self._issuers.get(str(unverified.get("iss", "")))
        if issuer is None:
            raise AuthenticationError("the bearer token's issuer is not accepted")
        algorithm = header.get("alg")
        if algorithm not in issuer.algorithms:
            raise AuthenticationError(f"the signing algorithm {algorithm!r} is not accepted")
        key = await self._key(issuer, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[str(algorithm)],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"the bearer token is not valid: {exc}") from exc
        return Principal(
            user=f"{issuer.issuer}#{claims['sub']}",
            project=project_of(request),
            roles=roles_of(claims, issuer),
            authenticated=True,
        )

    async def _key(self, issuer: IssuerSettings, kid: str | None) -> jwt.PyJWK:
        """The issuer's key with this id: from the cache, or a fresh JWKS when the id is unknown
        (key rotation) or the cache is old; fetches are spaced by `jwks_refresh` seconds."""
        cached = self._jwks.setdefault(issuer.issuer, _Jwks())
        age = time.monotonic() - cached.fetched
        found = _pick(cached.keys, kid)
        if found is None or age > self.settings.jwks_max_age:
            if age >= self.settings.jwks_refresh:  # an unreachable issuer is not asked each time
                await self._refresh(issuer, cached)
            found = _pick(cached.keys, kid)
        if found is None:
            raise AuthenticationError("the bearer token's signing key is not one the issuer lists")
        return found

    async def _refresh(self, issuer: IssuerSettings, cached: _Jwks) -> None:
        cached.fetched = time.monotonic()  # also spaces out fetches that fail
        try:
            async with httpx.AsyncClient(timeout=JWKS_TIMEOUT) as client:
                if cached.url is None:
                    cached.url = await _jwks_url(client, issuer)
                response = await client.get(cached.url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, json.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("cannot fetch the JWKS of %s: %s", issuer.issuer, exc)
            if not cached.keys:
                raise AuthenticationError(
                    "the bearer token's issuer cannot be reached to verify it"
                ) from exc
            return
        cached.keys = _keys(document, issuer.algorithms)


async def _jwks_url(client: httpx.AsyncClient, issuer: IssuerSettings) -> str:
    """The configured JWKS URL, or the one the issuer's OpenID configuration names."""
    if issuer.jwks_url is not None:
        return str(issuer.jwks_url)
    response = await client.get(issuer.issuer.rstrip("/") + "/.well-known/openid-configuration")
    response.raise_for_status()
    configuration = response.json()
    if configuration.get("issuer") != issuer.issuer:
        raise KeyError(f"the OpenID configuration names another issuer: {configuration['issuer']}")
    return str(configuration["jwks_uri"])


def _keys(document: Any, algorithms: list[str]) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS by key id ("" for a key without one); keys this deployment
    cannot use (encryption keys, unsupported types) are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    for data in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue
        if data.get("alg") is None or data["alg"] in algorithms:
            keys[str(data.get("kid", ""))] = key
    return keys


def _pick(keys: Mapping[str, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is not None:
        return keys.get(kid)
    return next(iter(keys.values())) if len(keys) == 1 else None


def roles_of(claims: Mapping[str, Any], issuer: IssuerSettings) -> frozenset[Role]:
    """The catalogue roles the issuer's roles claim grants through the role map; the claim is
    a dotted path to a list (or a space-separated string) of names."""
    value: Any = claims
    for part in issuer.roles_claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    names = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    granted = {issuer.role_map.get(str(n)) for n in names}
    return frozenset(r for r in granted if r is not None and r is not Role.ANONYMOUS)


async def authenticate(request: Request) -> Principal:
    """The request's principal (decided once per request) by the app's Authenticator."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.principal(request)
    request.state.principal = principal
    return principal


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """A refused token (401) or role (403): a GraphQL error on /graphql, else the REST error
    body; a 401 says `WWW-Authenticate: Bearer` (with `invalid_token` when a token came)."""
    denied = isinstance(exc, PermissionDeniedError)
    code = "FORBIDDEN" if denied else "UNAUTHENTICATED"
    headers = {}
    if not denied:
        sent = request.headers.get("authorization") is not None
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if sent else "Bearer"
    graphql = request.url.path.rstrip("/").endswith("/graphql")
    body = graphql_body(code, str(exc)) if graphql else error_body(code, str(exc))
    return JSONResponse(body, status_code=403 if denied else 401, headers=headers)
