"""Drift normalisation: real examples rewritten into known drifted forms come back to their
original form (as normalising the original gives it), with each change recorded once; real
drift found in the corpus is fixed as the raw file says; normalising twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL
from rdflib.term import Node

from catalogue.dcat.drift import Normalisation, NormalisationKind, has_drift, normalise
from catalogue.dcat.namespaces import DCTERMS, FOAF, RDF
from catalogue.dcat.namespaces import HEALTHDCATAP as HEALTH
from catalogue.dcat.parser import dataset_nodes
from catalogue.dcat.profiles import Text, TypedLiteral, parse
from catalogue.dcat.terms import ToOxigraph
from tests.unit.dcat_corpus import (
    DCAT,
    REPO_DCAT,
    XSD,
    corpus_files,
    corpus_id,
    corpus_path,
    read_example,
    read_or_skip,
    select,
)

SCHEMA = Namespace("http://schema.org/")

HEALTH_EXAMPLE = "ckanext-dcat/healthdcat/dataset_health.ttl"
HEALTH_CATALOGUE = "healthdcat-ap/mvd-health-demo/health-catalog.ttl"

Triple = tuple[Node, Node, Node]


def rewritten(
    graph: Graph, change: Callable[[Triple], Triple | None]
) -> tuple[Graph, list[Triple]]:
    """A copy of `graph` with `change` applied to each triple (None: unchanged), and the new
    triples that differ from the old ones."""
    out = Graph()
    changed = []
    for triple in graph:
        new = change(triple)
        if new is None or new == triple:
            out.add(triple)
        else:
            out.add(new)
            changed.append(new)
    return out, changed


def new_changes(variant: Graph, original: Graph) -> tuple[Graph, list[Normalisation], Graph]:
    """Normalise both; return the variant's result, the changes the original did not need,
    and the original's result."""
    fixed, changes = normalise(variant)
    baseline, baseline_changes = normalise(original)
    assert len(changes) == len(set(changes)), "a change is recorded once"
    assert_guarded(variant, changes)
    assert_guarded(original, baseline_changes)
    return fixed, [c for c in changes if c not in set(baseline_changes)], baseline


def assert_guarded(graph: Graph, changes: list[Normalisation]) -> None:
    """The harvest's fast path skips `normalise` only where it would change nothing."""
    if changes:
        assert has_drift(ToOxigraph().triples(graph)), changes[:3]


# --- rewritten real examples -------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "canonical", "variant"),
    [
        (HEALTH_EXAMPLE, str(HEALTH), "https://healthdataportal.eu/ns/health#"),
        (HEALTH_CATALOGUE, str(HEALTH), "http://healthdataportal.eu/ns/health/"),
        (HEALTH_EXAMPLE, str(DCAT), "https://www.w3.org/ns/dcat#"),
        ("dcat-ap-2.1.1/example1.nt", str(DCAT), "http://www.w3.org/ns/dcat/"),
        ("dcat-ap-2.1.1/example1.nt", str(DCTERMS), "https://purl.org/dc/terms/"),
        ("dcat-ap-2.1.1/example1.nt", str(FOAF), "https://xmlns.com/foaf/0.1/"),
        (HEALTH_EXAMPLE, "http://www.w3.org/2006/vcard/ns#", "https://www.w3.org/2006/vcard/ns#"),
    ],
)
def test_namespace_variants_come_back(relative: str, canonical: str, variant: str) -> None:
    original = read_example(corpus_path(relative))

    def swap(term: Node) -> Node:
        if isinstance(term, URIRef) and str(term).startswith(canonical):
            return URIRef(variant + str(term)[len(canonical) :])
        return term

    def unswap(term: Node) -> Node:
        if isinstance(term, URIRef) and str(term).startswith(variant):
            return URIRef(canonical + str(term)[len(variant) :])
        return term

    drifted, changed = rewritten(original, lambda t: (t[0], swap(t[1]), swap(t[2])))
    assert changed, "the example uses the namespace"
    fixed, changes, baseline = new_changes(drifted, original)

    assert set(fixed) == set(baseline)
    assert {c.kind for c in changes} == {NormalisationKind.NAMESPACE}
    # ground truth from the drifted graph: each (subject, drifted predicate) once, and each
    # (subject, predicate, drifted object) once
    rows = select(
        drifted,
        "SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o"
        " FILTER(STRSTARTS(STR(?p), ?v) || (isIRI(?o) && STRSTARTS(STR(?o), ?v))) }",
        v=Literal(variant),
    )
    expected: set[tuple[str, str | None, str]] = set()
    for s, p, o in rows:
        if p != unswap(p):
            expected.add((s.n3(), None, p.n3()))
        if o != unswap(o):
            expected.add((s.n3(), unswap(p).n3(), o.n3()))
    assert {(c.subject, c.predicate, c.before) for c in changes} == expected
    assert len(changes) == len(expected)
    for change in changes:
        assert change.after == unswap(URIRef(change.before[1:-1])).n3()


