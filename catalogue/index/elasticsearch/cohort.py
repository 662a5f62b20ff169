"""The cohort index on Elasticsearch: one document per (provider, subject) with its studies nested
in it and their series nested in them (schemas/index/cohort.json), so that the exists-semantics of
the query model (docs/feasibility.md) are nested queries (cohort_query.py). Counts are exact, no
approximate cardinality, and computed by aggregations, not by listing identifiers: subjects are
document counts of filter aggregations, series the counts of the counted nested series, studies
the study objects holding them (`reverse_nested`). Fingerprints are XORs: each document (study
object, series) keeps the positions of its pseudonym's set bits, so a terms aggregation on them
gives per bit how many members set it, whose parity is the XOR's bit. Sketch buckets and linkage
registers (the largest rank per register) are terms aggregations too. Only identifiers held by
several documents (a study id of several subjects, a subject of several providers: the `shared`
registry, renewed on each write) are listed, to count them once; when they are too many for one
request, in partitions. Strata tables are asked for in pieces under the cluster's bucket limit.

Writes rebuild the documents of the subjects a change touches: a source's rows are replaced by
reading those subjects' other rows back from their documents (each series keeps its original
row), so that the subject's sex and the annotation bits, which span sources, are recomputed.
Diagnoses (one document per provider, source and subject), value concepts and their mapping
version are kept in documents of their own (`kind`). Elasticsearch has no transactions: a source is
first read whole into a temporary DuckDB file (on disk, so memory stays bounded at any size), so a
source that fails to read keeps its previous rows; its rows are then sorted by subject and written
a group of whole subjects at a time. A cluster failure part-way through can leave some of the
touched subjects old and some new until the next write. An index of an
older mapping is rebuilt on opening from the rows its documents keep (`_migrate`)."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import duckdb
import pyarrow as pa

from catalogue.config import IndexSettings
from catalogue.domain.cohort import (
    CellEvidence,
    CohortQuery,
    Criterion,
    ExactCounts,
    ExactResult,
    ExactSummary,
    SeriesCriteria,
    StrataTable,
    Stratum,
    StratumCell,
)
from catalogue.domain.linkage import REGISTERS, HllSketch
from catalogue.exceptions import QueryError, StoreError
from catalogue.imaging.features import SERIES_SCHEMA, as_series_batch
from catalogue.index.elasticsearch.client import EsClient, version_of
from catalogue.index.elasticsearch.cohort_documents import (
    SKETCH_MASK,
    build_documents,
    code,
    from_bits,
    subject_id,
    xor_all,
)
from catalogue.index.elasticsearch.cohort_query import (
    MATCH_ALL,
    MATCH_NONE,
    SERIES,
    STUDIES,
    Compiler,
    Query,
    cell_key,
    conj,
    counted_parts,
    dimension_value,
    neg,
    rows_where,
    s,
    strata_domain,
)
from catalogue.ontology.curie import is_curie

log = logging.getLogger(__name__)

KIND = "cohort"
VALUE_FIELDS = ("body_part", "modality", "manufacturer")
PAGE = 1_000
TERMS_SIZE = 40_000
"""Identifiers fetched per terms aggregation and partition; more partitions when exceeded."""
IDS_PER_REQUEST = 16_000
"""Identifiers (bounded by document counts) one request of a partitioned answer lists: under
the cluster's default `search.max_buckets` (65,536)."""
MAX_PARTITIONS = 4_096
CELL_BUCKETS = 40_000
"""Buckets (estimated) the strata cells of one request may take: under `search.max_buckets`."""
SUBJECTS_PER_QUERY = 50_000
"""Subject ids per terms query (the cluster's default `index.max_terms_count` is 65,536)."""
ROWS_PER_WRITE = 10_000
"""Series rows (of whole subjects) a write rebuilds the documents of at a time."""
SUBJECTS_PER_WRITE = 5_000
SPILL_MEMORY = "512MB"
"""DuckDB's memory for sorting a source's spilled rows by subject (beyond it, it uses disk)."""
BIG = 65_000
DATA_FIELDS = {Stratum.MODALITY: "modality", Stratum.BODY_PART: "body_part", Stratum.YEAR: "year"}


def _doc_id(doc: Mapping[str, Any]) -> str:
    """The id of a diagnoses or value concepts document."""
    if doc["kind"] == "diagnoses":
        return _diagnoses_id(str(doc["provider"]), str(doc["source"]), int(doc["subject"]))
    return f"concepts|{doc['provider']}"


def _diagnoses_id(provider: str, source: str, subject: int) -> str:
    return f"diagnoses|{provider}|{source}|{subject}"


def _spill(db: duckdb.DuckDBPyConnection, batches: Iterable[pa.RecordBatch]) -> int:
    """Copy a source's batches into a table `incoming` of a spill database; return the rows."""
    db.register("empty", SERIES_SCHEMA.empty_table())
    db.execute("CREATE TABLE incoming AS SELECT * FROM empty")
    db.unregister("empty")
    total = 0
    for batch in batches:
        batch = as_series_batch(batch)
        db.register("batch", batch)
        db.execute("INSERT INTO incoming SELECT * FROM batch")
        db.unregister("batch")
        total += batch.num_rows
    return total


def _by_subject(db: duckdb.DuckDBPyConnection, source_id: str) -> Iterator[list[dict[str, Any]]]:
    """The spilled rows (with `source`) in subject order, in groups of whole subjects of about
    ROWS_PER_WRITE rows and at most SUBJECTS_PER_WRITE subjects."""
    reader = db.sql("SELECT * FROM incoming ORDER BY subject, study, series").to_arrow_reader(
        ROWS_PER_WRITE
    )
    group: list[dict[str, Any]] = []
    subjects = 0
    for batch in reader:
        for row in as_series_batch(batch).to_pylist():
            row["source"] = source_id
            if group and row["subject"] != group[-1]["subject"]:
                if len(group) >= ROWS_PER_WRITE or subjects >= SUBJECTS_PER_WRITE:
                    yield group
                    group, subjects = [], 0
                subjects += 1
            elif not group:
                subjects = 1
            group.append(row)
    if group:
        yield group


