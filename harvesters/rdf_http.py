"""RDF documents over HTTP: the Accept header, choosing the parser, storing a page's datasets.

The parser is chosen from the configured format, else the Content-Type, else the URL's suffix;
rdf_io reads a body whose content plainly is another family as what it is (here with a warning,
unless the format was configured) and, with nothing declared, as what it looks like. An HTML
page or an empty body is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from catalogue.dcat.rdf_io import RDF_SUFFIXES, content_format, guess_format, parse_rdf_triples
from catalogue.dcat.terms import ParsedRdf
from catalogue.domain.harvest import HarvestedDataset, HarvestSink, SourceReport
from catalogue.exceptions import UnreadableSourceError
from catalogue.net.http import Fetched

RDF_ACCEPT = (
    "text/turtle, application/n-triples;q=0.9, application/rdf+xml;q=0.8, "
    "application/ld+json;q=0.7, text/n3;q=0.5, */*;q=0.1"
)
"""What a harvest asks an RDF endpoint (catalogue, FAIR Data Point, SPARQL) for; Turtle first."""

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
"""rdflib format names of the RDF media types (others fall back to the suffix and the body)."""

Warn = Callable[[str], None]


def declared_format(fetched: Fetched) -> str | None:
    """The format a response claims: its Content-Type's, else its URL's suffix's; None if
    neither names an RDF format."""
    media = MEDIA_FORMATS.get(fetched.content_type)
    if media is not None:
        return media
    path = PurePosixPath(urlsplit(fetched.url).path)
    return guess_format(path) if path.suffix.lower() in RDF_SUFFIXES else None


def parse_fetched(
    fetched: Fetched, warn: Warn, fmt: str | None = None, empty_ok: bool = False
) -> ParsedRdf:
    """The RDF of a fetched document (`fmt` forces a parser); UnreadableSourceError names the
    URL if it is not RDF."""
    url, body = fetched.url, fetched.body
    shown = fetched.content_type or "no Content-Type"
    if not body.strip():
        if empty_ok:
            return ParsedRdf([])
        raise UnreadableSourceError(f"{url}: empty response (HTTP {fetched.status}, {shown})")
    declared = fmt or declared_format(fetched)
    if fmt is None:
        other = content_format(body, declared)
        if other == "html":
            raise UnreadableSourceError(f"{url}: the server sent an HTML page ({shown}), not RDF")
        if other is not None and declared is not None:
            parsed = parse_rdf_triples(body, url, url, other, empty_ok)
            warn(f"{url}: served as {shown} but is {other}; read as {other}")
            return parsed
    return parse_rdf_triples(body, url, url, declared, empty_ok)


def put_page(
    sink: HarvestSink, found: Iterable[HarvestedDataset], listed: set[str], report: SourceReport
) -> int:
    """Hand a page's datasets to the sink (the last of an identifier given twice), add their
    identifiers to `listed` and count it in the report; how many identifiers are new."""
    items = {item.dataset.identifier: item for item in found}
    new = len(items.keys() - listed)
    if items:
        sink.put_datasets(list(items.values()))
    listed.update(items)
    report.datasets = len(listed)
    return new
