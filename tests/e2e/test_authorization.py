"""Sign-in and roles over HTTP: OIDC bearer JWTs signed by a key generated here, whose JWKS and
OpenID configuration a real local HTTP server serves; API tokens; the authorisation matrix.

THE MATRIX: every root Query and Mutation field the schema has (read from the schema itself, so
a new field without an entry here fails), and the nested fields restricted below, is asked for
by each role. Who may ask is written here, from the issue's defaults, independently of the
policy table under test: anonymous may search the public catalogue, feasibility needs a
researcher, curation a curator, the changes feed a harvester; admin may do everything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import strawberry
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends
from fastapi.testclient import TestClient
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    build_schema,
    get_named_type,
    is_leaf_type,
    is_object_type,
    is_required_argument,
)
from typer.testing import CliRunner

from catalogue.api.app import create_app
from catalogue.api.auth import roles_of
from catalogue.api.authz import POLICY, ROOT_TYPES, Authorization, require
from catalogue.api.graphql.schema import schema as catalogue_schema
from catalogue.config import AuthSettings, DisclosureSettings, IssuerSettings, Settings
from catalogue.config import load_providers as load
from catalogue.domain.principal import Principal, Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.http_server import LocalServer, Reply, local_server
from tests.integration.test_harvest import rows
from tests.providers import hospital

REALM = "/realms/imaging"
AUDIENCE = "catalogue-api"
PROVIDER = "hospital"

ANONYMOUS, RESEARCHER, CURATOR, HARVESTER, ADMIN = (
    "anonymous",
    "researcher",
    "curator",
    "harvester",
    "admin",
)
ROLES = (ANONYMOUS, RESEARCHER, CURATOR, HARVESTER, ADMIN)
EVERYONE = frozenset(ROLES)
CURATORS = frozenset({CURATOR, ADMIN})

EXPECTED: dict[str, frozenset[str]] = {
    "Query.providers": EVERYONE,
    "Query.datasets": EVERYONE,
    "Query.dataset": EVERYONE,
    "Query.concepts": EVERYONE,
    "Query.feasibility": frozenset({RESEARCHER, ADMIN}),
    "Query.unmappedValues": CURATORS,
    "Query.mappings": CURATORS,
    "Query.mappingSet": CURATORS,
    "Mutation.proposeMapping": CURATORS,
    "Mutation.approveMapping": CURATORS,
    "Mutation.rejectMapping": CURATORS,
    "Mutation.remap": CURATORS,
    "Query.harvestRuns": CURATORS,
    "Query.harvestRun": CURATORS,
    "Query.validationReports": CURATORS,
    "Mutation.harvestProvider": CURATORS,
    "Query.datasetChanges": frozenset({HARVESTER, ADMIN}),
}
"""Who may select each field (the issue's defaults), written here, not read from POLICY."""

_CHANGE = f'(provider: "{PROVIDER}", field: "body_part", value: "CHEST", object: "BPE:CHEST")'
ARGUMENTS: dict[str, str] = {
    "Query.datasets": "(first: 1)",
    "Query.dataset": f'(provider: "{PROVIDER}", identifier: "lung-ct")',
    "Query.concepts": '(search: "lung")',
    "Query.feasibility": "(query: {})",
    "Query.unmappedValues": f'(provider: "{PROVIDER}")',
    "Mutation.proposeMapping": _CHANGE,
    "Mutation.approveMapping": _CHANGE,
    "Mutation.rejectMapping": f'(provider: "{PROVIDER}", field: "body_part", value: "CHEST", '
    'object: "BPE:ABDOMEN")',
    "Query.harvestRun": "(id: 1)",
    "Query.validationReports": f'(provider: "{PROVIDER}", identifier: "lung-ct")',
    "Mutation.harvestProvider": '(provider: "nowhere")',
}
"""Sample arguments: a minimal valid operation per field (others need none)."""

MAY_FAIL_AFTER_AUTHORISATION = frozenset({"Mutation.harvestProvider"})
"""Fields whose sample operation may fail validation once authorised (e.g. an unknown provider
for a mutation that would start real work): only the authorisation decision is checked."""

SDL = build_schema(catalogue_schema.as_str())


def schema_fields() -> set[str]:
    """Every root field of the schema, and every nested field the policy restricts."""
    found = set()
    for root in (SDL.query_type, SDL.mutation_type):
        if root is not None:
            found |= {f"{root.name}.{name}" for name in root.fields}
    found |= {c for c in POLICY if c.partition(".")[0] not in ROOT_TYPES}
    return found


# -- signing keys, tokens and the issuer ----------------------------------------------------


@dataclass
class Key:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Issuer:
    """A Keycloak-like realm on a local HTTP server: discovery document and JWKS."""

    server: LocalServer
    keys: list[Key]

    @property
    def url(self) -> str:
        return self.server.url + REALM

    def serve(self) -> Issuer:
        configuration = {
            "issuer": self.url,
            "jwks_uri": self.url + "/protocol/openid-connect/certs",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        self.server.route(
            REALM + "/.well-known/openid-configuration",
            Reply(json.dumps(configuration).encode(), content_type="application/json"),
        )
        self.server.route(
            REALM + "/protocol/openid-connect/certs",
            lambda _: Reply(
                json.dumps({"keys": [k.jwk() for k in self.keys]}).encode(),
                content_type="application/json",
            ),
        )
        return self

    def jwks_fetches(self) -> int:
        return len(self.server.to(REALM + "/protocol/openid-connect/certs"))

    def token(self, key: Key | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        signer = key or self.keys[0]
        return jwt.encode(payload, signer.private, algorithm="RS256", headers={"kid": signer.kid})

    def role_token(self, role: str) -> str:
        return self.token(sub=f"{role}-1", realm_access={"roles": [role, "offline_access"]})

    def settings(self, **auth: Any) -> AuthSettings:
        return AuthSettings(issuers=[IssuerSettings(issuer=self.url, audience=AUDIENCE)], **auth)


def unsigned(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A JWT made by hand: `alg` as the header says, HMAC-signed with `secret` or unsigned."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(payload).encode())
    signature = hmac.new(secret, head.encode(), hashlib.sha256).digest() if secret else b""
    return head + "." + part(signature)


# -- the catalogue and the app --------------------------------------------------------------


@dataclass
class Deployment:
    catalogue: Catalogue
    issuer: Issuer
    settings: Settings

    def client(self, auth: AuthSettings | None = None) -> TestClient:
        settings = self.settings.model_copy(update={"auth": auth or self.settings.auth})
        return TestClient(create_app(settings, catalogue=self.catalogue))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("authorization")
    providers = hospital(root, rows(12, dataset="lung-ct"), PROVIDER)
    with local_server() as server:
        issuer = Issuer(server, [Key("key-1")]).serve()
        settings = Settings(
            data_dir=root / "data",
            secret="authorization-secret-0123456789",
            disclosure=DisclosureSettings.exact_counts(),
            auth=issuer.settings(),
        )
        with open_catalogue(settings) as opened:
            assert harvest(opened, load(providers)).ok
            yield Deployment(opened, issuer, settings)


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Iterator[TestClient]:
    with deployment.client() as test_client:
        yield test_client


def post(
    client: TestClient, query: str, token: str | None = None, **extra: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json={"query": query, **extra}, headers=headers)
    return response.status_code, response.json()


def auth_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in body.get("errors") or []
        if e.get("extensions", {}).get("code") in ("UNAUTHENTICATED", "FORBIDDEN")
    ]


# -- building a minimal operation for a field -----------------------------------------------


def _required(graphql_field: GraphQLField) -> list[str]:
    return [name for name, arg in graphql_field.args.items() if is_required_argument(arg)]


def _selection(coordinate: str) -> str:
    """`field(args) { a scalar }` for a schema coordinate."""
    type_name, name = coordinate.split(".")
    parent = SDL.get_type(type_name)
    assert isinstance(parent, GraphQLObjectType), coordinate
    graphql_field = parent.fields[name]
    arguments = ARGUMENTS.get(coordinate, "")
    missing = [a for a in _required(graphql_field) if f"{a}:" not in arguments]
    assert not missing, f"add sample arguments {missing} for {coordinate} to ARGUMENTS"
    return name + arguments + _leaf(graphql_field)


def _leaf(graphql_field: GraphQLField) -> str:
    """A subselection of one scalar field (none for a scalar), picked from the schema."""
    named = get_named_type(graphql_field.type)
    if is_leaf_type(named):
        return ""
    if is_object_type(named):
        assert isinstance(named, GraphQLObjectType)
        for name, child in named.fields.items():
            if is_leaf_type(get_named_type(child.type)) and not _required(child):
                return f" {{ {name} }}"
    return " { __typename }"


def _path_to(type_name: str) -> list[str]:
    """Root field coordinates leading from Query to an object type (breadth first)."""
    assert SDL.query_type is not None
    queue: deque[tuple[GraphQLObjectType, list[str]]] = deque([(SDL.query_type, [])])
    seen = {SDL.query_type.name}
    while queue:
        current, path = queue.popleft()
        for name, child in current.fields.items():
            named = get_named_type(child.type)
            coordinate = f"{current.name}.{name}"
            if not isinstance(named, GraphQLObjectType) or named.name in seen:
                continue
            if named.name == type_name:
                return [*path, coordinate]
            seen.add(named.name)
            queue.append((named, [*path, coordinate]))
    raise AssertionError(f"no path from Query to {type_name}")


def operation(coordinate: str) -> str:
    type_name = coordinate.partition(".")[0]
    if type_name == "Mutation":
        return "mutation { " + _selection(coordinate) + " }"
    inner = _selection(coordinate)
    if type_name != "Query":
        for step in reversed(_path_to(type_name)):
            inner = step.partition(".")[2] + ARGUMENTS.get(step, "") + " { " + inner + " }"
    return "query { " + inner + " }"


# -- the matrix -----------------------------------------------------------------------------


def test_the_matrix_covers_every_field_of_the_schema() -> None:
    missing = sorted(schema_fields() - set(EXPECTED))
    stale = sorted(set(EXPECTED) - schema_fields())
    assert not missing, f"fields without an authorisation matrix entry: {missing}"
    assert not stale, f"matrix entries for fields the schema does not have: {stale}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("coordinate", sorted(schema_fields() | set(EXPECTED)))
def test_authorisation_matrix(
    client: TestClient, deployment: Deployment, coordinate: str, role: str
) -> None:
    assert coordinate in EXPECTED, f"add {coordinate} to EXPECTED (who may select it)"
    query = operation(coordinate)
    token = None if role == ANONYMOUS else deployment.issuer.role_token(role)
    status, body = post(client, query, token)
    assert status == 200, body
    if role in EXPECTED[coordinate]:
        assert auth_errors(body) == [], (query, body)
        if coordinate not in MAY_FAIL_AFTER_AUTHORISATION:
            assert "errors" not in body, (query, body)
            assert body["data"] is not None
    else:
        code = "UNAUTHENTICATED" if role == ANONYMOUS else "FORBIDDEN"
        assert body["data"] is None, (query, body)
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [
            (code, coordinate)
        ], body
        assert coordinate in body["errors"][0]["message"]


def test_a_denied_mutation_changes_nothing_and_an_allowed_one_applies(
    client: TestClient, deployment: Deployment
) -> None:
    issuer = deployment.issuer
    change = f"""mutation {{ approveMapping(provider: "{PROVIDER}", field: "modality",
        value: "SEG", object: "sssom:NoTermFound") {{ version mapping {{ status authors }} }} }}"""
    mappings = '{ mappings(provider: "hospital", field: "modality") { value status } }'
    curator = issuer.role_token(CURATOR)
    before = post(client, mappings, curator)[1]["data"]["mappings"]
    assert {"value": "SEG", "status": "APPROVED"} not in before

    for role in (RESEARCHER, HARVESTER):
        _, denied = post(client, change, issuer.role_token(role))
        assert denied["data"] is None and auth_errors(denied)
    assert post(client, mappings, curator)[1]["data"]["mappings"] == before

    _, done = post(client, change, curator)
    assert "errors" not in done, done
    mapping = done["data"]["approveMapping"]["mapping"]
    assert mapping["status"] == "APPROVED"
    assert mapping["authors"] == [f"{issuer.url}#curator-1"]  # "<issuer>#<sub>"
    after = post(client, mappings, curator)[1]["data"]["mappings"]
    assert {"value": "SEG", "status": "APPROVED"} in after


def test_every_denied_field_is_named_and_nothing_runs(client: TestClient) -> None:
    query = (
        "{ providers { id } mappingSet { version } feasibility(query: {}) { subjects { value } } }"
    )
    status, body = post(client, query)
    assert status == 200
    assert body["data"] is None
    assert sorted((e["extensions"]["field"], e["extensions"]["code"]) for e in body["errors"]) == [
        ("Query.feasibility", "UNAUTHENTICATED"),
        ("Query.mappingSet", "UNAUTHENTICATED"),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "query { ...Curation } fragment Curation on Query { mappingSet { version } }",
        "query { ... on Query { mappingSet { version } } }",
        "query { ...A } fragment A on Query { ...B } "
        "fragment B on Query { mappingSet { version } }",
        "query { public: providers { id } secret: mappingSet { version } }",
        "mutation { remap { version } }",
    ],
    ids=["fragment", "inline-fragment", "nested-fragments", "alias", "mutation"],
)
def test_fragments_and_aliases_do_not_hide_a_field(client: TestClient, query: str) -> None:
    _, body = post(client, query)
    assert body["data"] is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}


def test_only_the_chosen_operation_is_checked(client: TestClient) -> None:
    document = "query Public { providers { id } } query Curation { mappingSet { version } }"
    _, public = post(client, document, operationName="Public")
    assert public == {"data": {"providers": [{"id": PROVIDER}]}}
    _, curation = post(client, document, operationName="Curation")
    assert curation["data"] is None and auth_errors(curation)


def test_introspection_stays_allowed(client: TestClient) -> None:
    _, body = post(
        client, '{ __typename __schema { queryType { name } } __type(name: "Query") { name } }'
    )
    assert body == {
        "data": {
            "__typename": "Query",
            "__schema": {"queryType": {"name": "Query"}},
            "__type": {"name": "Query"},
        }
    }


# -- refused tokens -------------------------------------------------------------------------


def assert_refused(client: TestClient, token: str | None, header: str | None = None) -> None:
    headers = {"Authorization": header or f"Bearer {token}"}
    response = client.post("/graphql", json={"query": "{ providers { id } }"}, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


def test_a_valid_token_within_the_leeway_is_accepted(
    client: TestClient, deployment: Deployment
) -> None:
    issuer = deployment.issuer
    late = issuer.token(exp=int(time.time()) - 5, realm_access={"roles": [CURATOR]})
    _, body = post(client, "{ mappingSet { version } }", late)
    assert "errors" not in body, body


def test_bad_tokens_are_refused_not_taken_for_anonymous(
    client: TestClient, deployment: Deployment
) -> None:
    issuer = deployment.issuer
    now = int(time.time())
    key = issuer.keys[0]
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "exp": now + 300}
    refused = {
        "expired": issuer.token(exp=now - 3600),
        "not yet valid": issuer.token(nbf=now + 3600),
        "wrong issuer": jwt.encode(
            {**claims, "iss": "http://127.0.0.1:1/realms/other"}, key.private, "RS256",
            headers={"kid": key.kid},
        ),
        "wrong audience": issuer.token(aud="another-api"),
        "no expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, key.private, "RS256",
            headers={"kid": key.kid},
        ),
        "bad signature": issuer.token(key=Key(key.kid)),  # another key under the same key id
        "tampered": _tampered(issuer.token(realm_access={"roles": [RESEARCHER]})),
        "alg none": unsigned({"alg": "none", "kid": key.kid}, claims, None),
        "HS256 keyed with the public key": unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims, key.public_pem()
        ),
        "not a JWT": "abc.def",
        "unknown API token": "cat_" + "A" * 43,
    }  # fmt: skip
    for reason, token in refused.items():
        try:
            assert_refused(client, token)
        except AssertionError as exc:
            raise AssertionError(f"{reason}: {exc}") from exc
    assert_refused(client, None, header="Bearer")
    assert_refused(client, None, header="Basic dXNlcjpwYXNz")


