"""Reading RDF files robustly, offline; every failure is one UnreadableSourceError line.

- Format: the given one (or the suffix's), unless the content plainly is another family (XML,
  JSON, or Turtle-like text): a file whose suffix lies is read as what it is.
- Turtle, TriG, N-Triples, N-Quads and N3 are parsed by Oxigraph (linear time, strict IRIs, line
  and column in errors); Turtle is read as TriG and N-Triples as N-Quads, so named graphs are
  accepted. The graphs of a dataset file are merged: default and named graphs become one graph
  (graph names are dropped; the catalogue gives each dataset its own named graph when stored).
- RDF/XML is first checked by expat, in the encoding its declaration or byte-order mark gives
  (well-formed, at most 1000 elements deep, no entity that could expand or be fetched: an XML
  bomb never expands), then parsed by Oxigraph.
- JSON-LD is expanded by pyld, offline: known remote contexts map to copies shipped in
  `contexts/`; any other remote context is refused, never fetched.
- Text formats and JSON must be UTF-8 (their specifications say so; a UTF-8 byte-order mark is
  dropped); UTF-16/32 or stray Latin-1 bytes are refused with the line and column.
- A file larger than `CATALOGUE_RDF__MAX_FILE_BYTES` (256 MiB by default) is refused unread;
  Oxigraph also refuses any single literal or IRI over 16 MiB. A file without any statement is
  an error.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePath
from typing import Any
from xml.parsers import expat

import pyoxigraph as ox
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyld import jsonld
from rdflib import BNode, Graph, URIRef
from rdflib.term import Node

from catalogue.dcat.terms import ParsedRdf, Statement, ToOxigraph, gc_paused, rdflib_literal
from catalogue.exceptions import ConfigError, UnreadableSourceError

_FORMATS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".trig": "trig",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".nt": "nt",
    ".ntriples": "nt",
    ".nq": "nquads",
    ".nquads": "nquads",
    ".n3": "n3",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}
_FAMILY = {
    "turtle": "text",
    "trig": "text",
    "nt": "text",
    "nquads": "text",
    "n3": "text",
    "xml": "xml",
    "json-ld": "json",
}
_FAMILY_FORMAT = {"text": "turtle", "xml": "xml", "json": "json-ld"}
RDF_SUFFIXES = frozenset(_FORMATS)
"""File suffixes of RDF documents (lower case, with the dot)."""

CONTEXTS_DIR = Path(__file__).parent / "contexts"
KNOWN_CONTEXTS = {
    # The SEMIC DCAT-AP 3.0.1 examples name the 3.0.0 URL; both map to the 3.0.1 copy.
    "https://semiceu.github.io/uri.semic.eu-generated/DCAT-AP/releases/3.0.0/html/examples/"
    "context.jsonld": "dcat-ap-3-examples.jsonld",
    "https://semiceu.github.io/uri.semic.eu-generated/DCAT-AP/releases/3.0.1/html/examples/"
    "context.jsonld": "dcat-ap-3-examples.jsonld",
}
"""Remote JSON-LD contexts read from local copies (see contexts/README.md)."""

_DETAIL_CHARS = 240
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"%PDF", "a PDF"),
    (b"\x89PNG", "a PNG image"),
)
_XML_START = re.compile(r"<(\?xml|!--|!doctype|[A-Za-z_][\w.-]*(:[A-Za-z_][\w.-]*)?\s)", re.I)
_IRI_START = re.compile(r"<[^\s<>\"{}|^`\\]*>")
_TEXT_START = re.compile(r"(@prefix|@base|prefix|base)\s|#|_:", re.I)
_JSON_START = re.compile(r"\{|\[\s*[{\[\"\d-]")
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_XML_ENCODING = re.compile(r"""(^\s*<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""")
_MAX_ENTITY_CHARS = 2048
_MAX_XML_DEPTH = 1000
_BAD_IRI = re.compile(r"[\x00-\x20<>\"{}|^`\\\x7f]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class RdfSettings(BaseSettings):
    """Limits on reading RDF (CATALOGUE_RDF__<NAME>), read at each file."""

    model_config = SettingsConfigDict(env_prefix="CATALOGUE_RDF__", extra="ignore")

    max_file_bytes: int = Field(default=256 * 2**20, ge=1)


def max_file_bytes() -> int:
    """The configured size cap of one RDF file, in bytes."""
    try:
        return RdfSettings().max_file_bytes
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"CATALOGUE_RDF__MAX_FILE_BYTES: {first['msg']}") from exc


def guess_format(path: PurePath) -> str:
    """The rdflib format name for a file, from its extension (Turtle if unknown)."""
    return _FORMATS.get(path.suffix.lower(), "turtle")


def read_rdf(path: Path, fmt: str | None = None) -> Graph:
    """Parse one RDF file into a new Graph; UnreadableSourceError (one line, naming the file)
    if it is missing, too large or not what it should be."""
    return read_rdf_triples(path, fmt).graph()


def read_rdf_triples(path: Path, fmt: str | None = None) -> ParsedRdf:
    """As `read_rdf`, into Oxigraph triples (no rdflib graph is built)."""
    limit = max_file_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            raise UnreadableSourceError(
                f"{path}: {size} bytes is over the {limit}-byte limit of one RDF file "
                "(CATALOGUE_RDF__MAX_FILE_BYTES)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableSourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:  # grew while being read
        raise UnreadableSourceError(f"{path}: over the {limit}-byte limit of one RDF file")
    return parse_rdf_triples(data, str(path), path.absolute().as_uri(), fmt or guess_format(path))


def parse_rdf_bytes(
    data: bytes, name: str, base: str, fmt: str | None = None, allow_empty: bool = False
) -> Graph:
    """Parse a document's bytes (`name` for messages, relative IRIs against `base`); `fmt` is
    what the document claims to be, overridden when its content plainly is something else."""
    return parse_rdf_triples(data, name, base, fmt, allow_empty).graph()


def parse_rdf_triples(
    data: bytes, name: str, base: str, fmt: str | None = None, allow_empty: bool = False
) -> ParsedRdf:
    """As `parse_rdf_bytes`, into Oxigraph triples (a triple stated twice may come twice)."""
    declared = fmt or "turtle"

    def fail(detail: str) -> UnreadableSourceError:
        return UnreadableSourceError(f"{name}: {_one_line(detail)}")

    if not data:
        raise fail("empty file")
    encoding, bom = _byte_order_mark(data)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise fail(f"{what}, not RDF")
    if encoding is None and b"\x00" in data[:4096]:
        raise fail("binary data (NUL bytes), not RDF")
    head = _head(data, encoding, bom)
    if not head:
        raise fail("no RDF statements (only white space)")
    looks = _sniff(head)
    if looks == "html":
        raise fail("an HTML page, not RDF")
    chosen = _other_format(looks, declared) or declared
    label = chosen if chosen == declared else f"{chosen} (by its content; {declared} expected)"
    try:
        if chosen == "xml":
            parsed = _parse_xml(data, base)
        elif chosen == "json-ld":
            parsed = _parse_jsonld(_utf8(data, encoding, bom, "JSON-LD"), base)
        elif _FAMILY.get(chosen) == "text":
            _utf8(data, encoding, bom, chosen)
            parsed = _parse_text(data[bom:], chosen, base)
        else:
            raise fail(f"unsupported RDF format {chosen!r}")
    except UnreadableSourceError as exc:
        raise fail(f"not valid {label}: {exc}") from exc
    except RecursionError as exc:
        raise fail(f"not valid {label}: nested too deeply") from exc
    except Exception as exc:  # every parser has its own exception types
        raise fail(f"not valid {label}: {_describe(exc)}") from exc
    if not parsed.triples and not allow_empty:  # an empty query result may be only prefixes
        raise fail(f"no RDF statements in this {chosen} document")
    return parsed


def content_format(data: bytes, declared: str | None = None) -> str | None:
    """What a document plainly is when that is not of `declared`'s family: "html" for an HTML
    page, else the format the parsers read it as ("turtle", "xml" or "json-ld"); None when its
    content is unclear or agrees with `declared`."""
    encoding, bom = _byte_order_mark(data)
    return _other_format(_sniff(_head(data, encoding, bom)), declared)


def _other_format(looks: str | None, declared: str | None) -> str | None:
    """The format content of family `looks` is read as instead of `declared` (an unknown
    format agrees with anything); None to read it as declared."""
    if looks is None or looks == "html":
        return looks
    if declared is not None and looks == _FAMILY.get(declared, looks):
        return None
    return _FAMILY_FORMAT[looks]


def _one_line(text: str) -> str:
    """Collapse white space and cut long messages (an error must stay one readable line)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 2 * _DETAIL_CHARS else flat[: 2 * _DETAIL_CHARS] + "…"


def _byte_order_mark(data: bytes) -> tuple[str | None, int]:
    """The encoding a byte-order mark (or UTF-16's zero bytes) shows, and the mark's length."""
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return encoding, len(mark)
    if len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] and data[2]:
        return "utf-16-le", 0
    if len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] and data[3]:
        return "utf-16-be", 0
    return None, 0


