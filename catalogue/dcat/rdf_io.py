"""Reading RDF files in any common serialisation; JSON-LD through pyld, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyld import jsonld
from rdflib import Graph

from catalogue.exceptions import UnreadableSourceError

_FORMATS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".nt": "nt",
    ".ntriples": "nt",
    ".n3": "n3",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}


def guess_format(path: Path) -> str:
    """The rdflib format name for a file, from its extension (Turtle if unknown)."""
    return _FORMATS.get(path.suffix.lower(), "turtle")


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    raise jsonld.JsonLdError(
        f"remote JSON-LD context {url} not loaded (harvests are offline by default)",
        "jsonld.LoadDocumentError",
        code="loading document failed",
    )


def read_rdf(path: Path, fmt: str | None = None) -> Graph:
    """Parse one RDF file into a new Graph; raise UnreadableSourceError if missing or malformed."""
    fmt = fmt or guess_format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableSourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    graph = Graph()
    try:
        if fmt == "json-ld":
            document = json.loads(data)
            nquads = jsonld.to_rdf(
                document,
                {
                    "format": "application/n-quads",
                    "documentLoader": _offline_loader,
                    "base": path.as_uri(),
                },
            )
            graph.parse(data=nquads, format="nquads")
        else:
            graph.parse(data=data, format=fmt, publicID=path.as_uri())
    except Exception as exc:  # every parser has its own exception types
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableSourceError(f"{path}: not valid {fmt}: {message}") from exc
    return graph