def _tampered(token: str) -> str:
    """The token with its payload changed to grant the admin role, signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": [ADMIN]}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


def test_a_bad_token_is_refused_on_rest_routes_too(
    client: TestClient, deployment: Deployment
) -> None:
    assert client.get("/catalog").status_code == 200
    response = client.get("/catalog", headers={"Authorization": "Bearer expired.or.bad"})
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"  # the REST error body
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# -- keys: discovery, rotation, refresh spacing ---------------------------------------------


def test_key_rotation_refetches_the_jwks_for_an_unknown_key_id(deployment: Deployment) -> None:
    with local_server() as server:
        issuer = Issuer(server, [Key("old")]).serve()
        with deployment.client(issuer.settings(jwks_refresh=0)) as client:
            query = "{ mappingSet { version } }"
            roles: dict[str, Any] = {"realm_access": {"roles": [CURATOR]}}
            _, body = post(client, query, issuer.token(**roles))
            assert "errors" not in body, body
            assert issuer.jwks_fetches() == 1
            post(client, query, issuer.token(**roles))
            assert issuer.jwks_fetches() == 1  # cached

            new = Key("new")
            assert_refused(client, issuer.token(key=new, **roles))  # not published yet
            assert issuer.jwks_fetches() == 2  # it looked again

            issuer.keys.append(new)  # the issuer rotates: the new key is published
            _, body = post(client, query, issuer.token(key=new, **roles))
            assert "errors" not in body, body
            assert issuer.jwks_fetches() == 3


def test_unknown_key_ids_do_not_refetch_more_often_than_configured(
    deployment: Deployment,
) -> None:
    with local_server() as server:
        issuer = Issuer(server, [Key("only")]).serve()
        with deployment.client(issuer.settings(jwks_refresh=3600)) as client:
            assert post(client, "{ providers { id } }", issuer.token())[0] == 200
            for n in range(3):
                assert_refused(client, issuer.token(key=Key(f"random-{n}")))
            assert issuer.jwks_fetches() == 1
            assert len(server.to(REALM + "/.well-known/openid-configuration")) == 1


def test_an_unreachable_issuer_refuses_its_tokens(deployment: Deployment) -> None:
    with local_server() as server:
        issuer = Issuer(server, [Key("k")])  # nothing served
        with deployment.client(issuer.settings()) as client:
            assert_refused(client, issuer.token())
            assert_refused(client, issuer.token())
        discovery = REALM + "/.well-known/openid-configuration"
        assert len(server.to(discovery)) == 1  # not asked again within `jwks_refresh`


# -- roles from other claims ----------------------------------------------------------------


def test_roles_come_from_the_configured_claim_through_the_role_map() -> None:
    groups = IssuerSettings(
        issuer="https://login.example",
        audience=AUDIENCE,
        roles_claim="groups",
        role_map={"/catalogue/curators": Role.CURATOR, "/catalogue/ops": Role.ADMIN},
    )
    claims = {"groups": ["/catalogue/curators", "/other"], "realm_access": {"roles": ["admin"]}}
    assert roles_of(claims, groups) == {Role.CURATOR}
    flat = IssuerSettings(issuer="https://login.example", audience=AUDIENCE, roles_claim="roles")
    assert roles_of({"roles": ["researcher", "harvester", "anonymous", "x"]}, flat) == {
        Role.RESEARCHER,
        Role.HARVESTER,
    }
    assert roles_of({"roles": "curator unknown"}, flat) == {Role.CURATOR}  # space-separated
    keycloak = IssuerSettings(issuer="https://login.example", audience=AUDIENCE)
    assert roles_of({"realm_access": {"roles": ["admin"]}}, keycloak) == {Role.ADMIN}
    assert roles_of({"sub": "nobody"}, keycloak) == frozenset()


def test_an_entitlement_claim_maps_to_a_role_end_to_end(deployment: Deployment) -> None:
    with local_server() as server:
        issuer = Issuer(server, [Key("k")]).serve()
        entitlement = "urn:geant:lifescience-ri.eu:group:imaging-curators#aai.lifescience-ri.eu"
        auth = AuthSettings(
            issuers=[
                IssuerSettings(
                    issuer=issuer.url,
                    audience=[AUDIENCE, "other"],
                    jwks_url=f"{issuer.url}/protocol/openid-connect/certs",
                    roles_claim="eduperson_entitlement",
                    role_map={entitlement: Role.CURATOR},
                )
            ]
        )
        with deployment.client(auth) as client:
            _, body = post(
                client,
                "{ mappingSet { version } }",
                issuer.token(eduperson_entitlement=[entitlement]),
            )
            assert "errors" not in body, body
            _, body = post(client, "{ mappingSet { version } }", issuer.role_token(CURATOR))
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert server.to(REALM + "/.well-known/openid-configuration") == []  # jwks_url given


# -- API tokens -----------------------------------------------------------------------------


def test_api_tokens_valid_revoked_and_unknown(deployment: Deployment, client: TestClient) -> None:
    store = ApiTokenStore(deployment.settings.data_dir)
    secret = store.create("curation-bot", [Role.CURATOR])
    stored = (deployment.settings.data_dir / "api_tokens.sqlite").read_bytes()
    assert secret.encode() not in stored  # kept hashed
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored

    _, body = post(client, "{ mappingSet { version } }", secret)
    assert "errors" not in body, body
    _, body = post(client, "{ feasibility(query: {}) { subjects { value } } }", secret)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    listed = {t.name: t for t in store.list()}
    assert listed["curation-bot"].last_used is not None

    change = """mutation { proposeMapping(provider: "hospital", field: "manufacturer",
        value: "SIEMENS", object: "sssom:NoTermFound") { mapping { authors } } }"""
    _, body = post(client, change, secret)
    assert body["data"]["proposeMapping"]["mapping"]["authors"] == ["token:curation-bot"]

    store.revoke("curation-bot")
    assert_refused(client, secret)
    assert_refused(client, secret[:-1] + ("A" if secret[-1] != "A" else "B"))


def test_token_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalogue.cli import app

    monkeypatch.setenv("CATALOGUE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    made = runner.invoke(app, ["token", "create", "ci", "--role", "harvester", "--role", "curator"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("cat_")
    token = ApiTokenStore(tmp_path / "data").verify(secret)
    assert token is not None and token.roles == {Role.HARVESTER, Role.CURATOR}

    listed = runner.invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and "ci" in listed.stdout and secret not in listed.stdout
    assert runner.invoke(app, ["token", "revoke", "ci"]).exit_code == 0
    assert ApiTokenStore(tmp_path / "data").verify(secret) is None


# -- settings: disabled authentication, public changes feed, REST routes --------------------


def test_disabled_authentication_gives_every_role_and_logs_a_warning(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), deployment.client(AuthSettings(disabled=True)) as c:
        _, body = post(
            c, "{ mappingSet { version } feasibility(query: {}) { subjects { value } } }"
        )
    assert "errors" not in body, body
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("authentication is DISABLED" in r.getMessage() for r in warnings)

    caplog.clear()
    with caplog.at_level(logging.WARNING), deployment.client() as c:
        c.get("/health")
    assert not any("DISABLED" in r.getMessage() for r in caplog.records)


@strawberry.type(name="Root")  # not named Query: the policy still knows it as the root
class _ChangesQuery:
    @strawberry.field
    def dataset_changes(self) -> int:
        return 7

    @strawberry.field
    def providers(self) -> int:
        return 1


_CHANGES_SCHEMA = strawberry.Schema(query=_ChangesQuery, extensions=[Authorization])


@dataclass
class _Context:
    principal: Principal
    policy: dict[str, frozenset[Role]]


@pytest.mark.parametrize("public_changes", [False, True])
def test_the_changes_feed_is_for_harvesters_unless_configured_public(
    public_changes: bool,
) -> None:
    """Over a schema holding just the feed, by the setting as the app applies it."""
    from catalogue.api.authz import policy

    table = policy(public_changes=AuthSettings(public_changes=public_changes).public_changes)
    expected = {
        ANONYMOUS: public_changes,
        RESEARCHER: public_changes,
        CURATOR: public_changes,
        HARVESTER: True,
        ADMIN: True,
    }
    for role, allowed in expected.items():
        roles = frozenset() if role == ANONYMOUS else frozenset({Role(role)})
        principal = Principal("u", roles=roles, authenticated=role != ANONYMOUS)
        result = _CHANGES_SCHEMA.execute_sync(
            "{ datasetChanges providers }", context_value=_Context(principal, table)
        )
        if allowed:
            assert result.errors is None and result.data == {"datasetChanges": 7, "providers": 1}
        else:
            assert result.data is None and result.errors is not None, role
            assert [e.extensions for e in result.errors] == [
                {
                    "code": "FORBIDDEN" if principal.authenticated else "UNAUTHENTICATED",
                    "field": "Query.datasetChanges",
                }
            ]


def test_rest_routes_can_require_a_role(deployment: Deployment) -> None:
    issuer = deployment.issuer
    app = create_app(deployment.settings, catalogue=deployment.catalogue)

    @app.get("/probe", dependencies=[Depends(require(Role.HARVESTER))])
    async def probe() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        anonymous = client.get("/probe")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
        assert anonymous.headers["www-authenticate"] == "Bearer"  # no token came
        headers = {"Authorization": f"Bearer {issuer.role_token(RESEARCHER)}"}
        forbidden = client.get("/probe", headers=headers)
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "FORBIDDEN"
        for role in (HARVESTER, ADMIN):
            headers = {"Authorization": f"Bearer {issuer.role_token(role)}"}
            assert client.get("/probe", headers=headers).json() == {"ok": True}
        assert client.get("/catalog").status_code == 200  # the DCAT export stays public
