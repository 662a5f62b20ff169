"""Settings (CATALOGUE_ environment variables, `__` for nesting) and the YAML providers file."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalogue import plugins
from catalogue.domain.harvest import ProviderConfig, SourceConfig
from catalogue.domain.linkage import Linkage
from catalogue.domain.principal import Role
from catalogue.exceptions import ConfigError
from catalogue.net.http import HttpSettings


class DisclosureSettings(BaseModel):
    """Disclosure control (docs/privacy.md). Threshold 1, rounding 1, `publish_zero`, no noise,
    no budget and no differencing check give exact counts (trusted deployments, tests)."""

    threshold: int = Field(default=10, ge=1, description="counts 1..threshold-1 are suppressed")
    rounding: int = Field(default=5, ge=1, description="published counts are multiples of it")
    publish_zero: bool = Field(
        default=False, description="publish an exact zero as 0 (else it is suppressed like 1..k-1)"
    )
    epsilon: float | None = Field(
        default=1.0,
        gt=0,
        description="Laplace noise: the privacy loss one feasibility query may spend, split "
        "between the tables it publishes; None publishes without noise",
    )
    budget_daily: float | None = Field(
        default=50.0, gt=0, description="epsilon a user may spend per project and UTC day"
    )
    budget_total: float | None = Field(
        default=1000.0, gt=0, description="epsilon a user may spend per project in all"
    )
    differencing: bool = Field(
        default=True,
        description="suppress a cell whose subjects differ from a cell the same user was "
        "published before by 1..threshold-1 subjects",
    )
    differencing_window_days: int = Field(default=90, ge=1)
    max_strata_cells: int = Field(default=5000, ge=1)

    @classmethod
    def exact_counts(cls) -> DisclosureSettings:
        """Exact counts: threshold 1, rounding 1, zeros published, no noise, no budget and no
        differencing check (trusted deployments, tests, benchmarks)."""
        return cls(
            threshold=1,
            rounding=1,
            publish_zero=True,
            epsilon=None,
            budget_daily=None,
            budget_total=None,
            differencing=False,
        )

    @field_validator("epsilon", "budget_daily", "budget_total", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        """`none`, `null`, `off` or empty (as an environment variable can say it): no value."""
        if isinstance(value, str) and value.strip().casefold() in ("", "none", "null", "off"):
            return None
        return value

    @property
    def exact(self) -> bool:
        """Whether counts are published as they are."""
        return self.threshold <= 1 and self.rounding <= 1 and self.epsilon is None


class StoreSettings(BaseModel):
    """The graph store; `url` and what follows it are for a remote SPARQL store (`sparql`)."""

    backend: str = "oxigraph"
    url: AnyHttpUrl | None = Field(default=None, description="SPARQL 1.1 query endpoint")
    update_url: AnyHttpUrl | None = Field(
        default=None, description="SPARQL 1.1 update endpoint; `url` when not set"
    )
    user: str | None = None
    password: SecretStr | None = None
    auth: Literal["digest", "basic"] = "digest"
    timeout: float = Field(default=120, gt=0, description="seconds to wait for one request")


class HarvestSettings(BaseModel):
    """Harvest safeguards."""

    max_delete_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="A run that would delete more than this share of a provider's datasets "
        "deletes none and marks the provider suspect.",
    )


class LimitSettings(BaseModel):
    """What one API request may ask for (docs/operator-guide.md, "Limits, errors and rate
    limits"); a rate of 0 (or none) disables that rate limit."""

    max_depth: int = Field(default=12, ge=1, description="nesting depth of a GraphQL operation")
    max_aliases: int = Field(default=30, ge=0, description="aliased fields in one document")
    max_tokens: int = Field(default=5000, ge=1, description="tokens in one GraphQL document")
    max_query_length: int = Field(
        default=100_000, ge=1, description="characters in one GraphQL document"
    )
    max_cost: int = Field(
        default=10_000,
        ge=1,
        description="estimated cost of one operation: 1 per field, a list multiplies its "
        "subtree by its `first` (or a default), feasibility and strata cost more",
    )
    timeout: float = Field(default=30, gt=0, description="seconds one HTTP request may run")
    feasibility_per_user: float | None = Field(
        default=30, ge=0, description="feasibility queries per minute and user"
    )
    feasibility_user_burst: int = Field(default=10, ge=1, description="a user's burst")
    feasibility_per_ip: float | None = Field(
        default=60, ge=0, description="feasibility queries per minute and client address"
    )
    feasibility_ip_burst: int = Field(default=20, ge=1, description="an address's burst")

    @field_validator("feasibility_per_user", "feasibility_per_ip", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        """`none`, `off` or empty (as an environment variable can say it): no limit."""
        return DisclosureSettings._none_words(value)


class ElasticsearchSettings(BaseModel):
    """Where the Elasticsearch backends find their cluster (docs/scaling.md)."""

    url: str = Field(default="http://127.0.0.1:9200", pattern=r"^https?://")
    api_key: SecretStr | None = Field(default=None, description="an API key (encoded form)")
    username: str | None = Field(default=None, description="basic auth, with `password`")
    password: SecretStr | None = None
    ca_certs: Path | None = Field(default=None, description="CA certificate (PEM) of the cluster")
    index_prefix: str = Field(
        default="catalogue",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="names of the indexes and aliases start with it (one deployment each)",
    )
    request_timeout: float = Field(default=30, gt=0, le=600)
    shards: int | None = Field(
        default=None, ge=1, le=1024, description="primary shards of new indexes (default: 1)"
    )
    replicas: int | None = Field(
        default=None, ge=0, le=16, description="replicas of new indexes (default: 0)"
    )


class IndexSettings(BaseModel):
    """Which backends hold the datasets and cohort indexes (docs/architecture.md)."""

    backend: Literal["embedded", "elasticsearch"] | None = Field(
        default=None,
        description="both indexes at once: `embedded` (tantivy and DuckDB on disk) or "
        "`elasticsearch`; overrides `datasets` and `cohort`",
    )
    datasets: str = "tantivy"
    cohort: str = "duckdb"
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()

    @model_validator(mode="after")
    def _both(self) -> IndexSettings:
        if self.backend == "embedded":
            self.datasets, self.cohort = "tantivy", "duckdb"
        elif self.backend == "elasticsearch":
            self.datasets = self.cohort = "elasticsearch"
        return self


SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
"""Asymmetric JWT algorithms an issuer may use; `none` and HS* are never accepted."""


_SAME_NAMES: dict[str, Role] = {
    r.value: r for r in Role if r not in (Role.ANONYMOUS, Role.HUB)
}  # the hub role is granted by API tokens only


class IssuerSettings(BaseModel):
    """One OpenID Connect issuer whose bearer JWTs are accepted (Keycloak, LS Login...)."""

    issuer: str = Field(description="the `iss` claim, exactly as the issuer writes it")
    audience: str | list[str] = Field(description="accepted `aud` value(s): this API's client id")
    jwks_url: AnyHttpUrl | None = Field(
        default=None,
        description="the issuer's JWKS; discovered from <issuer>/.well-known/"
        "openid-configuration when not set",
    )
    roles_claim: str = Field(
        default="realm_access.roles",
        description="dotted path to the claim listing the caller's roles or groups "
        "(Keycloak: realm_access.roles or groups; LS Login: eduperson_entitlement)",
    )
    role_map: dict[str, Role] = Field(
        default_factory=lambda: dict(_SAME_NAMES),
        description="a value of the roles claim -> the catalogue role it grants",
    )
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    web_client_id: str | None = Field(
        default=None,
        description="the public OIDC client the web pages sign in with (authorization code + "
        "PKCE); the first audience when not set",
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        wrong = [a for a in value if a not in SIGNING_ALGORITHMS]
        if wrong or not value:
            raise ValueError(f"only {', '.join(SIGNING_ALGORITHMS)} are accepted, not {wrong}")
        return value


class AuthSettings(BaseModel):
    """Sign-in: OIDC issuers for people, API tokens (`catalogue token`) for machines."""

    disabled: bool = Field(
        default=False,
        description="no authentication: every caller has every role (demo, local use only; "
        "the server logs a warning)",
    )
    issuers: list[IssuerSettings] = Field(default_factory=list)
    public_changes: bool = Field(
        default=False, description="the changes feed is public (else it needs the harvester role)"
    )
    leeway: float = Field(default=30, ge=0, description="seconds of clock skew allowed")
    jwks_refresh: float = Field(
        default=10,
        ge=0,
        description="at least this many seconds between two JWKS fetches of one issuer "
        "(an unknown key id refetches the JWKS)",
    )
    jwks_max_age: float = Field(default=3600, gt=0, description="seconds a JWKS is kept")


NodeFeature = Literal["diagnosis", "age", "sex", "series", "study", "not", "metadata-scope"]
"""Parts of a feasibility question a node can refuse to answer for the hub."""


class NodeSettings(BaseModel):
    """Node mode (docs/federation.md): answer feasibility questions from a federation hub."""

    enabled: bool = Field(
        default=False,
        description="serve POST /federation/feasibility to callers with the hub role",
    )
    refuse: list[NodeFeature] = Field(
        default_factory=list,
        description="criteria the node does not answer (the hub is told why, HTTP 403)",
    )
    refuse_strata: bool = Field(default=True, description="refuse strata tables")
    response_key: SecretStr | None = Field(
        default=None,
        description="shared secret with the hub: every /federation response body is signed "
        "with it (HMAC-SHA256, header X-Catalogue-Node-Signature)",
    )
    traffic_log: Path | None = Field(
        default=None,
        description="append every /federation response body sent, as a JSON line, to this "
        "file (to check what leaves the node)",
    )
    exclusive: bool = Field(
        default=False,
        description="serve only /federation/feasibility, the DCAT-AP export (/catalog, "
        "/datasets/...) and /health: no GraphQL, web pages or changes feed",
    )
    sketches: bool = Field(
        default=False,
        description="send the hub HyperLogLog sketches of the matching subjects' linkage codes "
        "when it asks for distinct subjects (needs linkage.key, agreed with the other providers)",
    )


class LinkageSettings(BaseModel):
    """Cross-provider de-duplication (docs/federation.md): the federation key the providers
    agreed on; with it, every harvested subject gets a linkage code (catalogue.domain.linkage)."""

    key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="the federation key (at least 16 characters), the same at every provider "
        "that takes part; changing it needs a re-harvest",
    )


class Settings(BaseSettings):
    """Deployment settings; every field can be set as CATALOGUE_<NAME> (CATALOGUE_A__B nested)."""

    model_config = SettingsConfigDict(
        env_prefix="CATALOGUE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("data")
    providers: Path | None = None
    secret: SecretStr | None = None
    disclosure: DisclosureSettings = DisclosureSettings()
    store: StoreSettings = StoreSettings()
    index: IndexSettings = IndexSettings()
    harvest: HarvestSettings = HarvestSettings()
    http: HttpSettings = HttpSettings()
    limits: LimitSettings = LimitSettings()
    auth: AuthSettings = AuthSettings()
    node: NodeSettings = NodeSettings()
    linkage: LinkageSettings = LinkageSettings()

    def linker(self) -> Linkage | None:
        """The linkage codes of the federation key, or None without one."""
        key = self.linkage.key
        return Linkage(key.get_secret_value().encode()) if key is not None else None

    def master_secret(self) -> bytes:
        """The deployment secret; generated once and kept in the data folder when not set."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


class ProvidersFile(BaseModel):
    """The providers file: every data provider and its sources."""

    providers: list[ProviderConfig]


@cache
def provider_model() -> type[ProviderConfig]:
    """ProviderConfig whose sources are the discriminated union of the installed source kinds."""
    kinds: list[type[SourceConfig]] = [
        plugins.load(plugins.HARVESTERS, name).config_model
        for name in plugins.available(plugins.HARVESTERS)
    ]
    union: Any = Annotated[Union[tuple(kinds)], Field(discriminator="kind")]  # noqa: UP007
    model: type[ProviderConfig] = create_model(
        "Provider", __base__=ProviderConfig, sources=(list[union], Field(default_factory=list))
    )
    return model


@cache
def providers_file_model() -> type[ProvidersFile]:
    """ProvidersFile over `provider_model()`, for validation and the exported JSON Schema."""
    provider: Any = provider_model()
    model: type[ProvidersFile] = create_model(
        "ProvidersFile", __base__=ProvidersFile, providers=(list[provider], ...)
    )
    return model


def read_providers(path: Path) -> tuple[ProvidersFile, list[str]]:
    """Read a providers file, keeping every valid provider; each invalid one gives an error
    naming the line and the field. An unreadable file or a wrong top level is fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read providers file: {exc.strerror or exc}") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if root is None:
        raise ConfigError(f"{path}: the providers file is empty")
    if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
        line = root.start_mark.line + 1
        raise ConfigError(f"{path}:{line}: providers: a list of providers is required")
    extra = sorted(str(k) for k in data if k != "providers")
    if extra:
        line = _line_of(root, (extra[0],))
        raise ConfigError(f"{path}:{line}: {extra[0]}: unknown top-level key")

    valid: list[ProviderConfig] = []
    errors: list[str] = []
    seen: set[str] = set()
    base = path.parent.resolve()
    for index, entry in enumerate(data["providers"]):
        try:
            provider = provider_model().model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ("providers", index, *first["loc"])
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            field = ".".join(str(p) for p in loc)
            errors.append(f"{path}:{_line_of(root, loc)}: {field}: {first['msg']}{more}")
            continue
        if provider.id in seen:
            line = _line_of(root, ("providers", index, "id"))
            errors.append(
                f"{path}:{line}: providers.{index}.id: provider id used twice: {provider.id}"
            )
            continue
        seen.add(provider.id)
        for source in provider.sources:
            for name, value in source:
                if isinstance(value, Path) and not value.is_absolute():
                    setattr(source, name, base / value)
        valid.append(provider)
    return ProvidersFile(providers=valid), errors


def load_providers(path: Path) -> ProvidersFile:
    """Read a providers file strictly: any invalid provider is an error naming line and field."""
    parsed, errors = read_providers(path)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(errors[0] + more)
    return parsed


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest YAML node that `loc` reaches."""
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is not None:
            node = child  # parts not in the file (union tags such as 'dcat') are passed over
    return node.start_mark.line + 1


def providers_json_schema() -> dict[str, Any]:
    """JSON Schema of the providers file, as exported to schemas/."""
    return providers_file_model().model_json_schema()
