"""A corpus of broken DCAT files, most made here by mutating the real examples in tests/data/dcat.

For each case a provider first harvests the good example, then the broken file in its place, in
a run where another provider comes after it with a new file. The broken source must be reported
(ok=False, one clear line naming the file), the provider's graphs and index entries must be
exactly what the good harvest left, and the other provider must be harvested all the same.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from rdflib import Dataset, Graph
from rdflib.compare import isomorphic

from catalogue.config import Settings, load_providers
from catalogue.domain.identifiers import provider_dataset_prefix, provider_graph, summary_prefix
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT
from tests.corpus import CORPUS

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "dcat"

XNAT = "img2catalog-healthri/xnat_integration_test.ttl"
PROJECT = "img2catalog-healthri/valid_project.ttl"
CKAN = "piveau-hub/example_consus_ckan.ttl"
METRIC = "piveau-hub/example_metric.ttl"
SEMIC_JSONLD = "semic-dcat-ap-3.0.1/example-bee-population-dataset-series-combined.jsonld"
HVD_JSONLD = "semic-dcat-ap-hvd-3.0.0/example-ms_catalogue_hvd.jsonld"
NTRIPLES = "semic-dcat-ap-2.1.1/example1.nt"
XNAT_XML = "xml:" + XNAT
"""RDF/XML generated (by rdflib) from the XNAT Turtle example."""

SEMIC_URL = (
    "https://semiceu.github.io/uri.semic.eu-generated/DCAT-AP/releases/3.0.0/html/examples/"
    "context.jsonld"
)
MIB = 2**20

pytestmark = pytest.mark.filterwarnings(
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"  # inside rdflib's own parsers
)


def example(name: str) -> bytes:
    """A real example's bytes; `xml:<name>` is the Turtle example serialised as RDF/XML."""
    if name.startswith("xml:"):
        graph = Graph().parse(DATA / name.removeprefix("xml:"), format="turtle")
        return graph.serialize(format="pretty-xml", encoding="utf-8")
    return (DATA / name).read_bytes()


def rdflib_rejects(data: bytes, fmt: str) -> bool:
    """Whether rdflib (independent of the catalogue's reader) finds the bytes invalid."""
    try:
        if fmt == "json-ld":
            json.loads(data)
        else:
            Graph().parse(data=data, format=fmt)
    except Exception:
        return True
    return False


Mutation = Callable[[bytes], bytes]


def truncated(fraction: float, fmt: str) -> Mutation:
    """Cut at a fraction of the file, moving back until the cut is invalid to rdflib too."""

    def cut(data: bytes) -> bytes:
        end = int(len(data) * fraction)
        while end > 1 and not rdflib_rejects(data[:end], fmt):
            end -= 1
        return data[:end]

    return cut


def high_bit(fraction: float) -> Mutation:
    """Flip the top bit of the first ASCII letter after a fraction of the file."""

    def flip(data: bytes) -> bytes:
        at = int(len(data) * fraction)
        while not chr(data[at]).isalpha():
            at += 1
        return data[:at] + bytes([data[at] | 0x80]) + data[at + 1 :]

    return flip


def flipped(char: bytes, fmt: str) -> Mutation:
    """Flip the low bit of the first occurrence of `char` whose flip rdflib rejects too."""

    def flip(data: bytes) -> bytes:
        at = data.find(char)
        while at >= 0:
            candidate = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
            if rdflib_rejects(candidate, fmt):
                return candidate
            at = data.find(char, at + 1)
        raise AssertionError(f"no flip of {char!r} breaks the file")

    return flip


def replaced(old: bytes, new: bytes) -> Mutation:
    def replace(data: bytes) -> bytes:
        assert old in data, old
        return data.replace(old, new, 1)

    return replace


def reencoded(encoding: str, bom: bytes = b"", title: str = "") -> Mutation:
    """The file in another encoding; `title` puts a non-ASCII title in first."""

    def encode(data: bytes) -> bytes:
        text = data.decode("utf-8")
        if title:
            text = text.replace('"Basic test project to test the img2catalog"', f'"{title}"')
        return bom + text.encode(encoding)

    return encode