@pytest.mark.parametrize("relative", [HEALTH_EXAMPLE, HEALTH_CATALOGUE])
def test_other_names_of_health_properties_come_back(relative: str) -> None:
    original = read_example(corpus_path(relative))
    other_names: dict[Node, URIRef] = {
        HEALTH.minTypicalAge: HEALTH.minimumTypicalAge,
        HEALTH.maxTypicalAge: HEALTH.maximumTypicalAge,
        HEALTH.numberOfRecords: HEALTH.numberofrecords,
        HEALTH.trustedDataHolder: HEALTH.trusteddataholder,
    }
    drifted, changed = rewritten(
        original, lambda t: (t[0], other_names[t[1]], t[2]) if t[1] in other_names else None
    )
    fixed, changes, baseline = new_changes(drifted, original)

    assert set(fixed) == set(baseline)
    assert {c.kind for c in changes} == {NormalisationKind.TERM}
    assert {(c.subject, c.before) for c in changes} == {(s.n3(), p.n3()) for s, p, _ in changed}
    for node in dataset_nodes(original):
        ages = [int(str(v)) for v in original.objects(node, HEALTH.minTypicalAge)]
        assert parse(fixed, node).min_typical_age == (ages[0] if ages else None)


@pytest.mark.parametrize("relative", [HEALTH_EXAMPLE, HEALTH_CATALOGUE])
def test_literals_where_iris_belong_come_back(relative: str) -> None:
    original = read_example(corpus_path(relative))
    as_literal: dict[Node, Callable[[str], Literal]] = {
        DCTERMS.license: lambda iri: Literal(iri, datatype=XSD.anyURI),
        DCAT.landingPage: lambda iri: Literal(iri),
        DCAT.accessURL: lambda iri: Literal(iri, datatype=XSD.string),
        DCAT.theme: lambda iri: Literal(iri),
        FOAF.mbox: lambda iri: Literal(iri.removeprefix("mailto:")),
    }

    def to_literal(triple: Triple) -> Triple | None:
        s, p, o = triple
        if p in as_literal and isinstance(o, URIRef):
            return (s, p, as_literal[p](str(o)))
        return None

    drifted, changed = rewritten(original, to_literal)
    assert {p for _, p, _ in changed} >= {DCTERMS.license, DCAT.accessURL, DCAT.theme}
    fixed, changes, baseline = new_changes(drifted, original)

    assert set(fixed) == set(baseline)
    assert {c.kind for c in changes} == {NormalisationKind.LITERAL_IRI}
    assert sorted((c.subject, c.predicate, c.before) for c in changes) == sorted(
        (s.n3(), p.n3(), o.n3()) for s, p, o in changed
    )


