"""Every real DCAT example harvests; the real broken ones fail cleanly and harm nothing.

All examples are harvested in one run, one provider per file, into a real temporary catalogue.
Each provider's datasets in the store and in the index are checked against SPARQL over the raw
file, parsed by rdflib alone (its own Turtle, TriG, RDF/XML and JSON-LD parsers; never the
catalogue's reader). Permissive examples are in tests/data/dcat; AGPL and unverified ones are read
from ../shared/corpus (or $CATALOGUE_TEST_CORPUS) in place, and their tests skip without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.query import ResultRow

from catalogue.config import Settings, load_providers
from catalogue.dcat.rdf_io import CONTEXTS_DIR, KNOWN_CONTEXTS
from catalogue.domain.identifiers import dataset_graph, provider_dataset_prefix
from catalogue.domain.models import Dataset as DatasetModel
from catalogue.services.ingest import HarvestReport, harvest, stored_datasets
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT
from tests.corpus import CORPUS

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "dcat"
SEMIC_CONTEXT = CONTEXTS_DIR / "dcat-ap-3-examples.jsonld"

REPO_FOLDERS = (
    "semic-dcat-ap-3.0.1",
    "semic-dcat-ap-hvd-3.0.0",
    "semic-dcat-ap-2.1.1",
    "piveau-hub",
    "img2catalog-healthri",
)
"""Copies of CC-BY, Apache-2.0 and MIT examples (tests/data/README.md gives their origin)."""

IN_PLACE = (
    "ckanext-dcat/dcat/catalog.rdf",
    "ckanext-dcat/dcat/catalog_pod.jsonld",
    "ckanext-dcat/dcat/catalog_with_at_graph.jsonld",
    "ckanext-dcat/dcat/dataset.ttl",
    "ckanext-dcat/dcat/dataset_gob_es.ttl",
    "ckanext-dcat/dcat/dataset_gov_de.rdf",
    "ckanext-dcat/dcat/dataset_sweden.rdf",
    "ckanext-dcat/dcat/full_croissant_dataset.jsonld",
    "ckanext-dcat/healthdcat/dataset_health.ttl",
    "ckanext-dcat/healthdcat/dataset_health_multilingual.ttl",
    "ckanext-dcat/healthdcat/dataset_health_no_blank.ttl",
    "fdp-gdi-ckanext/dataset_898ca4b8-197b-4d40-bc81-d9cd88197670.ttl",
    "fdp-gdi-ckanext/dataset_cbioportal.ttl",
    "fdp-gdi-ckanext/dataset_with-accessservice.ttl",
    "fdp-gdi-ckanext/distribution_f9b9dff8-a039-4ca2-be9b-da72a61e3bac.ttl",
    "fdp-gdi-ckanext/fdp_catalog.ttl",
    "fdp-gdi-ckanext/fdp_profile.ttl",
    "fdp-gdi-ckanext/root_fdp_response.ttl",
    "fdp-gdi-ckanext/root_fdp_response_no_catalogs.ttl",
    "fdp-gdi-ckanext/wikidata_data_catalog_entry.ttl",
    "healthdcat-ap/mvd-health-demo/health-catalog.ttl",
    "semic-dcat-ap-shacl-tests/catalogue.ttl",
    "semic-dcat-ap-shacl-tests/catalogue-1.ttl",
    "semic-dcat-ap-shacl-tests/datatype-disjunction.ttl",
    "semic-dcat-ap-shacl-tests/dcat-random.ttl",
)
"""AGPL-3.0 (ckanext-dcat, the GDI FAIR Data Point extension), unverified (the MVD health demo)
and unlicensed (SEMIC's old SHACL test inputs) examples, read from the corpus."""

_RDF_SUFFIXES = {".ttl", ".rdf", ".nt", ".jsonld"}

pytestmark = pytest.mark.filterwarnings(
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"  # inside rdflib's own parsers
)


def _prefixed_name_with_slash(text: str) -> int:
    """Line of the first prefixed name with '/' in its local part (invalid in Turtle)."""
    return _first_line(text, lambda line: bool(re.search(r"(^|\s)[A-Za-z][\w-]*:[\w-]+/", line)))


def _unbound_prefix(prefix: str) -> Callable[[str], int]:
    return lambda text: _first_line(
        text, lambda line: f"{prefix}:" in line and not line.lstrip().startswith("@prefix")
    )


def _after_prefix_without_dot(text: str) -> int:
    """The statement after the last @prefix line that lacks its final '.'."""
    lines = text.splitlines()
    bad = max(i for i, line in enumerate(lines) if line.startswith("@prefix"))
    assert not lines[bad].rstrip().endswith(".")
    return next(i for i in range(bad + 1, len(lines)) if lines[i].strip()) + 1


def _end_of_file(text: str) -> int:
    return text.count("\n") + 1


def _after_trailing_comma(text: str) -> int:
    lines = text.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].rstrip().endswith(",") and lines[i + 1].lstrip().startswith(("}", "]")):
            return i + 2
    raise AssertionError("no trailing comma")


