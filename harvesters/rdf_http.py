"""RDF documents over HTTP: the Accept header, choosing the parser, and the sources' client.

The parser is chosen from the configured format, else the Content-Type, else the URL's suffix,
else the body itself. A body that does not parse as declared but does as what it looks like is
read anyway, with a warning; an HTML page or an empty body is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from rdflib import Graph

from catalogue.dcat.rdf_io import parse_rdf_bytes
from catalogue.domain.harvest import HarvestContext
from catalogue.exceptions import UnreadableSourceError
from catalogue.net.http import Fetched, HttpClient

RDF_ACCEPT = (
    "text/turtle, application/n-triples;q=0.9, application/rdf+xml;q=0.8, "
    "application/ld+json;q=0.7, text/n3;q=0.5, */*;q=0.1"
)
"""What a harvest asks an RDF endpoint for; Turtle first."""

MEDIA_FORMATS = {
    "text/turtle": "turtle",
    "application/x-turtle": "turtle",
    "application/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/ld+json": "json-ld",
    "application/json": "json-ld",
    "text/n3": "n3",
    "text/rdf+n3": "n3",
}
"""rdflib format names of the RDF media types (others fall back to suffix and sniffing)."""

_SUFFIX_FORMATS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".nt": "nt",
    ".n3": "n3",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}

Warn = Callable[[str], None]


def headers_field() -> dict[str, SecretStr]:
    """The `headers` option of every HTTP source (a fresh Field per model)."""
    return Field(
        default_factory=dict,
        description="Extra request headers, such as Authorization; kept out of logs and reprs.",
    )


def plain_headers(headers: Mapping[str, SecretStr]) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in headers.items()}


@contextmanager
def http_client(ctx: HarvestContext) -> Iterator[HttpClient]:
    """The run's client, or a client of default settings closed afterwards."""
    if ctx.http is not None:
        yield ctx.http
        return
    with HttpClient() as client:
        yield client


def suffix_format(url: str) -> str | None:
    path = urlsplit(url).path.lower()
    for suffix, fmt in _SUFFIX_FORMATS.items():
        if path.endswith(suffix):
            return fmt
    return None


def sniff(body: bytes) -> str | None:
    """What a body looks like: an rdflib format name, "html", or None."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or (
        head.startswith(b"<") and b"<html" in head
    ):
        return "html"
    if head.startswith(b"<?xml") or head.startswith(b"<rdf:rdf"):
        return "xml"
    if head.startswith((b"{", b"[")):
        return "json-ld"
    if head.startswith((b"@prefix", b"@base", b"prefix", b"base", b"#", b"<", b"_:")):
        return "turtle"  # Turtle, or N-Triples, which Turtle includes
    return None


def parse_fetched(
    fetched: Fetched, warn: Warn, fmt: str | None = None, empty_ok: bool = False
) -> Graph:
    """The RDF graph of a fetched document; UnreadableSourceError names the URL if it is not."""
    url, body = fetched.url, fetched.body
    shown = fetched.content_type or "no Content-Type"
    if not body.strip():
        if empty_ok:
            return Graph()
        raise UnreadableSourceError(f"{url}: empty response (HTTP {fetched.status}, {shown})")
    looks = sniff(body)
    if looks == "html" and fmt is None:
        raise UnreadableSourceError(f"{url}: the server sent an HTML page ({shown}), not RDF")
    chosen = fmt or MEDIA_FORMATS.get(fetched.content_type) or suffix_format(url) or looks
    chosen = chosen or "turtle"
    if fmt is None and looks not in (None, "html") and _family(looks) != _family(chosen):
        graph = parse_rdf(body, str(looks), url, empty_ok)
        warn(f"{url}: served as {shown} but is {looks}; read as {looks}")
        return graph
    return parse_rdf(body, chosen, url, empty_ok)


def _family(fmt: str | None) -> str | None:
    """Formats one parser reads: N-Triples, N-Quads, N3 and TriG are read as Turtle is."""
    return "turtle" if fmt in ("turtle", "nt", "n3", "trig", "nquads") else fmt


def parse_rdf(body: bytes, fmt: str, base: str, allow_empty: bool = False) -> Graph:
    """Parse a body in an rdflib format, relative IRIs against `base`; JSON-LD offline."""
    return parse_rdf_bytes(body, base, base, fmt, allow_empty)