def test_dcat_ap_2_forms_come_back() -> None:
    """DCAT-AP 3 examples written the DCAT-AP 2 way (SEMIC's deprecated URIs)."""
    health = read_example(corpus_path(HEALTH_EXAMPLE))
    catalogue = read_example(corpus_path(HEALTH_CATALOGUE))
    for original in (health, catalogue):
        periods = set(original.objects(None, DCTERMS.temporal))
        datasets = set(original.subjects(RDF.type, DCAT.Dataset))

        def downgrade(triple: Triple) -> Triple | None:
            s, p, o = triple
            if p == DCAT.version and s in datasets:  # noqa: B023
                return (s, OWL.versionInfo, o)
            if p == DCAT.hasVersion:
                return (s, DCTERMS.hasVersion, o)
            if p in (DCAT.startDate, DCAT.endDate) and s in periods:  # noqa: B023
                return (s, SCHEMA[str(p).rsplit("#", 1)[1]], o)
            return None

        drifted, changed = rewritten(original, downgrade)
        assert changed
        fixed, changes, baseline = new_changes(drifted, original)
        assert set(fixed) == set(baseline)
        assert {c.kind for c in changes} == {NormalisationKind.DCAT_AP_2}
        assert {(c.subject, c.before) for c in changes} == {(s.n3(), p.n3()) for s, p, _ in changed}


def test_the_dcat_ap_2_1_1_example_needs_nothing() -> None:
    original = read_example(corpus_path("dcat-ap-2.1.1/example1.nt"))
    fixed, changes = normalise(original)
    assert changes == []
    assert set(fixed) == set(original)
    (node,) = dataset_nodes(fixed)
    titles = [t for t in original.objects(node, DCTERMS.title) if isinstance(t, Literal)]
    assert titles
    assert parse(fixed, node).title == [Text(value=str(t), lang=t.language) for t in titles]


# --- real drift in the corpus ------------------------------------------------------------


def test_decimal_byte_sizes_of_the_health_catalogue() -> None:
    raw = read_example(corpus_path(HEALTH_CATALOGUE))
    decimals = {
        (s, int(str(o)))
        for s, o in raw.subject_objects(DCAT.byteSize)
        if isinstance(o, Literal) and o.datatype == XSD.decimal
    }
    assert decimals
    fixed, changes = normalise(raw)
    sizes = [c for c in changes if c.predicate == DCAT.byteSize.n3()]
    assert {c.subject for c in sizes} == {s.n3() for s, _ in decimals}
    assert {c.kind for c in sizes} == {NormalisationKind.DATATYPE}
    by_node: dict[str, int] = {}
    for node in dataset_nodes(fixed):
        model = parse(fixed, node)
        for distribution in [*model.distribution, *model.sample, *model.analytics]:
            if isinstance(distribution, str) or distribution.byte_size is None:
                continue
            by_node[str(distribution.iri)] = distribution.byte_size
    described = {(str(s), n) for s, n in decimals if str(s) in by_node}
    assert described and set(by_node.items()) >= described


def test_adms_status_codes_become_distribution_status() -> None:
    raw = read_example(corpus_path("ckanext-dcat/dcat/dataset_gov_de.rdf"))
    adms = Namespace("http://www.w3.org/ns/adms#")
    old = "http://purl.org/adms/status/"
    # the ADMS status codes and their DCAT-AP 3 replacements (EU distribution-status table)
    table = {
        "Completed": "COMPLETED",
        "Deprecated": "DEPRECATED",
        "Withdrawn": "WITHDRAWN",
        "UnderDevelopment": "DEVELOP",
    }
    before = {(s, str(o)) for s, o in raw.subject_objects(adms.status) if str(o).startswith(old)}
    assert before
    fixed, changes = normalise(raw)
    new = "http://publications.europa.eu/resource/authority/distribution-status/"
    assert {(s, str(o)) for s, o in fixed.subject_objects(adms.status)} == {
        (s, new + table[code.removeprefix(old)]) for s, code in before
    }
    status = [c for c in changes if c.kind is NormalisationKind.DCAT_AP_2]
    assert len(status) == len(before)


