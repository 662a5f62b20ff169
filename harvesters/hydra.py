"""Hydra-paged DCAT catalogues over HTTP, as CKAN (ckanext-dcat) and data.europa.eu publish them.

A page names the next one with `hydra:next` (or the older `hydra:nextPage`), as an IRI or a
string, on a `hydra:PartialCollectionView` or `hydra:PagedCollection`; relative references are
resolved against the page's URL. Each page's datasets go to the sink as the page comes. A page
seen before (same URL or same content) or the page cap stops the listing with a warning and
marks it incomplete, so nothing is deleted on the strength of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin

import pyoxigraph as ox

from catalogue.dcat.parser import iter_parsed_datasets
from catalogue.dcat.terms import ParsedRdf
from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceReport
from catalogue.net.http import FormData, HttpClient
from harvesters.rdf_http import RDF_ACCEPT, parse_fetched, put_page

HYDRA = "http://www.w3.org/ns/hydra/core#"
_NEXT = frozenset({f"{HYDRA}next", f"{HYDRA}nextPage"})


@dataclass(frozen=True)
class Listing:
    """Where a paged listing starts and how its pages are read."""

    url: str
    params: FormData | None = None
    """Query parameters of the first request (later pages come as whole URLs)."""
    headers: Mapping[str, str] | None = None
    fmt: str | None = None
    """A forced rdflib format; None chooses from the Content-Type, suffix and body."""
    max_pages: int = 10_000


def next_page(parsed: ParsedRdf, url: str) -> str | None:
    """The next page's absolute URL (an IRI or a string), preferring links from the page
    itself; None at the end."""
    found: list[tuple[bool, str]] = []
    for triple in parsed.triples:
        value = triple.object
        if triple.predicate.value not in _NEXT or not isinstance(value, ox.NamedNode | ox.Literal):
            continue
        text = value.value.strip()
        if text:
            subject = triple.subject
            own = isinstance(subject, ox.NamedNode) and _same(subject.value, url)
            found.append((not own, urljoin(url, text)))
    return min(found)[1] if found else None


def harvest_pages(
    http: HttpClient,
    listing: Listing,
    ctx: HarvestContext,
    sink: HarvestSink,
    report: SourceReport,
) -> bool:
    """Read every page into the sink; True when the listing reached its last page."""
    seen_urls: set[str] = set()
    seen_bodies: set[bytes] = set()
    identifiers: set[str] = set()
    url, params = listing.url, listing.params
    for number in range(1, listing.max_pages + 1):
        fetched = http.get(url, accept=RDF_ACCEPT, params=params, headers=listing.headers)
        digest = hashlib.sha256(fetched.body).digest()
        if digest in seen_bodies:
            report.incomplete(
                f"{fetched.url}: page {number} repeats an earlier page's content; paging stopped"
            )
            return False
        seen_bodies.add(digest)
        seen_urls.update({_key(url), _key(fetched.url)})
        parsed = parse_fetched(fetched, report.warn, listing.fmt)
        put_page(sink, iter_parsed_datasets(parsed, ctx.provider.id), identifiers, report)
        following = next_page(parsed, fetched.url)
        if following is None:
            return True
        if _key(following) in seen_urls:
            report.incomplete(
                f"{fetched.url}: page {number} links back to {following}; paging stopped"
            )
            return False
        url, params = following, None
    report.incomplete(f"{listing.url}: stopped at max_pages={listing.max_pages}; paging stopped")
    return False


def _key(url: str) -> str:
    return urldefrag(url)[0]


def _same(a: str, b: str) -> bool:
    return _key(a) == _key(b)
