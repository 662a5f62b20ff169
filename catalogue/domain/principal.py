"""Who asks: a user (or machine), the project they ask for, and their roles."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a caller may be: everyone is anonymous; sign-in (or an API token) adds roles."""

    ANONYMOUS = "anonymous"
    RESEARCHER = "researcher"
    CURATOR = "curator"
    HARVESTER = "harvester"
    ADMIN = "admin"
    HUB = "hub"
    """A federation hub asking this node (an API token only; docs/federation.md)."""


@dataclass(frozen=True)
class Principal:
    """Who asks. The privacy budget and the differencing check are kept per user and project;
    `user` is "<issuer>#<sub>" after sign-in, "token:<name>" for an API token, and
    "anonymous@<address>" otherwise. `roles` are what sign-in granted (none when anonymous)."""

    user: str
    project: str = "default"
    roles: frozenset[Role] = frozenset()
    authenticated: bool = False