def _head(data: bytes, encoding: str | None, bom: int) -> str:
    """The first few KiB of the document after any white space, decoded for sniffing."""
    if encoding in (None, "utf-8"):
        space = _LEADING_SPACE.match(data, bom)
        start = space.end() if space else bom
        return data[start : start + 4096].decode("utf-8", errors="replace")
    assert encoding is not None
    text = data[bom:].decode(encoding, errors="replace")
    return text[len(text) - len(text.lstrip()) :][:4096]


def _sniff(head: str) -> str | None:
    """The family a document plainly belongs to: text, xml, json, html; None if unclear."""
    lowered = head[:512].lower()
    if lowered.startswith(("<!doctype html", "<html")) or (
        lowered.startswith("<") and "<html" in lowered
    ):
        return "html"
    if _JSON_START.match(head):
        return "json"
    if _XML_START.match(head):
        return "xml"
    if _IRI_START.match(head) or _TEXT_START.match(head):
        return "text"
    return None


def _utf8(data: bytes, encoding: str | None, bom: int, what: str) -> str:
    """The document as text (after its byte-order mark); its specification allows UTF-8 only."""
    if encoding not in (None, "utf-8"):
        raise UnreadableSourceError(f"the file is {encoding.upper()}; {what} must be UTF-8")
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        hint = " (Latin-1 or Windows-1252?)" if 0x80 <= byte <= 0xFF else ""
        raise UnreadableSourceError(
            f"byte 0x{byte:02X} at line {line}, column {column} is not UTF-8{hint}; "
            f"{what} must be UTF-8"
        ) from exc


