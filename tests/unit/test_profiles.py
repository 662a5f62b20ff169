"""The DCAT-AP 3 -> HealthDCAT-AP -> imaging profile chain: lossless round trips on every
parseable real example, and typed fields checked against SPARQL (or rdflib) over the raw file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.compare import isomorphic
from rdflib.term import Node

from catalogue.dcat.namespaces import (
    CIM,
    DCTERMS,
    FOAF,
    FOLLOWED_PREDICATES,
    HEALTHDCATAP,
    RDF,
    VCARD,
)
from catalogue.dcat.parser import dataset_nodes, dataset_subgraph
from catalogue.dcat.profiles import (
    CHAIN,
    DCATAP3,
    HEALTHDCATAP_R8,
    IMAGING,
    HealthAgent,
    ImagingDataset,
    Profile,
    ProfileChain,
    RdfList,
    Resource,
    Text,
    TypedLiteral,
    parse,
    serialise,
    write,
)
from catalogue.dcat.profiles.dcatap import Dataset as DcatDataset
from catalogue.dcat.profiles.dcatap import Kind, Location
from catalogue.dcat.profiles.healthdcatap import HealthDataset
from catalogue.dcat.rdf_io import read_rdf
from catalogue.dcat.serialiser import catalogue_graph
from catalogue.domain.models import Dataset, Provider
from catalogue.exceptions import ConfigError, UnreadableSourceError
from tests.unit.dcat_corpus import (
    DCAT,
    REPO_DCAT,
    XSD,
    canonical,
    corpus_files,
    corpus_id,
    corpus_path,
    read_example,
    read_or_skip,
    select,
)


def assert_round_trip(graph: Graph, node: Node) -> ImagingDataset:
    """parse -> serialise -> parse -> serialise gives the dataset's description both times."""
    described = canonical(dataset_subgraph(graph, node))
    model = parse(graph, node)
    once = Graph()
    root = write(once, model)
    again = parse(once, root)
    twice = serialise(again)
    assert canonical(once) == described
    assert canonical(twice) == described
    assert ImagingDataset.model_validate_json(model.model_dump_json()) == model
    return model


# --- round trips -------------------------------------------------------------------------


