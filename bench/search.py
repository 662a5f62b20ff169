"""Dataset search latency: the tantivy datasets index against a SPARQL substring search.

    .venv/bin/python bench/search.py [--datasets N] [--rounds R] [--sparql-rounds S]

Generates N (default 100,000) datasets, seeded: titles and descriptions made of cancer-type and
anatomic-region labels of the shipped vocabularies and a word list, 1-2 cancer types (Zipf-
weighted, from the 625 NCIt concepts the Disease Ontology cancer slim also names, or with
`--cancer-pool ncit` from all 7,591), 0-2 body sites and 1-3 modalities each (annotated with
their concept closures as a harvest does), 25 providers, 5 licences, 3 access rights, EU data
themes. Then:
(a) the tantivy index (`TantivyDatasetIndex`, in a temporary folder): a fixed set of searches
    (words, concept names, synonyms, other languages, phrases, a browse, provider filters),
    each a page of 20 with every facet counted (7 facets, exact); one warm-up pass, then R
    timed passes (default 10);
(b) the baseline: the same datasets as DCAT triples in Oxigraph on disk (bulk loaded), each
    search a SPARQL query with FILTER(CONTAINS(LCASE(?title), w) || CONTAINS(LCASE(?desc), w))
    per word, as a page of 20 by title and a GROUP BY count by publisher (one facet); S timed
    passes (default 1, fewer than (a): each search takes seconds), after one warm-up query.
Prints p50/p95 per search of both and the ratio. Targets: (a) p95 < 20 ms, p95 of (b) at least
20 times that of (a). Also times concept autocompletion (`ConceptCompleter`).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from catalogue.dcat.namespaces import CIM, DCAT, DCTERMS
from catalogue.domain.models import Dataset
from catalogue.index.base import SearchFilters
from catalogue.index.tantivy import TantivyDatasetIndex
from catalogue.ontology.annotate import Annotator
from catalogue.ontology.vocabulary import Concept, Vocabulary, shipped_vocabulary
from catalogue.services.search import annotate_dataset, completer

SEED = 7
TARGET_P95_MS = 20.0
TARGET_RATIO = 20.0
PAGE = 20
BASE = "https://bench.example.org/"
EU = "http://publications.europa.eu/resource/authority/"
PROVIDERS = tuple(f"p{i:02d}" for i in range(25))
LICENCES = (
    "https://creativecommons.org/licenses/by/4.0/",
    "https://creativecommons.org/publicdomain/zero/1.0/",
    "https://creativecommons.org/licenses/by-nc/4.0/",
    "https://opendatacommons.org/licenses/odbl/1-0/",
    f"{BASE}licence/data-use-agreement",
)
ACCESS = tuple(f"{EU}access-right/{c}" for c in ("PUBLIC", "RESTRICTED", "NON_PUBLIC"))
THEMES = tuple(f"{EU}data-theme/{c}" for c in ("HEAL", "TECH", "EDUC", "SOCI"))
MODALITIES = ("CT", "MR", "PT", "US", "MG", "CR", "DX", "NM", "SM", "SEG", "RTSTRUCT")
MODALITY_WEIGHTS = (30, 25, 12, 5, 6, 4, 4, 3, 6, 4, 3)
_WORD_LIST = (
    "cohort collection study trial archive images imaging patients subjects follow-up baseline "
    "diagnostic screening radiotherapy planning segmentation annotations contours response "
    "treatment outcome survival staging biopsy pathology radiomics genomics retrospective "
    "prospective multicentre single-centre paediatric adult longitudinal phantom reference "
    "clinical research challenge benchmark registry consortium national hospital university "
    "quantitative texture volumetric dynamic contrast enhanced low-dose high-resolution"
)
WORDS = tuple(_WORD_LIST.split())

QUERIES: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    ("lung", ()),
    ("lung cancer", ()),
    ("NSCLC", ()),
    ("lung cancer CT", ()),
    ("breast MRI", ()),
    ("breast cancer screening", ()),
    ("glioblastoma", ()),
    ("GBM", ()),
    ("prostate", ()),
    ("prostate cancer MRI", ()),
    ("carcinoma", ()),
    ("adenocarcinoma", ()),
    ("squamous cell carcinoma", ()),
    ("hepatocellular carcinoma", ()),
    ("melanoma", ()),
    ("sarcoma", ()),
    ("lymphoma", ()),
    ("leukemia", ()),
    ("kidney", ()),
    ("pancreatic cancer", ()),
    ("colorectal", ()),
    ("head and neck", ()),
    ("thyroid", ()),
    ("ovarian cancer", ()),
    ("brain tumour", ()),
    ("radiotherapy planning", ()),
    ("segmentation", ()),
    ("mammography", ()),
    ("Lungenkrebs", ()),
    ("cancer du sein", ()),
    ('"non-small cell"', ()),
    ("neoplasm", ()),
    (None, ()),
    ("lung", ("p03",)),
    ("carcinoma", ("p07", "p11")),
    (None, ("p05",)),
)
"""(text, providers): 36 searches; None browses every dataset."""


def _labels(vocabulary: Vocabulary, scheme: str) -> list[Concept]:
    return [c for c in vocabulary.in_scheme(scheme) if c.pref_labels]


def generate(count: int, vocabulary: Vocabulary, cancer_pool: str = "slim") -> Iterator[Dataset]:
    """Datasets with realistic text and concepts, annotated as a harvest does."""
    rng = random.Random(SEED)
    annotator = Annotator(vocabulary)
    cancers = _labels(vocabulary, "ncit-neoplasm")
    if cancer_pool == "slim":  # the types in common use: those the DO cancer slim names too
        cancers = [c for c in cancers if any(m.startswith("DOID:") for m in c.exact_matches)]
    rng.shuffle(cancers)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(cancers))]  # a few cancers are common
    sites = _labels(vocabulary, "anatomic-region")
    for i in range(count):
        chosen = rng.choices(cancers, weights, k=rng.choice((1, 1, 1, 2)))
        cancer_types = tuple(_raw_label(rng, c) for c in chosen)
        body_sites = tuple(c.label() for c in rng.sample(sites, rng.choice((0, 1, 1, 2))))
        modalities = tuple(
            sorted(set(rng.choices(MODALITIES, MODALITY_WEIGHTS, k=rng.choice((1, 2, 3)))))
        )
        words = rng.sample(WORDS, 8)
        title = " ".join([words[0].title(), cancer_types[0], modalities[0], words[1]])
        sentences = [
            f"{words[2].capitalize()} {words[3]} of {chosen[0].label().lower()} patients",
            f"with {' and '.join(modalities)} {words[4]} of the "
            + (body_sites[0].lower() if body_sites else "whole body"),
            f"{words[5]} {words[6]} {words[7]}.",
        ]
        dataset = Dataset(
            provider_id=PROVIDERS[i % len(PROVIDERS)],
            identifier=f"ds-{i:06d}",
            iri=f"{BASE}dataset/{i}",
            title=title,
            description=", ".join(sentences),
            keywords=tuple(rng.sample(WORDS, 3)),
            themes=tuple(rng.sample(THEMES, rng.choice((1, 1, 2)))),
            cancer_types=cancer_types,
            body_sites=body_sites,
            modalities=modalities,
            license=rng.choice(LICENCES),
            access_rights=rng.choice(ACCESS),
        )
        yield annotate_dataset(dataset, annotator)


def _raw_label(rng: random.Random, concept: Concept) -> str:
    """How a provider writes a cancer type: mostly the preferred label, sometimes a synonym."""
    synonyms = concept.alt_labels.get("en", ())
    return rng.choice(synonyms) if synonyms and rng.random() < 0.3 else concept.label()


# -- (a) tantivy


def build_index(folder: Path, datasets: list[Dataset]) -> TantivyDatasetIndex:
    index = TantivyDatasetIndex(folder)
    for provider in PROVIDERS:
        index.replace_provider(provider, [d for d in datasets if d.provider_id == provider])
    return index


def time_index(index: TantivyDatasetIndex, rounds: int) -> tuple[list[float], list[int]]:
    """Milliseconds per search over `rounds` passes after a warm-up pass; hits per search."""
    totals = []
    for text, providers in QUERIES:
        totals.append(index.search(text, 0, PAGE, SearchFilters(providers), facets=True).total)
    timings = []
    for _ in range(rounds):
        for text, providers in QUERIES:
            filters = SearchFilters(providers=providers)
            started = time.perf_counter()
            index.search(text, 0, PAGE, filters, facets=True)
            timings.append((time.perf_counter() - started) * 1000)
    return timings, totals


# -- (b) Oxigraph + SPARQL


def _quads(dataset: Dataset) -> Iterator[ox.Quad]:
    node = ox.NamedNode(dataset.iri)
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    yield ox.Quad(node, rdf_type, ox.NamedNode(str(DCAT.Dataset)))
    yield ox.Quad(node, ox.NamedNode(str(DCTERMS.identifier)), ox.Literal(dataset.identifier))
    yield ox.Quad(node, ox.NamedNode(str(DCTERMS.title)), ox.Literal(dataset.title, language="en"))
    description = ox.Literal(dataset.description, language="en")
    yield ox.Quad(node, ox.NamedNode(str(DCTERMS.description)), description)
    publisher = ox.NamedNode(f"{BASE}provider/{dataset.provider_id}")
    yield ox.Quad(node, ox.NamedNode(str(DCTERMS.publisher)), publisher)
    for keyword in dataset.keywords:
        yield ox.Quad(node, ox.NamedNode(str(DCAT.keyword)), ox.Literal(keyword, language="en"))
    for theme in dataset.themes:
        yield ox.Quad(node, ox.NamedNode(str(DCAT.theme)), ox.NamedNode(theme))
    if dataset.license:
        yield ox.Quad(node, ox.NamedNode(str(DCTERMS.license)), ox.NamedNode(dataset.license))
    if dataset.access_rights:
        rights = ox.NamedNode(dataset.access_rights)
        yield ox.Quad(node, ox.NamedNode(str(DCTERMS.accessRights)), rights)
    for predicate, values in (
        (CIM.cancerType, dataset.cancer_types),
        (CIM.bodySite, dataset.body_sites),
        (CIM.modality, dataset.modalities),
    ):
        for value in values:
            yield ox.Quad(node, ox.NamedNode(str(predicate)), ox.Literal(value))


def build_store(folder: Path, datasets: list[Dataset]) -> ox.Store:
    store = ox.Store(str(folder))
    store.bulk_extend(q for d in datasets for q in _quads(d))
    store.flush()
    return store


_PREFIXES = f"""PREFIX dcat: <{DCAT}>
PREFIX dct: <{DCTERMS}>
"""


def _where(text: str | None, providers: tuple[str, ...]) -> str:
    patterns = [
        "?d a dcat:Dataset ; dct:title ?title ; dct:description ?desc ; dct:publisher ?publisher ."
    ]
    for word in (text or "").lower().replace('"', "").split():
        escaped = word.replace("\\", "\\\\")
        patterns.append(
            f'FILTER(CONTAINS(LCASE(?title), "{escaped}") || CONTAINS(LCASE(?desc), "{escaped}"))'
        )
    if providers:
        values = " ".join(f"<{BASE}provider/{p}>" for p in providers)
        patterns.append(f"VALUES ?publisher {{ {values} }}")
    return "\n  ".join(patterns)


def sparql_search(store: ox.Store, text: str | None, providers: tuple[str, ...]) -> int:
    """A page of 20 by title and the count per publisher; returns the total."""
    where = _where(text, providers)
    page = f"{_PREFIXES}SELECT ?d ?title WHERE {{\n  {where}\n}} ORDER BY ?title LIMIT {PAGE}"
    list(_solutions(store, page))
    facet = (
        f"{_PREFIXES}SELECT ?publisher (COUNT(?d) AS ?n) WHERE {{\n  {where}\n}} "
        "GROUP BY ?publisher"
    )
    return sum(int(row["n"].value) for row in _solutions(store, facet))


def _solutions(store: ox.Store, query: str) -> ox.QuerySolutions:
    found = store.query(query)
    assert isinstance(found, ox.QuerySolutions)
    return found


def time_store(store: ox.Store, rounds: int) -> tuple[list[float], list[int]]:
    sparql_search(store, "lung", ())  # warm-up
    timings, totals = [], []
    for n in range(rounds):
        for text, providers in QUERIES:
            started = time.perf_counter()
            total = sparql_search(store, text, providers)
            timings.append((time.perf_counter() - started) * 1000)
            if n == 0:
                totals.append(total)
    return timings, totals


# -- autocompletion


def time_completion(vocabulary: Vocabulary) -> list[float]:
    complete = completer(vocabulary).complete
    prefixes = [
        p
        for word in ("lung", "carcinoma", "glio", "breast", "mri", "nsclc", "lungenk")
        for p in (word[:1], word[:2], word[:3], word)
    ]
    for prefix in prefixes:
        complete(prefix)
    timings = []
    for _ in range(50):
        for prefix in prefixes:
            started = time.perf_counter()
            complete(prefix)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


# -- report


@dataclass
class Latency:
    p50: float
    p95: float

    @classmethod
    def of(cls, timings: list[float]) -> Latency:
        cuts = statistics.quantiles(timings, n=100, method="inclusive")
        return cls(p50=statistics.median(timings), p95=cuts[94])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sparql-rounds", type=int, default=1)
    parser.add_argument(
        "--cancer-pool",
        choices=("slim", "ncit"),
        default="slim",
        help="draw cancer types from the NCIt concepts the DO cancer slim names (625) or from "
        "all 7,591 NCIt neoplasm concepts (more distinct facet values, slower facets)",
    )
    args = parser.parse_args()
    vocabulary = shipped_vocabulary()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        started = time.perf_counter()
        gc.disable()  # a million long-lived small objects: the collector only slows this down
        datasets = list(generate(args.datasets, vocabulary, args.cancer_pool))
        gc.enable()
        print(
            f"generated and annotated {len(datasets):,} datasets in "
            f"{time.perf_counter() - started:.1f} s "
            f"({statistics.mean(len(d.concepts) for d in datasets):.1f} concepts each)"
        )
        started = time.perf_counter()
        index = build_index(Path(tmp) / "tantivy", datasets)
        print(f"tantivy index built in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        store = build_store(Path(tmp) / "oxigraph", datasets)
        print(
            f"oxigraph store bulk loaded ({len(store):,} triples) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        del datasets
        ours, our_totals = time_index(index, args.rounds)
        theirs, their_totals = time_store(store, args.sparql_rounds)
        completion = Latency.of(time_completion(vocabulary))
        index.close()
    print(f"\n{'search':<28} {'tantivy hits':>12} {'SPARQL hits':>12}")
    for (text, providers), mine, other in zip(QUERIES, our_totals, their_totals, strict=True):
        label = (text or "(all)") + (f" in {','.join(providers)}" if providers else "")
        print(f"{label:<28} {mine:>12,} {other:>12,}")
    a, b = Latency.of(ours), Latency.of(theirs)
    print(
        f"\n(a) tantivy, page of {PAGE} + 7 exact facets, {len(QUERIES)} searches x "
        f"{args.rounds} rounds: p50 {a.p50:.2f} ms, p95 {a.p95:.2f} ms"
    )
    print(
        f"(b) Oxigraph SPARQL substring search, page of {PAGE} + 1 GROUP BY facet, "
        f"{len(QUERIES)} searches x {args.sparql_rounds} rounds: "
        f"p50 {b.p50:.1f} ms, p95 {b.p95:.1f} ms"
    )
    ratio50, ratio95 = b.p50 / a.p50, b.p95 / a.p95
    print(f"(b)/(a): {ratio50:.0f}x at p50, {ratio95:.0f}x at p95")
    ok_latency = "meets" if a.p95 < TARGET_P95_MS else "misses"
    ok_ratio = "meets" if ratio95 >= TARGET_RATIO else "misses"
    print(
        f"p95 {a.p95:.2f} ms {ok_latency} the target of < {TARGET_P95_MS:.0f} ms; "
        f"{ratio95:.0f}x {ok_ratio} the target of >= {TARGET_RATIO:.0f}x"
    )
    print(
        f"concept autocompletion: p50 {completion.p50 * 1000:.0f} us, "
        f"p95 {completion.p95 * 1000:.0f} us"
    )


if __name__ == "__main__":
    main()