# Turtle, TriG, N-Triples, N-Quads, N3 (Oxigraph)

_OX_FORMATS = {
    "turtle": (ox.RdfFormat.TRIG, ox.RdfFormat.N_QUADS),
    "trig": (ox.RdfFormat.TRIG, ox.RdfFormat.N_QUADS),
    "nt": (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG),
    "nquads": (ox.RdfFormat.N_QUADS, ox.RdfFormat.TRIG),
    "n3": (ox.RdfFormat.N3,),
}


def _parse_text(data: bytes, fmt: str, base: str) -> ParsedRdf:
    """Turtle is read as TriG (a superset) and N-Triples as N-Quads; if that fails, the other
    one is tried (N-Quads in a .ttl file); the first error is the one reported."""
    first: UnreadableSourceError | None = None
    for ox_format in _OX_FORMATS[fmt]:
        try:
            return _oxigraph_parse(data, ox_format, base, formulas_are_errors=fmt == "n3")
        except _OxigraphSyntaxError as exc:
            first = first or exc
    assert first is not None
    raise first


class _OxigraphSyntaxError(UnreadableSourceError):
    """Oxigraph found the document invalid (another format may still be tried)."""


def _oxigraph_parse(
    data: bytes, ox_format: ox.RdfFormat, base: str, formulas_are_errors: bool = False
) -> ParsedRdf:
    try:
        parser = ox.parse(data, format=ox_format, base_iri=base, rename_blank_nodes=True)
        with gc_paused():  # up to millions of terms made
            statements = _default_graph(parser, formulas_are_errors)
        return ParsedRdf(statements, dict(getattr(parser, "prefixes", {})))
    except SyntaxError as exc:
        raise _OxigraphSyntaxError(_oxigraph_message(exc)) from exc
    except MemoryError as exc:
        raise UnreadableSourceError(f"a literal or IRI over Oxigraph's token limit: {exc}") from exc


_OX_ERROR = re.compile(
    r"Parser error at line (\d+) (?:between columns (\d+) and (\d+)|column (\d+)): (.*?)"
    r"(?: \(line \d+\))?$",
    re.S,
)