def constant(content: bytes) -> Mutation:
    return lambda _: content


def jsonld_with_context(context: object) -> Mutation:
    def swap(data: bytes) -> bytes:
        document = json.loads(data)
        assert document["@context"] == SEMIC_URL
        document["@context"] = context
        return json.dumps(document).encode()

    return swap


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:dcat="http://www.w3.org/ns/dcat#" xmlns:dct="http://purl.org/dc/terms/">
  <dcat:Dataset rdf:about="http://example.org/bomb"><dct:title>&lol9;</dct:title></dcat:Dataset>
</rdf:RDF>
"""


def with_doctype(declarations: str, body: str) -> Mutation:
    """The generated RDF/XML with a DTD and an entity reference in the first title."""

    def build(data: bytes) -> bytes:
        text = data.decode("utf-8")
        prolog, rest = text.split("?>", 1)
        rest = re.sub(r"(<dcterms:title>)[^<]*", rf"\g<1>{body}", rest, count=1)
        assert body in rest
        return f"{prolog}?>\n<!DOCTYPE rdf:RDF [\n{declarations}\n]>{rest}".encode()

    return build


def huge_literal(megabytes: int) -> Callable[[Path, bytes], None]:
    """Write a Turtle file holding one literal of `megabytes` MiB, a chunk at a time."""

    def write(path: Path, good: bytes) -> None:
        with path.open("wb") as out:
            out.write(b'<http://example.org/d> <http://purl.org/dc/terms/title> "')
            chunk = b"x" * MIB
            for _ in range(megabytes):
                out.write(chunk)
            out.write(b'" .\n')

    return write


@dataclass(frozen=True)
class Case:
    id: str
    suffix: str
    good: str
    """The real example harvested first, at the same path."""
    make: Mutation
    expect: str
    """A regular expression the error must match (case-insensitive)."""
    write: Callable[[Path, bytes], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    corpus: str | None = None
    """A corpus file (read in place) used as the broken content."""


def _cases() -> list[Case]:
    turtle = "not valid turtle"
    cases = [
        Case(f"truncated-turtle-{int(f * 100):02d}pc", ".ttl", XNAT, truncated(f, "turtle"), turtle)
        for f in (0.03, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97)
    ]
    cases += [
        Case(
            f"truncated-crlf-turtle-{int(f * 100)}pc", ".ttl", CKAN, truncated(f, "turtle"), turtle
        )
        for f in (0.25, 0.75)
    ]
    cases += [
        Case(
            f"truncated-jsonld-{int(f * 100)}pc",
            ".jsonld",
            SEMIC_JSONLD,
            truncated(f, "json-ld"),
            r"not valid json-ld: not JSON: line \d+",
        )
        for f in (0.1, 0.5, 0.9)
    ]
    cases += [
        Case(
            f"truncated-rdfxml-{int(f * 100)}pc",
            ".rdf",
            XNAT_XML,
            truncated(f, "xml"),
            r"not valid xml: line \d+, column \d+",
        )
        for f in (0.1, 0.5, 0.9)
    ]
    cases += [
        Case("truncated-ntriples", ".nt", NTRIPLES, truncated(0.5, "nt"), "not valid nt"),
        Case("truncated-trig-in-graph", ".ttl", METRIC, truncated(0.8, "trig"), turtle),
    ]
    not_utf8 = r"byte 0x[0-9A-F]{2} at line \d+, column \d+ is not UTF-8"
    cases += [
        Case(f"high-bit-turtle-{int(f * 100)}pc", ".ttl", XNAT, high_bit(f), not_utf8)
        for f in (0.15, 0.5, 0.85)
    ]
    cases += [
        Case("high-bit-jsonld", ".jsonld", SEMIC_JSONLD, high_bit(0.5), not_utf8),
        Case("high-bit-rdfxml", ".rdf", XNAT_XML, high_bit(0.5), r"not valid xml: line \d+"),
    ]
    cases += [
        Case(f"bit-flip-{name}", ".ttl", XNAT, flipped(char, "turtle"), turtle)
        for name, char in (
            ("semicolon", b";"),
            ("open-iri", b"<"),
            ("close-iri", b">"),
            ("quote", b'"'),
            ("open-bracket", b"["),
            ("close-bracket", b"]"),
            ("dot", b"."),
        )
    ]
    cases += [
        Case(
            "utf16-le-bom-turtle",
            ".ttl",
            PROJECT,
            reencoded("utf-16-le", b"\xff\xfe"),
            "UTF-16-LE; turtle must be UTF-8",
        ),
        Case(
            "utf16-be-bom-turtle",
            ".ttl",
            PROJECT,
            reencoded("utf-16-be", b"\xfe\xff"),
            "UTF-16-BE; turtle must be UTF-8",
        ),
        Case("utf16-no-bom-turtle", ".ttl", PROJECT, reencoded("utf-16-le"), "UTF-16-LE"),
        Case(
            "utf32-bom-turtle",
            ".ttl",
            PROJECT,
            reencoded("utf-32-le", b"\xff\xfe\x00\x00"),
            "UTF-32-LE",
        ),
        Case(
            "latin1-turtle",
            ".ttl",
            PROJECT,
            reencoded("latin-1", title="Projet de tést"),
            r"byte 0xE9 at line 29, column \d+ is not UTF-8 \(Latin-1",
        ),
        Case(
            "cp1252-turtle",
            ".ttl",
            PROJECT,
            reencoded("cp1252", title="Budget in €"),
            r"byte 0x80 at line 29, column \d+ is not UTF-8",
        ),
        Case(
            "utf16-jsonld",
            ".jsonld",
            SEMIC_JSONLD,
            reencoded("utf-16"),
            "UTF-16-LE; JSON-LD must be UTF-8",
        ),
        Case(
            "latin1-bytes-in-utf8-rdfxml",
            ".rdf",
            XNAT_XML,
            replaced(b"Example XNAT catalog<", "Exemple de catalogue XNAT é<".encode("latin-1")),
            r"not valid xml: line \d+, column \d+",
        ),
        Case(
            "unknown-xml-encoding",
            ".rdf",
            XNAT_XML,
            replaced(b'encoding="utf-8"', b'encoding="x-klingon"'),
            "unknown encoding: x-klingon",
        ),
    ]
    broken_turtle = truncated(0.5, "turtle")
    cases += [
        Case(
            "broken-turtle-in-jsonld-file",
            ".jsonld",
            XNAT,
            broken_turtle,
            r"not valid turtle \(by its content; json-ld expected\)",
        ),
        Case(
            "broken-rdfxml-in-turtle-file",
            ".ttl",
            XNAT_XML,
            truncated(0.5, "xml"),
            r"not valid xml \(by its content; turtle expected\)",
        ),
        Case(
            "broken-jsonld-in-turtle-file",
            ".ttl",
            SEMIC_JSONLD,
            truncated(0.5, "json-ld"),
            r"not valid json-ld \(by its content; turtle expected\): not JSON",
        ),
        Case(
            "html-error-page-as-turtle",
            ".ttl",
            XNAT,
            constant(b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n"),
            "an HTML page, not RDF",
        ),
        Case(
            "html-page-as-rdfxml",
            ".rdf",
            XNAT_XML,
            constant(b"<html>\n<head><title>Login</title></head><body></body></html>"),
            "an HTML page, not RDF",
        ),
        Case(
            "csv-as-turtle",
            ".ttl",
            XNAT,
            constant(b"identifier,title\nds-1,Lung CT\n"),
            r"not valid turtle: line 1",
        ),
        Case(
            "yaml-as-jsonld",
            ".jsonld",
            SEMIC_JSONLD,
            constant(b"title: Lung CT\nid: ds-1\n"),
            "not valid json-ld: not JSON",
        ),
        Case(
            "plain-text-as-rdfxml",
            ".rdf",
            XNAT_XML,
            constant(b"404 Not Found\n"),
            r"not valid xml: line 1",
        ),
    ]
    project = b"<http://localhost/data/archive/projects/test_img2catalog>"
    cases += [
        Case(
            "iri-with-space",
            ".ttl",
            PROJECT,
            replaced(project, b"<http://localhost/data/archive/projects/test img2catalog>"),
            "Invalid IRI code point ' '",
        ),
        Case(
            "iri-with-angle-bracket",
            ".ttl",
            PROJECT,
            replaced(project, b"<http://localhost/data/archive/projects/test<img2catalog>"),
            "Invalid IRI code point '<'",
        ),
        Case(
            "iri-closed-early",
            ".ttl",
            PROJECT,
            replaced(project, b"<http://localhost/data/archive/projects/test>img2catalog>"),
            turtle,
        ),
        Case(
            "iri-with-quote",
            ".ttl",
            PROJECT,
            replaced(project, b'<http://localhost/data/archive/projects/test"img2catalog>'),
            "Invalid IRI code point '\"'",
        ),
        Case(
            "iri-with-braces",
            ".ttl",
            PROJECT,
            replaced(project, b"<http://localhost/data/archive/projects/{test}|img2catalog>"),
            "Invalid IRI code point '{'",
        ),
        Case(
            "ntriples-iri-with-space",
            ".nt",
            NTRIPLES,
            replaced(
                b"<https://myorg.eu/opendata/catalog>", b"<https://myorg.eu/open data/catalog>"
            ),
            "Invalid IRI code point ' '",
        ),
        Case(
            "rdfxml-about-with-space",
            ".rdf",
            XNAT_XML,
            replaced(
                b'rdf:about="http://localhost:8080/data/archive/projects/public_optin"',
                b'rdf:about="http://localhost:8080/data/archive/projects/public optin"',
            ),
            r"IRI 'http://localhost:8080/\S+/public optin': Invalid IRI code point ' '",
        ),
        Case(
            "rdfxml-resource-with-angle-bracket",
            ".rdf",
            XNAT_XML,
            replaced(
                b'rdf:resource="http://www.example.com/"',
                b'rdf:resource="http://www.example.com/&lt;x&gt;"',
            ),
            r"IRI 'http://www.example.com/<x>': Invalid IRI code point '<'",
        ),
        Case(
            "jsonld-id-with-space",
            ".jsonld",
            HVD_JSONLD,
            replaced(b'"@id": "exampleMS:1T2p3o4B"', b'"@id": "exampleMS:1T2p3o4B 2"'),
            "invalid IRI @id 'exampleMS:1T2p3o4B 2': it contains ' '",
        ),
        Case(
            "jsonld-id-with-angle-brackets",
            ".jsonld",
            HVD_JSONLD,
            replaced(b'"@id": "exampleMS:1T2p3o4B"', b'"@id": "<exampleMS:1T2p3o4B>"'),
            "invalid IRI @id '<exampleMS:1T2p3o4B>': it contains '<'",
        ),
    ]
    cases += [
        Case("missing-close-bracket", ".ttl", XNAT, replaced(b"] ;", b" ;"), turtle),
        Case(
            "extra-open-bracket",
            ".ttl",
            XNAT,
            replaced(b"dcterms:creator [", b"dcterms:creator [ ["),
            turtle,
        ),
        Case(
            "missing-close-quote",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'"protected_optin ;'),
            turtle,
        ),
        Case(
            "unterminated-long-string",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'"""protected_optin ;'),
            r"line \d+.*Unexpected end",
        ),
        Case(
            "unbalanced-collection",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'( "protected_optin" ;'),
            turtle,
        ),
        Case(
            "raw-newline-in-string",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'"protected\noptin" ;'),
            turtle,
        ),
        Case(
            "json-missing-final-brace",
            ".jsonld",
            SEMIC_JSONLD,
            lambda data: data.rstrip()[:-1],
            "not JSON",
        ),
        Case(
            "json-extra-bracket",
            ".jsonld",
            SEMIC_JSONLD,
            replaced(b'"@graph": [', b'"@graph": [['),
            "not valid json-ld",
        ),
        Case(
            "xml-mismatched-tag",
            ".rdf",
            XNAT_XML,
            replaced(b"</dcterms:title>", b"</dcterms:titel>"),
            "mismatched tag",
        ),
        Case(
            "xml-unclosed-attribute",
            ".rdf",
            XNAT_XML,
            replaced(
                b'rdf:about="http://localhost:8080/data/archive"',
                b'rdf:about="http://localhost:8080/data/archive',
            ),
            r"not valid xml: line \d+",
        ),
    ]
    too_big = r"bytes is over the \d+-byte limit of one RDF file \(CATALOGUE_RDF__MAX_FILE_BYTES\)"
    cases += [
        Case(
            "literal-of-300-mib",
            ".ttl",
            XNAT,
            constant(b""),
            r"31457\d+ " + too_big,
            write=huge_literal(300),
        ),
        Case(
            "literal-over-a-lowered-cap",
            ".ttl",
            XNAT,
            constant(b""),
            r"\d+ " + too_big,
            write=huge_literal(2),
            env={"CATALOGUE_RDF__MAX_FILE_BYTES": str(MIB)},
        ),
        Case(
            "literal-over-the-token-limit",
            ".nt",
            NTRIPLES,
            constant(b""),
            "a literal or IRI over Oxigraph's token limit",
            write=huge_literal(17),
        ),
    ]
    cases += [
        Case(
            "random-bytes",
            ".ttl",
            XNAT,
            constant(random.Random(7).randbytes(4096)),
            "binary data|not UTF-8|must be UTF-8",
        ),
        Case("gzipped-turtle", ".ttl", XNAT, gzip.compress, "gzip-compressed, not RDF"),
        Case(
            "png-image",
            ".rdf",
            XNAT_XML,
            constant(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
            "a PNG image, not RDF",
        ),
        Case("nul-bytes", ".ttl", XNAT, constant(b"\x00" * 1024), r"binary data \(NUL bytes\)"),
        Case("empty-file", ".ttl", XNAT, constant(b""), ": empty file$"),
        Case(
            "white-space-only",
            ".ttl",
            XNAT,
            constant(b" \n\t\r\n"),
            r"no RDF statements \(only white space\)",
        ),
        Case(
            "utf8-bom-only",
            ".jsonld",
            SEMIC_JSONLD,
            constant(b"\xef\xbb\xbf"),
            r"no RDF statements \(only white space\)",
        ),
        Case(
            "prefixes-only",
            ".ttl",
            XNAT,
            lambda data: b"".join(x for x in data.splitlines(True) if x.startswith(b"@prefix")),
            "no RDF statements in this turtle document",
        ),
    ]
    not_jsonld = "JSON without @context, @id or @type: not JSON-LD"
    cases += [
        Case(
            "piveau-translation-json",
            ".json",
            HVD_JSONLD,
            constant(example("piveau-hub/example_translation.json")),
            not_jsonld,
        ),
        Case(
            "ckan-internal-json",
            ".json",
            HVD_JSONLD,
            constant(b""),
            not_jsonld,
            corpus="ckanext-dcat/healthdcat/health_dcat_ap.json",
        ),
        Case("json-array-of-numbers", ".jsonld", SEMIC_JSONLD, constant(b"[1, 2, 3]"), not_jsonld),
        Case("json-scalar", ".jsonld", SEMIC_JSONLD, constant(b"42"), not_jsonld),
        Case(
            "jsonld-context-only",
            ".jsonld",
            SEMIC_JSONLD,
            lambda data: json.dumps({"@context": json.loads(data)["@context"]}).encode(),
            "no RDF statements in this json-ld document",
        ),
    ]
    refused = r"remote JSON-LD context {} is not fetched \(harvests are offline"
    unknown = SEMIC_URL.replace("3.0.0", "3.0.2")
    cases += [
        Case(
            "unknown-remote-context",
            ".jsonld",
            SEMIC_JSONLD,
            jsonld_with_context(unknown),
            refused.format(re.escape(unknown)),
        ),
        Case(
            "plain-http-context",
            ".jsonld",
            SEMIC_JSONLD,
            jsonld_with_context(SEMIC_URL.replace("https:", "http:")),
            refused.format(re.escape(SEMIC_URL.replace("https:", "http:"))),
        ),
        Case(
            "remote-context-in-array",
            ".jsonld",
            SEMIC_JSONLD,
            jsonld_with_context([SEMIC_URL, "https://w3id.org/dpv/dpv.jsonld"]),
            refused.format(re.escape("https://w3id.org/dpv/dpv.jsonld")),
        ),
        Case(
            "context-import",
            ".jsonld",
            SEMIC_JSONLD,
            jsonld_with_context({"@version": 1.1, "@import": "https://example.org/ctx.jsonld"}),
            refused.format(re.escape("https://example.org/ctx.jsonld")),
        ),
        Case(
            "remote-scoped-context",
            ".jsonld",
            SEMIC_JSONLD,
            jsonld_with_context(
                [
                    SEMIC_URL,
                    {
                        "title": {
                            "@id": "http://purl.org/dc/terms/title",
                            "@context": "https://example.org/scoped.jsonld",
                        }
                    },
                ]
            ),
            refused.format(re.escape("https://example.org/scoped.jsonld")),
        ),
    ]
    cases += [
        Case(
            "billion-laughs",
            ".rdf",
            XNAT_XML,
            constant(BILLION_LAUGHS),
            r"entity &lol1; refers to other entities \(an XML bomb\?\)",
        ),
        Case(
            "quadratic-blowup",
            ".rdf",
            XNAT_XML,
            with_doctype(f'<!ENTITY big "{"x" * 100_000}">', "&big;" * 10_000),
            r"entity &big; is 100000 characters",
        ),
        Case(
            "external-entity",
            ".rdf",
            XNAT_XML,
            with_doctype('<!ENTITY secret SYSTEM "file:///etc/passwd">', "&secret;"),
            r"external entity &secret; refused \(never fetched\)",
        ),
        Case(
            "public-external-entity",
            ".rdf",
            XNAT_XML,
            with_doctype('<!ENTITY ext PUBLIC "-//X//EN" "http://example.org/x.ent">', "&ext;"),
            "external entity &ext; refused",
        ),
        Case(
            "parameter-entity",
            ".rdf",
            XNAT_XML,
            with_doctype('<!ENTITY % remote SYSTEM "http://example.org/evil.dtd"> %remote;', "x"),
            "parameter entity %remote; refused",
        ),
    ]
    deep = 100_000
    part = b'"http://purl.org/dc/terms/hasPart"'
    cases += [
        Case(
            "deeply-nested-blank-nodes",
            ".ttl",
            XNAT,
            replaced(
                b'"protected_optin" ;', b'"x" ; dcterms:source ' + b"[ dcterms:source " * deep
            ),
            turtle,
        ),
        Case(
            "deeply-nested-collections",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b"( " * deep),
            turtle,
        ),
        Case(
            "deeply-nested-json",
            ".jsonld",
            SEMIC_JSONLD,
            constant(b"[" * deep + b"]" * deep),
            "nested too deeply",
        ),
        Case(
            "deeply-nested-jsonld",
            ".jsonld",
            SEMIC_JSONLD,
            replaced(
                b'"releaseDate": "2023-06-01",',
                b"%s: %s{}%s," % (part, (b"{%s: " % part) * 600, b"}" * 600),
            ),
            "nested too deeply",
        ),
        Case(
            "deeply-nested-rdfxml",
            ".rdf",
            XNAT_XML,
            replaced(b"<dcterms:title>", b"<dcterms:title><x>" * 20_000),
            r"not valid xml: line",
        ),
    ]
    cases += [
        Case(
            "undeclared-prefix",
            ".ttl",
            XNAT,
            replaced(b"@prefix dcterms: <http://purl.org/dc/terms/> .\n", b""),
            "The prefix dcterms: has not been declared",
        ),
        Case(
            "bad-language-tag",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'"protected_optin"@12 ;'),
            "language",
        ),
        Case(
            "bad-escape",
            ".ttl",
            XNAT,
            replaced(b'"protected_optin" ;', b'"protected\\qoptin" ;'),
            "escape",
        ),
        Case(
            "rdf-star-triple-term",
            ".ttl",
            XNAT,
            replaced(
                b'"protected_optin" ;',
                b"<< <http://a.example/s> <http://a.example/p> <http://a.example/o> >> ;",
            ),
            "triple terms",
        ),
        Case(
            "n3-formula",
            ".n3",
            XNAT,
            lambda data: (
                data + b"\n{ dcat:Dataset a dcat:Class } => { dcat:Resource a dcat:Class } .\n"
            ),
            "N3 formulas",
        ),
    ]
    return cases