def _first_line(text: str, test: Callable[[str], bool]) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if test(line))


BROKEN: dict[str, tuple[Callable[[str], int], str]] = {
    "semic-dcat-ap-3.0.1/example-bee-population-dataset-series-api.ttl": (
        _prefixed_name_with_slash,
        "'/'",
    ),
    "semic-dcat-ap-3.0.1/example-bee-population-dataset-series-combined.ttl": (
        _prefixed_name_with_slash,
        "'/'",
    ),
    "piveau-hub/example_dataset.ttl": (_after_prefix_without_dot, "dot"),
    "piveau-hub/example_dataset_geonames.ttl": (_after_prefix_without_dot, "dot"),
    "piveau-hub/example_external_dataset.ttl": (_after_prefix_without_dot, "dot"),
    "piveau-hub/example_catalog.ttl": (_end_of_file, "end"),
    "piveau-hub/example_empty_catalog.ttl": (_end_of_file, "end"),
    "ckanext-dcat/dcat/dataset.ttl": (_unbound_prefix("healthdcatap"), "healthdcatap:"),
    "ckanext-dcat/dcat/full_croissant_dataset.jsonld": (_after_trailing_comma, "not JSON"),
}
"""The examples SOURCES.md says do not parse: how to find the faulty line in the raw text, and a
word the error must hold."""


@dataclass(frozen=True)
class Example:
    key: str
    path: Path
    in_repo: bool

    @property
    def available(self) -> bool:
        return self.path.is_file()


def _examples() -> list[Example]:
    found = [
        Example(f"{folder}/{path.name}", path, True)
        for folder in REPO_FOLDERS
        for path in sorted((DATA / folder).iterdir())
        if path.suffix in _RDF_SUFFIXES
    ]
    found += [Example(key, CORPUS / key, False) for key in IN_PLACE]
    return found


EXAMPLES = _examples()
PARSEABLE = [e for e in EXAMPLES if e.key not in BROKEN]
UNPARSEABLE = [e for e in EXAMPLES if e.key in BROKEN]


def provider_id(example: Example) -> str:
    return f"e{EXAMPLES.index(example):03d}"


def need(example: Example) -> None:
    if not example.available:
        pytest.skip(f"{example.path} is absent (AGPL or unverified files are read in place)")


# Ground truth: rdflib alone, over the raw file


def reference_graph(path: Path) -> Graph:
    """The file as rdflib's own parsers read it; Turtle as TriG with every graph merged, and
    the SEMIC JSON-LD examples with their remote context given inline."""
    if path.suffix == ".ttl":
        merged = Dataset(default_union=True)
        merged.parse(path, format="trig")
        return merged
    if path.suffix == ".jsonld":
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        context = document.get("@context") if isinstance(document, dict) else None
        if isinstance(context, str) and context in KNOWN_CONTEXTS:
            document["@context"] = json.loads(SEMIC_CONTEXT.read_text())["@context"]
        merged = Dataset(default_union=True)
        merged.parse(data=json.dumps(document), format="json-ld", publicID=path.as_uri())
        return merged
    return Graph().parse(path, format={".rdf": "xml", ".nt": "nt"}[path.suffix])


