"""Semantic dataset search: concept expansion (parents, synonyms, other languages, stemming per
language), exact facets, filters with descendants, autocompletion, and the GraphQL surface."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import Settings, load_providers
from catalogue.dcat.serialiser import catalogue_graph
from catalogue.domain.models import Dataset, Provider
from catalogue.index.base import DatasetIndex, SearchFilters
from catalogue.index.tantivy import TantivyDatasetIndex
from catalogue.ontology.annotate import Annotator
from catalogue.ontology.facets import concept_facets
from catalogue.ontology.vocabulary import Vocabulary, load_vocabulary
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from catalogue.services.search import (
    DatasetFilter,
    annotate_dataset,
    completer,
    search_filters,
)

PREFIXES = """@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix NCIT: <http://purl.obolibrary.org/obo/NCIT_> .
@prefix DCM: <http://dicom.nema.org/resources/ontology/DCM/> .
@prefix SCT: <http://snomed.info/id/> .
"""
NEOPLASMS = """<https://w3id.org/cancer-imaging-catalogue/vocab/ncit-neoplasm>
    a skos:ConceptScheme ; dct:title "test neoplasms" ; owl:versionInfo "1" .
NCIT:C3262 a skos:Concept ; skos:prefLabel "Neoplasm"@en, "Neoplasie"@de .
NCIT:C4878 a skos:Concept ; skos:broader NCIT:C3262 ;
    skos:prefLabel "Lung Carcinoma"@en, "Lungenkarzinom"@de, "carcinome pulmonaire"@fr,
        "carcinoma de pulmón"@es ;
    skos:altLabel "lung cancer"@en, "Lungenkrebs"@de .
NCIT:C2926 a skos:Concept ; skos:broader NCIT:C4878 ;
    skos:prefLabel "Lung Non-Small Cell Carcinoma"@en ; skos:altLabel "NSCLC"@en .
NCIT:C4917 a skos:Concept ; skos:broader NCIT:C4878 ;
    skos:prefLabel "Lung Small Cell Carcinoma"@en ; skos:altLabel "SCLC"@en .
NCIT:C4872 a skos:Concept ; skos:broader NCIT:C3262 ;
    skos:prefLabel "Breast Carcinoma"@en, "Mammakarzinom"@de ; skos:altLabel "breast cancer"@en .
NCIT:C3058 a skos:Concept ; skos:broader NCIT:C3262 ;
    skos:prefLabel "Glioblastoma"@en ; skos:altLabel "GBM"@en .
"""
ANATOMY = """<https://w3id.org/cancer-imaging-catalogue/vocab/anatomic-region>
    a skos:ConceptScheme ; dct:title "test anatomy" ; owl:versionInfo "1" .
SCT:39607008 a skos:Concept ; skos:prefLabel "Lung"@en, "Lunge"@de .
SCT:76752008 a skos:Concept ; skos:prefLabel "Breast"@en, "Brust"@de ; skos:altLabel "Mamma"@de .
"""
MODALITIES = """<https://w3id.org/cancer-imaging-catalogue/vocab/modality> a skos:ConceptScheme ;
    dct:title "test modalities" ; owl:versionInfo "1" .
DCM:CT a skos:Concept ; skos:notation "CT" ;
    skos:prefLabel "Computed Tomography"@en, "Computertomographie"@de .
DCM:MR a skos:Concept ; skos:notation "MR" ; skos:prefLabel "Magnetic Resonance"@en ;
    skos:altLabel "MRI"@en .