CASES = _cases()


def test_the_corpus_is_large_and_mostly_generated_from_real_examples() -> None:
    assert len(CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES)
    mutations = [c for c in CASES if c.make.__qualname__.split(".")[0] != "constant"]
    assert len(mutations) > len(CASES) / 2


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    """One catalogue for the module; each case has providers of its own in it."""
    root = tmp_path_factory.mktemp("broken")
    settings = Settings(data_dir=root / "data", secret="broken-secret-0123456789", disclosure=EXACT)
    with open_catalogue(settings) as opened:
        yield opened


def providers_yaml(tmp_path: Path, tag: str, victim: Path, bystander: Path) -> Path:
    """Provider `victim-<tag>` reading `victim`, then `bystander-<tag>` reading `bystander`."""
    body = {
        "providers": [
            {"id": f"{role}-{tag}", "name": role, "sources": [{"kind": "dcat", "path": str(path)}]}
            for role, path in (("victim", victim), ("bystander", bystander))
        ]
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def snapshot(catalogue: Catalogue, pid: str) -> dict[str, Graph]:
    """Every graph the provider has in the store: its description, datasets and summaries."""
    names = catalogue.store.graph_names(provider_dataset_prefix(pid))
    names += [*catalogue.store.graph_names(summary_prefix(pid)), provider_graph(pid)]
    return {name: catalogue.store.graph(name) for name in names}


def indexed(catalogue: Catalogue, pid: str) -> list[tuple[str, str, str]]:
    page = catalogue.datasets.search(None, 0, 1000, providers=(pid,))
    return sorted((d.identifier, d.title, d.iri) for d in page.datasets)


def titles_in(path: Path) -> set[str]:
    graph = Graph().parse(path, format="turtle")
    query = """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?t { ?d a dcat:Dataset ; dct:title ?t }"""
    return {str(row[0]) for row in graph.query(query)}  # type: ignore[index]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_broken_input_fails_cleanly_and_harms_nothing(
    tmp_path: Path, shared: Catalogue, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    catalogue, victim_id, bystander_id = shared, f"victim-{case.id}", f"bystander-{case.id}"
    broken_source = CORPUS / case.corpus if case.corpus else None
    if broken_source is not None and not broken_source.is_file():
        pytest.skip(f"{broken_source} is absent (AGPL files are read in place)")
    good = example(case.good)
    victim = tmp_path / "victim" / f"catalogue{case.suffix}"
    victim.parent.mkdir()
    victim.write_bytes(good)
    bystander = tmp_path / "bystander.ttl"
    bystander.write_bytes(example(PROJECT))
    providers = load_providers(providers_yaml(tmp_path, case.id, victim, bystander))

    first = harvest(catalogue, providers)
    assert first.ok, first.failed
    before = snapshot(catalogue, victim_id)
    assert len(before) > 1, "the good example gave datasets to protect"
    before_index = indexed(catalogue, victim_id)

    try:
        if case.write is not None:
            case.write(victim, good)
        else:
            content = broken_source.read_bytes() if broken_source else case.make(good)
            assert content != good
            victim.write_bytes(content)
        bystander.write_bytes(example(XNAT))  # a new file: the bystander must really be re-read
        for name, value in case.env.items():
            monkeypatch.setenv(name, value)
        second = harvest(catalogue, providers)
    finally:
        if case.write is not None:
            victim.unlink()  # do not leave hundreds of MiB in the temporary folder

    check_clean_failure(second, victim_id, victim, case.expect)
    after = snapshot(catalogue, victim_id)
    assert after.keys() == before.keys()
    for name, graph in before.items():
        assert isomorphic(graph, after[name]), name
    assert indexed(catalogue, victim_id) == before_index
    (other,) = [s for s in second.sources if s.provider_id == bystander_id]
    assert other.ok, other.error
    assert titles_in(DATA / XNAT) <= {title for _, title, _ in indexed(catalogue, bystander_id)}


def check_clean_failure(report: HarvestReport, pid: str, path: Path, expect: str) -> None:
    (source,) = [s for s in report.sources if s.provider_id == pid]
    assert not source.ok
    error = source.error or ""
    assert error.startswith(f"{path}: "), error
    assert "\n" not in error and "\r" not in error and len(error) < 500, error
    assert "unexpected " not in error, error  # ingest's wording for an exception it did not expect
    assert re.search(expect, error, re.IGNORECASE), error


# What is not broken: a suffix that lies about good content, encodings the specs allow


ACCEPTED = [
    pytest.param(".jsonld", XNAT, "trig", id="turtle-in-jsonld-file"),
    pytest.param(".ttl", XNAT_XML, "xml", id="rdfxml-in-turtle-file"),
    pytest.param(".ttl", HVD_JSONLD, "json-ld", id="jsonld-in-turtle-file"),
    pytest.param(".rdf", NTRIPLES, "nt", id="ntriples-in-rdfxml-file"),
    pytest.param(".nt", XNAT, "trig", id="turtle-in-ntriples-file"),
    pytest.param(".ttl", METRIC, "trig", id="trig-in-turtle-file"),
    pytest.param(".ttl", "bom:" + XNAT, "trig", id="turtle-with-utf8-bom"),
    pytest.param(".jsonld", "blank:" + XNAT, "trig", id="turtle-after-8-kib-of-blank-lines"),
    pytest.param(".rdf", "utf-16:" + XNAT_XML, "xml", id="rdfxml-in-utf16"),
    pytest.param(".rdf", "iso-8859-1:" + XNAT_XML, "xml", id="rdfxml-in-latin1"),
]

ACCEPTED_GOOD = [param.values[1] for param in ACCEPTED]


def accepted_content(good: str) -> bytes:
    """The example's bytes; `bom:` adds a UTF-8 byte-order mark, `blank:` 8 KiB of blank lines,
    `<encoding>:` re-encodes RDF/XML (declaring it) with a non-ASCII title."""
    head, _, rest = good.partition(":")
    if head == "bom":
        return b"\xef\xbb\xbf" + example(rest)
    if head == "blank":
        return b"\r\n" * 4096 + example(rest)
    if head in ("utf-16", "iso-8859-1"):
        text = example(rest).decode("utf-8").replace(">protected_optin<", ">protégé optin<")
        return text.replace('encoding="utf-8"', f'encoding="{head}"', 1).encode(head)
    return example(good)


@pytest.mark.parametrize(("suffix", "good", "fmt"), ACCEPTED)
def test_good_content_is_read_whatever_the_suffix_or_allowed_encoding(
    tmp_path: Path, shared: Catalogue, suffix: str, good: str, fmt: str
) -> None:
    tag = f"accepted{suffix}-{ACCEPTED_GOOD.index(good)}"
    path = tmp_path / f"catalogue{suffix}"
    path.write_bytes(accepted_content(good))
    bystander = tmp_path / "bystander.ttl"
    bystander.write_bytes(example(PROJECT))
    report = harvest(shared, load_providers(providers_yaml(tmp_path, tag, path, bystander)))
    assert report.ok, report.failed
    reference = Dataset(default_union=True)  # rdflib alone, told the real format
    reference.parse(path, format=fmt, publicID=path.as_uri())
    query = """PREFIX dcat: <http://www.w3.org/ns/dcat#> PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?d ?t { ?d a dcat:Dataset ; dct:title ?t }"""
    expected = {(str(row[0]), str(row[1])) for row in reference.query(query)}  # type: ignore[index]
    assert expected
    assert ("protégé" in str(expected)) == good.startswith(("utf-16", "iso-8859-1"))
    assert {(iri, title) for _, title, iri in indexed(shared, f"victim-{tag}")} == expected