PREFIXES = """PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
"""


def rows(graph: Graph, query: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in graph.query(PREFIXES + query) if isinstance(row, ResultRow)]


def preferred(values: list[Any]) -> set[str]:
    """Literals in the language the parser prefers: English, else untagged, else any."""
    literals = [v for v in values if isinstance(v, Literal)]
    for chosen in (
        {str(v).strip() for v in literals if (v.language or "").lower() == "en"},
        {str(v).strip() for v in literals if v.language is None},
        {str(v).strip() for v in literals},
    ):
        if chosen:
            return chosen
    return set()


@dataclass
class Expected:
    """One dataset as SPARQL over the raw file describes it."""

    identifiers: set[str]
    titles: set[str]
    publishers: set[str] | None
    """None without dct:publisher or when its only publisher is a nameless blank node."""
    keywords: set[str]


def expected_datasets(graph: Graph) -> dict[str, Expected]:
    """Per dataset node, by SPARQL: identifiers, titles, publisher names and keywords."""
    nodes = {str(r[0]): r[0] for r in rows(graph, "SELECT DISTINCT ?d { ?d a dcat:Dataset }")}
    ids: dict[str, list[Any]] = {key: [] for key in nodes}
    titles: dict[str, list[Any]] = {key: [] for key in nodes}
    agents: dict[str, dict[str, list[Any]]] = {key: {} for key in nodes}
    keywords: dict[str, set[str]] = {key: set() for key in nodes}
    for d, i in rows(graph, "SELECT ?d ?i { ?d a dcat:Dataset ; dct:identifier ?i }"):
        ids[str(d)].append(i)
    for d, t in rows(graph, "SELECT ?d ?t { ?d a dcat:Dataset ; dct:title ?t }"):
        titles[str(d)].append(t)
    for d, a, n in rows(
        graph,
        "SELECT ?d ?a ?n { ?d a dcat:Dataset ; dct:publisher ?a OPTIONAL { ?a foaf:name ?n } }",
    ):
        names = agents[str(d)].setdefault(str(a) if isinstance(a, URIRef) else "", [])
        if n is not None:
            names.append(n)
    for d, k in rows(graph, "SELECT ?d ?k { ?d a dcat:Dataset ; dcat:keyword ?k }"):
        if str(k).strip():
            keywords[str(d)].add(str(k).strip())
    out: dict[str, Expected] = {}
    for key in nodes:
        identifiers = preferred(ids[key]) or {key}
        publishers: set[str] | None = None
        for agent, names in agents[key].items():
            found = preferred(names) or ({agent} if agent else set())
            publishers = found | (publishers or set()) if found else publishers
        out[key] = Expected(identifiers, preferred(titles[key]), publishers, keywords[key])
    return out


def check_dataset(got: DatasetModel, want: Expected) -> None:
    assert got.identifier in want.identifiers
    assert got.title in (want.titles or {got.identifier})
    if want.publishers is None:
        assert got.publisher is None
    else:
        assert got.publisher in want.publishers
    assert set(got.keywords) == want.keywords


# One harvest of every example


@dataclass
class Harvested:
    catalogue: Catalogue
    report: HarvestReport


@pytest.fixture(scope="module")
def harvested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harvested]:
    root = tmp_path_factory.mktemp("corpus")
    providers = [
        {
            "id": provider_id(example),
            "name": example.key,
            "sources": [{"kind": "dcat", "path": str(example.path)}],
        }
        for example in EXAMPLES
        if example.available
    ]
    (root / "providers.yaml").write_text(yaml.safe_dump({"providers": providers}))
    settings = Settings(data_dir=root / "data", secret="corpus-secret-0123456789", disclosure=EXACT)
    with open_catalogue(settings) as catalogue:
        report = harvest(catalogue, load_providers(root / "providers.yaml"))
        yield Harvested(catalogue, report)


