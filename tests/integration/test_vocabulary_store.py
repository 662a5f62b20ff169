"""The shipped vocabularies in a real Oxigraph store: one graph per vocabulary and version,
SPARQL answers agreeing with the in-memory vocabulary, and a new version replacing the old."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogue.config import StoreSettings
from catalogue.ontology.curie import to_curie
from catalogue.ontology.store import (
    load_vocabularies,
    loaded_vocabularies,
    vocabulary_graph,
    vocabulary_prefix,
)
from catalogue.ontology.vocabulary import ONTOLOGIES_DIR, Vocabulary, shipped_vocabulary
from catalogue.store.oxigraph import OxigraphGraphStore

SKOS = "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return shipped_vocabulary()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphGraphStore]:
    opened = OxigraphGraphStore.open(tmp_path_factory.mktemp("vocab") / "store", StoreSettings())
    load_vocabularies(opened)
    yield opened
    opened.close()


def select(store: OxigraphGraphStore, query: str) -> set[tuple[str, ...]]:
    return {tuple(str(v) for v in row) for row in store.dataset.query(SKOS + query)}  # type: ignore[union-attr]


def test_one_graph_per_vocabulary_and_version(store: OxigraphGraphStore, vocab: Vocabulary) -> None:
    versions = {key: scheme.version for key, scheme in vocab.schemes.items()}
    assert loaded_vocabularies(store) == versions
    names = {vocabulary_graph(key, version) for key, version in versions.items()}
    assert set(store.graph_names("urn:catalogue:graph:vocab:")) == names
    assert vocabulary_graph("modality", "pydicom-3.0.2") in names


def test_sparql_gives_the_same_concepts_and_labels(
    store: OxigraphGraphStore, vocab: Vocabulary
) -> None:
    for key in ("body-part-examined", "modality", "anatomic-region"):
        scheme = vocab.schemes[key]
        rows = select(
            store,
            f"SELECT ?c ?label WHERE {{ GRAPH ?g {{ ?c skos:inScheme <{scheme.iri}> ; "
            'skos:prefLabel ?label FILTER(lang(?label) = "en") }}',
        )
        assert rows == {(c.iri, c.pref_labels["en"]) for c in vocab.in_scheme(key)}
    (count,) = select(
        store,
        "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { GRAPH ?g { ?c a skos:Concept } }",
    )
    assert int(count[0]) == len(vocab)


def test_sparql_closure_agrees(store: OxigraphGraphStore, vocab: Vocabulary) -> None:
    for curie in ("NCIT:C2926", "BPE:LUNG", "SCT:39607008", "ICD10CM:C34.11", "DOID:3908"):
        iri = vocab[curie].iri
        rows = select(store, f"SELECT ?a WHERE {{ GRAPH ?g {{ <{iri}> skos:broader+ ?a }} }}")
        assert {to_curie(a) for (a,) in rows} == vocab.ancestors(curie)


def test_a_new_version_replaces_the_old_graph(
    store: OxigraphGraphStore, vocab: Vocabulary, tmp_path: Path
) -> None:
    before = set(store.graph_names())
    old_name = vocabulary_graph("modality", vocab.schemes["modality"].version)
    text = (ONTOLOGIES_DIR / "modality.ttl").read_text(encoding="utf-8")
    newer = tmp_path / "modality.ttl"
    newer.write_text(
        text.replace(
            f'owl:versionInfo "{vocab.schemes["modality"].version}"', 'owl:versionInfo "v2"'
        ).replace('"Computed Tomography"@en', '"Computed tomography (v2)"@en'),
        encoding="utf-8",
    )
    (name,) = load_vocabularies(store, [newer])
    assert name == vocabulary_graph("modality", "v2")
    assert store.graph_names(vocabulary_prefix("modality")) == [name]
    assert set(store.graph_names()) == (before - {old_name}) | {name}
    ct = vocab["DCM:CT"].iri
    english = (
        f'SELECT ?l WHERE {{ GRAPH ?g {{ <{ct}> skos:prefLabel ?l FILTER(lang(?l) = "en") }} }}'
    )
    assert select(store, english) == {("Computed tomography (v2)",)}
    # loading the same version again changes nothing; the shipped version comes back in one step
    count = store.triple_count()
    load_vocabularies(store, [newer])
    assert store.triple_count() == count
    load_vocabularies(store, [ONTOLOGIES_DIR / "modality.ttl"])
    assert set(store.graph_names()) == before


def test_ensure_loads_only_what_the_store_lacks(tmp_path: Path) -> None:
    from catalogue.ontology.store import ensure_vocabularies, loaded_vocabularies
    from catalogue.ontology.vocabulary import shipped_vocabulary

    store = OxigraphGraphStore.open(tmp_path / "store", StoreSettings())
    try:
        written = ensure_vocabularies(store)
        shipped = {k: s.version for k, s in shipped_vocabulary().schemes.items()}
        assert loaded_vocabularies(store) == shipped
        assert len(written) == len(shipped)
        assert ensure_vocabularies(store) == []  # all current: nothing written again
    finally:
        store.close()