def _oxigraph_message(exc: SyntaxError) -> str:
    """'line 3, column 7: message' from Oxigraph's 'Parser error at line 3 column 7: …'."""
    text = str(exc)
    match = _OX_ERROR.match(text)
    if match is None:
        return text
    line, start, end, column, message = match.groups()
    where = f"column {column}" if column else f"columns {start}-{end}"
    return f"line {line}, {where}: {message}"


def _default_graph(parser: Iterable[ox.Quad], formulas_are_errors: bool) -> list[Statement]:
    """Oxigraph's quads, every one in the default graph (graph names dropped: the graphs of a
    dataset file are merged)."""
    out: list[Statement] = []
    for quad in parser:
        if type(quad.subject) is ox.Triple or type(quad.object) is ox.Triple:
            raise UnreadableSourceError(
                f"unsupported RDF term in {quad} (RDF 1.2 triple terms are not supported)"
            )
        if type(quad.graph_name) is not ox.DefaultGraph:
            if formulas_are_errors:
                raise UnreadableSourceError("N3 formulas ({ … }) are not supported")
            quad = ox.Quad(quad.subject, quad.predicate, quad.object)
        out.append(quad)
    return out


# RDF/XML (expat checks, Oxigraph parses)


class _XmlRefusedError(Exception):
    """Raised from an expat handler to stop at the first unsafe construct."""


def _parse_xml(data: bytes, base: str) -> ParsedRdf:
    """RDF/XML: expat first checks the whole document (well-formed, nesting, entities) in the
    encoding it declares, then Oxigraph parses it as UTF-8 (it would accept a truncated
    document, and it expands entities, so it never sees one that expat did not pass)."""
    encoding = _check_xml(data)
    if encoding is not None:
        data = _as_utf8_xml(data, encoding)
    return _oxigraph_parse(data, ox.RdfFormat.RDF_XML, base)


def _check_xml(data: bytes) -> str | None:
    """Refuse XML that is not well-formed, nests too deeply or declares entities that could
    expand (nested, external, parameter, long: XML bombs) or be fetched; return the
    document's encoding when it is not UTF-8."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    declared: list[str] = []
    depth = 0
    text = 0
    budget = 2 * len(data) + 2**20

    def declaration(version: str, encoding: str | None, standalone: int) -> None:
        declared.append(encoding or "")

    def entity(name: str, parameter: bool, value: str | None, *rest: str | None) -> None:
        if parameter:
            raise _XmlRefusedError(f"parameter entity %{name}; refused (DTD)")
        if value is None:
            raise _XmlRefusedError(f"external entity &{name}; refused (never fetched)")
        if "&" in value or "%" in value:
            raise _XmlRefusedError(
                f"entity &{name}; refers to other entities (an XML bomb?); refused"
            )
        if len(value) > _MAX_ENTITY_CHARS:
            raise _XmlRefusedError(
                f"entity &{name}; is {len(value)} characters (over {_MAX_ENTITY_CHARS}); refused"
            )

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > _MAX_XML_DEPTH:
            raise _XmlRefusedError(f"elements nested more than {_MAX_XML_DEPTH} deep")

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def characters(chunk: str) -> None:
        nonlocal text
        text += len(chunk)
        if text > budget:
            raise _XmlRefusedError("entities expand to over twice the file's size (an XML bomb?)")

    parser.XmlDeclHandler = declaration
    parser.EntityDeclHandler = entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except _XmlRefusedError as exc:
        where = f"line {parser.ErrorLineNumber}, column {parser.ErrorColumnNumber + 1}"
        raise UnreadableSourceError(f"{where}: {exc}") from exc
    except expat.ExpatError as exc:
        message = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise UnreadableSourceError(
            f"line {exc.lineno}, column {exc.offset + 1}: {message}"
        ) from exc
    encoding = _byte_order_mark(data)[0] or (declared[0] if declared else "") or "utf-8"
    return None if codecs.lookup(encoding).name == "utf-8" else encoding


def _as_utf8_xml(data: bytes, encoding: str) -> bytes:
    """The document re-encoded as UTF-8, its XML declaration saying so."""
    text = codecs.decode(data, encoding).removeprefix("\ufeff")
    text = _XML_ENCODING.sub(r"\g<1>UTF-8\g<2>", text, count=1)
    return text.encode("utf-8")


def _check_iris(graph: Graph) -> None:
    """Every IRI must be absolute and free of characters IRIs exclude (spaces, <, > ...)."""
    checked: set[str] = set()
    for triple in graph:
        for node in triple:
            if isinstance(node, URIRef) and node not in checked:
                value = str(node)
                bad = _BAD_IRI.search(value)
                if bad or not _SCHEME.match(value):
                    why = f"contains {bad[0]!r}" if bad else "is not absolute"
                    shown = value if len(value) <= 80 else value[:80] + "…"
                    raise UnreadableSourceError(f"invalid IRI <{shown}>: it {why}")
                checked.add(value)


# JSON-LD (pyld, offline)


@cache
def _context(file: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CONTEXTS_DIR / file).read_text(encoding="utf-8"))
    return document


class _RemoteContextRefused(jsonld.JsonLdError):  # type: ignore[misc]
    def __init__(self, url: str) -> None:
        super().__init__(
            f"remote JSON-LD context {url} is not fetched (harvests are offline; only "
            "contexts with a local copy are read)",
            "jsonld.LoadDocumentError",
            code="loading remote context failed",
        )
        self.url = url


def _offline_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader: known contexts from local copies; anything else refused."""
    file = KNOWN_CONTEXTS.get(url)
    if file is None:
        raise _RemoteContextRefused(url)
    return {"contextUrl": None, "documentUrl": url, "document": _context(file)}