def source_report(harvested: Harvested, example: Example) -> Any:
    (found,) = [s for s in harvested.report.sources if s.provider_id == provider_id(example)]
    return found


@pytest.mark.parametrize("example", PARSEABLE, ids=lambda e: e.key)
def test_example_harvests_as_sparql_over_the_raw_file_says(
    harvested: Harvested, example: Example
) -> None:
    need(example)
    report = source_report(harvested, example)
    assert report.ok, report.error
    expected = expected_datasets(reference_graph(example.path))
    pid = provider_id(example)

    stored = {d.iri: d for d in stored_datasets(harvested.catalogue, pid)}
    assert len(stored) == len(expected) == report.datasets
    assert set(stored) == set(expected)
    page = harvested.catalogue.datasets.search(None, 0, 1000, providers=(pid,))
    assert page.total == len(expected)
    indexed = {d.iri: d for d in page.datasets}
    assert set(indexed) == set(expected)
    for iri, want in expected.items():
        check_dataset(stored[iri], want)
        check_dataset(indexed[iri], want)
        graph = harvested.catalogue.store.graph(dataset_graph(pid, stored[iri].identifier))
        assert (URIRef(iri), None, None) in graph


@pytest.mark.parametrize("example", UNPARSEABLE, ids=lambda e: e.key)
def test_broken_example_fails_cleanly_and_alone(harvested: Harvested, example: Example) -> None:
    need(example)
    report = source_report(harvested, example)
    assert not report.ok
    error = report.error or ""
    locate, word = BROKEN[example.key]
    line = locate(example.path.read_text(encoding="utf-8"))
    assert error.startswith(f"{example.path}: not valid "), error
    assert f"line {line}," in error, error
    assert word in error, error
    assert "\n" not in error and len(error) < 500
    pid = provider_id(example)
    assert harvested.catalogue.store.graph_names(provider_dataset_prefix(pid)) == []
    assert harvested.catalogue.datasets.search(None, 0, 10, providers=(pid,)).total == 0
    others = [s for s in harvested.report.sources if s.provider_id != pid]
    assert sum(s.ok for s in others) >= len([e for e in PARSEABLE if e.available])


def test_trig_example_merges_its_named_graph_into_the_dataset(harvested: Harvested) -> None:
    """piveau's example_metric.ttl is TriG: its dataset is in the default graph and its DQV
    quality measurements in a named graph; both end up in the dataset's stored graph."""
    (example,) = [e for e in EXAMPLES if e.key == "piveau-hub/example_metric.ttl"]
    raw = reference_graph(example.path)
    measurements = rows(
        raw,
        "SELECT ?m { <https://piveau.io/set/data/test-dataset> "
        "<http://www.w3.org/ns/dqv#hasQualityMeasurement> ?m }",
    )
    assert len(measurements) > 0
    (dataset,) = stored_datasets(harvested.catalogue, provider_id(example))
    stored = harvested.catalogue.store.graph(dataset_graph(provider_id(example), "sampleDataset"))
    assert dataset.identifier == "sampleDataset"
    assert len(
        rows(
            stored,
            "SELECT ?m { <https://piveau.io/set/data/test-dataset> "
            "<http://www.w3.org/ns/dqv#hasQualityMeasurement> ?m }",
        )
    ) == len(measurements)


def test_every_semic_jsonld_example_reads_through_the_mapped_context(
    harvested: Harvested,
) -> None:
    semic = [
        e
        for e in PARSEABLE
        if e.key.startswith("semic-dcat-ap-3.0.1/") and e.path.suffix == ".jsonld"
    ]
    remote = [e for e in semic if str(json.loads(e.path.read_text())["@context"]) in KNOWN_CONTEXTS]
    assert len(remote) >= 14
    for example in remote:
        assert source_report(harvested, example).ok


def test_shipped_context_is_the_semic_one() -> None:
    original = CORPUS / "dcat-ap-3.0.1" / "examples" / "context.jsonld"
    if not original.is_file():
        pytest.skip(f"{original} is absent")
    assert SEMIC_CONTEXT.read_bytes() == original.read_bytes()
