"""DatasetIndex on tantivy on disk: BM25 over titles, descriptions and keywords, with stemming."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import tantivy

from catalogue.domain.models import Dataset
from catalogue.exceptions import StoreError
from catalogue.index.base import SearchPage

_TEXT_FIELDS = ("title", "description", "keywords", "cancer_types", "body_sites", "modalities")
_BOOSTS = {"title": 3.0, "cancer_types": 2.0, "body_sites": 2.0, "keywords": 1.5}


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", stored=True, tokenizer_name="raw", fast=True)
    builder.add_text_field("provider", stored=True, tokenizer_name="raw", fast=True)
    for name in _TEXT_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="en_stem")
    builder.add_text_field("sort_title", stored=False, tokenizer_name="raw", fast=True)
    builder.add_text_field("payload", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


def _key(provider_id: str, identifier: str) -> str:
    return f"{provider_id}\x1f{identifier}"


def _document(dataset: Dataset) -> tantivy.Document:
    return tantivy.Document(
        key=_key(dataset.provider_id, dataset.identifier),
        provider=dataset.provider_id,
        title=dataset.title,
        description=dataset.description,
        keywords=" ; ".join(dataset.keywords),
        cancer_types=" ; ".join(dataset.cancer_types),
        body_sites=" ; ".join(dataset.body_sites),
        modalities=" ; ".join(dataset.modalities),
        sort_title=dataset.title.casefold(),
        payload=dataset.model_dump_json(),
    )


class TantivyDatasetIndex:
    """One tantivy index; documents hold the Dataset JSON so hits need no store round trip."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._index = tantivy.Index(_schema(), path=str(path), reuse=True)
        except ValueError as exc:
            raise StoreError.cannot_open("tantivy index", path, exc) from exc
        self._lock = threading.Lock()

    def replace_provider(self, provider_id: str, datasets: list[Dataset]) -> None:
        self._write(datasets, provider=provider_id)

    def update(self, datasets: list[Dataset], removed: list[tuple[str, str]]) -> None:
        self._write(datasets, keys=[_key(*d.key) for d in datasets] + [_key(*k) for k in removed])

    def _write(
        self, datasets: list[Dataset], provider: str | None = None, keys: list[str] | None = None
    ) -> None:
        """Delete a provider's documents or the given keys, add `datasets`: one commit."""
        with self._lock:
            writer = self._index.writer(heap_size=64_000_000, num_threads=1)
            try:
                if provider is not None:
                    writer.delete_documents_by_term("provider", provider)
                for key in keys or ():
                    writer.delete_documents_by_term("key", key)
                for dataset in datasets:
                    writer.add_document(_document(dataset))
                writer.commit()
            except Exception:
                writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()
            self._index.reload()

    def _query(self, text: str | None, providers: tuple[str, ...]) -> tantivy.Query:
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = []
        if text and text.strip():
            parsed, _errors = self._index.parse_query_lenient(
                text, list(_TEXT_FIELDS), field_boosts=_BOOSTS
            )
            parts.append((tantivy.Occur.Must, parsed))
        if providers:
            schema = self._index.schema
            alternatives = [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "provider", p))
                for p in providers
            ]
            parts.append((tantivy.Occur.Must, tantivy.Query.boolean_query(alternatives)))
        if not parts:
            return tantivy.Query.all_query()
        return tantivy.Query.boolean_query(parts)

    def search(
        self, text: str | None, offset: int, limit: int, providers: tuple[str, ...] = ()
    ) -> SearchPage:
        searcher = self._index.searcher()
        query = self._query(text, providers)
        ranked = bool(text and text.strip())
        result = searcher.search(
            query,
            limit=max(limit, 0) or 1,
            count=True,
            offset=offset,
            order_by_field=None if ranked else "sort_title",
            order=tantivy.Order.Asc,
        )
        hits = result.hits[:limit] if limit > 0 else []
        datasets = [
            Dataset.model_validate_json(searcher.doc(address)["payload"][0]) for _, address in hits
        ]
        return SearchPage(total=int(getattr(result, "count", 0) or 0), datasets=datasets)

    def get(self, provider_id: str, identifier: str) -> Dataset | None:
        searcher = self._index.searcher()
        query = tantivy.Query.term_query(self._index.schema, "key", _key(provider_id, identifier))
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
        found = [json.loads(searcher.doc(a)["payload"][0]) for _, a in hits]
        return sorted((Dataset.model_validate(d) for d in found), key=lambda d: d.key)

    def close(self) -> None:
        self.__dict__.pop("_index", None)