def test_the_isomorphism_check_agrees_with_rdflib() -> None:
    """The fast check the round trips use sees what rdflib.compare sees, on a real example."""
    graph = read_example(corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl"))
    (node,) = dataset_nodes(graph)
    described = dataset_subgraph(graph, node)
    written = serialise(parse(graph, node))
    assert isomorphic(described, written)
    assert canonical(described) == canonical(written)
    # one literal changed inside a blank node: both checks see the difference
    period = graph.value(node, DCTERMS.temporal)
    assert period is not None
    start = described.value(period, DCAT.startDate)
    described.set((period, DCAT.startDate, Literal(str(start)[:4], datatype=XSD.gYear)))
    assert not isomorphic(described, written)
    assert canonical(described) != canonical(written)


@pytest.mark.parametrize("path", corpus_files(), ids=corpus_id)
def test_every_real_example_round_trips(path: Path) -> None:
    graph = read_or_skip(path)
    nodes = dataset_nodes(graph)
    if not nodes:
        pytest.skip("no dcat:Dataset in this file")
    for node in nodes:
        assert_round_trip(graph, node)


@pytest.mark.parametrize(
    "path", sorted(REPO_DCAT.glob("*.ttl")), ids=lambda p: p.name if isinstance(p, Path) else p
)
def test_repository_examples_round_trip(path: Path) -> None:
    graph = read_or_skip(path)
    nodes = dataset_nodes(graph)
    assert nodes, "every parseable file in tests/data/dcat describes datasets"
    for node in nodes:
        assert_round_trip(graph, node)


def test_semic_json_ld_examples_read_as_their_turtle_twins() -> None:
    """The offline context mapping reads the JSON-LD examples as SEMIC's Turtle says."""
    folder = corpus_path("dcat-ap-3.0.1/examples/example-bee-population.ttl").parent
    pairs = [
        (p, p.with_suffix(".ttl"))
        for p in sorted(folder.glob("*.jsonld"))
        if p.name != "context.jsonld" and p.with_suffix(".ttl").is_file()
    ]
    compared = 0
    for json_ld, turtle in pairs:
        try:
            expected = read_rdf(turtle)
        except UnreadableSourceError:  # the corpus keeps two invalid Turtle twins on purpose
            continue
        got = read_example(json_ld)
        nodes = dataset_nodes(got)
        assert nodes == dataset_nodes(expected), json_ld.name
        for node in nodes:
            assert parse(got, node).title == parse(expected, node).title
        compared += 1
    assert compared >= 10


def test_shared_and_cyclic_blank_nodes_round_trip() -> None:
    """A blank dataset referenced from inside itself, and one blank agent in two roles."""
    graph = Graph()
    dataset, agent, service, distribution = BNode(), BNode(), BNode(), BNode()
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, DCTERMS.title, Literal("Shared", lang="en")))
    graph.add((dataset, DCTERMS.publisher, agent))
    graph.add((dataset, DCTERMS.creator, agent))
    graph.add((agent, FOAF.name, Literal("Agency")))
    graph.add((dataset, DCAT.distribution, distribution))
    graph.add((distribution, DCAT.accessService, service))
    graph.add((service, DCAT.servesDataset, dataset))

    model = assert_round_trip(graph, dataset)

    assert model.node_id is not None  # the service refers back to the blank dataset
    publisher, creator = model.publisher[0], model.creator[0]
    assert not isinstance(creator, str)
    assert publisher.node_id is not None and creator.node_id == publisher.node_id
    # described once (where reached first), referenced by the same node_id elsewhere
    described = [agent for agent in (publisher, creator) if not agent.is_reference()]
    assert len(described) == 1
    assert described[0].name == [Text(value="Agency")]


def test_the_profiles_describe_what_dataset_subgraph_follows() -> None:
    """An IRI object is described inside the dataset exactly when dataset_subgraph follows its
    predicate; the round trip fails for any predicate the two disagree on."""
    graph = Graph()
    dataset = URIRef("https://example.org/ds")
    graph.add((dataset, RDF.type, DCAT.Dataset))
    for number, predicate in enumerate(
        [*sorted(FOLLOWED_PREDICATES), DCTERMS.isReferencedBy, DCTERMS.license, DCAT.theme]
    ):
        target = URIRef(f"https://example.org/thing/{number}")
        graph.add((dataset, predicate, target))
        graph.add((target, FOAF.name, Literal(f"thing {number}")))
    described = dataset_subgraph(graph, dataset)
    followed = {
        p for p in FOLLOWED_PREDICATES if (graph.value(dataset, p), None, None) in described
    }
    assert followed == FOLLOWED_PREDICATES
    assert len(described) == 1 + 3 + 2 * len(FOLLOWED_PREDICATES)
    assert_round_trip(graph, dataset)


R8_DATASET = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix cv: <http://data.europa.eu/m8g/> .
@prefix geodcatap: <http://data.europa.eu/930/> .
@prefix healthdcatap: <http://healthdataportal.eu/ns/health#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

