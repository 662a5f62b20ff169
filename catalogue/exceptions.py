"""The one exception hierarchy of the catalogue; the API maps it to errors in one place."""

from __future__ import annotations


class CatalogueError(Exception):
    """Base of every error the catalogue raises on purpose."""


class ConfigError(CatalogueError):
    """Settings or a providers file are wrong; the message names where."""


class PluginError(ConfigError):
    """A backend or harvester name is unknown or cannot be loaded."""


class HarvestError(CatalogueError):
    """A source could not be harvested; what was harvested before is kept."""


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


class PrivacyBudgetError(QueryError):
    """A feasibility query would exceed the user's daily or total privacy budget for a project;
    the message says which, how much is left and when the daily budget renews."""


class MappingError(ConfigError):
    """A mapping set (SSSOM) cannot be read, or a curator's change to one does not validate."""
