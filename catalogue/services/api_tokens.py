"""API tokens for machines (harvesters, pipelines): kept only as SHA-256 hashes in SQLite.

A token is `cat_` followed by 32 random bytes (URL-safe base64); it is shown once, when made.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from catalogue.domain.principal import Role
from catalogue.exceptions import ConfigError

PREFIX = "cat_"
FILE_NAME = "api_tokens.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_token (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,
    created TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT
)
"""


@dataclass(frozen=True)
class ApiToken:
    """What is kept of a token: never the secret itself."""

    name: str
    roles: frozenset[Role]
    created: datetime
    last_used: datetime | None
    revoked: datetime | None


def token_hash(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenStore:
    """The tokens of one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME

    @contextmanager
    def _connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=10)) as connection, connection:
            connection.execute(_SCHEMA)
            yield connection

    def create(self, name: str, roles: Iterable[Role]) -> str:
        """Make a token; returns its secret (only now: it is kept hashed)."""
        granted = frozenset(roles) - {Role.ANONYMOUS}
        if not name.strip():
            raise ConfigError("an API token needs a name")
        if not granted:
            raise ConfigError("an API token needs at least one role")
        secret = PREFIX + secrets.token_urlsafe(32)
        with self._connect(create=True) as db:
            try:
                db.execute(
                    "INSERT INTO api_token (name, hash, roles, created) VALUES (?, ?, ?, ?)",
                    (name, token_hash(secret), _roles_text(granted), _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise ConfigError(f"an API token named {name!r} exists already") from exc
        return secret

    def list(self) -> list[ApiToken]:
        """Every token, revoked ones included, by name."""
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, roles, created, last_used, revoked FROM api_token ORDER BY name"
            ).fetchall()
        return [_token(*row) for row in rows]

    def revoke(self, name: str) -> None:
        """Revoke a token: it is refused from now on."""
        if not self.path.exists():
            raise ConfigError(f"no API token named {name!r}")
        with self._connect() as db:
            changed = db.execute(
                "UPDATE api_token SET revoked = COALESCE(revoked, ?) WHERE name = ?",
                (_now(), name),
            ).rowcount
        if not changed:
            raise ConfigError(f"no API token named {name!r}")

    def verify(self, secret: str) -> ApiToken | None:
        """The valid (not revoked) token with this secret, its use recorded (to the minute, so
        a busy client does not write on every request); None otherwise."""
        if not secret.startswith(PREFIX) or not self.path.exists():
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT name, roles, created, last_used, revoked FROM api_token WHERE hash = ?",
                (token_hash(secret),),
            ).fetchone()
            if row is None or row[4] is not None:
                return None
            now = _now()
            if row[3] is None or row[3][:16] != now[:16]:  # recorded once a minute at most
                db.execute("UPDATE api_token SET last_used = ? WHERE name = ?", (now, row[0]))
        return _token(*row)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _roles_text(roles: frozenset[Role]) -> str:
    return " ".join(sorted(r.value for r in roles))


def _token(
    name: str, roles: str, created: str, last_used: str | None, revoked: str | None
) -> ApiToken:
    return ApiToken(
        name=name,
        roles=frozenset(Role(r) for r in roles.split()),
        created=datetime.fromisoformat(created),
        last_used=datetime.fromisoformat(last_used) if last_used else None,
        revoked=datetime.fromisoformat(revoked) if revoked else None,
    )
