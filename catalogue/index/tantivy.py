"""DatasetIndex on tantivy on disk: BM25 with per-language stemming over datasets' text and
their concepts' labels, concept expansion, filters and exact facet counts.

Fields and analyzers: `tantivy_documents`, `tantivy_analysis`. A query text becomes clauses
(`text_query`); each clause matches its words in any text field (each field analysing them
with its own analyzer; the best field counts, others a little) or, when the words name a
concept, any dataset whose closure holds it: a dataset annotated only with "Lung Non-Small
Cell Carcinoma" is found by "lung carcinoma", "NSCLC" or a German label of either. Clauses
are required as `TextQuery.required` says; when that finds nothing, any clause will do.
Facets are one terms aggregation on one fast field, sized beyond the number of distinct values
so that every count is exact; matches that are most of the index are counted as every document
(counted once per commit) less the others.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import tantivy

from catalogue.config import IndexSettings
from catalogue.domain.models import Dataset
from catalogue.exceptions import StoreError
from catalogue.index.base import FacetCounts, SearchFilters, SearchOrder, SearchPage
from catalogue.index.tantivy_analysis import LANGUAGES, PLAIN, analyzer, is_stop_word, register
from catalogue.index.tantivy_documents import (
    CONCEPT_FACETS,
    DATASET_FIELDS,
    LABEL_BOOST,
    LABEL_FIELDS,
    PLAIN_FACETS,
    SPECIFIC,
    DocumentBuilder,
    key,
    schema,
)
from catalogue.index.text_query import Segment, TextQuery, parse
from catalogue.ontology.facets import concept_facets
from catalogue.ontology.vocabulary import Vocabulary, shipped_vocabulary

log = logging.getLogger(__name__)

MAX_FACET_VALUES = 100
"""Values listed per facet, most frequent first."""

_BUCKETS = 16_384
"""Terms aggregation size to start with (more than the shipped concepts); a larger one is asked
for when a field has more values. Oversizing is not free: buckets are allocated."""

_TIE_BREAKER = 0.2
"""How much the other fields matching a word add to the best one."""

_CONCEPT_BOOST = 2.0

_FIELD_LANGUAGES = {
    **{name: "en" for name in DATASET_FIELDS},
    **LABEL_FIELDS,
}


class TantivyDatasetIndex:
    """One tantivy index; documents hold the Dataset JSON so hits need no store round trip.
    Labels and query concepts come from `vocabulary` (default: the shipped vocabularies)."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> TantivyDatasetIndex:
        """The index in the `path` folder (`settings` name no server)."""
        return cls(path)

    def __init__(self, path: Path, vocabulary: Vocabulary | None = None) -> None:
        self._index, self.emptied = _open(path)
        """`emptied`: an index of an older schema was found and emptied; rebuild it."""
        self._index.config_reader(reload_policy="manual")  # searchers change at `_write` only
        register(self._index)
        self._schema = self._index.schema
        self._lock = threading.Lock()
        self._reader = threading.Lock()
        """Held to change or read together the searcher and the generation."""
        self._vocabulary = vocabulary
        self._builder: DocumentBuilder | None = None
        self._generation = 0
        """Bumped after each commit: what `_everything` was counted on."""
        self._everything: tuple[int, dict[str, dict[str, int]], FacetCounts] | None = None

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = shipped_vocabulary()
        return self._vocabulary

    def replace_provider(self, provider_id: str, datasets: list[Dataset]) -> None:
        self._write(datasets, provider=provider_id)

    def replace_all(self, datasets: Mapping[str, list[Dataset]]) -> None:
        """Make these every provider's datasets, in one commit."""
        self._write([d for found in datasets.values() for d in found], everything=True)

    def update(self, datasets: list[Dataset], removed: list[tuple[str, str]]) -> None:
        self._write(datasets, keys=[key(*d.key) for d in datasets] + [key(*k) for k in removed])

    def _write(
        self,
        datasets: list[Dataset],
        provider: str | None = None,
        keys: list[str] | None = None,
        everything: bool = False,
    ) -> None:
        """Delete every document, a provider's or the given keys, add `datasets`: one
        commit."""
        if self._builder is None:
            self._builder = DocumentBuilder(self.vocabulary)
        documents = [self._builder.document(d) for d in datasets]
        with self._lock:
            writer = self._index.writer(heap_size=64_000_000, num_threads=1)
            try:
                if everything:
                    writer.delete_all_documents()
                if provider is not None:
                    writer.delete_documents_by_term("provider", provider)
                for k in keys or ():
                    writer.delete_documents_by_term("key", k)
                for document in documents:
                    writer.add_document(document)
                writer.commit()
            except Exception:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            with self._reader:
                self._index.reload()
                self._generation += 1

    def search(
        self,
        text: str | None,
        offset: int,
        limit: int,
        filters: SearchFilters | None = None,
        facets: bool = False,
        *,
        order: SearchOrder = "relevance",
        providers: tuple[str, ...] = (),
        expand: bool = True,
    ) -> SearchPage:
        filters = (filters or SearchFilters()).with_providers(providers)
        with self._reader:
            generation, searcher = self._generation, self._index.searcher()
        parsed = parse(text, self.vocabulary if expand else None, is_stop_word) if text else None
        ranked = parsed is not None and bool(parsed.clauses) and order == "relevance"
        query = self._query(parsed, filters, expand)
        result = self._run(searcher, query, offset, limit, ranked)
        if _count(result) == 0 and parsed is not None and parsed.required() > 1:
            query = self._query(parsed, filters, expand, required=1)
            result = self._run(searcher, query, offset, limit, ranked)
        hits = result.hits[:limit] if limit > 0 else []
        datasets = [
            Dataset.model_validate_json(searcher.doc(address)["payload"][0]) for _, address in hits
        ]
        counts = self._facets(searcher, generation, query, _count(result)) if facets else {}
        return SearchPage(total=_count(result), datasets=datasets, facets=counts)

    @staticmethod
    def _run(
        searcher: tantivy.Searcher, query: tantivy.Query, offset: int, limit: int, ranked: bool
    ) -> tantivy.SearchResult:
        return searcher.search(
            query,
            limit=max(limit, 0) or 1,
            count=True,
            offset=offset,
            order_by_field=None if ranked else "sort_title",
            order=tantivy.Order.Asc,
        )

    # -- queries

    def _query(
        self,
        parsed: TextQuery | None,
        filters: SearchFilters,
        expand: bool,
        required: int | None = None,
    ) -> tantivy.Query:
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        if parsed is not None:
            fields = list(_FIELD_LANGUAGES) if expand else list(DATASET_FIELDS)
            clauses = [q for c in parsed.clauses if (q := self._clause(c, fields)) is not None]
            if clauses:
                need = min(required or parsed.required(), len(clauses))
                should = [(tantivy.Occur.Should, q) for q in clauses]
                parts.append((tantivy.Occur.Must, tantivy.Query.boolean_query(should, need)))
            elif parsed.clauses:  # words, but none any analyzer keeps: nothing matches
                return tantivy.Query.empty_query()
            for segment in parsed.excluded:
                excluded = self._segment(segment, fields)
                if excluded is not None:
                    parts.append((tantivy.Occur.MustNot, excluded))
        parts.extend((tantivy.Occur.Must, f) for f in self._filters(filters))
        if not any(occur == tantivy.Occur.Must for occur, _ in parts):
            parts.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        return tantivy.Query.boolean_query(parts)

    def _clause(self, alternatives: tuple[Segment, ...], fields: list[str]) -> tantivy.Query | None:
        queries = [q for s in alternatives if (q := self._segment(s, fields)) is not None]
        if len(queries) <= 1:
            return queries[0] if queries else None
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])

    def _segment(self, segment: Segment, fields: list[str]) -> tantivy.Query | None:
        """The segment's words in the text fields, or one of the concepts it names."""
        options: list[tantivy.Query] = []
        if segment.phrase:
            text = self._phrase(" ".join(segment.words), fields)
        else:
            words = [self._phrase(w, fields) for w in segment.words]
            kept = [w for w in words if w is not None]
            text = (
                kept[0]
                if len(kept) == 1
                else tantivy.Query.boolean_query([(tantivy.Occur.Must, w) for w in kept])
                if kept
                else None
            )
        if text is not None:
            options.append(text)
        if segment.concepts:
            terms = [
                tantivy.Query.term_query(self._schema, "concepts", c, index_option="basic")
                for c in segment.concepts
            ]
            options.append(
                tantivy.Query.boost_query(
                    tantivy.Query.disjunction_max_query(terms), _CONCEPT_BOOST
                )
            )
        if len(options) <= 1:
            return options[0] if options else None
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in options])

    def _phrase(self, text: str, fields: list[str]) -> tantivy.Query | None:
        """Text in any of the fields (adjacent tokens when it analyses to several), the best
        field scoring."""
        tokens = {lang: analyzer(lang).analyze(text) for lang in {*LANGUAGES, PLAIN}}
        per_field = []
        for name in fields:
            words = tokens[_FIELD_LANGUAGES[name]]
            if not words:
                continue
            if len(words) == 1:
                query = tantivy.Query.term_query(self._schema, name, words[0])
            else:
                query = tantivy.Query.phrase_query(self._schema, name, list(words))
            boost = DATASET_FIELDS.get(name, LABEL_BOOST)
            per_field.append(tantivy.Query.boost_query(query, boost))
        if not per_field:
            return None
        return tantivy.Query.disjunction_max_query(per_field, _TIE_BREAKER)

    def _filters(self, filters: SearchFilters) -> list[tantivy.Query]:
        """One unscored query per restriction."""
        restrictions = [
            ("provider", filters.providers),
            ("access_rights", filters.access_rights),
            ("license", filters.licenses),
            ("theme", filters.themes),
            *(("concepts", tuple(group)) for group in filters.concepts),
        ]
        out = []
        for name, values in restrictions:
            if values or name == "concepts":
                terms = tantivy.Query.term_set_query(self._schema, name, sorted(set(values)))
                out.append(tantivy.Query.const_score_query(terms, 0.0))
        return out

    # -- facets

    def _facets(
        self, searcher: tantivy.Searcher, generation: int, query: tantivy.Query, count: int
    ) -> FacetCounts:
        """Exact counts over the matches: counted directly; or, when they are more than half
        of the index, as every document's counts (kept per index generation) less the counts
        of the other documents."""
        everything = searcher.num_docs
        if count <= everything // 2:
            return self._shape(_counts(searcher, query))
        cached = self._everything
        if cached is None or cached[0] != generation:
            counted = _counts(searcher, tantivy.Query.all_query())
            cached = self._everything = (generation, counted, self._shape(counted))
        if count == everything:
            return cached[2]
        others = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, query)]
        )
        less = _counts(searcher, others)
        return self._shape(
            {
                name: {v: n - less.get(name, {}).get(v, 0) for v, n in values.items()}
                for name, values in cached[1].items()
            }
        )

    def _shape(self, counts: dict[str, dict[str, int]]) -> FacetCounts:
        """Plain facets as counted; a concept facet lists its most specific values present
        (marked, or with nothing below them in the vocabulary), with their closure counts."""
        out: FacetCounts = {
            name: _top((v, n) for v, n in counts.get(name, {}).items() if n > 0)
            for name in PLAIN_FACETS
        }
        facets = concept_facets(self.vocabulary)
        for name in CONCEPT_FACETS:
            closure, marked = counts.get(name, {}), counts.get(f"{name}{SPECIFIC}", {})
            out[name] = _top(
                (v, n)
                for v, n in closure.items()
                if n > 0 and (marked.get(v, 0) > 0 or not facets.has_below(v))
            )
        return out

    def get(self, provider_id: str, identifier: str) -> Dataset | None:
        searcher = self._index.searcher()
        query = tantivy.Query.term_query(self._schema, "key", key(provider_id, identifier))
        hits = searcher.search(query, limit=1).hits
        if not hits:
            return None
        return Dataset.model_validate_json(searcher.doc(hits[0][1])["payload"][0])

    def all(self) -> list[Dataset]:
        searcher = self._index.searcher()
        total = searcher.num_docs
        if total == 0:
            return []
        hits = searcher.search(tantivy.Query.all_query(), limit=total).hits
        found = [Dataset.model_validate_json(searcher.doc(a)["payload"][0]) for _, a in hits]
        return sorted(found, key=lambda d: d.key)

    def close(self) -> None:
        self.__dict__.pop("_index", None)