def test_period_dates_and_versions_of_older_catalogues() -> None:
    sweden = read_example(corpus_path("ckanext-dcat/dcat/dataset_sweden.rdf"))
    starts = set(sweden.subject_objects(SCHEMA.startDate))
    assert starts
    fixed, _ = normalise(sweden)
    assert set(fixed.subject_objects(DCAT.startDate)) >= starts
    assert not set(fixed.subject_objects(SCHEMA.startDate))

    fdp = read_example(
        corpus_path("fdp-gdi-ckanext/dataset_898ca4b8-197b-4d40-bc81-d9cd88197670.ttl")
    )
    (node,) = dataset_nodes(fdp)
    (version,) = fdp.objects(node, DCTERMS.hasVersion)
    fixed, changes = normalise(fdp)
    assert parse(fixed, node).version == Text(value=str(version))
    assert [(c.kind, c.before, c.after) for c in changes if c.subject == node.n3()] == [
        (NormalisationKind.DCAT_AP_2, DCTERMS.hasVersion.n3(), DCAT.version.n3())
    ]


def test_a_project_open_data_catalogue() -> None:
    """ckanext-dcat's POD example: a 'dct:#' namespace, URLs and e-mails as strings, and a
    CURIE datatype."""
    raw = read_example(corpus_path("ckanext-dcat/dcat/catalog_pod.jsonld"))
    odd = Namespace("http://purl.org/dc/terms/#")
    (node,) = dataset_nodes(raw)
    (licence,) = raw.objects(node, odd.license)
    (landing,) = raw.objects(node, DCAT.landingPage)
    assert isinstance(landing, Literal)
    fixed, changes = normalise(raw)
    model = parse(fixed, node)
    assert model.license == str(licence)
    assert model.landing_page == [str(landing)]
    assert len(model.distribution) == len(set(raw.objects(node, DCAT.distribution)))
    downloads = {
        str(o)
        for d in raw.objects(node, DCAT.distribution)
        for o in raw.objects(d, DCAT.downloadURL)
    }
    assert {u for d in model.distribution for u in d.download_url} == downloads
    (issued,) = raw.objects(node, DCTERMS.issued)
    assert isinstance(issued, Literal) and str(issued.datatype) == "xsd:dateTime"
    assert str(issued) == "2011-11-22"
    # The datatype is fixed to xsd:dateTime, whose lexical form needs a time of day (XSD 1.1
    # Part 2, 3.3.8): the date stands for the start of that day, with no timezone as the source
    # gives none, written in the canonical form yyyy-mm-ddThh:mm:ss (3.3.8.2: whole seconds
    # take no fraction).
    assert model.issued == TypedLiteral(value="2011-11-22T00:00:00", datatype=str(XSD.dateTime))
    kinds = {c.kind for c in changes}
    assert kinds == {
        NormalisationKind.NAMESPACE,
        NormalisationKind.LITERAL_IRI,
        NormalisationKind.DATATYPE,
    }


# --- properties of the normaliser ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [*corpus_files(), *sorted(REPO_DCAT.glob("*.ttl"))],
    ids=lambda p: (
        corpus_id(p) if isinstance(p, Path) and not p.is_relative_to(REPO_DCAT) else str(p)
    ),
)
def test_normalising_twice_changes_nothing_more(path: Path) -> None:
    graph = read_or_skip(path)
    before = set(graph)
    once, changes = normalise(graph)
    assert_guarded(graph, changes)
    twice, again = normalise(once)
    assert again == []
    assert set(twice) == set(once)
    assert len(changes) == len(set(changes))
    assert set(graph) == before, "the input graph is left as it was"


def test_a_change_reads_well() -> None:
    change = Normalisation(
        kind=NormalisationKind.TERM,
        subject="<http://example.org/ds>",
        predicate=None,
        before=HEALTH.minimumTypicalAge.n3(),
        after=HEALTH.minTypicalAge.n3(),
    )
    assert str(change) == (
        "term: <http://example.org/ds>: <http://healthdataportal.eu/ns/health#minimumTypicalAge>"
        " -> <http://healthdataportal.eu/ns/health#minTypicalAge>"
    )
