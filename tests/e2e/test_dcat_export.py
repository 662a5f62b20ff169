"""The DCAT-AP export: Hydra paging, content negotiation, and a round trip through our own
`dcat` harvester that gives isomorphic dataset graphs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic

from catalogue.api.app import create_app
from catalogue.config import Settings, load_providers
from catalogue.dcat.namespaces import DCAT, RDF
from catalogue.domain.identifiers import dataset_graph, provider_dataset_prefix
from catalogue.services.dcat_export import HYDRA
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT
from tests.integration.test_harvest import DATA, one_source

FILES = ["xnat_integration_test.ttl", "valid_project.ttl", "example_consus_ckan.ttl"]


@pytest.fixture
def client(tmp_path: Path, catalogue: Catalogue) -> Iterator[TestClient]:
    body = "providers:\n" + "".join(
        one_source(f"p{i}", f"kind: dcat\n        path: {DATA / name}")
        for i, name in enumerate(FILES)
    )
    (tmp_path / "providers.yaml").write_text(body)
    assert harvest(catalogue, load_providers(tmp_path / "providers.yaml")).ok
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as test_client:
        yield test_client


def stored_graphs(catalogue: Catalogue) -> dict[str, Graph]:
    """Dataset identifier -> stored description, for every dataset of a catalogue; each is
    described in its own graph and in no other of its provider's (every graph read once)."""
    datasets = catalogue.datasets.all()
    graphs = {
        name: catalogue.store.graph(name)
        for provider in {d.provider_id for d in datasets}
        for name in catalogue.store.graph_names(provider_dataset_prefix(provider))
    }
    out = {}
    for dataset in datasets:
        own = dataset_graph(dataset.provider_id, dataset.identifier)
        describing = [
            name
            for name, graph in graphs.items()
            if name.startswith(provider_dataset_prefix(dataset.provider_id))
            and graph.value(URIRef(dataset.iri), RDF.type) is not None
        ]
        assert describing == [own], dataset.identifier
        out[dataset.identifier] = graphs[own]
    return out


@pytest.mark.parametrize("media", ["text/turtle", "application/ld+json", "application/rdf+xml"])
def test_paged_export_harvests_back_isomorphic(
    client: TestClient, catalogue: Catalogue, tmp_path: Path, media: str
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    suffix = {
        "text/turtle": ".ttl",
        "application/ld+json": ".jsonld",
        "application/rdf+xml": ".rdf",
    }
    url: str | None = "/catalog?page_size=1"
    seen, total = 0, None
    while url:
        response = client.get(url, headers={"Accept": media})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        assert response.headers["vary"] == "Accept"
        (pages / f"page{seen}{suffix[media]}").write_bytes(response.content)
        graph = Graph().parse(
            data=response.content,
            format=suffix[media].lstrip(".").replace("jsonld", "json-ld").replace("rdf", "xml"),
        )
        (view,) = graph.subjects(RDF.type, HYDRA.PartialCollectionView)
        total = int(graph.value(view, HYDRA.totalItems))  # type: ignore[arg-type]
        assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == 1
        following = graph.value(view, HYDRA.next)
        url = str(following).replace("http://testserver", "") if following else None
        seen += 1
    assert seen == total == 4

    settings = Settings(
        data_dir=tmp_path / "second", secret="second-secret-0123456789", disclosure=EXACT
    )
    (tmp_path / "second.yaml").write_text(
        "providers:\n" + one_source("mirror", f"kind: dcat\n        path: {pages}")
    )
    with open_catalogue(settings) as second:
        assert harvest(second, load_providers(tmp_path / "second.yaml")).ok
        mirrored = stored_graphs(second)
    original = stored_graphs(catalogue)
    assert set(mirrored) == set(original)
    for identifier, graph in original.items():
        assert isomorphic(graph, mirrored[identifier]), identifier


def test_one_dataset_and_negotiation(client: TestClient) -> None:
    identifier = "http://localhost:8080/data/archive/projects/protected_optin"
    path = f"/datasets/p0/{identifier}"
    turtle = client.get(path)
    assert turtle.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=turtle.text, format="turtle")
    assert (URIRef(identifier), RDF.type, DCAT.Dataset) in graph
    preferred = client.get(
        path, headers={"Accept": "application/rdf+xml;q=0.5, application/ld+json"}
    )
    assert preferred.headers["content-type"].startswith("application/ld+json")
    assert client.get("/datasets/p0/nope").status_code == 404
    assert client.get("/catalog?page=0").status_code == 422


COUNTED = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix healthdcatap: <http://healthdataportal.eu/ns/health#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

<https://example.org/ds/counted> a dcat:Dataset ;
    dct:title "Counted"@en ;
    dct:issued "2024-01-02T03:04:05Z"^^xsd:dateTime ;
    healthdcatap:numberOfRecords "120"^^xsd:nonNegativeInteger ;
    healthdcatap:numberOfUniqueIndividuals "40"^^xsd:nonNegativeInteger ;
    healthdcatap:hasStructuredData "true"^^xsd:boolean ;
    dcat:distribution [ a dcat:Distribution ; dcat:byteSize "2048"^^xsd:nonNegativeInteger ] .
"""


def test_the_export_serves_the_datatypes_and_dates_the_source_gave(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    source = tmp_path / "counted.ttl"
    source.write_text(COUNTED)
    (tmp_path / "providers.yaml").write_text(
        "providers:\n" + one_source("h", f"kind: dcat\n        path: {source}")
    )
    assert harvest(catalogue, load_providers(tmp_path / "providers.yaml")).ok
    raw = Graph().parse(data=COUNTED, format="turtle")
    expected = {(p, o.datatype, str(o)) for _, p, o in raw if isinstance(o, Literal) and o.datatype}
    with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as client:
        served = client.get("/datasets/h/https://example.org/ds/counted")
    graph = Graph().parse(data=served.text, format="turtle")
    got = {(p, o.datatype, str(o)) for _, p, o in graph if isinstance(o, Literal) and o.datatype}
    assert got == expected
