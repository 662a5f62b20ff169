"""Federated feasibility (docs/federation.md): the `federated-node` source kind a hub configures
per provider, and what travels between hub and node: the normalised query in, disclosed counts
out. Nothing else crosses."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from catalogue.domain.cohort import CohortQuery, Criterion
from catalogue.domain.harvest import SourceConfig
from catalogue.domain.linkage import HllSketch
from catalogue.exceptions import ConfigError

FEDERATED_NODE = "federated-node"
"""The source kind naming a provider whose data stays at a node."""

NONCE_HEADER = "X-Catalogue-Nonce"
"""A fresh random value the hub sends with each question; the node signs it with its answer."""
SIGNATURE_HEADER = "X-Catalogue-Node-Signature"
"""`sha256=<hex>`: HMAC-SHA256 under the node's response key of the nonce, a newline and the
exact response body bytes (docs/federation.md, "Each side authenticates the other")."""


def node_signature(key: str, nonce: str, body: bytes) -> str:
    """The value of SIGNATURE_HEADER for one response body answering one nonce."""
    digest = hmac.new(key.encode(), nonce.encode() + b"\n" + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_ok(key: str, nonce: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the node's signature of `body` for `nonce` (constant-time)."""
    return header is not None and hmac.compare_digest(header, node_signature(key, nonce, body))


class FederatedNodeSource(SourceConfig):
    """A provider whose features stay at its own node: the hub harvests the node's DCAT-AP
    catalogue and sends it feasibility questions. The provider's `id` must be the node's."""

    kind: Literal["federated-node"]
    url: str = Field(pattern=r"^https?://", description="The node's base URL.")
    token: SecretStr | None = Field(
        default=None, description="The API token (role `hub`) the node issued to this hub."
    )
    token_env: str | None = Field(
        default=None, description="An environment variable holding the token instead."
    )
    timeout: float = Field(
        default=10, gt=0, le=600, description="Seconds a feasibility answer may take."
    )
    node_key: SecretStr | None = Field(
        default=None,
        description="The node's response key (its CATALOGUE_NODE__RESPONSE_KEY): answers not "
        "signed with it are refused.",
    )
    node_key_env: str | None = Field(
        default=None, description="An environment variable holding the node key instead."
    )

    @model_validator(mode="after")
    def _one_token(self) -> FederatedNodeSource:
        if self.token is not None and self.token_env is not None:
            raise ValueError("give at most one of `token` and `token_env`")
        if self.node_key is not None and self.node_key_env is not None:
            raise ValueError("give at most one of `node_key` and `node_key_env`")
        return self

    def response_key(self) -> str | None:
        """The key the node's answers must be signed with, or None (not checked)."""
        if self.node_key is not None:
            return self.node_key.get_secret_value()
        if self.node_key_env is not None:
            return os.environ.get(self.node_key_env) or None
        return None

    def bearer(self) -> str | None:
        """The token to present, or None."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_env is not None:
            return os.environ.get(self.token_env) or None
        return None

    def endpoint(self, path: str) -> str:
        return self.url.rstrip("/") + path


class WireCount(BaseModel):
    """One disclosed count as a node publishes it."""

    model_config = ConfigDict(extra="forbid")

    value: int | None = Field(default=None, ge=0)
    suppressed: bool
    precision: str
    reason: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WireCount:
        if self.suppressed != (self.value is None):
            raise ValueError("a count is suppressed exactly when it has no value")
        return self


class WireCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subjects: WireCount
    studies: WireCount
    series: WireCount


class WireProvider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    cell: WireCell


class WireDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    identifier: str
    cell: WireCell


class WireSketch(BaseModel):
    """One provider's HyperLogLog registers of the matching subjects' linkage codes
    (catalogue.domain.linkage), or why the node withholds them."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    key_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{12}$")
    """The public name of the federation key the codes were computed with."""
    registers: str | None = Field(default=None, max_length=32_768)
    """`HllSketch.encode()`: the compressed register array, base64."""
    withheld: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _one(self) -> WireSketch:
        if (self.registers is None) == (self.withheld is None):
            raise ValueError("a sketch has registers or a reason it is withheld, not both")
        if self.registers is not None:
            if self.key_id is None:
                raise ValueError("a sketch names its federation key")
            HllSketch.decode(self.registers)  # ValueError when malformed
        return self

    def sketch(self) -> HllSketch | None:
        return None if self.registers is None else HllSketch.decode(self.registers)


class NodeRequest(BaseModel):
    """What the hub sends: the canonical query (as `CohortQuery.canonical_json` writes it)."""

    model_config = ConfigDict(extra="forbid")

    query: dict[str, Any]
    strata: list[list[str]] = Field(default_factory=list, max_length=4)
    distinct: bool = False
    """Whether the hub asks for sketches of the matching subjects (distinct subjects)."""

    def cohort_query(self) -> CohortQuery:
        data = dict(self.query)
        where = data.pop("where", None)
        return CohortQuery.model_validate(
            {**data, "where": None if where is None else Criterion.model_validate(where)}
        ).normalised()


class NodeAnswer(BaseModel):
    """What a node sends back: counts disclosed under the node's own rules."""

    model_config = ConfigDict(extra="forbid")

    disclosure: str
    providers: list[WireProvider]
    datasets: list[WireDataset]
    sketches: list[WireSketch] | None = None
    """Only when the hub asked for distinct subjects (absent from the body otherwise)."""

    def body(self) -> bytes:
        """The JSON a node sends (without `sketches` when not asked for)."""
        exclude = {"sketches"} if self.sketches is None else None
        return self.model_dump_json(exclude=exclude).encode()


def node_request(query: CohortQuery, distinct: bool = False) -> NodeRequest:
    return NodeRequest(query=json.loads(query.canonical_json()), distinct=distinct)


def features(query: CohortQuery) -> set[str]:
    """The parts of a normalised query a node may refuse (`NodeSettings.refuse`)."""
    found: set[str] = set()
    if query.datasets.by_metadata:
        found.add("metadata-scope")
    if query.where is None:
        return found
    stack = [query.where]
    while stack:
        node = stack.pop()
        if node.not_ is not None:
            found.add("not")
            stack.append(node.not_)
        elif node.all_of is not None or node.any_of is not None:
            stack.extend(node.all_of or node.any_of or ())
        elif node.subject is not None:
            subject = node.subject
            if subject.diagnosis:
                found.add("diagnosis")
            if subject.sex:
                found.add("sex")
            if subject.age_min is not None or subject.age_max is not None:
                found.add("age")
        elif node.study is not None:
            found.add("study")
        elif node.series is not None:
            found.add("series")
    return found


def read_federated_nodes(path: Path | None) -> dict[str, FederatedNodeSource]:
    """The `federated-node` source of each provider of a providers file that has one (at most
    one per provider); empty when there is no file or it names no federated node."""
    if path is None or not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    if FEDERATED_NODE not in text:
        return {}
    try:
        data = yaml.safe_load(text)
        nodes: dict[str, FederatedNodeSource] = {}
        for provider in data.get("providers") or []:
            for source in provider.get("sources") or []:
                if isinstance(source, dict) and source.get("kind") == FEDERATED_NODE:
                    if provider["id"] in nodes:
                        raise ValueError(f"provider {provider['id']}: two federated nodes")
                    nodes[str(provider["id"])] = FederatedNodeSource.model_validate(source)
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: federated nodes: {exc}") from exc
    return nodes