def _counts(searcher: tantivy.Searcher, query: tantivy.Query) -> dict[str, dict[str, int]]:
    """Documents per value of the `facets` field over the documents `query` matches, by facet
    (and `<family>+`): one terms aggregation asked for more buckets than there are values
    (checked: tantivy reports the documents of values left out), so every count is exact."""
    size = _BUCKETS
    while True:
        request = {"facets": {"terms": {"field": "facets", "size": size, "segment_size": size}}}
        result = searcher.aggregate(query, request)["facets"]
        if not result.get("sum_other_doc_count"):
            break
        size *= 16
    counts: dict[str, dict[str, int]] = {}
    for bucket in result["buckets"]:
        name, _, value = str(bucket["key"]).partition("=")
        counts.setdefault(name, {})[value] = int(bucket["doc_count"])
    return counts


def _count(result: tantivy.SearchResult) -> int:
    return int(getattr(result, "count", 0) or 0)


def _top(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    return heapq.nsmallest(MAX_FACET_VALUES, counts, key=lambda item: (-item[1], item[0]))


def _open(path: Path) -> tuple[tantivy.Index, bool]:
    """Open or create the index; one of an older schema is emptied (it is derived data): the
    index, and whether it was."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        return tantivy.Index(schema(), path=str(path), reuse=True), False
    except ValueError as exc:
        if "schema does not match" not in str(exc):
            raise StoreError.cannot_open("tantivy index", path, exc) from exc
    log.warning("%s holds an index of an older schema: emptied, to be rebuilt", path)
    for file in path.iterdir():
        if file.is_file():
            file.unlink()
    try:
        return tantivy.Index(schema(), path=str(path), reuse=True), True
    except ValueError as exc:
        raise StoreError.cannot_open("tantivy index", path, exc) from exc
