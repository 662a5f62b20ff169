"""DatasetIndex on Elasticsearch: the tantivy backend's search (`catalogue.index.tantivy`) on a
cluster, with the same documents, query clauses, filters and facet semantics.

Mapping: schemas/index/datasets.json (its `_meta` says what each choice stands for). Every
text field is analysed here with the tantivy backend's analyzers (simple tokenizer, lowercase,
Snowball stemmer of the field's language, ASCII folding) and only split on whitespace by the
server: both engines index the same tokens, and a cluster needs no language plugin.

Scores are tantivy's, to float precision, so the relevance order is the same but among equal
scores (ties: title order here, document order there). tantivy's BM25 takes a field's N and
average length over every document, Lucene's over the documents holding the field: here
every document holds every scored field (`FILLER` when it has nothing), which makes the IDF
the same, and each field's k1 and b are recalibrated after each write so that the length
normalisation is too (`_calibrate`).

A query text becomes the clauses of `text_query.parse`; each clause is a `bool` that needs
`TextQuery.required` of them, each word a `dis_max` over the text fields (tie breaker, boosts
as in tantivy) or a term of the concepts (closures) it names; filters are unscored `terms`;
when nothing matches and more than one clause was needed, any clause will do. Facets are one
composite aggregation over the `facets` keyword field, paged to the end, so every count is exact.

Writes: one shard, refresh_interval -1, and one refresh after each write: searches see a
provider's documents all old or all new. Documents to delete are found by search (no
`_delete_by_query` needed) and deleted by id in the same bulk request as the new ones; when the
bulk request fails part-way, the documents searches still see (nothing was refreshed) are
written back and the new ones deleted before the error is raised.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from catalogue.config import ElasticsearchSettings, IndexSettings
from catalogue.domain.models import Dataset
from catalogue.index.base import FacetCounts, SearchFilters, SearchOrder, SearchPage
from catalogue.index.elasticsearch.client import EsClient, version_of
from catalogue.index.tantivy_analysis import analyzer, is_stop_word
from catalogue.index.tantivy_documents import (
    CONCEPT_FACETS,
    DATASET_FIELDS,
    LABEL_BOOST,
    LABEL_FIELDS,
    PLAIN_FACETS,
    SPECIFIC,
    DocumentBuilder,
    key,
)
from catalogue.index.text_query import Segment, TextQuery, parse
from catalogue.ontology.facets import concept_facets
from catalogue.ontology.vocabulary import Vocabulary, shipped_vocabulary

log = logging.getLogger(__name__)

KIND = "datasets"
"""The kind of index (schemas/index/datasets.json, alias `<prefix>-datasets`)."""

MAX_FACET_VALUES = 100
"""Values listed per facet, most frequent first (as tantivy)."""

_PAGE = 10_000
"""Hits or facet buckets asked for per request when reading everything."""

_TIE_BREAKER = 0.2
_CONCEPT_BOOST = 2.0

FILLER = "_"
"""The token of a text field (and the value of `concepts`) a document has nothing in: every
document holds every field, so that Lucene's statistics of a field (the N of the IDF, the
average length) are over every document, as tantivy's are. No analysed word is `_`."""

_FIELD_LANGUAGES = {**{name: "en" for name in DATASET_FIELDS}, **LABEL_FIELDS}

SCORED = (*_FIELD_LANGUAGES, "concepts")
"""Fields with a BM25 similarity of their own (`catalogue_<field>`), calibrated (`_calibrate`)."""

K1, B = 1.2, 0.75
"""tantivy's BM25 parameters."""

_SORT_TITLE_CHARS = 1_000
"""Titles are sorted on their first characters (a keyword term has a size limit)."""


FACTORS_SECONDS = 30.0
CALIBRATION_TOLERANCE = 1e-9
"""Similarities are changed (the index closed and opened again, searches meanwhile waiting)
when a field's k1 or b is off by more than this share: scores then equal tantivy's exactly.
Each write that changes the fields' statistics costs one close and open (well under a second on
one node): a larger tolerance would trade exactness for fewer of them."""


