"""The tantivy datasets index's schema, and a Dataset as one of its documents.

Text fields (BM25): the dataset's own text (`title`, `description`, `keywords`, and `terms`:
its cancer types, body sites and modalities as written), analysed as English because the
model holds one language, English when the description gives it; the labels, synonyms and
notations of its concepts (`Dataset.concepts`, a closure: ancestors included) in a field per
language (`labels_en`, `labels_de`...), each with that language's stemmer, and `labels_plain`
for other languages, untagged labels and codes. A query is analysed once per field, so a
German word is stemmed as German against German labels whatever the language of the query.

Filter fields (raw): `provider`, `access_rights`, `license`, `theme`, and `concepts` (the
closure: a term finds a concept's descendants). Facets are counted on one fast field, `facets`,
so that one terms aggregation (one pass over a document's values) counts them all: a value is
`<facet>=<value>` for the plain facets, `<family>=<CURIE>` for every canonical concept of a
concept facet's closure (`catalogue.ontology.facets`), and `<family>+=<CURIE>` marks the most
specific of them, unless nothing in the vocabulary is below it (then it always is).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import tantivy

from catalogue.domain.models import Dataset
from catalogue.index.tantivy_analysis import LANGUAGES, PLAIN, analyzer_name
from catalogue.ontology.facets import FAMILIES, ConceptFacets, concept_facets
from catalogue.ontology.vocabulary import Concept, Vocabulary

SCHEMA_VERSION = 5
"""Bumped when the schema changes; an index of another schema is rebuilt empty."""

DATASET_FIELDS = {"title": 3.0, "terms": 2.0, "keywords": 1.5, "description": 1.0}
"""The dataset's own text fields (English analysis) and their boosts."""

LABEL_FIELDS = {f"labels_{language}": language for language in (*LANGUAGES, PLAIN)}
"""Concept label fields and their analyzer's language."""

LABEL_BOOST = 1.5

PLAIN_FACETS = ("provider", "access_rights", "license", "theme")
"""Facets over plain values (each also its own filter field)."""

CONCEPT_FACETS = tuple(FAMILIES)
"""Facets over concepts."""

SPECIFIC = "+"
"""Suffix of a concept facet's name in the values that mark its most specific concepts."""


def schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in ("key", "provider"):
        builder.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
    for name in DATASET_FIELDS:
        builder.add_text_field(name, tokenizer_name=analyzer_name("en"))
    for name, language in LABEL_FIELDS.items():
        builder.add_text_field(name, tokenizer_name=analyzer_name(language))
    for name in ("concepts", *PLAIN_FACETS[1:]):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("facets", tokenizer_name="raw", fast=True, index_option="basic")
    builder.add_text_field("sort_title", tokenizer_name="raw", fast=True)
    builder.add_bytes_field("payload", stored=True)  # the Dataset JSON, not indexed
    builder.add_unsigned_field(f"schema_v{SCHEMA_VERSION}", indexed=False)
    return builder.build()


def key(provider_id: str, identifier: str) -> str:
    return f"{provider_id}\x1f{identifier}"


class DocumentBuilder:
    """Dataset -> tantivy document, with the concept labels of one vocabulary (cached)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.facets: ConceptFacets = concept_facets(vocabulary)
        self._labels: dict[str, list[tuple[str, str]]] = {}

    def labels(self, curie: str) -> list[tuple[str, str]]:
        """(label field, text) of a concept: every label, synonym and its notation."""
        found = self._labels.get(curie)
        if found is None:
            concept = self.vocabulary.concepts.get(curie)
            found = self._labels[curie] = list(_labels(concept)) if concept else []
        return found

    def document(self, dataset: Dataset) -> tantivy.Document:
        summary = dataset.summary
        terms = [*dataset.cancer_types, *dataset.body_sites, *dataset.modalities]
        if summary is not None:
            terms += [*summary.body_parts, *summary.modalities]
        fields: dict[str, list[str]] = {name: [] for name in LABEL_FIELDS}
        for curie in dataset.concepts:
            for name, text in self.labels(curie):
                fields[name].append(text)
        plain = {
            "provider": [dataset.provider_id],
            "access_rights": [dataset.access_rights] if dataset.access_rights else [],
            "license": [dataset.license] if dataset.license else [],
            "theme": sorted(set(dataset.themes)),
        }
        facets = [f"{name}={value}" for name, values in plain.items() for value in values]
        for family, (held, specific) in self.facets.split(dataset.concepts).items():
            facets += [f"{family}={c}" for c in sorted(held)]
            marked = (c for c in sorted(specific) if self.facets.has_below(c))
            facets += [f"{family}{SPECIFIC}={c}" for c in marked]
        return tantivy.Document(
            key=key(dataset.provider_id, dataset.identifier),
            provider=dataset.provider_id,
            title=dataset.title,
            description=dataset.description,
            keywords=list(dataset.keywords),
            terms=terms,
            concepts=list(dataset.concepts),
            access_rights=plain["access_rights"],
            license=plain["license"],
            theme=plain["theme"],
            facets=facets,
            sort_title=dataset.title.casefold(),
            payload=dataset.model_dump_json().encode(),
            **fields,
        )


def _labels(concept: Concept) -> Iterator[tuple[str, str]]:
    kinds: Iterable[tuple[str, Iterable[str]]] = (
        *((lang, (text,)) for lang, text in concept.pref_labels.items()),
        *concept.alt_labels.items(),
        *concept.hidden_labels.items(),
        ("", (concept.notation,) if concept.notation else ()),
    )
    for tag, texts in kinds:
        language = tag.split("-")[0].lower()
        field = f"labels_{language}" if language in LANGUAGES else f"labels_{PLAIN}"
        for text in texts:
            yield field, text