def _parse_jsonld(text: str, base: str) -> ParsedRdf:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableSourceError(
            f"not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    _check_ids(document)
    refused: list[str] = []

    def loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return _offline_loader(url, options)
        except _RemoteContextRefused:
            refused.append(url)
            raise

    try:
        dataset = jsonld.to_rdf(document, {"documentLoader": loader, "base": base})
    except jsonld.JsonLdError as exc:
        if refused:
            raise UnreadableSourceError(_RemoteContextRefused(refused[0]).args[0]) from exc
        raise _error_of(exc) from exc
    graph = Graph()
    blanks: dict[str, BNode] = {}

    def term(value: dict[str, str]) -> Node:
        if value["type"] == "IRI":
            return URIRef(value["value"])
        if value["type"] == "blank node":
            return blanks.setdefault(value["value"], BNode())
        return rdflib_literal(value["value"], value.get("datatype"), value.get("language"))

    for triples in dataset.values():
        for triple in triples:
            graph.add((term(triple["subject"]), term(triple["predicate"]), term(triple["object"])))
    if len(graph) == 0 and not _mentions_jsonld(document):
        raise UnreadableSourceError("JSON without @context, @id or @type: not JSON-LD")
    _check_iris(graph)
    return ParsedRdf(ToOxigraph().triples(graph))


def _check_ids(document: Any) -> None:
    """Refuse an @id that no IRI can be (pyld would drop its statements without a word)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            node_id = value.get("@id")
            if isinstance(node_id, str) and not node_id.startswith("_:"):
                bad = _BAD_IRI.search(node_id)
                if bad:
                    shown = node_id if len(node_id) <= 80 else node_id[:80] + "…"
                    raise UnreadableSourceError(
                        f"invalid IRI @id {shown!r}: it contains {bad[0]!r}"
                    )
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _mentions_jsonld(document: Any) -> bool:
    """Whether a JSON value uses any JSON-LD keyword at its top level or in a list."""
    items = document if isinstance(document, list) else [document]
    return any(isinstance(item, dict) and any(k.startswith("@") for k in item) for item in items)


def _error_of(exc: jsonld.JsonLdError) -> UnreadableSourceError:
    """The innermost JSON-LD error's message and code (pyld nests them)."""
    inner: BaseException = exc
    while isinstance(inner.__cause__ or inner.__context__, jsonld.JsonLdError):
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    details = getattr(inner, "details", None) or {}
    cause = details.get("cause") if isinstance(details, dict) else None
    if isinstance(cause, jsonld.JsonLdError):
        inner = cause
    message = str(inner.args[0]) if inner.args else type(inner).__name__
    code = getattr(inner, "code", None)
    return UnreadableSourceError(f"{message}{f' ({code})' if code else ''}")


# Messages


def _describe(exc: BaseException) -> str:
    """A parser exception as one short line: position first when the parser gives one."""
    if isinstance(exc, UnicodeError):
        return f"wrong encoding: {exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _DETAIL_CHARS:
        text = text[:_DETAIL_CHARS] + "…"
    return text