<https://example.org/r8> a dcat:Dataset ;
    dct:title "Release 8 dataset"@en ;
    healthdcatap:hasStructuredData true ;
    healthdcatap:hasCodeValues "ICD-10 C34 (lung cancer)"@en ;
    healthdcatap:hdab [ a foaf:Agent ; foaf:name "Access body"@en ;
        cv:contactPoint [ a cv:ContactPoint ; cv:email "access@example.org" ] ] ;
    healthdcatap:hdabCoordinator <https://example.org/coordinator> ;
    geodcatap:custodian [ a foaf:Agent ; foaf:name "Holder" ;
        cv:contactPoint [ a cv:ContactPoint ; cv:contactPage <https://holder.example.org/> ] ] ;
    dct:publisher [ a foaf:Agent ; foaf:name "Publisher" ;
        dct:description "Publishes imaging data"@en ;
        healthdcatap:publisherType <https://example.org/publisher-type/hospital> ;
        cv:contactPoint [ a cv:ContactPoint ; cv:email "data@example.org" ] ] .
"""


def test_release_8_agents_and_flags() -> None:
    """HealthDCAT-AP release 8's agents (cv:contactPoint, publisher type and note on the
    publisher), the HDAB coordinator and custodian, structured data and free-text code values,
    on a dataset written here from the release-8 property list."""
    graph = Graph().parse(data=R8_DATASET, format="turtle")
    node = URIRef("https://example.org/r8")
    model = assert_round_trip(graph, node)

    (flag,) = select(graph, "SELECT ?f WHERE { ?d healthdcatap:hasStructuredData ?f }", d=node)
    assert model.has_structured_data is flag[0].toPython() is True
    (code,) = select(graph, "SELECT ?c WHERE { ?d healthdcatap:hasCodeValues ?c }", d=node)
    assert model.has_code_values == [Text(value=str(code[0]), lang=code[0].language)]
    assert model.hdab_coordinator == ["https://example.org/coordinator"]
    emails = select(
        graph,
        "SELECT ?e WHERE { ?d (healthdcatap:hdab|dct:publisher)/cv:contactPoint/cv:email ?e }",
        d=node,
    )
    agents = [*model.hdab, *model.publisher]
    assert {
        str(e)
        for a in agents
        if isinstance(a, HealthAgent)
        for cp in a.cv_contact_point
        if not isinstance(cp, str)
        for e in cp.email
    } == {str(e) for (e,) in emails}
    (publisher,) = model.publisher
    (kind,) = select(
        graph, "SELECT ?t WHERE { ?d dct:publisher/healthdcatap:publisherType ?t }", d=node
    )
    assert publisher.publisher_type == [str(kind[0])]
    assert [str(t) for t in publisher.description] == ["Publishes imaging data"]
    (custodian,) = model.custodian
    assert isinstance(custodian, HealthAgent)
    assert [str(n) for n in custodian.name] == ["Holder"]
    assert not model.extra


def test_long_rdf_lists_round_trip_as_lists() -> None:
    """A CSVW-style ordered column list, 1500 cells long: kept as one RdfList, no recursion."""
    graph = Graph()
    dataset, columns, shared = URIRef("https://example.org/ds"), BNode(), BNode()
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((shared, FOAF.name, Literal("described once, listed twice")))
    items: list[Node] = [Literal(f"column {i}") for i in range(1500)]
    items[0] = items[-1] = shared
    Collection(graph, columns, items)
    graph.add((dataset, URIRef("http://www.w3.org/ns/csvw#column"), columns))

    model = assert_round_trip(graph, dataset)

    ((_, value),) = model.extra
    assert isinstance(value, RdfList)
    assert [str(v) for v in value.items[1:-1]] == [str(i) for i in items[1:-1]]
    first, last = value.items[0], value.items[-1]
    assert isinstance(first, Resource) and isinstance(last, Resource)
    assert first.node_id == last.node_id is not None


# --- typed fields against the raw files --------------------------------------------------


def _ints(graph: Graph, node: Node, local: str) -> list[int]:
    rows = select(graph, f"SELECT ?v WHERE {{ ?d healthdcatap:{local} ?v }}", d=node)
    return [int(str(v)) for (v,) in rows]


def test_healthdcat_numbers_are_ints_as_in_the_file() -> None:
    graph = read_example(corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl"))
    (node,) = dataset_nodes(graph)
    model = parse(graph, node)
    assert [model.number_of_records] == _ints(graph, node, "numberOfRecords")
    assert [model.number_of_unique_individuals] == _ints(graph, node, "numberOfUniqueIndividuals")
    assert [model.min_typical_age] == _ints(graph, node, "minTypicalAge")
    assert [model.max_typical_age] == _ints(graph, node, "maxTypicalAge")
    assert model.min_typical_age is not None and model.max_typical_age is not None
    assert model.min_typical_age < model.max_typical_age

    categories = select(graph, "SELECT ?c WHERE { ?d healthdcatap:healthCategory ?c }", d=node)
    assert sorted(map(str, model.health_category)) == sorted(str(c) for (c,) in categories)
    hdab = model.hdab[0]
    assert isinstance(hdab, HealthAgent)
    (name,) = select(graph, "SELECT ?n WHERE { ?d healthdcatap:hdab/foaf:name ?n }", d=node)
    assert [(t.value, t.lang) for t in hdab.name] == [(str(name[0]), name[0].language)]
    (flag,) = select(graph, "SELECT ?f WHERE { ?d healthdcatap:trustedDataHolder ?f }", d=node)
    assert model.trusted_data_holder is flag[0].toPython()
    assert model.retention_period is not None
    (end,) = select(
        graph, "SELECT ?e WHERE { ?d healthdcatap:retentionPeriod/dcat:endDate ?e }", d=node
    )
    assert model.retention_period.end_date == TypedLiteral(
        value=str(end[0]), datatype=str(XSD.date)
    )
    # every HealthDCAT-AP property of this file found its field: none is left over
    assert not {p for p, _ in model.extra} & set(HEALTHDCATAP_R8.properties())


def test_multilingual_values_keep_their_languages() -> None:
    graph = read_example(corpus_path("ckanext-dcat/healthdcat/dataset_health_multilingual.ttl"))
    (node,) = dataset_nodes(graph)
    model = parse(graph, node)

    def pairs(predicate: URIRef, subject: Node = node) -> Counter[tuple[str, str | None]]:
        return Counter(
            (str(o), o.language)
            for o in graph.objects(subject, predicate)
            if isinstance(o, Literal)
        )

    assert Counter((t.value, t.lang) for t in model.title) == pairs(DCTERMS.title)
    assert len(model.title) == 2
    assert Counter((t.value, t.lang) for t in model.description) == pairs(DCTERMS.description)
    assert Counter((t.value, t.lang) for t in model.keyword) == pairs(DCAT.keyword)
    assert Counter((t.value, t.lang) for t in model.population_coverage) == pairs(
        HEALTHDCATAP.populationCoverage
    )
    assert Counter((t.value, t.lang) for t in model.publisher_note) == pairs(
        HEALTHDCATAP.publisherNote
    )
    publisher = graph.value(node, DCTERMS.publisher)
    assert publisher is not None
    assert Counter((t.value, t.lang) for t in model.publisher[0].name) == pairs(
        FOAF.name, publisher
    )
    (distribution,) = model.distribution
    assert distribution.iri is not None
    assert Counter((t.value, t.lang) for t in distribution.title) == pairs(
        DCTERMS.title, URIRef(distribution.iri)
    )


def test_every_dataset_of_the_health_catalogue_against_sparql() -> None:
    graph = read_example(corpus_path("healthdcat-ap/mvd-health-demo/health-catalog.ttl"))
    rows = select(
        graph,
        """
        SELECT ?d ?records ?people ?min ?max ?trusted WHERE {
            ?d a dcat:Dataset ;
               healthdcatap:numberOfRecords ?records ;
               healthdcatap:numberOfUniqueIndividuals ?people ;
               healthdcatap:minTypicalAge ?min ;
               healthdcatap:maxTypicalAge ?max ;
               dct:publisher/healthdcatap:trustedDataHolder ?trusted .
        }""",
    )
    expected = {
        d: (int(str(records)), int(str(people)), int(str(low)), int(str(high)), trusted.toPython())
        for d, records, people, low, high, trusted in rows
    }
    assert len(expected) == 21
    for node, values in expected.items():
        model = parse(graph, node)
        publisher = model.publisher[0]
        got = (
            model.number_of_records,
            model.number_of_unique_individuals,
            model.min_typical_age,
            model.max_typical_age,
            publisher.trusted_data_holder,
        )
        assert got == values, node
        access_urls = {
            str(o)
            for d in graph.objects(node, DCAT.distribution)
            for o in graph.objects(d, DCAT.accessURL)
        }
        assert {u for d in model.distribution for u in d.access_url} == access_urls
        emails = {
            str(o)
            for k in graph.objects(node, DCAT.contactPoint)
            for o in graph.objects(k, VCARD.hasEmail)
        }
        assert {e for k in model.contact_point for e in k.has_email} == emails


@pytest.fixture(scope="module")
def corpus_models() -> list[tuple[Graph, Node, ImagingDataset]]:
    """Every dataset of every parseable corpus file, with its model."""
    out: list[tuple[Graph, Node, ImagingDataset]] = []
    for path in corpus_files():
        try:
            graph = read_example(path)
        except UnreadableSourceError:  # the corpus keeps broken files on purpose
            continue
        out.extend((graph, node, parse(graph, node)) for node in dataset_nodes(graph))
    if not out:
        pytest.skip("the shared corpus is absent")
    return out


@pytest.mark.parametrize(
    ("field", "predicate", "kind"),
    [
        ("title", DCTERMS.title, "text"),
        ("description", DCTERMS.description, "text"),
        ("keyword", DCAT.keyword, "text"),
        ("theme", DCAT.theme, "iri"),
        ("landing_page", DCAT.landingPage, "iri"),
        ("language", DCTERMS.language, "iri"),
        ("conforms_to", DCTERMS.conformsTo, "iri"),
    ],
)
def test_dataset_fields_hold_every_fitting_value_of_the_corpus(
    corpus_models: list[tuple[Graph, Node, ImagingDataset]],
    field: str,
    predicate: URIRef,
    kind: str,
) -> None:
    """Across every dataset of the corpus, a field holds exactly the file's values of its
    property that fit its type (strings for text, IRIs for IRI fields)."""
    expected: Counter[tuple[str, str, str | None]] = Counter()
    got: Counter[tuple[str, str, str | None]] = Counter()
    for graph, node, model in corpus_models:
        for obj in graph.objects(node, predicate):
            if kind == "iri" and isinstance(obj, URIRef):
                expected[(str(node), str(obj), None)] += 1
            if kind == "text" and isinstance(obj, Literal) and obj.datatype is None:
                expected[(str(node), str(obj), obj.language)] += 1
        for value in getattr(model, field):
            if isinstance(value, Text):
                got[(str(node), value.value, value.lang)] += 1
            else:
                got[(str(node), value, None)] += 1
    assert got == expected
    assert sum(expected.values()) > 0


def test_imaging_fields_read_what_the_catalogue_serialiser_writes() -> None:
    provider = Provider(id="demo", name="Demo hospital", homepage="https://hospital.example/")
    declared = Dataset(
        provider_id="demo",
        identifier="lung-ct-1",
        iri="https://hospital.example/datasets/lung-ct-1",
        title="Lung CT",
        keywords=("lung", "CT"),
        cancer_types=("Lung adenocarcinoma",),
        body_sites=("Lung",),
        modalities=("CT", "PT"),
        license="http://publications.europa.eu/resource/authority/licence/CC_BY_4_0",
        number_of_unique_individuals=42,
    )
    graph = catalogue_graph(provider, "https://hospital.example/catalogue", [declared])
    node = URIRef(declared.iri)
    model = assert_round_trip(graph, node)

    def texts(predicate: URIRef) -> set[str]:
        return {str(o) for o in graph.objects(node, predicate)}

    assert {str(v) for v in model.modality} == texts(CIM.modality) == {"CT", "PT"}
    assert {str(v) for v in model.cancer_type} == texts(CIM.cancerType)
    assert {str(v) for v in model.body_site} == texts(CIM.bodySite)
    assert model.number_of_unique_individuals == 42
    assert model.license == declared.license
    assert [str(t) for t in model.publisher[0].name] == ["Demo hospital"]


def test_a_value_that_would_change_stays_in_extra() -> None:
    """An xsd:integer count is not read as the field's xsd:nonNegativeInteger: it stays, as it
    came, among the leftovers (and the drift normaliser is what retypes it)."""
    graph = read_example(corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl"))
    (node,) = dataset_nodes(graph)
    (count,) = graph.objects(node, HEALTHDCATAP.numberOfRecords)
    graph.remove((node, HEALTHDCATAP.numberOfRecords, count))
    retyped = Literal(str(count), datatype=XSD.integer)
    graph.add((node, HEALTHDCATAP.numberOfRecords, retyped))

    model = assert_round_trip(graph, node)

    assert model.number_of_records is None
    assert model.extra_values(str(HEALTHDCATAP.numberOfRecords)) == [
        TypedLiteral(value=str(count), datatype=str(XSD.integer))
    ]


# --- the chain ---------------------------------------------------------------------------


def test_profiles_own_their_properties() -> None:
    dcat, health, imaging = (p.properties() for p in (DCATAP3, HEALTHDCATAP_R8, IMAGING))
    assert str(DCTERMS.title) in dcat
    assert str(HEALTHDCATAP.minTypicalAge) in health
    assert str(HEALTHDCATAP.minTypicalAge) not in dcat
    assert str(DCTERMS.publisher) not in health  # narrowed to HealthAgent, still DCAT-AP's
    assert "https://w3id.org/cancer-imaging-catalogue/ns#modality" in imaging
    assert not (set(dcat) & set(health)) - {str(DCTERMS.description)}
    assert not set(imaging) & (set(dcat) | set(health))


def test_the_chain_enriches_step_by_step() -> None:
    graph = read_example(corpus_path("ckanext-dcat/healthdcat/dataset_health.ttl"))
    (node,) = dataset_nodes(graph)
    dcat_only = ProfileChain((DCATAP3,)).parse(graph, node)
    assert type(dcat_only) is DcatDataset
    assert dcat_only.extra_values(str(HEALTHDCATAP.numberOfRecords))
    health = HEALTHDCATAP_R8.enrich(dcat_only)
    assert isinstance(health, HealthDataset)
    assert health.number_of_records == _ints(graph, node, "numberOfRecords")[0]
    assert not health.extra_values(str(HEALTHDCATAP.numberOfRecords))
    assert all(isinstance(agent, HealthAgent) for agent in health.publisher)
    assert type(CHAIN.parse(graph, node)) is ImagingDataset


def test_serialising_binds_a_prefix_for_every_profile_property() -> None:
    """No generated ns1: prefix in the output: the namespace of every property a profile
    defines is bound (GeoDCAT-AP's custodian and LOCN's geometry were not, once)."""
    wkt = "http://www.opengis.net/ont/geosparql#wktLiteral"
    model = ImagingDataset(
        iri="https://example.org/ds",
        custodian=[HealthAgent(iri="https://example.org/custodian", name=[Text(value="C")])],
        spatial=[Location(geometry=[TypedLiteral(value="POINT(4.35 50.85)", datatype=wkt)])],
    )
    graph = serialise(model)
    turtle = graph.serialize(format="turtle")
    assert "geodcatap:custodian" in turtle
    assert "locn:geometry" in turtle
    assert "ns1:" not in turtle
    for profile in CHAIN.profiles:
        for predicate in profile.properties():
            graph.namespace_manager.curie(predicate, generate=False)  # KeyError if unbound


def test_a_chain_out_of_order_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot follow"):
        ProfileChain((HEALTHDCATAP_R8, DCATAP3))
    with pytest.raises(ConfigError):
        ProfileChain(())
    lonely = Profile("contact points", Kind, (Kind,))
    with pytest.raises(ConfigError, match="does not extend"):
        ProfileChain((DCATAP3, lonely))
