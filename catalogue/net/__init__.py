"""Network access of harvests: the one HTTP client every harvest request goes through."""

from catalogue.net.http import Fetched, HttpClient, HttpSettings

__all__ = ["Fetched", "HttpClient", "HttpSettings"]
