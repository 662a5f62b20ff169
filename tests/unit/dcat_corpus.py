"""Real DCAT-AP examples for the profile and drift tests.

The shared corpus (../shared/corpus, or $CATALOGUE_TEST_CORPUS) is read in place: several of
its files are AGPL or of unverified licence, so none is copied here. tests/data/dcat holds the
MIT and Apache-2.0 files the repository carries (see tests/data/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pyoxigraph
import pytest
from pyld import jsonld
from rdflib import Graph, Namespace
from rdflib.query import ResultRow
from rdflib.term import Identifier, Node

from catalogue.dcat import namespaces
from catalogue.dcat.rdf_io import read_rdf
from catalogue.exceptions import UnreadableSourceError
from tests.corpus import CORPUS

# Open namespaces for the tests' module globals: pytest probes them, and rdflib's DCAT and XSD
# (which are not closed) warn on every unknown name; its other namespaces raise quietly.
DCAT = namespaces.DCAT3
XSD = Namespace(str(namespaces.XSD))

ROOT = Path(__file__).resolve().parents[2]
REPO_DCAT = ROOT / "tests" / "data" / "dcat"

SEMIC_CONTEXT = (
    "https://semiceu.github.io/uri.semic.eu-generated/DCAT-AP/releases/3.0.0/html/examples/"
    "context.jsonld"
)
"""The remote context of the SEMIC DCAT-AP 3.0.1 JSON-LD examples; a copy sits beside them."""

_RDF_SUFFIXES = {".ttl", ".rdf", ".nt", ".jsonld"}
_NOT_EXAMPLES = ("shacl", "shapes", ".test.ttl", "context")


def corpus_files() -> list[Path]:
    """Every RDF example of the corpus (not SHACL shapes, test reports or JSON-LD contexts)."""
    if not CORPUS.is_dir():
        return []
    return sorted(
        path
        for path in CORPUS.rglob("*")
        if path.suffix in _RDF_SUFFIXES
        and not any(part in path.name.lower() for part in _NOT_EXAMPLES)
    )


def corpus_path(relative: str) -> Path:
    """A corpus file, or skip the test when the corpus is not here."""
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared corpus is read in place)")
    return path


def read_example(path: Path) -> Graph:
    """A corpus file as a graph; the SEMIC JSON-LD examples get their context from the copy
    beside them (offline)."""
    if path.suffix == ".jsonld":
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError:
            document = None  # read_rdf says why
        if isinstance(document, dict) and document.get("@context") == SEMIC_CONTEXT:
            return _semic_jsonld(path, document)
    return read_rdf(path)


def read_or_skip(path: Path) -> Graph:
    """A corpus file as a graph, or skip: the corpus keeps broken files on purpose."""
    try:
        return read_example(path)
    except UnreadableSourceError as exc:
        pytest.skip(f"not parseable (kept in the corpus as a negative case): {exc}")


def _semic_jsonld(path: Path, document: dict[str, Any]) -> Graph:
    context = json.loads((path.parent / "context.jsonld").read_text())

    def loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        if url != SEMIC_CONTEXT:
            raise jsonld.JsonLdError(f"offline: {url}", "jsonld.LoadDocumentError")
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": context,
        }

    nquads = jsonld.to_rdf(
        document,
        {"format": "application/n-quads", "documentLoader": loader, "base": path.as_uri()},
    )
    return Graph().parse(data=nquads, format="nquads")


PREFIXES = """
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX vcard: <http://www.w3.org/2006/vcard/ns#>
PREFIX healthdcatap: <http://healthdataportal.eu/ns/health#>
"""


def select(graph: Graph, query: str, **bindings: Node) -> list[tuple[Any, ...]]:
    """The rows of a SPARQL SELECT over `graph` (the usual prefixes declared), as tuples."""
    result = graph.query(
        PREFIXES + query, initBindings={k: cast(Identifier, v) for k, v in bindings.items()}
    )
    return [tuple(cast(ResultRow, row)) for row in result]


def corpus_id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def canonical(graph: Graph) -> pyoxigraph.Dataset:
    """The graph with canonical blank-node labels (RDFC, by Oxigraph: an implementation
    independent of the code under test, and far faster than rdflib.compare). Two graphs are
    isomorphic exactly when their canonical forms are equal."""
    data = graph.serialize(format="nt", encoding="utf-8")
    dataset = pyoxigraph.Dataset(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.N_TRIPLES))
    dataset.canonicalize(pyoxigraph.CanonicalizationAlgorithm.UNSTABLE)
    return dataset
