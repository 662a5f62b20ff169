"""The web pages: server-rendered shells whose small ES modules read the public GraphQL API."""

from catalogue.web.router import STATIC_DIR, web_router

__all__ = ["STATIC_DIR", "web_router"]