class ElasticsearchCohortIndex:
    """The cohort index in one Elasticsearch index (alias `<prefix>-cohort`)."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> Self:
        """The index on the cluster `settings.elasticsearch` names (`path` is not used)."""
        return cls(EsClient(settings.elasticsearch))

    def __init__(self, client: EsClient, *, owned: bool = True) -> None:
        self._client = client
        self._owned = owned
        self._alias = client.alias(KIND)
        self._lock = threading.Lock()
        current = client.current(KIND)
        made = f"{self._alias}-{version_of(client.body(KIND))}"
        if current is None:
            client.ensure(KIND)
        elif current != made and not current.startswith(f"{made}-"):
            self._migrate(current)

    def _migrate(self, current: str) -> None:
        """Rebuild an index of an older mapping from the rows its documents keep (and its
        diagnoses and value concepts) into a new one, then move the alias to it. A write to
        the old index from another process meanwhile is lost (rewrite that source)."""
        log.warning("%s holds an index of an older mapping (%s): rebuilt", self._alias, current)
        target = self._client.fresh(KIND)
        self._alias = current  # read the old index ...
        diagnoses: dict[str, dict[int, set[str]]] = {}
        kept: list[dict[str, Any]] = []
        for doc in self._scan({"bool": {"must_not": [{"term": {"kind": "subject"}}]}}, ["*"]):
            kept.append(doc)
            if doc.get("kind") == "diagnoses":
                found = diagnoses.setdefault(str(doc["provider"]), {})
                found.setdefault(int(doc["subject"]), set()).update(doc["diagnoses"])
        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": target, "_id": _doc_id(doc), "_source": doc}
            for doc in kept
            if doc.get("kind") in ("diagnoses", "concepts")
        ]
        studies: set[int] = set()
        subjects: set[int] = set()
        for doc in self._scan({"term": {"kind": "subject"}}, ["provider", f"{SERIES}.row"]):
            provider = str(doc["provider"])
            rows = [r["row"] for t in doc.get("studies", ()) for r in t.get("series", ())]
            for doc_id, built in build_documents(
                provider, rows, diagnoses.get(provider, {})
            ).items():
                subjects.add(int(built["subject"]))
                studies.update(int(t["study"]) for t in built["studies"])
                actions.append(
                    {"_op_type": "index", "_index": target, "_id": doc_id, "_source": built}
                )
            if len(actions) >= PAGE:
                self._client.bulk(actions)
                actions = []
        self._client.bulk(actions)
        self._alias = target  # ... and the new one
        self._refresh()
        self._update_shared(studies, subjects)
        self._client.swap(KIND, target)
        self._alias = self._client.alias(KIND)

    # -- cluster access ------------------------------------------------------------------------

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        alias = self._alias

        async def work(es: Any) -> dict[str, Any]:
            response = await es.search(index=alias, **body)
            return dict(response.body)

        return self._client.call(work)

    def _refresh(self) -> None:
        alias = self._alias

        async def work(es: Any) -> None:
            await es.indices.refresh(index=alias)

        self._client.call(work)

    def _scan(self, query: Query, includes: list[str]) -> Iterator[dict[str, Any]]:
        """The `_source` of every document matching `query`, in `_id`-independent pages."""
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": query,
                "size": PAGE,
                "sort": [{"subject": "asc"}, {"source": "asc"}, {"provider": "asc"}],
                "_source": {"includes": includes},
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(body)["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]

    # -- writes --------------------------------------------------------------------------------

    def replace_source(
        self, provider_id: str, source_id: str, batches: Iterable[pa.RecordBatch]
    ) -> int:
        with tempfile.TemporaryDirectory(prefix="catalogue-es-") as spill_dir:
            spill = duckdb.connect(str(Path(spill_dir) / "incoming.duckdb"))
            try:
                spill.execute(f"SET memory_limit = '{SPILL_MEMORY}'")
                total = _spill(spill, batches)  # the whole source, before anything is written
                with self._lock:
                    self._replace(provider_id, source_id, _by_subject(spill, source_id))
            finally:
                spill.close()
        return total

    def _replace(
        self, provider_id: str, source_id: str, incoming: Iterator[list[dict[str, Any]]]
    ) -> None:
        """Rewrite, a group of subjects at a time, the documents of the subjects in `incoming`
        (a source's rows in subject order), then of those that held rows of the source but
        are no longer in it."""
        held = conj(
            [
                {"term": {"kind": "subject"}},
                {"term": {"provider": provider_id}},
                rows_where([{"term": {s("source"): source_id}}]),
            ]
        )
        before = set(self._subjects_where(held))
        seen: set[int] = set()
        studies: set[int] = set()
        for rows in incoming:
            subjects = sorted({int(r["subject"]) for r in rows})
            seen.update(subjects)
            studies.update(self._rewrite(provider_id, subjects, rows, source_id))
        gone = sorted(before - seen)
        for start in range(0, len(gone), SUBJECTS_PER_WRITE):
            chunk = gone[start : start + SUBJECTS_PER_WRITE]
            studies.update(self._rewrite(provider_id, chunk, [], source_id))
        self._refresh()
        self._update_shared(studies, seen | set(gone))

    def _subjects_where(self, query: Query) -> Iterator[int]:
        """The subject pseudonyms of the documents matching `query` (no document is read)."""
        return (int(key) for key in self._keys(query, "subject"))

    def _keys(self, query: Query, field_name: str) -> Iterator[Any]:
        """Every value of `field_name` in the documents matching `query`, paged through a
        composite aggregation."""
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": PAGE,
                "sources": [{"k": {"terms": {"field": field_name}}}],
            }
            if after is not None:
                composite["after"] = after
            found = self._search(
                {"size": 0, "query": query, "aggs": {"s": {"composite": composite}}}
            )["aggregations"]["s"]
            yield from (b["key"]["k"] for b in found["buckets"])
            after = found.get("after_key")
            if after is None or len(found["buckets"]) < PAGE:
                return

    def replace_diagnoses(
        self, provider_id: str, source_id: str, rows: Iterable[tuple[int, str]]
    ) -> int:
        by_subject: dict[int, set[str]] = {}
        for subject, found in rows:
            by_subject.setdefault(int(subject), set()).add(str(found))
        with self._lock:
            query = conj(
                [
                    {"term": {"kind": "diagnoses"}},
                    {"term": {"provider": provider_id}},
                    {"term": {"source": source_id}},
                ]
            )
            before = set(self._subjects_where(query))
            actions: list[dict[str, Any]] = [
                {
                    "_op_type": "index",
                    "_index": self._alias,
                    "_id": _diagnoses_id(provider_id, source_id, subject),
                    "_source": {
                        "kind": "diagnoses",
                        "provider": provider_id,
                        "source": source_id,
                        "subject": subject,
                        "diagnoses": sorted(codes),
                    },
                }
                for subject, codes in sorted(by_subject.items())
            ]
            actions.extend(
                {
                    "_op_type": "delete",
                    "_index": self._alias,
                    "_id": _diagnoses_id(provider_id, source_id, subject),
                }
                for subject in sorted(before - set(by_subject))
            )
            self._client.bulk(actions)
            self._refresh()
            touched = sorted(before | set(by_subject))
            studies: set[int] = set()
            for start in range(0, len(touched), SUBJECTS_PER_WRITE):
                chunk = touched[start : start + SUBJECTS_PER_WRITE]
                studies.update(self._rewrite(provider_id, chunk, [], None))
            self._refresh()
            self._update_shared(studies, touched)
        return sum(len(codes) for codes in by_subject.values())

    def _diagnoses(self, provider_id: str, subjects: list[int]) -> dict[int, set[str]]:
        """The diagnoses (of every source) of some of a provider's subjects."""
        out: dict[int, set[str]] = {}
        query = conj(
            [
                {"term": {"kind": "diagnoses"}},
                {"term": {"provider": provider_id}},
                {"terms": {"subject": subjects}},
            ]
        )
        for doc in self._scan(query, ["subject", "diagnoses"]):
            out.setdefault(int(doc["subject"]), set()).update(doc.get("diagnoses", ()))
        return out

    def _rewrite(
        self,
        provider_id: str,
        subjects: list[int],
        incoming: list[dict[str, Any]],
        source_id: str | None,
    ) -> set[int]:
        """Rewrite the documents of `subjects` (at most SUBJECTS_PER_QUERY): their stored rows
        except those of `source_id`, plus `incoming`, with their diagnoses; delete those left
        with no rows. A subject's document depends on its own rows and diagnoses only. Return
        the study ids the old and new documents held."""
        query = conj(
            [
                {"term": {"kind": "subject"}},
                {"term": {"provider": provider_id}},
                {"terms": {"subject": subjects}},
            ]
        )
        rows: list[dict[str, Any]] = []
        old: set[str] = set()
        studies = {int(r["study"]) for r in incoming}
        for doc in self._scan(query, ["subject", f"{SERIES}.row"]):
            old.add(subject_id(provider_id, int(doc["subject"])))
            for study in doc.get("studies", ()):
                for series in study.get("series", ()):
                    row = series["row"]
                    studies.add(int(row["study"]))
                    if source_id is None or row.get("source") != source_id:
                        rows.append(row)
        rows.extend(incoming)
        docs = build_documents(provider_id, rows, self._diagnoses(provider_id, subjects))
        actions: list[dict[str, Any]] = [
            {"_op_type": "index", "_index": self._alias, "_id": doc_id, "_source": doc}
            for doc_id, doc in docs.items()
        ]
        actions.extend(
            {"_op_type": "delete", "_index": self._alias, "_id": doc_id}
            for doc_id in sorted(old - set(docs))
        )
        if actions:
            self._client.bulk(actions)
        return studies

    # -- identifiers held by several subject documents -----------------------------------------

    def shared(self) -> tuple[list[int], list[int]]:
        """The study ids held by several subject documents (of one or more providers) and the
        subject pseudonyms held by several providers: the few identifiers a count lists (the
        others are counted, and XORed, by aggregations)."""
        for doc in self._scan({"term": {"kind": "shared"}}, ["payload"]):
            payload = doc["payload"]
            return [int(v) for v in payload["studies"]], [int(v) for v in payload["subjects"]]
        return [], []

    def _update_shared(self, studies: Collection[int], subjects: Collection[int]) -> None:
        """Renew the shared identifiers among those a write touched."""
        old_studies, old_subjects = self.shared()
        found_studies = set(old_studies) - set(studies)
        found_subjects = set(old_subjects) - set(subjects)
        for field_name, path, wanted, found in (
            ("studies.study", STUDIES, sorted(studies), found_studies),
            ("subject", None, sorted(subjects), found_subjects),
        ):
            for i in range(0, len(wanted), SUBJECTS_PER_QUERY):
                chunk = wanted[i : i + SUBJECTS_PER_QUERY]
                held: dict[str, Any] = {
                    "terms": {"field": field_name, "size": len(chunk), "min_doc_count": 2}
                }
                aggs: dict[str, Any] = {
                    "f": {"filter": {"terms": {field_name: chunk}}, "aggs": {"ids": held}}
                }
                if path is not None:
                    aggs = {"n": {"nested": {"path": path}, "aggs": aggs}}
                response = self._search(
                    {"size": 0, "query": {"term": {"kind": "subject"}}, "aggs": aggs}
                )["aggregations"]
                node = response["n"] if path is not None else response
                found.update(int(b["key"]) for b in node["f"]["ids"]["buckets"])
        if (found_studies, found_subjects) == (set(old_studies), set(old_subjects)):
            return
        self._client.bulk(
            [
                {
                    "_op_type": "index",
                    "_index": self._alias,
                    "_id": "shared",
                    "_source": {
                        "kind": "shared",
                        "payload": {
                            "studies": sorted(found_studies),
                            "subjects": sorted(found_subjects),
                        },
                    },
                }
            ]
        )
        self._refresh()

    def replace_value_concepts(
        self, provider_id: str, rows: Iterable[tuple[str, str, str]], version: int
    ) -> None:
        found = sorted(set(rows))
        with self._lock:
            self._client.bulk(
                [
                    {
                        "_op_type": "index",
                        "_index": self._alias,
                        "_id": f"concepts|{provider_id}",
                        "_source": {
                            "kind": "concepts",
                            "provider": provider_id,
                            "version": version,
                            "payload": {
                                "fields": [r[0] for r in found],
                                "values": [r[1] for r in found],
                                "concepts": [r[2] for r in found],
                            },
                        },
                    }
                ]
            )
            self._refresh()

    # -- copies (catalogue reindex --to) -------------------------------------------------------

    def sources(self) -> list[tuple[str, str]]:
        """Every (provider, source) holding series rows or diagnoses."""
        found = self._search(
            {
                "size": 0,
                "aggs": {
                    "t": {
                        "nested": {"path": STUDIES},
                        "aggs": {
                            "r": {
                                "nested": {"path": SERIES},
                                "aggs": {
                                    "p": {
                                        "terms": {"field": s("provider"), "size": BIG},
                                        "aggs": {
                                            "s": {"terms": {"field": s("source"), "size": BIG}}
                                        },
                                    }
                                },
                            }
                        },
                    }
                },
            }
        )["aggregations"]["t"]["r"]["p"]["buckets"]
        out = {(str(p["key"]), str(b["key"])) for p in found for b in p["s"]["buckets"]}
        found = self._search(
            {
                "size": 0,
                "query": {"term": {"kind": "diagnoses"}},
                "aggs": {
                    "p": {
                        "terms": {"field": "provider", "size": BIG},
                        "aggs": {"s": {"terms": {"field": "source", "size": BIG}}},
                    }
                },
            }
        )["aggregations"]["p"]["buckets"]
        out.update((str(p["key"]), str(b["key"])) for p in found for b in p["s"]["buckets"])
        return sorted(out)

    def export(self, provider_id: str, source_id: str) -> Iterator[pa.RecordBatch]:
        """A source's series rows as SERIES_SCHEMA batches in (subject, study, series) order,
        read a page of subject documents at a time (to load into another backend)."""
        query = conj(
            [
                {"term": {"kind": "subject"}},
                {"term": {"provider": provider_id}},
                rows_where([{"term": {s("source"): source_id}}]),
            ]
        )
        rows: list[dict[str, Any]] = []
        for doc in self._scan(query, ["subject", f"{SERIES}.row"]):
            mine = [
                {k: r["row"].get(k) for k in SERIES_SCHEMA.names}
                for t in doc.get("studies", ())
                for r in t.get("series", ())
                if r["row"].get("source") == source_id
            ]
            rows.extend(sorted(mine, key=lambda r: (r["study"], r["series"])))
            if len(rows) >= ROWS_PER_WRITE:
                yield pa.RecordBatch.from_pylist(rows, schema=SERIES_SCHEMA)
                rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=SERIES_SCHEMA)

    def export_diagnoses(self, provider_id: str, source_id: str) -> list[tuple[int, str]]:
        """A source's (subject pseudonym, normalised code) pairs."""
        query = conj(
            [
                {"term": {"kind": "diagnoses"}},
                {"term": {"provider": provider_id}},
                {"term": {"source": source_id}},
            ]
        )
        return sorted(
            (int(doc["subject"]), str(found))
            for doc in self._scan(query, ["subject", "diagnoses"])
            for found in doc.get("diagnoses", ())
        )

    def value_concepts(self, provider_id: str) -> list[tuple[str, str, str]]:
        """A provider's (field, raw value, concept) rows."""
        out: list[tuple[str, str, str]] = []
        for doc in self._concept_docs():
            if doc["provider"] == provider_id:
                payload = doc["payload"]
                out.extend(
                    zip(payload["fields"], payload["values"], payload["concepts"], strict=True)
                )
        return sorted(out)

    # -- reads ---------------------------------------------------------------------------------

    def _concept_docs(self) -> list[dict[str, Any]]:
        return list(self._scan({"term": {"kind": "concepts"}}, ["provider", "version", "payload"]))

    def concept_values(self, field: str, concepts: Collection[str]) -> frozenset[tuple[str, str]]:
        if not concepts:
            return frozenset()
        wanted = set(concepts)
        out = set()
        for doc in self._concept_docs():
            payload = doc["payload"]
            for f, value, concept in zip(
                payload["fields"], payload["values"], payload["concepts"], strict=True
            ):
                if f == field and concept in wanted:
                    out.add((str(doc["provider"]), str(value)))
        return frozenset(out)

    def mapping_version(self, provider_id: str | None = None) -> int | None:
        versions = {str(d["provider"]): int(d["version"]) for d in self._concept_docs()}
        if provider_id is not None:
            return versions.get(provider_id)
        return min(versions.values(), default=None)

    def scopes(self) -> list[tuple[str, str]]:
        cells = self._keys({"term": {"kind": "subject"}}, "cells")
        return sorted(
            (provider, dataset)
            for provider, dataset in (str(cell).split("\x1f", 1) for cell in cells)
        )

    def _provider_rows(self, provider_id: str, aggs: dict[str, Any]) -> dict[str, Any]:
        """Aggregations over a provider's series rows (in `r`)."""
        body = {
            "size": 0,
            "query": conj([{"term": {"kind": "subject"}}, {"term": {"provider": provider_id}}]),
            "aggs": {
                "t": {
                    "nested": {"path": STUDIES},
                    "aggs": {"r": {"nested": {"path": SERIES}, "aggs": aggs}},
                }
            },
        }
        found: dict[str, Any] = self._search(body)["aggregations"]["t"]["r"]
        return found

    def summaries(self, provider_id: str) -> dict[str, ExactSummary]:
        by_value = {
            f"v_{column}": {
                "terms": {"field": s(f"raw_{column}"), "size": BIG},
                "aggs": {"subjects": {"reverse_nested": {}}},
            }
            for column in VALUE_FIELDS
        }
        found = self._provider_rows(
            provider_id,
            {
                "d": {
                    "terms": {"field": s("dataset"), "size": BIG},
                    "aggs": {
                        "subjects": {"reverse_nested": {}},
                        "studies": {"reverse_nested": {"path": STUDIES}},
                        "age_min": {"min": {"field": s("age")}},
                        "age_max": {"max": {"field": s("age")}},
                        **by_value,
                    },
                }
            },
        )
        out = {}
        for bucket in found["d"]["buckets"]:
            values = {
                column: {
                    str(b["key"]): int(b["subjects"]["doc_count"])
                    for b in bucket[f"v_{column}"]["buckets"]
                }
                for column in VALUE_FIELDS
            }
            low, high = bucket["age_min"]["value"], bucket["age_max"]["value"]
            out[str(bucket["key"])] = ExactSummary(
                subjects=int(bucket["subjects"]["doc_count"]),
                studies=int(bucket["studies"]["doc_count"]),
                age_min=None if low is None else int(low),
                age_max=None if high is None else int(high),
                subjects_by_modality=values["modality"],
                subjects_by_body_part=values["body_part"],
                subjects_by_manufacturer=values["manufacturer"],
            )
        return out

    def distinct_values(self, provider_id: str, field: str) -> dict[str, tuple[int, int]]:
        if field not in VALUE_FIELDS:
            raise QueryError(f"unknown field {field!r} (known: {', '.join(VALUE_FIELDS)})")
        found = self._provider_rows(
            provider_id,
            {
                "v": {
                    "terms": {"field": s(f"raw_{field}"), "size": BIG},
                    "aggs": {"subjects": {"reverse_nested": {}}},
                }
            },
        )
        return {
            str(b["key"]): (int(b["doc_count"]), int(b["subjects"]["doc_count"]))
            for b in found["v"]["buckets"]
        }

    # -- feasibility ---------------------------------------------------------------------------

    def _expansions(self, tree: Criterion) -> dict[str, frozenset[tuple[str, str]]]:
        """Concept values (CURIEs) of body part and modality criteria -> the (provider,
        normalised raw value) pairs whose concepts hold them."""
        out: dict[str, frozenset[tuple[str, str]]] = {}
        for leaf, _ in tree.leaves():
            items: tuple[SeriesCriteria, ...] = (leaf.series,) if leaf.series else ()
            if leaf.study is not None:
                items = leaf.study.series
            fields = [(f, getattr(i, f)) for i in items for f in ("body_part", "modality")]
            if leaf.study is not None:
                fields.append(("modality", leaf.study.modalities))
            for field_name, values in fields:
                for value in values:
                    if value not in out and is_curie(value):
                        raw = self.concept_values(field_name, [value])
                        out[value] = frozenset(
                            (p, v) for p, v in ((p, code(v)) for p, v in raw) if v
                        )
        return out

    def _listed(
        self,
        strata: tuple[tuple[Stratum, ...], ...],
        rows: Query,
        providers: list[str],
        min_subjects: int,
    ) -> dict[Stratum, tuple[str, ...]]:
        """Per data-valued dimension asked for, the values at least `min_subjects` subjects in
        scope hold."""
        dims = sorted({d for t in strata for d in t} & set(DATA_FIELDS), key=str)
        if not dims:
            return {}
        aggs = {
            str(dim): {
                "terms": {"field": s(DATA_FIELDS[dim]), "size": BIG},
                "aggs": {"subjects": {"reverse_nested": {}}},
            }
            for dim in dims
        }
        body = {
            "size": 0,
            "query": conj([{"term": {"kind": "subject"}}, {"terms": {"provider": providers}}]),
            "aggs": {
                "t": {
                    "nested": {"path": STUDIES},
                    "aggs": {
                        "r": {
                            "nested": {"path": SERIES},
                            "aggs": {"in": {"filter": rows, "aggs": aggs}},
                        }
                    },
                }
            },
        }
        found = self._search(body)["aggregations"]["t"]["r"]["in"]
        return {
            dim: tuple(
                sorted(
                    str(b["key"])
                    for b in found[str(dim)]["buckets"]
                    if b["subjects"]["doc_count"] >= min_subjects
                )
            )
            for dim in dims
        }

    def _pairs(
        self, query: CohortQuery, scopes: frozenset[tuple[str, str]] | None
    ) -> list[tuple[str, str]]:
        scope = query.datasets
        if scope.by_metadata and scopes is None:
            raise QueryError(
                "cancer types, access rights and licences are resolved from the catalogue's "
                "metadata: ask through the feasibility service"
            )
        return [
            pair
            for pair in self.scopes()
            if (not scope.providers or pair[0] in scope.providers)
            and (not scope.datasets or pair[1] in scope.datasets)
            and (scopes is None or pair in scopes)
        ]

    def count(
        self,
        query: CohortQuery,
        *,
        strata: tuple[tuple[Stratum, ...], ...] = (),
        scopes: frozenset[tuple[str, str]] | None = None,
        evidence: bool = False,
        strata_min_subjects: int = 1,
        max_strata_cells: int = 5000,
        linkage: bool = False,
    ) -> ExactResult:
        query = query.normalised()
        tree = query.criterion()
        compiler = Compiler(tree, self._expansions(tree))
        pairs = self._pairs(query, scopes)
        providers = sorted({p for p, _ in pairs})
        everything: Query = {"terms": {s("cell"): [cell_key(*pair) for pair in pairs]}}
        listed = self._listed(strata, everything, providers, strata_min_subjects) if pairs else {}
        if not pairs:
            listed = {d: () for t in strata for d in t if d in DATA_FIELDS}
        domains = [strata_domain(dims, listed) for dims in strata]
        cells = sum(len(d) for d in domains)
        if cells > max_strata_cells:
            raise QueryError(
                f"the strata asked for have {cells} cells; at most {max_strata_cells} are "
                "allowed (ask for fewer dimensions)"
            )
        if not pairs:
            return ExactResult(
                total=ExactCounts(),
                by_provider={},
                by_dataset={},
                strata=tuple(
                    StrataTable(
                        dimensions=dims,
                        cells=tuple(StratumCell(values=v, counts=ExactCounts()) for v in domain),
                    )
                    for dims, domain in zip(strata, domains, strict=True)
                ),
                plan="elasticsearch: nothing in scope",
            )
        linked = self._linked(providers) if linkage else set()
        request = _Request(
            compiler, pairs, providers, strata, domains, listed, linked, self.shared(), evidence
        )
        return request.result([self._answer(request, piece) for piece in request.pieces()])

    def _answer(self, request: _Request, piece: _Piece) -> list[dict[str, Any]]:
        """The responses to one piece of a request: one, or one per partition of the
        identifiers it lists when they are too many for one."""
        partitions = 1
        while True:
            found: list[dict[str, Any]] | None
            try:
                found = [
                    self._search(request.body(piece, i, partitions)) for i in range(partitions)
                ]
            except StoreError as exc:
                if not _too_many_buckets(exc):
                    raise
                found = None
            if found is not None and not any(_overflowed(f["aggregations"]) for f in found):
                return found
            if partitions == 1:  # size the identifiers by the counts alone
                sizes = self._search(request.body(piece, 0, 0))["aggregations"]
                partitions = max(2, -(-_identifiers(sizes) // IDS_PER_REQUEST))
            else:
                partitions *= 2
            if partitions > MAX_PARTITIONS:
                raise StoreError(
                    "the cohort index cannot list the identifiers of this answer in "
                    f"{MAX_PARTITIONS} requests"
                )

    def _linked(self, providers: list[str]) -> set[str]:
        """The providers whose subjects have linkage codes."""
        found = self._search(
            {
                "size": 0,
                "query": conj(
                    [
                        {"term": {"kind": "subject"}},
                        {"terms": {"provider": providers}},
                        {"exists": {"field": "linkage"}},
                    ]
                ),
                "aggs": {"p": {"terms": {"field": "provider", "size": BIG}}},
            }
        )
        return {str(b["key"]) for b in found["aggregations"]["p"]["buckets"]}

    def close(self) -> None:
        if self._owned:
            self._client.close()


def _too_many_buckets(exc: StoreError) -> bool:
    cause = exc.__cause__
    return "too_many_buckets" in f"{getattr(cause, 'body', '')} {cause}"


def _identifiers(node: Any) -> int:
    """A bound on the identifiers a response lists, from the document counts of the buckets
    that list them (shared subjects and studies)."""
    if isinstance(node, dict):
        own = int(node.get("doc_count", 0)) if "ids" in node else 0
        return own + sum(_identifiers(v) for v in node.values())
    if isinstance(node, list):
        return sum(_identifiers(v) for v in node)
    return 0


def _overflowed(node: Any) -> bool:
    """Whether a terms aggregation of the response left identifiers out."""
    if isinstance(node, dict):
        if node.get("sum_other_doc_count", 0) > 0:
            return True
        return any(_overflowed(v) for v in node.values())
    if isinstance(node, list):
        return any(_overflowed(v) for v in node)
    return False


_Piece = tuple[int, int, int]
"""(n, start, stop): cells `start` to `stop` of strata table `n`; with n CELLS of the dataset
cells (the first such piece also has the provider cells); with n LINKAGE the registers of
linked provider `start`."""
CELLS = -1
LINKAGE = -2


class _Request:
    """One count: its requests (`pieces`, each per partition of the identifiers it lists) and
    their reading. Subjects, series and the studies whose id one study object alone holds are
    counted and XORed by aggregations (document counts; per bit position, how many set it);
    only the shared identifiers (`shared`) are listed. Fingerprints and sketches follow the
    DuckDB index: a provider's or dataset's study fingerprint XORs a study id once per subject
    holding it, a strata cell's once; a strata cell's sketch counts a subject once per provider."""

    def __init__(
        self,
        compiler: Compiler,
        pairs: list[tuple[str, str]],
        providers: list[str],
        strata: tuple[tuple[Stratum, ...], ...],
        domains: list[list[tuple[str | None, ...]]],
        listed: Mapping[Stratum, tuple[str, ...]],
        linked: Collection[str],
        shared: tuple[list[int], list[int]],
        evidence: bool,
    ) -> None:
        self.compiler = compiler
        self.pairs = pairs
        self.providers = providers
        self.strata = strata
        self.domains = domains
        self.listed = listed
        self.linked = sorted(linked)
        self.shared_studies, self.shared_subjects = shared
        self.evidence = evidence
        self.everything: Query = {"terms": {s("cell"): [cell_key(*pair) for pair in pairs]}}

    def pieces(self) -> list[_Piece]:
        """The requests of an answer: the provider and dataset cells, then each strata
        table's cells in groups small enough for the cluster's bucket limit."""
        combinations = len(self.compiler.combinations(MATCH_ALL))
        per_cell = combinations * 140 + 70 + (SKETCH_MASK + 1 if self.evidence else 0)
        size = max(1, CELL_BUCKETS // per_cell)
        out: list[_Piece] = [(CELLS, 0, size)]
        out.extend((CELLS, start, start + size) for start in range(size, len(self.pairs), size))
        out.extend((LINKAGE, i, i + 1) for i in range(len(self.linked)))
        for n, domain in enumerate(self.domains):
            out.extend((n, start, start + size) for start in range(0, len(domain), size))
        return out

    def body(self, piece: _Piece, partition: int, partitions: int) -> dict[str, Any]:
        """The request for one piece and one partition of the identifiers (none with
        `partitions` 0)."""

        def ids(field: str) -> dict[str, Any]:
            if partitions == 0:  # counts only
                return {"missing": {"field": field}}
            terms: dict[str, Any] = {"field": field, "size": TERMS_SIZE}
            if partitions > 1:
                terms["include"] = {"partition": partition, "num_partitions": partitions}
            return {"terms": terms}

        def bit_counts(field: str, size: int = 64) -> dict[str, Any]:
            return {"terms": {"field": field, "size": size}}

        def subject_aggs(shared: bool) -> dict[str, Any]:
            """At root level: bits (and sketch buckets) of the subjects, those held by
            several providers listed when `shared`."""
            out: dict[str, Any] = {"sb": bit_counts("subject_bits")}
            if self.evidence:
                out["bk"] = bit_counts("bucket", SKETCH_MASK + 1)
            if shared and self.shared_subjects:
                held: Query = {"terms": {"subject": self.shared_subjects}}
                out["u"] = {"filter": neg(held), "aggs": {"sb": out.pop("sb")}}
                out["sh"] = {"filter": held, "aggs": {"ids": ids("subject")}}
            return out

        def series_aggs(by_provider: bool) -> dict[str, Any]:
            """At series level: the series bits, the studies held by one study object (counted
            and their bits), the shared ones listed (per provider when `by_provider`)."""
            held: Query = (
                {"terms": {s("study"): self.shared_studies}} if self.shared_studies else MATCH_NONE
            )
            out: dict[str, Any] = {
                "xb": bit_counts(s("series_bits")),
                "st": {
                    "filter": neg(held) if self.shared_studies else MATCH_ALL,
                    "aggs": {
                        "t": {
                            "reverse_nested": {"path": STUDIES},
                            "aggs": {"tb": bit_counts(f"{STUDIES}.study_bits")},
                        }
                    },
                },
            }
            if self.shared_studies:
                listing: dict[str, Any] = {"ids": ids(s("study"))}
                if not by_provider:  # the study objects holding each
                    listing["ids"]["aggs"] = {"o": {"reverse_nested": {"path": STUDIES}}}
                if by_provider:
                    listing = {
                        "p": {"terms": {"field": s("provider"), "size": BIG}, "aggs": listing}
                    }
                out["sh"] = {"filter": held, "aggs": listing}
            return out

        c = self.compiler
        everything = self.everything
        if piece[0] >= 0:
            return self._table_body(piece, subject_aggs, series_aggs)
        if piece[0] == LINKAGE:
            return self._linkage_body(self.linked[piece[1]])
        provider_aggs: dict[str, Any] = {
            **subject_aggs(False),
            **c.rows_aggs(everything, series_aggs(False)),
        }
        aggs: dict[str, Any] = {}
        if piece[1] == 0:
            aggs["P"] = {
                "filter": c.matches(everything),
                "aggs": {
                    "by": {
                        "filters": {
                            "filters": {p: {"term": {"provider": p}} for p in self.providers}
                        },
                        "aggs": provider_aggs,
                    }
                },
            }
        for i, pair in enumerate(self.pairs):
            if not piece[1] <= i < piece[2]:
                continue
            rows: Query = {"term": {s("cell"): cell_key(*pair)}}
            aggs[f"D{i}"] = {
                "filter": conj([{"term": {"provider": pair[0]}}, c.matches(rows)]),
                "aggs": {**subject_aggs(False), **c.rows_aggs(rows, series_aggs(False))},
            }
        return {
            "size": 0,
            "track_total_hits": False,
            "query": conj([{"term": {"kind": "subject"}}, {"terms": {"provider": self.providers}}]),
            "aggs": aggs,
        }

    def _linkage_body(self, provider: str) -> dict[str, Any]:
        """The request for the largest rank per register of a provider's matching subjects."""
        return {
            "size": 0,
            "track_total_hits": False,
            "query": conj(
                [
                    {"term": {"kind": "subject"}},
                    {"term": {"provider": provider}},
                    self.compiler.matches(self.everything),
                ]
            ),
            "aggs": {
                "lk": {
                    "terms": {"field": "register", "size": REGISTERS},
                    "aggs": {"rank": {"max": {"field": "rank"}}},
                }
            },
        }

    def _table_body(
        self,
        piece: tuple[int, int, int],
        subject_aggs: Callable[[bool], dict[str, Any]],
        series_aggs: Callable[[bool], dict[str, Any]],
    ) -> dict[str, Any]:
        """The request for cells `start` to `stop` of strata table `n`."""
        n, start, stop = piece
        c = self.compiler
        everything = self.everything
        dims = self.strata[n]
        values = {
            f"v{j}": conj(
                [
                    dimension_value(d, v, self.listed.get(d, ()))
                    for d, v in zip(dims, cell, strict=True)
                ]
            )
            for j, cell in enumerate(self.domains[n])
            if start <= j < stop
        }
        inner = {"v": {"filters": {"filters": values}, "aggs": series_aggs(True)}}
        return {
            "size": 0,
            "track_total_hits": False,
            "query": conj([{"term": {"kind": "subject"}}, {"terms": {"provider": self.providers}}]),
            "aggs": {
                "T": {
                    "filter": c.matches(everything),
                    "aggs": {
                        "subj": {
                            "filters": {
                                "filters": {
                                    k: c.has_counted(everything, v) for k, v in values.items()
                                }
                            },
                            "aggs": subject_aggs(True),
                        },
                        **c.rows_aggs(everything, inner),
                    },
                }
            },
        }

    def _subjects(
        self, buckets: list[Mapping[str, Any]]
    ) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The subjects' fingerprint and sketch of a root-level bucket (one per partition):
        the fingerprint XORs each subject id once, the sketch counts a subject per provider
        (as the DuckDB index does)."""
        first = buckets[0]
        fp = from_bits(first.get("u", first)["sb"]["buckets"])
        if "sh" in first:
            fp ^= xor_all(
                {int(b["key"]) for bucket in buckets for b in bucket["sh"]["ids"]["buckets"]}
            )
        if not self.evidence:
            return fp, ()
        return fp, tuple(
            sorted((int(b["key"]), int(b["doc_count"])) for b in first["bk"]["buckets"])
        )

    @staticmethod
    def _rows(parts: list[list[Mapping[str, Any]]]) -> tuple[int, int, int, int, list[Any]]:
        """Series, series fingerprint, studies held by one object and their fingerprint, and
        the buckets listing shared studies, of the counted rows (`parts`: per partition, the
        series-level buckets of the combinations)."""
        n_series = n_studies = series_fp = study_fp = 0
        for part in parts[0]:
            n_series += int(part["doc_count"])
            series_fp ^= from_bits(part["xb"]["buckets"])
            n_studies += int(part["st"]["t"]["doc_count"])
            study_fp ^= from_bits(part["st"]["t"]["tb"]["buckets"])
        listings = [part["sh"] for partition in parts for part in partition if "sh" in part]
        return n_series, series_fp, n_studies, study_fp, listings

    def result(self, answers: list[list[dict[str, Any]]]) -> ExactResult:
        """The answer from the responses to each of `pieces()`."""
        responses = answers[0]
        pieces = self.pieces()
        by_provider: dict[str, ExactCounts] = {}
        fingerprints: dict[str, CellEvidence] = {}
        ranks: dict[str, list[tuple[int, int]]] = {
            self.linked[piece[1]]: [
                (int(b["key"]), int(b["rank"]["value"]))
                for b in answer[0]["aggregations"]["lk"]["buckets"]
            ]
            for piece, answer in zip(pieces, answers, strict=True)
            if piece[0] == LINKAGE
        }

        def read(buckets: list[Mapping[str, Any]]) -> tuple[ExactCounts, CellEvidence]:
            """A provider or dataset cell (one bucket per partition of the identifiers):
            studies are its distinct counted study ids (one provider's); their fingerprint
            XORs the id once per subject holding it (as DuckDB's)."""
            subject_fp, sketch = self._subjects(buckets)
            n_series, series_fp, n_studies, study_fp, listings = self._rows(
                [counted_parts(b) for b in buckets]
            )
            shared = {int(b["key"]) for sh in listings for b in sh["ids"]["buckets"]}
            for sh in listings:  # one study object per subject, as DuckDB's (not distinct)
                for b in sh["ids"]["buckets"]:
                    if int(b["o"]["doc_count"]) % 2:
                        study_fp ^= int(b["key"])
            counts = ExactCounts(
                subjects=int(buckets[0]["doc_count"]),
                studies=n_studies + len(shared),
                series=n_series,
            )
            return counts, CellEvidence(
                subject_fp=subject_fp,
                study_fp=study_fp,
                series_fp=series_fp,
                sketch=sketch,
            )

        for p in self.providers:
            buckets = [r["aggregations"]["P"]["by"]["buckets"][p] for r in responses]
            by_provider[p], fingerprints[f"provider:{p}"] = read(buckets)
        by_dataset: dict[tuple[str, str], ExactCounts] = {}
        for i, pair in enumerate(self.pairs):
            buckets = [
                r["aggregations"][f"D{i}"]
                for a, piece in zip(answers, pieces, strict=True)
                if piece[0] == CELLS and piece[1] <= i < piece[2]
                for r in a
            ]
            by_dataset[pair], fingerprints[f"dataset:{pair[0]}/{pair[1]}"] = read(buckets)
        tables = []
        for n, (dims, domain) in enumerate(zip(self.strata, self.domains, strict=True)):
            found_cells = []
            holding = {
                j: [r["aggregations"]["T"] for r in answers[i]]
                for i, piece in enumerate(pieces)
                if piece[0] == n
                for j in range(piece[1], min(piece[2], len(domain)))
            }
            for j, values in enumerate(domain):
                key = f"v{j}"
                tables_n = holding[j]
                subject_buckets = [table["subj"]["buckets"][key] for table in tables_n]
                subject_fp, sketch = self._subjects(subject_buckets)
                n_series, series_fp, n_studies, study_fp, listings = self._rows(
                    [[part["v"]["buckets"][key] for part in counted_parts(t)] for t in tables_n]
                )
                keyed = {
                    (str(by["key"]), int(b["key"]))
                    for sh in listings
                    for by in sh["p"]["buckets"]
                    for b in by["ids"]["buckets"]
                }
                found_cells.append(
                    StratumCell(
                        values=values,
                        counts=ExactCounts(
                            subjects=int(subject_buckets[0]["doc_count"]),
                            studies=n_studies + len(keyed),
                            series=n_series,
                        ),
                        evidence=CellEvidence(
                            subject_fp=subject_fp,
                            study_fp=study_fp ^ xor_all({study for _, study in keyed}),
                            series_fp=series_fp,
                            sketch=sketch,
                        ),
                    )
                )
            tables.append(StrataTable(dimensions=dims, cells=tuple(found_cells)))
        total = ExactCounts(
            subjects=sum(c.subjects for c in by_provider.values()),
            studies=sum(c.studies for c in by_provider.values()),
            series=sum(c.series for c in by_provider.values()),
        )
        total_sketch: dict[int, int] = {}
        total_fp = [0, 0, 0]
        for p in self.providers:
            cell = fingerprints[f"provider:{p}"]
            total_fp = [
                total_fp[0] ^ cell.subject_fp,
                total_fp[1] ^ cell.study_fp,
                total_fp[2] ^ cell.series_fp,
            ]
            for bucket, k in cell.sketch:
                total_sketch[bucket] = total_sketch.get(bucket, 0) + k
        fingerprints["total"] = CellEvidence(
            subject_fp=total_fp[0],
            study_fp=total_fp[1],
            series_fp=total_fp[2],
            sketch=tuple(sorted(total_sketch.items())),
        )
        return ExactResult(
            total=total,
            by_provider=by_provider,
            by_dataset=by_dataset,
            strata=tuple(tables),
            evidence=fingerprints,
            plan=(
                f"elasticsearch: subject documents, {len(self.compiler.study_leaves)} counted "
                f"study criteria, {len(self.compiler.series_leaves)} counted series criteria"
            ),
            linkage={
                p: HllSketch.from_ranks(found).registers for p, found in sorted(ranks.items())
            },
        )