"""
CANCERS = ("NSCLC", "SCLC", "Breast Carcinoma", "Glioblastoma", "Lung Carcinoma")
PUBLIC = "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
LICENCES = ("https://creativecommons.org/licenses/by/4.0/", "http://example.org/licence/local")


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory: pytest.TempPathFactory) -> Vocabulary:
    folder = tmp_path_factory.mktemp("vocab")
    (folder / "ncit-neoplasm.ttl").write_text(PREFIXES + NEOPLASMS)
    (folder / "modality.ttl").write_text(PREFIXES + MODALITIES)
    (folder / "anatomic-region.ttl").write_text(PREFIXES + ANATOMY)
    return load_vocabulary(sorted(folder.glob("*.ttl")))


def dataset(
    annotator: Annotator, provider: str, identifier: str, title: str, **extra: Any
) -> Dataset:
    made = Dataset(
        provider_id=provider, identifier=identifier, iri=f"http://x.org/{identifier}", title=title
    )
    return annotate_dataset(made.model_copy(update=extra), annotator)


@pytest.fixture(scope="module")
def corpus(vocabulary: Vocabulary) -> list[Dataset]:
    """Datasets whose titles never name their cancer type: only concepts connect them."""
    annotator = Annotator(vocabulary)
    rng = random.Random(7)
    found = []
    for i in range(60):
        cancers = tuple(rng.sample(CANCERS, rng.choice((1, 1, 2))))
        sites = ("Lung",) if "NSCLC" in cancers else ("Breast",) if i % 3 else ()
        found.append(
            dataset(
                annotator,
                f"p{i % 3}",
                f"d{i:02d}",
                f"Cohort {i} imaging",
                cancer_types=cancers,
                body_sites=sites,
                modalities=tuple(rng.sample(("CT", "MR"), rng.choice((1, 2)))),
                license=rng.choice(LICENCES),
                access_rights=PUBLIC if i % 4 else None,
                themes=("http://example.org/theme/HEAL",) if i % 5 == 0 else (),
            )
        )
    return found


@pytest.fixture(
    scope="module",
    params=["tantivy", pytest.param("elasticsearch", marks=pytest.mark.service)],
)
def index(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    vocabulary: Vocabulary,
    corpus: list[Dataset],
) -> Iterator[DatasetIndex]:
    """The corpus in each dataset index: embedded, and on the test Elasticsearch node."""
    if request.param == "tantivy":
        opened: DatasetIndex = TantivyDatasetIndex(
            tmp_path_factory.mktemp("index"), vocabulary=vocabulary
        )
    else:
        from tests.integration.test_search_elasticsearch import elasticsearch_index

        node = request.getfixturevalue("elasticsearch_node")
        opened = on_node = elasticsearch_index(node.url, "semantic", vocabulary)
    for provider in ("p0", "p1", "p2"):
        opened.replace_provider(provider, [d for d in corpus if d.provider_id == provider])
    yield opened
    if request.param == "elasticsearch":
        on_node.delete()
    opened.close()


def found(index: DatasetIndex, text: str | None, **options: Any) -> set[str]:
    page = index.search(text, 0, 100, **options)
    assert page.total == len(page.datasets)
    return {d.identifier for d in page.datasets}


def with_cancer(corpus: list[Dataset], *raw: str) -> set[str]:
    return {d.identifier for d in corpus if set(raw) & set(d.cancer_types)}


def test_annotation_is_a_closure(corpus: list[Dataset]) -> None:
    nsclc = next(d for d in corpus if d.cancer_types == ("NSCLC",))
    assert {"NCIT:C2926", "NCIT:C4878", "NCIT:C3262"} <= set(nsclc.concepts)
    assert list(nsclc.concepts) == sorted(nsclc.concepts)


def test_a_parent_concept_finds_datasets_annotated_with_its_children(
    index: DatasetIndex, corpus: list[Dataset]
) -> None:
    lung = with_cancer(corpus, "NSCLC", "SCLC", "Lung Carcinoma")
    assert found(index, "lung carcinoma") == lung
    assert found(index, "Neoplasm") == {d.identifier for d in corpus}
    own_words = {
        d.identifier: set(" ".join((d.title, *d.cancer_types, *d.body_sites)).lower().split())
        for d in corpus
    }
    plain = {i for i, words in own_words.items() if {"lung", "carcinoma"} <= words}
    assert found(index, "lung carcinoma", expand=False) == plain
    assert plain < lung  # the datasets saying only NSCLC or SCLC come from their concepts


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("NSCLC", ("NSCLC",)),
        ("SCLC", ("SCLC",)),
        ("lung cancer", ("NSCLC", "SCLC", "Lung Carcinoma")),  # a synonym of the parent
        ("Lungenkrebs", ("NSCLC", "SCLC", "Lung Carcinoma")),  # a German synonym
        ("Lungenkarzinome", ("NSCLC", "SCLC", "Lung Carcinoma")),  # German plural, stemmed
        ("carcinomes pulmonaires", ("NSCLC", "SCLC", "Lung Carcinoma")),  # French plural
        ("carcinoma de pulmón", ("NSCLC", "SCLC", "Lung Carcinoma")),
        ("Mammakarzinom", ("Breast Carcinoma",)),
        ("GBM", ("Glioblastoma",)),
    ],
)
def test_synonyms_and_other_languages_find_the_concept(
    index: DatasetIndex, corpus: list[Dataset], text: str, raw: tuple[str, ...]
) -> None:
    assert found(index, text) == with_cancer(corpus, *raw)


def test_words_combine_with_concepts(index: DatasetIndex, corpus: list[Dataset]) -> None:
    lung_ct = {
        d.identifier
        for d in corpus
        if {"NSCLC", "SCLC", "Lung Carcinoma"} & set(d.cancer_types) and "CT" in d.modalities
    }
    assert found(index, "lung cancer CT") == lung_ct
    assert found(index, "Lungenkrebs Computertomographie") == lung_ct
    assert found(index, "NSCLC OR GBM") == with_cancer(corpus, "NSCLC", "Glioblastoma")
    assert found(index, "lung cancer -NSCLC") == with_cancer(
        corpus, "SCLC", "Lung Carcinoma"
    ) - with_cancer(corpus, "NSCLC")
    assert found(index, "NSCLC zebra") == with_cancer(corpus, "NSCLC")  # nothing has both


def matching(corpus: list[Dataset], ids: set[str]) -> list[Dataset]:
    return [d for d in corpus if d.identifier in ids]


@pytest.mark.parametrize(
    ("text", "filters"),
    [
        (None, SearchFilters()),
        ("lung cancer", SearchFilters()),
        ("imaging", SearchFilters(providers=("p1",))),
        ("imaging", SearchFilters(providers=("p0", "p1"))),  # most of the index: all - rest
        (None, SearchFilters(concepts=(frozenset({"NCIT:C4878"}),), licenses=LICENCES[:1])),
    ],
)
def test_facets_are_exact(
    index: DatasetIndex,
    vocabulary: Vocabulary,
    corpus: list[Dataset],
    text: str | None,
    filters: SearchFilters,
) -> None:
    page = index.search(text, 0, 100, filters, facets=True)
    hits = matching(corpus, {d.identifier for d in page.datasets})
    assert page.total == len(hits) > 0
    assert dict(page.facets["provider"]) == Counter(d.provider_id for d in hits)
    assert dict(page.facets["license"]) == Counter(d.license for d in hits if d.license)
    assert dict(page.facets["access_rights"]) == Counter(
        d.access_rights for d in hits if d.access_rights
    )
    assert dict(page.facets["theme"]) == Counter(t for d in hits for t in d.themes)
    facets = concept_facets(vocabulary)
    for name in ("cancer_type", "body_part", "modality"):
        counts = dict(page.facets[name])
        specific = {c for d in hits for c in facets.split(d.concepts).get(name, ((), ()))[1]}
        assert set(counts) == specific
        for curie, count in counts.items():  # each counts what filtering by it finds
            assert count == sum(curie in d.concepts for d in hits)
        values = [count for _, count in page.facets[name]]
        assert values == sorted(values, reverse=True)
    assert "NCIT:C3262" not in dict(page.facets["cancer_type"])  # never the most specific


def test_facets_follow_every_commit(
    tmp_path: Path, vocabulary: Vocabulary, corpus: list[Dataset]
) -> None:
    index = TantivyDatasetIndex(tmp_path / "index", vocabulary=vocabulary)
    for provider in ("p0", "p1", "p2"):
        index.replace_provider(provider, [d for d in corpus if d.provider_id == provider])
    two = SearchFilters(providers=("p0", "p1"))  # most of the index: all less the rest

    def providers(filters: SearchFilters, datasets: list[Dataset]) -> None:
        counted = index.search(None, 0, 0, filters, facets=True).facets["provider"]
        wanted = filters.providers or ("p0", "p1", "p2")
        assert dict(counted) == Counter(d.provider_id for d in datasets if d.provider_id in wanted)

    providers(SearchFilters(), corpus)
    providers(two, corpus)
    index.update([], [corpus[0].key])  # the counts of every document are taken again
    providers(two, corpus[1:])
    providers(SearchFilters(), corpus[1:])
    index.close()


def test_an_index_of_another_schema_is_emptied(tmp_path: Path, vocabulary: Vocabulary) -> None:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", stored=True)
    old = tantivy.Index(builder.build(), path=str(tmp_path))
    del old
    index = TantivyDatasetIndex(tmp_path, vocabulary=vocabulary)
    assert index.all() == []
    index.replace_provider("p", [dataset(Annotator(vocabulary), "p", "d", "NSCLC cohort")])
    assert found(index, "NSCLC") == {"d"}
    index.close()


def test_filters_include_descendants(
    index: DatasetIndex, vocabulary: Vocabulary, corpus: list[Dataset]
) -> None:
    lung = with_cancer(corpus, "NSCLC", "SCLC", "Lung Carcinoma")
    assert found(index, None, filters=SearchFilters(concepts=(frozenset({"NCIT:C4878"}),))) == lung
    annotator = Annotator(vocabulary)
    for value in ("Lung Carcinoma", "NCIT:C4878", "http://purl.obolibrary.org/obo/NCIT_C4878"):
        filters = search_filters(DatasetFilter(cancer_types=(value,)), annotator)
        assert found(index, None, filters=filters) == lung
    both = search_filters(
        DatasetFilter(cancer_types=("lung cancer",), modalities=("MRI",), access_rights=(PUBLIC,)),
        annotator,
    )
    assert found(index, None, filters=both) == {
        d.identifier
        for d in corpus
        if d.identifier in lung and "MR" in d.modalities and d.access_rights == PUBLIC
    }
    unknown = search_filters(DatasetFilter(cancer_types=("no such cancer",)), annotator)
    assert found(index, None, filters=unknown) == set()
    licensed = search_filters(DatasetFilter(licenses=LICENCES[1:], providers=("p2",)), annotator)
    assert found(index, None, filters=licensed) == {
        d.identifier for d in corpus if d.license == LICENCES[1] and d.provider_id == "p2"
    }


def test_autocompletion_order(vocabulary: Vocabulary) -> None:
    def complete(text: str, scheme: str | None = None) -> list[tuple[str, str]]:
        return [(c.concept.curie, c.matched) for c in completer(vocabulary).complete(text, scheme)]

    assert complete("lung") == [
        ("SCT:39607008", "Lung"),  # the whole label
        ("NCIT:C4878", "Lung Carcinoma"),  # then preferred labels, shorter first
        ("NCIT:C4917", "Lung Small Cell Carcinoma"),
        ("NCIT:C2926", "Lung Non-Small Cell Carcinoma"),
    ]
    assert complete("ma") == [
        ("NCIT:C4872", "Mammakarzinom"),  # preferred labels (any language) first
        ("DCM:MR", "Magnetic Resonance"),
        ("SCT:76752008", "Mamma"),  # then synonyms, even shorter ones
    ]
    assert complete("carcinoma")[:2] == [
        ("NCIT:C4878", "carcinoma de pulmón"),
        ("NCIT:C4872", "Breast Carcinoma"),  # then later words of labels
    ]
    assert complete("NSCLC") == [("NCIT:C2926", "NSCLC")]
    assert complete("m", scheme="modality") == [("DCM:MR", "Magnetic Resonance")]
    assert complete("") == [] and complete("zzz") == []
    assert len(completer(vocabulary).complete("l", first=2)) == 2


# -- GraphQL, over a harvested catalogue and the shipped vocabularies

HOSPITAL = [
    Dataset(
        provider_id="hospital",
        identifier="nsclc-ct",
        iri="http://hospital.example.org/dataset/nsclc-ct",
        title="Radiogenomics cohort",
        cancer_types=("NSCLC",),
        modalities=("CT",),
        access_rights=PUBLIC,
        license=LICENCES[0],
    ),
    Dataset(
        provider_id="hospital",
        identifier="sclc-mr",
        iri="http://hospital.example.org/dataset/sclc-mr",
        title="Small cell study",
        cancer_types=("Small Cell Lung Carcinoma",),
        modalities=("MR",),
    ),
    Dataset(
        provider_id="hospital",
        identifier="breast",
        iri="http://hospital.example.org/dataset/breast",
        title="Screening archive",
        cancer_types=("Breast Cancer",),
        body_sites=("Breast",),
        modalities=("MG",),
    ),
]


@pytest.fixture
def client(tmp_path: Path, catalogue: Catalogue) -> Iterator[TestClient]:
    provider = Provider(id="hospital", name="Test Hospital")
    graph = catalogue_graph(provider, "http://hospital.example.org/catalogue", HOSPITAL)
    graph.serialize(tmp_path / "hospital.ttl", format="turtle")
    (tmp_path / "providers.yaml").write_text(
        "providers:\n  - id: hospital\n    name: Test Hospital\n    sources:\n"
        f"      - kind: dcat\n        path: {tmp_path / 'hospital.ttl'}\n"
    )
    assert harvest(catalogue, load_providers(tmp_path / "providers.yaml")).ok
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as test_client:
        yield test_client


def gql(client: TestClient, query: str) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]  # type: ignore[no-any-return]


def identifiers(data: dict[str, Any]) -> list[str]:
    return [e["node"]["identifier"] for e in data["datasets"]["edges"]]


def test_graphql_search_facets_and_concepts(client: TestClient) -> None:
    data = gql(
        client,
        """{ datasets(search: "lung carcinoma") {
            totalCount
            edges { node { identifier concepts(mostSpecific: true) { curie label scheme } } }
            facets { field values { value label count } } } }""",
    )
    assert data["datasets"]["totalCount"] == 2
    assert set(identifiers(data)) == {"nsclc-ct", "sclc-mr"}
    nsclc = data["datasets"]["edges"][identifiers(data).index("nsclc-ct")]["node"]
    assert {
        "curie": "NCIT:C2926",
        "label": "Lung Non-Small Cell Carcinoma",
        "scheme": "ncit-neoplasm",
    } in nsclc["concepts"]
    facets = {f["field"]: f["values"] for f in data["datasets"]["facets"]}
    assert facets["PROVIDER"] == [{"value": "hospital", "label": "Test Hospital", "count": 2}]
    cancer = {v["value"]: (v["label"], v["count"]) for v in facets["CANCER_TYPE"]}
    assert cancer["NCIT:C2926"] == ("Lung Non-Small Cell Carcinoma", 1)
    assert facets["ACCESS_RIGHTS"] == [{"value": PUBLIC, "label": "PUBLIC", "count": 1}]
    plain = gql(
        client, '{ datasets(search: "lung carcinoma", expandConcepts: false) { totalCount } }'
    )
    assert plain["datasets"]["totalCount"] == 1  # only the title-less NSCLC needs concepts


def test_graphql_filters(client: TestClient) -> None:
    lung = gql(
        client,
        """{ datasets(filter: {cancerTypes: ["Lung Carcinoma"]}, orderBy: TITLE) {
            edges { node { identifier } } } }""",
    )
    assert identifiers(lung) == ["nsclc-ct", "sclc-mr"]
    public = gql(
        client,
        """{ datasets(filter: {cancerTypes: ["lung cancer"], accessRights: ["PUBLIC"]}) {
            edges { node { identifier } } } }""",
    )
    assert identifiers(public) == ["nsclc-ct"]
    old = gql(client, '{ datasets(providers: ["hospital"]) { totalCount } }')
    assert old["datasets"]["totalCount"] == 3
    none = gql(client, '{ datasets(filter: {providers: ["elsewhere"]}) { totalCount } }')
    assert none["datasets"]["totalCount"] == 0


def test_graphql_concept_autocompletion(client: TestClient) -> None:
    data = gql(client, '{ concepts(search: "nsclc", first: 5) { curie label scheme matched } }')
    assert data["concepts"][0]["matched"] == "NSCLC"
    assert "NCIT:C2926" in {c["curie"] for c in data["concepts"]}
    data = gql(client, '{ concepts(search: "ct", scheme: "modality", first: 1) { curie } }')
    assert data["concepts"] == [{"curie": "DCM:CT"}]
    unknown = '{ concepts(search: "x", scheme: "no") { curie } }'
    response = client.post("/graphql", json={"query": unknown})
    assert "unknown scheme 'no'" in response.json()["errors"][0]["message"]


def test_a_catalogue_rebuilds_an_emptied_index_from_its_store(settings: Settings) -> None:
    import tantivy

    with open_catalogue(settings) as opened:
        provider = Provider(id="p", name="P")
        described = Dataset(provider_id="p", identifier="d", iri="http://x.org/d", title="NSCLC")
        graph = catalogue_graph(provider, "http://x.org/catalog", [described])
        path = settings.data_dir / "catalog.ttl"
        graph.serialize(path, format="turtle")
        (settings.data_dir / "providers.yaml").write_text(
            f"providers:\n  - id: p\n    name: P\n    sources:\n"
            f"      - kind: dcat\n        path: {path}\n"
        )
        assert harvest(opened, load_providers(settings.data_dir / "providers.yaml")).ok
        folder = settings.data_dir / "index" / "datasets-tantivy"
    for file in folder.iterdir():  # an index of another schema, as an older release left it
        file.unlink()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", stored=True)
    old = tantivy.Index(builder.build(), path=str(folder))
    del old
    with open_catalogue(settings) as reopened:
        assert [d.identifier for d in reopened.datasets.all()] == ["d"]