def _off(have: str | None, want: str) -> bool:
    """Whether a similarity parameter is missing or further from `want` than the tolerance."""
    if have is None:
        return True
    try:
        return abs(float(have) - float(want)) > CALIBRATION_TOLERANCE * abs(float(want))
    except ValueError:
        return have != want


def document_id(provider_id: str, identifier: str) -> str:
    """A document's `_id`: a digest of its key (identifiers may be IRIs longer than an id)."""
    return hashlib.blake2b(key(provider_id, identifier).encode(), digest_size=16).hexdigest()


def _analysed(text: str, language: str) -> list[str]:
    return list(analyzer(language).analyze(text))


def _tokens(values: list[str], language: str) -> list[str]:
    """A text field's values as their tokens (tantivy's analyzer of the language), one string
    of them per value that has any; `[FILLER]` when none has."""
    analysed = [" ".join(words) for v in values if (words := _analysed(v, language))]
    return analysed or [FILLER]


class ElasticsearchDatasetIndex:
    """The alias `<prefix>-datasets` of a cluster; documents hold the Dataset JSON so hits need
    no store round trip. Labels and query concepts come from `vocabulary` (default: the shipped
    vocabularies)."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> ElasticsearchDatasetIndex:
        """The index of `settings.elasticsearch` (`path` is not used: the data is on the
        cluster)."""
        return cls(settings.elasticsearch)

    def __init__(
        self, settings: ElasticsearchSettings, vocabulary: Vocabulary | None = None
    ) -> None:
        self.client = EsClient(settings)
        self.alias = self.client.alias(KIND)
        try:
            self.emptied = self._ensure()
            """An index of an older mapping was found: a new empty one replaced it."""
        except BaseException:
            self.client.close()
            raise
        self._vocabulary = vocabulary
        self._builder: DocumentBuilder | None = None
        self._lock = threading.Lock()
        self._factors_read: tuple[float, dict[str, float]] | None = None

    def _ensure(self) -> bool:
        """Create the index behind the alias if there is none; replace one of another mapping
        version by a new empty index (True: the catalogue rebuilds it)."""
        current = self.client.current(KIND)
        if current is None:
            self.client.ensure(KIND)
            return False
        made = f"{self.alias}-{version_of(self.client.body(KIND))}"
        if current == made or current.startswith(f"{made}-"):
            return False
        log.warning(
            "%s holds an index of an older mapping (%s): it serves until the catalogue's "
            "rebuild (replace_all) swaps a new one in",
            self.alias,
            current,
        )
        return True

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = shipped_vocabulary()
        return self._vocabulary

    # -- writes

    def replace_provider(self, provider_id: str, datasets: list[Dataset]) -> None:
        with self._lock:
            old = {hit["_id"] for hit in self._scan({"term": {"provider": provider_id}}, [])}
            self._write(datasets, old)

    def replace_all(self, datasets: Mapping[str, list[Dataset]]) -> None:
        """Build a new index of every provider's datasets beside the one the alias points to,
        set its similarities, then move the alias to it in one step and drop the old one:
        searches see the old index until the new one is complete."""
        if self._builder is None:
            self._builder = DocumentBuilder(self.vocabulary)
        with self._lock:
            index = self.client.fresh(KIND)
            try:
                self.client.bulk(
                    {
                        "_op_type": "index",
                        "_index": index,
                        "_id": document_id(*d.key),
                        "_source": self._document(d),
                    }
                    for found in datasets.values()
                    for d in found
                )
                self._refresh(index)
                self._calibrate(index)
            except BaseException:
                self.client.call(lambda es: es.indices.delete(index=index))
                raise
            self.client.swap(KIND, index)
            self._factors_read = None

    def update(self, datasets: list[Dataset], removed: list[tuple[str, str]]) -> None:
        ids = [document_id(*d.key) for d in datasets] + [document_id(*k) for k in removed]
        with self._lock:
            old = {hit["_id"] for hit in self._scan({"ids": {"values": ids}}, [])} if ids else set()
            self._write(datasets, old)

    def _write(self, datasets: list[Dataset], old: set[str]) -> None:
        """Index `datasets` and delete the `old` ids not among them: one bulk request, one
        refresh; on failure what searches saw is written back."""
        if self._builder is None:
            self._builder = DocumentBuilder(self.vocabulary)
        documents = {document_id(*d.key): self._document(d) for d in datasets}
        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": self.alias, "_id": i, "_source": doc}
            for i, doc in documents.items()
        ]
        actions += [
            {"_op_type": "delete", "_index": self.alias, "_id": i}
            for i in sorted(old - documents.keys())
        ]
        if not actions:
            return
        try:
            self.client.bulk(actions)
        except BaseException:
            try:
                self._restore(old, set(documents))
            except Exception:
                log.exception(
                    "%s: writing back the documents before a failed write failed", self.alias
                )
            raise
        self._refresh()
        self._calibrate()

    def _restore(self, old: set[str], new: set[str]) -> None:
        """Write back the `old` documents as searches still see them (nothing was refreshed
        since) and delete the `new` ones that were written."""
        before = list(self._scan({"ids": {"values": sorted(old)}}, True)) if old else []
        added = sorted(new - old)

        async def written(es: Any) -> list[str]:
            found = await es.mget(index=self.alias, ids=added, source=False) if added else None
            return [d["_id"] for d in (found or {}).get("docs", []) if d.get("found")]

        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": self.alias, "_id": h["_id"], "_source": h["_source"]}
            for h in before
        ]
        actions += [
            {"_op_type": "delete", "_index": self.alias, "_id": i}
            for i in self.client.call(written)
        ]
        if actions:
            self.client.bulk(actions)
        self._refresh()
        self._calibrate()

    def _refresh(self, index: str | None = None) -> None:
        async def work(es: Any) -> None:
            await es.indices.refresh(index=index or self.alias)

        self.client.call(work)

    def _calibrate(self, index: str | None = None) -> None:
        """Set each scored field's k1 and b so that Lucene's BM25 normalises lengths as
        tantivy's does.

        tantivy divides a field's tokens by every document (S / N), Lucene by the documents
        holding the field, here every document, fillers counted (F / N, F = S + fillers). With
        r = F / S, k1' = k1 (1 - b) + k1 b r and b' = k1 b r / k1' give
        k1' (1 - b' + b' dl N / F) = k1 (1 - b + b dl N / S) for every length dl. The (k1 + 1)
        Elasticsearch multiplies a term's score by is divided out by `_factors`. Similarities
        change only on a closed index: it is closed and opened again when they change (once
        per write at most, after the refresh). `index`: another than the alias's."""
        index = index or self.client.current(KIND)
        if index is None:
            return

        async def statistics(es: Any) -> tuple[dict[str, Any], dict[str, Any]]:
            vectors = await es.termvectors(
                index=index,
                doc=dict.fromkeys(SCORED, FILLER),
                fields=list(SCORED),
                term_statistics=True,
                field_statistics=True,
                positions=False,
                offsets=False,
            )
            settings = await es.indices.get_settings(index=index, name="index.similarity.*")
            return dict(vectors["term_vectors"]), dict(settings[index]["settings"])

        vectors, settings = self.client.call(statistics)
        current = settings.get("index", {}).get("similarity", {})
        wanted: dict[str, dict[str, str]] = {}
        for name in SCORED:
            found = vectors.get(name, {})
            total = int(found.get("field_statistics", {}).get("sum_ttf", 0))
            fillers = int(found.get("terms", {}).get(FILLER, {}).get("ttf", 0))
            ratio = total / (total - fillers) if total > fillers else 1.0
            k1 = K1 * (1 - B) + K1 * B * ratio
            params = {"type": "BM25", "k1": repr(k1), "b": repr(K1 * B * ratio / k1)}
            have = current.get(f"catalogue_{name}", {})
            if any(_off(have.get(k), v) for k, v in params.items()):
                wanted[f"catalogue_{name}"] = params
        if not wanted:
            return

        async def change(es: Any) -> None:
            await es.indices.close(index=index)
            try:
                await es.indices.put_settings(index=index, settings={"similarity": wanted})
            finally:
                await es.indices.open(index=index)
            await es.cluster.health(index=index, wait_for_status="yellow", timeout="60s")

        self.client.call(change)
        self._factors_read = None

    def _factors(self) -> dict[str, float]:
        """Per scored field: tantivy's (k1 + 1) over the calibrated field's (read again at
        most every FACTORS_SECONDS: another process may have calibrated since)."""
        now = time.monotonic()
        if self._factors_read is not None and now - self._factors_read[0] < FACTORS_SECONDS:
            return self._factors_read[1]
        factors = self._read_factors()
        self._factors_read = (now, factors)
        return factors

    def _read_factors(self) -> dict[str, float]:

        async def work(es: Any) -> dict[str, Any]:
            found = await es.indices.get_settings(index=self.alias, name="index.similarity.*")
            merged: dict[str, Any] = {}
            for index in found.values():  # one index behind the alias
                merged.update(index["settings"].get("index", {}).get("similarity", {}))
            return merged

        similarity = self.client.read(work)
        return {
            name: (K1 + 1) / (float(similarity.get(f"catalogue_{name}", {}).get("k1", K1)) + 1)
            for name in SCORED
        }

    def _document(self, dataset: Dataset) -> dict[str, Any]:
        """The document of a dataset: the fields of `tantivy_documents`, each text field as
        its tokens (`_tokens`)."""
        assert self._builder is not None
        summary = dataset.summary
        terms = [*dataset.cancer_types, *dataset.body_sites, *dataset.modalities]
        if summary is not None:
            terms += [*summary.body_parts, *summary.modalities]
        texts: dict[str, list[str]] = {
            "title": [dataset.title],
            "description": [dataset.description],
            "keywords": list(dataset.keywords),
            "terms": terms,
            **{name: [] for name in LABEL_FIELDS},
        }
        for curie in dataset.concepts:
            for name, text in self._builder.labels(curie):
                texts[name].append(text)
        plain = {
            "provider": [dataset.provider_id],
            "access_rights": [dataset.access_rights] if dataset.access_rights else [],
            "license": [dataset.license] if dataset.license else [],
            "theme": sorted(set(dataset.themes)),
        }
        facets = [f"{name}={value}" for name, values in plain.items() for value in values]
        for family, (held, specific) in self._builder.facets.split(dataset.concepts).items():
            facets += [f"{family}={c}" for c in sorted(held)]
            marked = (c for c in sorted(specific) if self._builder.facets.has_below(c))
            facets += [f"{family}{SPECIFIC}={c}" for c in marked]
        return {
            "key": key(dataset.provider_id, dataset.identifier),
            "provider": dataset.provider_id,
            **{name: _tokens(values, _FIELD_LANGUAGES[name]) for name, values in texts.items()},
            "concepts": list(dataset.concepts) or [FILLER],
            "access_rights": plain["access_rights"],
            "license": plain["license"],
            "theme": plain["theme"],
            "facets": facets,
            "sort_title": dataset.title.casefold()[:_SORT_TITLE_CHARS],
            "payload": dataset.model_dump_json(),
        }

    # -- reads

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
        parsed = parse(text, self.vocabulary if expand else None, is_stop_word) if text else None
        ranked = parsed is not None and bool(parsed.clauses) and order == "relevance"
        query = self._query(parsed, filters, expand)
        result = self._run(query, offset, limit, ranked, facets)
        if _total(result) == 0 and parsed is not None and parsed.required() > 1:
            query = self._query(parsed, filters, expand, required=1)
            result = self._run(query, offset, limit, ranked, facets)
        hits = result["hits"]["hits"][: max(limit, 0)]
        datasets = [Dataset.model_validate_json(h["_source"]["payload"]) for h in hits]
        counts = self._facets(query, result) if facets else {}
        return SearchPage(total=_total(result), datasets=datasets, facets=counts)

    def _run(
        self, query: dict[str, Any], offset: int, limit: int, ranked: bool, facets: bool
    ) -> dict[str, Any]:
        sort: list[Any] = [{"sort_title": "asc"}, {"key": "asc"}]
        if ranked:
            sort.insert(0, {"_score": "desc"})
        options: dict[str, Any] = {
            "index": self.alias,
            "query": query,
            "from_": max(offset, 0),
            "size": max(limit, 0),
            "sort": sort,
            "track_total_hits": True,
            "source_includes": ["payload"],
        }
        if facets:
            options["aggs"] = _facet_aggregation()

        async def work(es: Any) -> dict[str, Any]:
            return dict(await es.search(**options))

        return self.client.read(work)

    # -- queries

    def _query(
        self,
        parsed: TextQuery | None,
        filters: SearchFilters,
        expand: bool,
        required: int | None = None,
    ) -> dict[str, Any]:
        must: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        if parsed is not None:
            factors = self._factors()
            fields = {
                name: DATASET_FIELDS.get(name, LABEL_BOOST) * factors[name]
                for name in (_FIELD_LANGUAGES if expand else DATASET_FIELDS)
            }
            fields["concepts"] = _CONCEPT_BOOST * factors["concepts"]
            clauses = [q for c in parsed.clauses if (q := self._clause(c, fields)) is not None]
            if clauses:
                need = min(required or parsed.required(), len(clauses))
                must.append({"bool": {"should": clauses, "minimum_should_match": need}})
            elif parsed.clauses:  # words, but none any analyzer keeps: nothing matches
                return {"match_none": {}}
            for segment in parsed.excluded:
                excluded = self._segment(segment, fields)
                if excluded is not None:
                    must_not.append(excluded)
        if not must:
            must.append({"match_all": {}})
        return {"bool": {"must": must, "must_not": must_not, "filter": _filters(filters)}}

    def _clause(
        self, alternatives: tuple[Segment, ...], fields: dict[str, float]
    ) -> dict[str, Any] | None:
        queries = [q for s in alternatives if (q := self._segment(s, fields)) is not None]
        if len(queries) <= 1:
            return queries[0] if queries else None
        return {"bool": {"should": queries, "minimum_should_match": 1}}

    def _segment(self, segment: Segment, fields: dict[str, float]) -> dict[str, Any] | None:
        """The segment's words in the text fields, or one of the concepts it names (`fields`:
        the boost of each field searched, and of `concepts`)."""
        options: list[dict[str, Any]] = []
        text: dict[str, Any] | None
        if segment.phrase:
            text = self._phrase(" ".join(segment.words), fields)
        else:
            kept = [q for w in segment.words if (q := self._phrase(w, fields)) is not None]
            text = kept[0] if len(kept) == 1 else {"bool": {"must": kept}} if kept else None
        if text is not None:
            options.append(text)
        if segment.concepts:
            terms = [{"term": {"concepts": c}} for c in segment.concepts]
            options.append({"dis_max": {"queries": terms, "boost": fields["concepts"]}})
        if len(options) <= 1:
            return options[0] if options else None
        return {"bool": {"should": options, "minimum_should_match": 1}}

    def _phrase(self, text: str, fields: dict[str, float]) -> dict[str, Any] | None:
        """Text in any of the fields (adjacent tokens when it analyses to several), the best
        field scoring: its tokens, analysed as each field's were."""
        tokens = {lang: _analysed(text, lang) for lang in set(_FIELD_LANGUAGES.values())}
        per_field: list[dict[str, Any]] = []
        for name, boost in fields.items():
            if name not in _FIELD_LANGUAGES:
                continue
            words = tokens[_FIELD_LANGUAGES[name]]
            if len(words) == 1:
                per_field.append({"term": {name: {"value": words[0], "boost": boost}}})
            elif words:
                query = {"query": " ".join(words), "boost": boost}
                per_field.append({"match_phrase": {name: query}})
        if not per_field:
            return None
        return {"dis_max": {"queries": per_field, "tie_breaker": _TIE_BREAKER}}

    # -- facets

    def _facets(self, query: dict[str, Any], result: dict[str, Any]) -> FacetCounts:
        """Exact counts over the matches: the composite aggregation's buckets of the search,
        then the pages after them."""
        counts: dict[str, dict[str, int]] = {}
        aggregation = result.get("aggregations", {}).get("facets", {})
        while True:
            for bucket in aggregation.get("buckets", []):
                name, _, value = str(bucket["key"]["value"]).partition("=")
                counts.setdefault(name, {})[value] = int(bucket["doc_count"])
            after = aggregation.get("after_key")
            if after is None or len(aggregation.get("buckets", [])) < _PAGE:
                break
            aggregation = self._facet_page(query, after)
        return self._shape(counts)

    def _facet_page(self, query: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        async def work(es: Any) -> dict[str, Any]:
            found = await es.search(
                index=self.alias, query=query, size=0, aggs=_facet_aggregation(after)
            )
            return dict(found["aggregations"]["facets"])

        return self.client.read(work)

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

    # -- documents

    def get(self, provider_id: str, identifier: str) -> Dataset | None:
        query = {"ids": {"values": [document_id(provider_id, identifier)]}}
        for hit in self._scan(query, ["payload"]):
            return Dataset.model_validate_json(hit["_source"]["payload"])
        return None

    def all(self) -> list[Dataset]:
        found = [
            Dataset.model_validate_json(h["_source"]["payload"])
            for h in self._scan({"match_all": {}}, ["payload"])
        ]
        return sorted(found, key=lambda d: d.key)

    def _scan(self, query: dict[str, Any], source: list[str] | bool) -> Iterator[dict[str, Any]]:
        """Every hit of a query (as searches see the index), by key, a page at a time."""
        after: list[Any] | None = None
        while True:
            options: dict[str, Any] = {
                "index": self.alias,
                "query": query,
                "size": _PAGE,
                "sort": [{"key": "asc"}],
                "track_total_hits": False,
                "source": source,
            }
            if after is not None:
                options["search_after"] = after

            async def work(es: Any, options: dict[str, Any] = options) -> list[dict[str, Any]]:
                return list((await es.search(**options))["hits"]["hits"])

            hits = self.client.read(work)
            yield from hits
            if len(hits) < _PAGE:
                return
            after = hits[-1]["sort"]

    def delete(self) -> None:
        """Drop the index and its alias (tests, and deployments leaving the cluster)."""
        current = self.client.current(KIND)

        async def work(es: Any) -> None:
            if current is not None:
                await es.indices.delete(index=current)

        self.client.call(work)

    def close(self) -> None:
        self.client.close()


def _filters(filters: SearchFilters) -> list[dict[str, Any]]:
    """One unscored `terms` query per restriction (an empty concept group matches nothing)."""
    restrictions = [
        ("provider", filters.providers),
        ("access_rights", filters.access_rights),
        ("license", filters.licenses),
        ("theme", filters.themes),
        *(("concepts", tuple(group)) for group in filters.concepts),
    ]
    return [
        {"terms": {name: sorted(set(values))}}
        for name, values in restrictions
        if values or name == "concepts"
    ]


def _facet_aggregation(after: dict[str, Any] | None = None) -> dict[str, Any]:
    composite: dict[str, Any] = {
        "size": _PAGE,
        "sources": [{"value": {"terms": {"field": "facets"}}}],
    }
    if after is not None:
        composite["after"] = after
    return {"facets": {"composite": composite}}


def _total(result: dict[str, Any]) -> int:
    return int(result["hits"]["total"]["value"])


def _top(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    return heapq.nsmallest(MAX_FACET_VALUES, counts, key=lambda item: (-item[1], item[0]))
