"""The one exception hierarchy of the catalogue; the API maps it to errors in one place."""


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


class QueryError(CatalogueError):
    """A search or feasibility query is invalid (unknown provider, bad range...)."""
