"""What the app keeps in `app.state` (its settings, limits, services), looked up in one way
from anything that has the app: a request, a GraphQL context's request, an ASGI scope's app."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def app_value(app: Any, name: str, kind: type[T]) -> T | None:
    """`app.state.<name>` when it is a `kind`; None for an app (or None) without it."""
    value = getattr(getattr(app, "state", None), name, None)
    return value if isinstance(value, kind) else None


def request_value(request: Any, name: str, kind: type[T]) -> T | None:
    """`app_value` of the request's app."""
    return app_value(getattr(request, "app", None), name, kind)
