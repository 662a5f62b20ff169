"""SHACL validation: the machinery against SEMIC's own expected reports, DCAT-AP 3 and
HealthDCAT-AP r8 per access level on datasets built here, real catalogue files checked against
SPARQL over the raw file, and the `catalogue validate` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pyshacl
import pytest
from rdflib import RDF, RDFS, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import SH, SKOS
from rdflib.term import Node
from typer.testing import CliRunner

from catalogue.cli import app
from catalogue.dcat.access_levels import ACCESS_RIGHT, AccessLevel, access_level
from catalogue.dcat.namespaces import CV, DCATAP, DCTERMS, FOAF, HEALTHDCATAP, VCARD
from catalogue.dcat.validation import (
    DCAT_AP_FILES,
    Severity,
    ShapeSet,
    ValidationReport,
    ValidationResult,
    dcat_ap_shapes,
    health_shapes,
    validate,
    validate_with,
)
from tests.corpus import CORPUS
from tests.unit.dcat_corpus import DCAT, XSD

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "dcat"
SEMIC = CORPUS / "semic-dcat-ap-shacl-tests"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")

DASH = Namespace("http://datashapes.org/dash#")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
EX = Namespace("https://example.org/")
HD8 = Namespace("https://w3id.org/cancer-imaging-catalogue/shapes/healthdcat-ap-r8#")
DCAT_AP_SHAPES = "https://semiceu.github.io/DCAT-AP/releases/3.0.0/html/shacl/shapes.ttl#"


# --- helpers -------------------------------------------------------------------------------------


def _violations_at(report: ValidationReport, focus: Node, path: URIRef) -> list[ValidationResult]:
    return [r for r in report.violations if r.focus_node == focus and r.path == str(path)]


def _complete(level: AccessLevel) -> Graph:
    """A dataset with every property HealthDCAT-AP r8 makes mandatory at any level, written
    from the release-8 property table, independently of the shapes under test."""
    g = Graph()
    ds, dist, hdab, hdab_contact, contact = EX.ds, EX.dist, EX.hdab, EX.hdabContact, EX.contact
    ehds = URIRef("http://data.europa.eu/eli/reg/2025/327/oj")
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.title, Literal("Lung CT cohort", lang="en")))
    g.add((ds, DCTERMS.description, Literal("Chest CT of lung cancer patients.", lang="en")))
    g.add((ds, DCTERMS.identifier, Literal("lung-ct-1")))
    g.add((ds, DCTERMS.accessRights, ACCESS_RIGHT[level.name]))
    g.add((ds, DCATAP.applicableLegislation, ehds))
    g.add(
        (ds, DCAT.theme, URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL"))
    )
    g.add((ds, HEALTHDCATAP.healthCategory, EX.imagingCategory))
    g.add((ds, HEALTHDCATAP.hdab, hdab))
    g.add((ds, HEALTHDCATAP.hasStructuredData, Literal(False)))
    g.add((ds, DCAT.distribution, dist))
    g.add((ds, DCAT.contactPoint, contact))
    g.add((ds, DCAT.keyword, Literal("lung cancer", lang="en")))
    g.add((ds, DCTERMS.type, EX.statistical))
    provenance = BNode()
    g.add((ds, DCTERMS.provenance, provenance))
    g.add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCAT.accessURL, EX.access))
    g.add((dist, DCATAP.applicableLegislation, ehds))
    g.add((hdab, RDF.type, FOAF.Agent))
    g.add((hdab, FOAF.name, Literal("Health data access body")))
    g.add((hdab, CV.contactPoint, hdab_contact))
    g.add((hdab_contact, RDF.type, CV.ContactPoint))
    g.add((hdab_contact, CV.email, Literal("hdab@example.org")))
    g.add((contact, RDF.type, VCARD.Kind))
    g.add((contact, VCARD.hasEmail, URIRef("mailto:data@example.org")))
    return g


DCAT_AP_MANDATORY = (DCTERMS.title, DCTERMS.description)
"""DCAT-AP 3.0.1 Dataset: the two mandatory properties (specification, section Dataset)."""
HEALTH_MANDATORY = (
    DCTERMS.accessRights,
    DCATAP.applicableLegislation,
    DCAT.distribution,
    DCTERMS.identifier,
    DCAT.theme,
    HEALTHDCATAP.healthCategory,
    HEALTHDCATAP.hdab,
    HEALTHDCATAP.hasStructuredData,
)
"""HealthDCAT-AP r8 Dataset, 'Mandatory' at every access level in the release-8 property table."""
NON_PUBLIC_MANDATORY = (DCAT.contactPoint, DCAT.keyword, DCTERMS.type, DCTERMS.provenance)
"""Mandatory only for NON_PUBLIC datasets (Recommended or Optional at the other levels)."""


def _without(graph: Graph, subject: Node, predicate: URIRef) -> Graph:
    out = Graph()
    for triple in graph:
        if triple[0] != subject or triple[1] != predicate:
            out.add(triple)
    return out


# --- (a) the machinery reproduces SEMIC's expected reports with the legacy shapes ----------------


def _expected(test_file: Path) -> Counter[tuple[Node, str, str, str]]:
    """(focus node, path, severity, constraint component) of each result the test case expects."""
    graph = Graph().parse(test_file)
    keys: Counter[tuple[Node, str, str, str]] = Counter()
    for report in graph.objects(None, DASH.expectedResult):
        for result in graph.objects(report, SH.result):
            focus = graph.value(result, SH.focusNode)
            assert focus is not None
            path = str(graph.value(result, SH.resultPath))
            severity = str(graph.value(result, SH.resultSeverity)).rsplit("#", 1)[-1]
            component = str(graph.value(result, SH.sourceConstraintComponent)).rsplit("#", 1)[-1]
            keys[(focus, path, severity, component)] += 1
    return keys


@pytest.fixture(scope="module")
def legacy_shapes() -> ShapeSet:
    """SEMIC's legacy DCAT-AP 1.x shapes, which the expected reports were made with.

    The test inputs owl:import the shapes and, through them, the DCAT, FOAF, DCT, vCard, ADMS and
    SKOS vocabularies; TopBraid thereby knew that dcat:Catalog and the like are classes, which is
    what makes a shape named dcat:Catalog target its instances (implicit class targets). We state
    those class declarations instead of importing the vocabularies."""
    graph = Graph().parse(SEMIC / "dcat-ap.shapes.ttl")
    for shape in list(graph.subjects(RDF.type, SH.NodeShape)):
        if isinstance(shape, URIRef) and not shape.startswith("http://data.europa.eu/r5r"):
            graph.add((shape, RDF.type, RDFS.Class))
    return ShapeSet("SEMIC legacy DCAT-AP", graph)


@needs_corpus
@pytest.mark.parametrize(
    "case", ["catalogue", "catalogue-1", "datatype-disjunction", "dcat-random"]
)
def test_semic_expected_reports_are_reproduced(legacy_shapes: ShapeSet, case: str) -> None:
    data = Graph().parse(SEMIC / f"{case}.ttl")
    # the imported 2014 DCAT vocabulary makes these Distribution subclasses (dcat-random uses them)
    for kind in ("Download", "Feed", "WebService"):
        data.add((DCAT[kind], RDFS.subClassOf, DCAT.Distribution))
    expected = _expected(SEMIC / f"{case}.test.ttl")
    assert expected, "the expected report lists results"

    report = validate_with(data, legacy_shapes, strict=True)

    got = Counter(
        (r.focus_node, r.path or "", str(r.severity), r.component) for r in report.results
    )
    assert got == expected
    assert not report.conforms


# --- the shapes shipped, and the compiled-shapes cache -------------------------------------------


@needs_corpus
def test_dcat_ap_shapes_are_byte_identical_copies() -> None:
    folder = resources.files("catalogue.dcat.shapes")
    for shipped, origin in zip(
        DCAT_AP_FILES,
        ("shacl_shapes.ttl", "shacl_range.ttl", "shacl_shapes_recommended.ttl"),
        strict=True,
    ):
        ours = hashlib.sha256(folder.joinpath(shipped).read_bytes()).hexdigest()
        theirs = hashlib.sha256((CORPUS / "dcat-ap-3.0.1" / origin).read_bytes()).hexdigest()
        assert ours == theirs, shipped


@pytest.mark.parametrize("level", list(AccessLevel))
def test_every_referenced_node_shape_is_defined(level: AccessLevel) -> None:
    shapes = health_shapes(level).graph
    referenced = set(shapes.objects(None, SH.node))
    assert referenced, "the health shapes nest shapes with sh:node"
    for shape in referenced:
        assert (shape, SH.property, None) in shapes, f"{shape} is referenced but not defined"


def _keys(
    results: list[ValidationResult] | tuple[ValidationResult, ...],
) -> Counter[tuple[str, ...]]:
    return Counter((str(r.focus_node), r.path or "", r.severity, r.component) for r in results)


def test_compiled_shapes_give_what_a_fresh_pyshacl_run_gives() -> None:
    shapes = dcat_ap_shapes()
    for file in ("xnat_integration_test.ttl", "example_consus_ckan.ttl", "valid_project.ttl"):
        data = Graph().parse(DATA / file)
        _, fresh_graph, _ = pyshacl.validate(data, shacl_graph=shapes.graph, inference="none")
        assert isinstance(fresh_graph, Graph)
        fresh = Counter(
            (
                str(fresh_graph.value(r, SH.focusNode)),
                str(fresh_graph.value(r, SH.resultPath) or ""),
                str(fresh_graph.value(r, SH.resultSeverity)).rsplit("#", 1)[-1],
                str(fresh_graph.value(r, SH.sourceConstraintComponent)).rsplit("#", 1)[-1],
            )
            for r in fresh_graph.objects(None, SH.result)
            if not isinstance(fresh_graph.value(r, SH.resultPath), BNode)
        )
        cached = _keys([r for r in shapes.results(data) if r.path is None or "(" not in r.path])
        assert sum(fresh.values()) > 0
        assert cached == fresh, file


# --- access levels -------------------------------------------------------------------------------


def test_access_level_is_read_from_access_rights() -> None:
    g = Graph()
    g.add((EX.pub, DCTERMS.accessRights, ACCESS_RIGHT.PUBLIC))
    g.add((EX.res, DCTERMS.accessRights, ACCESS_RIGHT.RESTRICTED))
    g.add((EX.both, DCTERMS.accessRights, ACCESS_RIGHT.PUBLIC))
    g.add((EX.both, DCTERMS.accessRights, ACCESS_RIGHT.RESTRICTED))
    g.add((EX.other, DCTERMS.accessRights, URIRef("http://example.org/rights/open")))
    assert access_level(g, EX.pub) is AccessLevel.PUBLIC
    assert access_level(g, EX.res) is AccessLevel.RESTRICTED
    assert access_level(g, EX.both) is AccessLevel.RESTRICTED  # the strictest stated
    assert access_level(g, EX.other) is AccessLevel.NON_PUBLIC  # unknown: presumed sensitive
    assert access_level(g, EX.none) is AccessLevel.NON_PUBLIC


# --- (b) DCAT-AP 3 and HealthDCAT-AP r8 per level, on datasets built here -------------------------


@pytest.mark.parametrize("level", list(AccessLevel))
def test_complete_dataset_conforms_at_its_level(level: AccessLevel) -> None:
    report = validate(_complete(level))
    assert report.conforms, report.text()
    assert report.levels == {EX.ds: level}
    assert "conforms" in report.text()


@pytest.mark.parametrize("level", list(AccessLevel))
@pytest.mark.parametrize("prop", DCAT_AP_MANDATORY + HEALTH_MANDATORY, ids=lambda p: str(p))
def test_each_mandatory_property_is_a_violation_when_missing(
    level: AccessLevel, prop: URIRef
) -> None:
    report = validate(_without(_complete(level), EX.ds, prop), level)
    found = _violations_at(report, EX.ds, prop)
    assert found, report.text()
    assert "MinCountConstraintComponent" in {r.component for r in found}
    shapes = {r.shape or "" for r in found}
    if prop in DCAT_AP_MANDATORY:
        assert shapes == {f"{DCAT_AP_SHAPES}Dataset_Shape"}
    else:
        assert all(shape.startswith(str(HD8)) for shape in shapes), shapes
    others = {r.path for r in report.violations} - {str(prop)}
    assert not others, f"only {prop} should be missing: {others}"


@pytest.mark.parametrize("prop", NON_PUBLIC_MANDATORY, ids=lambda p: str(p))
def test_non_public_extras_are_violations_only_for_non_public(prop: URIRef) -> None:
    for level in AccessLevel:
        report = validate(_without(_complete(level), EX.ds, prop))
        missing = _violations_at(report, EX.ds, prop)
        if level is AccessLevel.NON_PUBLIC:
            assert missing, report.text()
        else:
            assert not missing and report.conforms, report.text()


def test_access_rights_must_match_the_level_asked_for() -> None:
    report = validate(_complete(AccessLevel.PUBLIC), AccessLevel.RESTRICTED)
    found = _violations_at(report, EX.ds, DCTERMS.accessRights)
    assert [r.component for r in found] == ["HasValueConstraintComponent"]
    assert report.levels == {EX.ds: AccessLevel.RESTRICTED}


def test_missing_access_rights_is_checked_as_non_public() -> None:
    graph = _without(_complete(AccessLevel.PUBLIC), EX.ds, DCTERMS.accessRights)
    graph.remove((EX.ds, DCAT.keyword, None))
    report = validate(graph)
    assert report.levels == {EX.ds: AccessLevel.NON_PUBLIC}
    assert _violations_at(report, EX.ds, DCTERMS.accessRights)
    assert _violations_at(report, EX.ds, DCAT.keyword)


def test_nested_resources_are_checked() -> None:
    graph = _complete(AccessLevel.PUBLIC)
    graph.remove((EX.dist, DCATAP.applicableLegislation, None))
    graph.remove((EX.hdabContact, CV.email, None))
    report = validate(graph)
    (distribution,) = _violations_at(report, EX.ds, DCAT.distribution)
    assert [(d.focus_node, d.path) for d in distribution.details] == [
        (EX.dist, str(DCATAP.applicableLegislation))
    ]
    hdab = _violations_at(report, EX.ds, HEALTHDCATAP.hdab)
    assert hdab and hdab[0].details[0].focus_node == EX.hdab
    assert hdab[0].details[0].details[0].path == f"(<{CV.email}>|<{CV.contactPage}>)"
    text = report.text()
    assert "dcatap:applicableLegislation" in text and "(cv:email|cv:contactPage)" in text


def test_structured_data_needs_variables() -> None:
    graph = _complete(AccessLevel.PUBLIC)
    graph.set((EX.ds, HEALTHDCATAP.hasStructuredData, Literal(True)))
    report = validate(graph)
    found = [r for r in report.violations if r.focus_node == EX.ds and r.path is None]
    assert [r.component for r in found] == ["OrConstraintComponent"]
    assert "hasVariables" in found[0].message


def test_typical_ages_and_counts() -> None:
    graph = _complete(AccessLevel.PUBLIC)
    nni = XSD.nonNegativeInteger
    graph.add((EX.ds, HEALTHDCATAP.minTypicalAge, Literal(70, datatype=nni)))
    graph.add((EX.ds, HEALTHDCATAP.maxTypicalAge, Literal(40, datatype=nni)))
    graph.add((EX.ds, HEALTHDCATAP.numberOfRecords, Literal("12")))  # a plain string
    report = validate(graph)
    assert [r.component for r in _violations_at(report, EX.ds, HEALTHDCATAP.minTypicalAge)] == [
        "LessThanOrEqualsConstraintComponent"
    ]
    assert [r.component for r in _violations_at(report, EX.ds, HEALTHDCATAP.numberOfRecords)] == [
        "DatatypeConstraintComponent"
    ]


def test_datasets_of_different_levels_in_one_graph() -> None:
    public = _complete(AccessLevel.PUBLIC)
    public.remove((EX.ds, DCAT.keyword, None))
    non_public = Graph()
    for s, p, o in _complete(AccessLevel.NON_PUBLIC):
        non_public.add((EX.ds2 if s == EX.ds else s, p, EX.ds2 if o == EX.ds else o))
    non_public.remove((EX.ds2, DCAT.keyword, None))
    report = validate(public + non_public)
    assert report.levels == {EX.ds: AccessLevel.PUBLIC, EX.ds2: AccessLevel.NON_PUBLIC}
    assert not _violations_at(report, EX.ds, DCAT.keyword)
    assert [
        r.severity for r in report.results if r.focus_node == EX.ds and r.path == str(DCAT.keyword)
    ]
    assert _violations_at(report, EX.ds2, DCAT.keyword)
    assert {r.path for r in report.violations} == {str(DCAT.keyword)}


def test_untyped_references_are_warnings_unless_strict() -> None:
    graph = _complete(AccessLevel.PUBLIC)
    untyped = {
        (s, p, o)
        for s, p, o in graph
        if p in (DCAT.theme, DCTERMS.type, DCTERMS.accessRights, DCATAP.applicableLegislation)
        and (o, RDF.type, None) not in graph
    }
    strict = validate(graph, strict=True)
    assert {(r.focus_node, URIRef(r.path or ""), r.value) for r in strict.violations} == untyped
    assert all(r.component == "ClassConstraintComponent" for r in strict.violations)
    lenient = validate(graph)
    lowered = {
        (r.focus_node, URIRef(r.path or ""), r.value) for r in lenient.results if r.downgraded
    }
    assert lowered == untyped and lenient.conforms

    graph.add((URIRef("http://data.europa.eu/eli/reg/2025/327/oj"), RDF.type, ELI.LegalResource))
    graph.add((ACCESS_RIGHT.PUBLIC, RDF.type, DCTERMS.RightsStatement))
    theme = URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL")
    graph.add((theme, RDF.type, SKOS.Concept))
    graph.add((EX.statistical, RDF.type, SKOS.Concept))
    for concept in (theme, EX.statistical):  # a concept the data describes needs its label
        graph.add((concept, SKOS.prefLabel, Literal("a concept", lang="en")))
    assert validate(graph, strict=True).conforms

    graph.set((theme, RDF.type, FOAF.Document))  # typed, but as something else: a violation
    assert _violations_at(validate(graph), EX.ds, DCAT.theme)


def test_an_agent_only_referred_to_is_a_warning_unless_strict() -> None:
    graph = _complete(AccessLevel.PUBLIC)
    for triple in list(graph.triples((EX.hdab, None, None))):
        graph.remove(triple)  # the access body is described elsewhere (its own record)
    assert not _violations_at(validate(graph), EX.ds, HEALTHDCATAP.hdab)
    lowered = [r for r in validate(graph).results if r.path == str(HEALTHDCATAP.hdab)]
    assert [(r.severity, r.downgraded) for r in lowered] == [(Severity.WARNING, True)]
    assert _violations_at(validate(graph, strict=True), EX.ds, HEALTHDCATAP.hdab)


def test_a_graph_without_datasets_does_not_conform() -> None:
    graph = Graph()
    graph.add((EX.agent, RDF.type, FOAF.Agent))
    graph.add((EX.agent, FOAF.name, Literal("Nobody")))
    report = validate(graph)
    assert not report.conforms and report.levels == {}
    assert [r.focus_node for r in report.violations] == [DCAT.Dataset]


@needs_corpus
def test_release_5_mandatory_properties_are_still_mandatory_for_non_public() -> None:
    """Every property the official r5 NON_PUBLIC shapes make mandatory on a Dataset is one our
    r8 non-public shapes reject when it is missing (r8 only added to that list)."""
    r5 = Graph().parse(CORPUS / "healthdcat-ap" / "healthdcatap-release5-nonpublic-shapes.ttl")
    rows = r5.query(
        """SELECT DISTINCT ?path WHERE {
             ?shape sh:targetClass dcat:Dataset ; sh:property ?p .
             ?p sh:path ?path ; sh:minCount ?min . FILTER(?min >= 1) }""",
        initNs={"sh": SH, "dcat": DCAT},
    )
    paths = [row[0] for row in rows]  # type: ignore[index]
    assert len(paths) >= 10
    for path in paths:
        assert isinstance(path, URIRef)
        report = validate(_without(_complete(AccessLevel.NON_PUBLIC), EX.ds, path))
        assert _violations_at(report, EX.ds, path), path


# --- (c) real catalogue files, checked against SPARQL over the raw file --------------------------


def _real_files() -> Iterator[Path]:
    yield from (DATA / n for n in ("valid_project.ttl", "xnat_integration_test.ttl"))
    yield DATA / "example_consus_ckan.ttl"
    corpus = (
        "ckanext-dcat/healthdcat/dataset_health.ttl",
        "ckanext-dcat/healthdcat/dataset_health_no_blank.ttl",
        "ckanext-dcat/healthdcat/dataset_health_multilingual.ttl",
        "ckanext-dcat/dcat/catalog.rdf",
        "ckanext-dcat/dcat/dataset_sweden.rdf",
        "img2catalog-healthri/minimal_catalog_dataset.ttl",
        "img2catalog-healthri/no_keyword.ttl",
        "img2catalog-healthri/fdp_dataset.ttl",
        "fdp-gdi-ckanext/dataset_cbioportal.ttl",
        "healthdcat-ap/mvd-health-demo/health-catalog.ttl",
    )
    yield from (CORPUS / name for name in corpus)


REAL = [
    pytest.param(p, id=p.name, marks=[] if DATA in p.parents else [needs_corpus])
    for p in _real_files()
]

_LACKING = """
SELECT DISTINCT ?d WHERE {{ ?d a dcat:Dataset . {filter} FILTER NOT EXISTS {{ ?d {prop} ?v }} }}
"""
_NON_PUBLIC = """FILTER NOT EXISTS { ?d dct:accessRights ?r
    FILTER(?r IN (access:PUBLIC, access:RESTRICTED)) }"""
_NS = {"dcat": DCAT, "dct": DCTERMS, "healthdcatap": HEALTHDCATAP, "access": ACCESS_RIGHT}


def _sparql_nodes(graph: Graph, query: str) -> set[Node]:
    return {row[0] for row in graph.query(query, initNs=_NS)}  # type: ignore[index]


@pytest.mark.parametrize("path", REAL)
def test_real_files_violations_match_sparql(path: Path) -> None:
    raw = Graph().parse(path)
    datasets = set(raw.subjects(RDF.type, DCAT.Dataset))
    assert datasets
    report = validate(raw)

    def failing(prop: URIRef, severity: Severity = Severity.VIOLATION) -> set[Node]:
        return {
            r.focus_node
            for r in report.results
            if r.focus_node in datasets
            and r.path == str(prop)
            and r.severity is severity
            and r.component == "MinCountConstraintComponent"
        }

    checks = [
        (DCTERMS.description, "", "dct:description"),
        (HEALTHDCATAP.healthCategory, "", "healthdcatap:healthCategory"),
        (HEALTHDCATAP.hdab, "", "healthdcatap:hdab"),
        (DCAT.keyword, _NON_PUBLIC, "dcat:keyword"),
        (DCTERMS.provenance, _NON_PUBLIC, "dct:provenance"),
    ]
    for prop, scope, name in checks:
        expected = _sparql_nodes(raw, _LACKING.format(filter=scope, prop=name))
        assert failing(prop) == expected, name

    # strictly, each value of dcat:theme not typed skos:Concept is a class-range violation;
    # by default the untyped ones are warnings
    themes = raw.query(
        """SELECT ?d ?t ?typed WHERE { ?d a dcat:Dataset ; dcat:theme ?t
             FILTER(!isLiteral(?t)) FILTER NOT EXISTS { ?t a skos:Concept }
             BIND(EXISTS { ?t a ?any } AS ?typed) }""",
        initNs={"dcat": DCAT, "skos": SKOS},
    )
    pairs = {(row[0], row[1]): bool(row[2]) for row in themes}  # type: ignore[index]
    strict = validate(raw, strict=True)

    def ranges(rep: ValidationReport, severity: Severity) -> set[tuple[Node, Node | None]]:
        return {
            (r.focus_node, r.value)
            for r in rep.results
            if r.focus_node in datasets
            and r.path == str(DCAT.theme)
            and r.component == "ClassConstraintComponent"
            and r.severity is severity
        }

    assert ranges(strict, Severity.VIOLATION) == set(pairs)
    assert ranges(report, Severity.VIOLATION) == {k for k, typed in pairs.items() if typed}
    assert ranges(report, Severity.WARNING) == {k for k, typed in pairs.items() if not typed}


@needs_corpus
def test_real_files_have_something_to_find() -> None:
    """The SPARQL checks above are not vacuous (no file here lacks a description, though)."""
    lacking: Counter[str] = Counter()
    for path in _real_files():
        raw = Graph().parse(path)
        for name in ("dcat:keyword", "healthdcatap:healthCategory", "healthdcatap:hdab"):
            lacking[name] += len(_sparql_nodes(raw, _LACKING.format(filter="", prop=name)))
        untyped_themes = "SELECT ?t WHERE { ?d dcat:theme ?t FILTER NOT EXISTS { ?t a ?c } }"
        lacking["a type on a theme"] += len(_sparql_nodes(raw, untyped_themes))
    assert min(lacking.values()) > 0, lacking


# --- (d) the command -----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.ttl"
    _complete(AccessLevel.NON_PUBLIC).serialize(good, format="turtle")
    bad = tmp_path / "bad.ttl"
    _without(_complete(AccessLevel.NON_PUBLIC), EX.ds, DCTERMS.title).serialize(
        bad, format="turtle"
    )
    jsonld = tmp_path / "good.jsonld"
    _complete(AccessLevel.PUBLIC).serialize(jsonld, format="json-ld")
    return {"good": good, "bad": bad, "jsonld": jsonld}


def test_cli_exit_codes_and_report(files: dict[str, Path]) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(files["good"])])
    assert ok.exit_code == 0, ok.output
    assert "conforms (0 violations" in ok.stdout

    bad = runner.invoke(app, ["validate", str(files["bad"])])
    assert bad.exit_code == 1
    assert "<https://example.org/ds>" in bad.stdout and "dct:title" in bad.stdout

    jsonld = runner.invoke(app, ["validate", str(files["jsonld"]), "--level", "non-public"])
    assert jsonld.exit_code == 1
    assert "dct:accessRights" in jsonld.stdout and "non-public" in jsonld.stdout

    missing = runner.invoke(app, ["validate", str(files["good"].with_name("absent.ttl"))])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert missing.stdout == ""


def test_cli_entry_point_on_a_malformed_file(files: dict[str, Path]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "from catalogue.cli import main; main()"
        return subprocess.run(
            [sys.executable, "-c", code, "validate", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )

    truncated = run("tests/data/dcat/truncated_piveau_catalog.ttl")
    assert truncated.returncode == 2
    assert "not valid turtle" in truncated.stderr and truncated.stdout == ""
    assert len(truncated.stderr.strip().splitlines()) == 1
    assert run(str(files["bad"])).returncode == 1
