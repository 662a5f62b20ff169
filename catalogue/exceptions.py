"""The one exception hierarchy of the catalogue; the API maps it to errors in one place
(catalogue.api.errors): `code` is the client-facing error code, and an error whose code is
INTERNAL_SERVER_ERROR is masked (its message may name paths or internals)."""

from __future__ import annotations

from typing import ClassVar


class CatalogueError(Exception):
    """Base of every error the catalogue raises on purpose."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"


class ConfigError(CatalogueError):
    """Settings or a providers file are wrong; the message names where."""


class PluginError(ConfigError):
    """A backend or harvester name is unknown or cannot be loaded."""


class HarvestError(CatalogueError):
    """A source could not be harvested; what was harvested before is kept."""


class HarvestRunningError(HarvestError):
    """A harvest was asked for while another one runs: one at a time per catalogue."""

    code: ClassVar[str] = "CONFLICT"


class HarvestUnavailableError(HarvestError):
    """This server cannot harvest on request (it has no providers file)."""

    code: ClassVar[str] = "UNAVAILABLE"


class UnreadableSourceError(HarvestError):
    """A source file or endpoint is missing, unreadable or malformed."""


class StoreError(CatalogueError):
    """A graph store or index failed."""

    @classmethod
    def cannot_open(cls, what: str, path: object, cause: Exception) -> StoreError:
        """Opening failed; a held lock means another process has the data folder open."""
        text = str(cause)
        hint = (
            " (another catalogue process, such as `catalogue serve`, is using this data folder)"
            if "lock" in text.casefold()
            else ""
        )
        return cls(f"cannot open the {what} at {path}: {text}{hint}")


class QueryError(CatalogueError):
    """A search or feasibility query is invalid (unknown provider, bad range...)."""

    code: ClassVar[str] = "BAD_USER_INPUT"


class PrivacyBudgetError(QueryError):
    """A feasibility query would exceed the user's daily or total privacy budget for a project;
    the message says which, how much is left and when the daily budget renews."""

    code: ClassVar[str] = "BUDGET_EXHAUSTED"


class QueryTooComplexError(QueryError):
    """An operation is over the query cost budget (catalogue.api.graphql.limits)."""

    code: ClassVar[str] = "QUERY_TOO_COMPLEX"


class RateLimitedError(QueryError):
    """A caller (user or address) asked more often than the rate limit allows."""

    code: ClassVar[str] = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MappingError(ConfigError):
    """A mapping set (SSSOM) cannot be read, or a curator's change to one does not validate."""

    code: ClassVar[str] = "BAD_USER_INPUT"


class RequestTimeoutError(CatalogueError):
    """A request ran longer than `limits.timeout`; its answer is abandoned."""

    code: ClassVar[str] = "TIMEOUT"


class AuthenticationError(CatalogueError):
    """A bearer token is invalid, expired, revoked or from an unknown issuer; or a request that
    needs sign-in came without one. Never answered as anonymous."""

    code: ClassVar[str] = "UNAUTHENTICATED"


class PermissionDeniedError(CatalogueError):
    """A signed-in caller lacks the role a field or route requires."""

    code: ClassVar[str] = "FORBIDDEN"
