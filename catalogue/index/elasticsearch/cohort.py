"""The cohort index on Elasticsearch: one document per (provider, subject) with its studies nested
in it and their series nested in them (schemas/index/cohort.json), so that the exists-semantics of
the query model (docs/feasibility.md) are nested queries (cohort_query.py). Counts are exact, no
approximate cardinality: subjects are document counts of filter aggregations, series the counts of
the counted nested series, studies the distinct study ids among them (listed by terms
aggregations, which also give the fingerprints and linkage registers, computed here: XOR and the
largest rank per register would need scripts the cluster may not have). When an answer has more
identifiers than a request may list, they are asked for in partitions.

Writes rebuild the documents of the subjects a change touches: a source's rows are replaced by
reading those subjects' other rows back from their documents (each series keeps its original
row), so that the subject's sex and the annotation bits, which span sources, are recomputed.
Diagnoses, value concepts and their mapping version are kept in documents of their own (`kind`).
Elasticsearch has no transactions: a source is read whole before anything is written, so a source
that fails to read keeps its previous rows, but a cluster failure part-way through the bulk write
can leave some of the touched subjects old and some new until the next write."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self

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
from catalogue.domain.linkage import RANK_BITS, HllSketch
from catalogue.exceptions import QueryError, StoreError
from catalogue.imaging.features import ANNOTATION_MODALITIES, SERIES_SCHEMA
from catalogue.index.elasticsearch.client import EsClient
from catalogue.index.elasticsearch.cohort_query import (
    SERIES,
    STUDIES,
    Compiler,
    Query,
    age_band,
    cell_key,
    conj,
    counted_parts,
    dimension_value,
    rows_where,
    s,
    strata_domain,
)
from catalogue.ontology.curie import is_curie

KIND = "cohort"
VALUE_FIELDS = ("body_part", "modality", "manufacturer")
SKETCH_MASK = 255
"""Subject sketches have SKETCH_MASK + 1 buckets: the low bits of the pseudonym (as DuckDB's)."""
PAGE = 1_000
TERMS_SIZE = 40_000
"""Identifiers fetched per terms aggregation and partition; more partitions when exceeded."""
IDS_PER_REQUEST = 16_000
"""Identifiers (bounded by document counts) one request of a partitioned answer lists: under
the cluster's default `search.max_buckets` (65,536)."""
MAX_PARTITIONS = 4_096
SUBJECTS_PER_QUERY = 50_000
"""Subject ids per terms query (the cluster's default `index.max_terms_count` is 65,536)."""
BIG = 65_000
DATA_FIELDS = {Stratum.MODALITY: "modality", Stratum.BODY_PART: "body_part", Stratum.YEAR: "year"}


def code(value: object) -> str | None:
    """A modality or body part as queries compare it: whitespace collapsed, upper case."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).upper() or None


def name(value: object) -> str | None:
    """A manufacturer or model as queries compare it: whitespace collapsed, case folded."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).casefold() or None


def _sex(value: object) -> str:
    text = value.strip().upper() if isinstance(value, str) else "U"
    return text if text in ("F", "M", "O") else "U"


def _xor(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out ^= v
    return out


def _sketch(subjects: Iterable[int]) -> tuple[tuple[int, int], ...]:
    buckets: dict[int, int] = {}
    for subject in subjects:
        bucket = subject & SKETCH_MASK
        buckets[bucket] = buckets.get(bucket, 0) + 1
    return tuple(sorted(buckets.items()))


def build_documents(
    provider: str, rows: list[dict[str, Any]], diagnoses: Mapping[int, set[str]]
) -> dict[str, dict[str, Any]]:
    """The subject documents of a provider's rows (each with `source`), by document id."""
    by_subject: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(int(row["subject"]), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for subject, mine in by_subject.items():
        known = {_sex(r.get("sex")) for r in mine} - {"U"}
        sex = next(iter(known)) if len(known) == 1 else "U"
        annotated = _annotations(mine)
        studies: dict[int, list[dict[str, Any]]] = {}
        cells: set[str] = set()
        for n, row in enumerate(mine):
            cell = cell_key(provider, str(row["dataset"]))
            cells.add(cell)
            doc: dict[str, Any] = {
                "series": int(row["series"]),
                "study": int(row["study"]),
                "cell": cell,
                "provider": provider,
                "dataset": str(row["dataset"]),
                "source": row["source"],
                "sex": sex,
                "age": row.get("age"),
                "age_band": age_band(row.get("age")),
                "year": row.get("study_year"),
                "modality": code(row.get("modality")),
                "body_part": code(row.get("body_part")),
                "manufacturer": name(row.get("manufacturer")),
                "model": name(row.get("model")),
                "slice_thickness": row.get("slice_thickness"),
                "field_strength": row.get("field_strength"),
                "contrast": row.get("contrast"),
                "ann": sorted(annotated[n]),
                "raw_modality": row.get("modality"),
                "raw_body_part": row.get("body_part"),
                "raw_manufacturer": row.get("manufacturer"),
                "row": row,
            }
            studies.setdefault(int(row["study"]), []).append(
                {k: v for k, v in doc.items() if v is not None and v != []}
            )
        linkage = sorted({int(r["linkage"]) for r in mine if r.get("linkage") is not None})
        out[_subject_id(provider, subject)] = {
            "kind": "subject",
            "provider": provider,
            "subject": subject,
            "sex": sex,
            "diagnoses": sorted(diagnoses.get(subject, ())),
            "linkage": linkage,
            "cells": sorted(cells),
            "studies": [{"study": t, "series": series} for t, series in studies.items()],
        }
    return out


def _annotations(rows: list[dict[str, Any]]) -> list[set[str]]:
    """Per row of one subject, the annotation kinds `hasAnnotation` finds on it: an annotation
    row of that kind, other than the row itself, in the same study and dataset, whose
    annotated series is the row's or unknown."""
    groups: dict[tuple[str, int], list[int]] = {}
    for n, row in enumerate(rows):
        groups.setdefault((str(row["dataset"]), int(row["study"])), []).append(n)
    out: list[set[str]] = [set() for _ in rows]
    for members in groups.values():
        notes = [
            n
            for n in members
            if rows[n].get("is_annotation")
            and code(rows[n].get("modality")) in ANNOTATION_MODALITIES
        ]
        for n in members:
            for a in notes:
                target = rows[a].get("annotated_series")
                if a != n and (target is None or target == rows[n]["series"]):
                    kind = code(rows[a].get("modality"))
                    assert kind is not None
                    out[n].add(kind)
    return out


def _subject_id(provider: str, subject: int) -> str:
    return f"subject|{provider}|{subject}"


class ElasticsearchCohortIndex:
    """The cohort index in one Elasticsearch index (alias `<prefix>-cohort`)."""

    @classmethod
    def open(cls, path: Path, settings: IndexSettings) -> Self:
        """The index on the cluster `settings.elasticsearch` names (`path` is not used)."""
        return cls(EsClient(settings.elasticsearch))

    def __init__(self, client: EsClient, *, owned: bool = True) -> None:
        self._client = client
        self._owned = owned
        client.ensure(KIND)
        self._alias = client.alias(KIND)
        self._lock = threading.Lock()

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
        incoming: list[dict[str, Any]] = []
        for batch in batches:
            if batch.schema != SERIES_SCHEMA:
                batch = pa.Table.from_batches([batch]).cast(SERIES_SCHEMA).to_batches()[0]
            incoming.extend({**row, "source": source_id} for row in batch.to_pylist())
        with self._lock:
            self._rebuild(provider_id, source_id, incoming)
        return len(incoming)

    def replace_diagnoses(
        self, provider_id: str, source_id: str, rows: Iterable[tuple[int, str]]
    ) -> int:
        pairs = sorted({(int(subject), str(found)) for subject, found in rows})
        with self._lock:
            before = {subject for subject, _ in self.export_diagnoses(provider_id, source_id)}
            self._client.bulk(
                [
                    {
                        "_op_type": "index",
                        "_index": self._alias,
                        "_id": f"diagnoses|{provider_id}|{source_id}",
                        "_source": {
                            "kind": "diagnoses",
                            "provider": provider_id,
                            "source": source_id,
                            "payload": {
                                "subjects": [p[0] for p in pairs],
                                "codes": [p[1] for p in pairs],
                            },
                        },
                    }
                ]
            )
            self._refresh()
            self._rebuild(provider_id, None, [], before | {p[0] for p in pairs})
        return len(pairs)

    def _diagnoses(self, provider_id: str) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        query = conj([{"term": {"kind": "diagnoses"}}, {"term": {"provider": provider_id}}])
        for doc in self._scan(query, ["payload"]):
            payload = doc.get("payload", {})
            for subject, found in zip(payload["subjects"], payload["codes"], strict=True):
                out.setdefault(int(subject), set()).add(str(found))
        return out

    def _rebuild(
        self,
        provider_id: str,
        source_id: str | None,
        incoming: list[dict[str, Any]],
        subjects: Collection[int] = (),
    ) -> None:
        """Rewrite the subject documents a change touches: those holding rows of `source_id`
        (whose rows become `incoming`), those of the subjects in `incoming` and `subjects`.
        A subject's document depends on its own rows and diagnoses only."""
        wanted = sorted({int(r["subject"]) for r in incoming} | set(subjects))
        touched: list[Query] = [
            {"terms": {"subject": wanted[i : i + SUBJECTS_PER_QUERY]}}
            for i in range(0, len(wanted), SUBJECTS_PER_QUERY)
        ]
        if source_id is not None:
            touched.append(rows_where([{"term": {s("source"): source_id}}]))
        rows: list[dict[str, Any]] = []
        old: set[str] = set()
        for part in touched:
            query = conj([{"term": {"kind": "subject"}}, {"term": {"provider": provider_id}}, part])
            for doc in self._scan(query, ["subject", f"{SERIES}.row"]):
                doc_id = _subject_id(provider_id, int(doc["subject"]))
                if doc_id in old:
                    continue
                old.add(doc_id)
                for study in doc.get("studies", ()):
                    for series in study.get("series", ()):
                        row = series["row"]
                        if source_id is None or row.get("source") != source_id:
                            rows.append(row)
        rows.extend(incoming)
        docs = build_documents(provider_id, rows, self._diagnoses(provider_id))
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
        for doc in self._scan({"term": {"kind": "diagnoses"}}, ["provider", "source"]):
            out.add((str(doc["provider"]), str(doc["source"])))
        return sorted(out)

    def export(self, provider_id: str, source_id: str) -> Iterator[pa.RecordBatch]:
        """A source's series rows as SERIES_SCHEMA batches (to load into another backend)."""
        query = conj([{"term": {"kind": "subject"}}, {"term": {"provider": provider_id}}])
        rows: list[dict[str, Any]] = []
        for doc in self._scan(query, ["subject", f"{SERIES}.row"]):
            for study in doc.get("studies", ()):
                for series in study.get("series", ()):
                    row = series["row"]
                    if row.get("source") == source_id:
                        rows.append({k: row.get(k) for k in SERIES_SCHEMA.names})
        rows.sort(key=lambda r: (r["subject"], r["study"], r["series"]))
        for start in range(0, len(rows), 10_000):
            yield pa.RecordBatch.from_pylist(rows[start : start + 10_000], schema=SERIES_SCHEMA)

    def export_diagnoses(self, provider_id: str, source_id: str) -> list[tuple[int, str]]:
        """A source's (subject pseudonym, normalised code) pairs."""
        query = conj(
            [
                {"term": {"kind": "diagnoses"}},
                {"term": {"provider": provider_id}},
                {"term": {"source": source_id}},
            ]
        )
        out: set[tuple[int, str]] = set()
        for doc in self._scan(query, ["payload"]):
            payload = doc["payload"]
            out.update(zip(payload["subjects"], payload["codes"], strict=True))
        return sorted(out)

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
        out: list[tuple[str, str]] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": PAGE,
                "sources": [{"cell": {"terms": {"field": "cells"}}}],
            }
            if after is not None:
                composite["after"] = after
            found = self._search(
                {
                    "size": 0,
                    "query": {"term": {"kind": "subject"}},
                    "aggs": {"cells": {"composite": composite}},
                }
            )["aggregations"]["cells"]
            for bucket in found["buckets"]:
                provider, dataset = str(bucket["key"]["cell"]).split("\x1f", 1)
                out.append((provider, dataset))
            after = found.get("after_key")
            if after is None or len(found["buckets"]) < PAGE:
                return sorted(out)

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
        request = _Request(compiler, pairs, providers, strata, domains, listed, linked)
        partitions = 1
        while True:
            found: list[dict[str, Any]] | None
            try:
                found = [self._search(request.body(i, partitions)) for i in range(partitions)]
            except StoreError as exc:
                if not _too_many_buckets(exc):
                    raise
                found = None
            if found is not None and not any(_overflowed(f["aggregations"]) for f in found):
                return request.result(found, evidence)
            if partitions == 1:  # size the identifiers by the counts alone
                sizes = self._search(request.body(0, 0))["aggregations"]
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
    that list them (subjects, linkage codes; series and studies)."""
    if isinstance(node, dict):
        own = 0
        if "ids" in node or "lk" in node:
            own += int(node.get("doc_count", 0)) * (("ids" in node) + ("lk" in node))
        if "sid" in node:
            own += 2 * int(node.get("doc_count", 0))
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


class _Request:
    """One count request: its body (per partition of the identifiers) and its reading."""

    def __init__(
        self,
        compiler: Compiler,
        pairs: list[tuple[str, str]],
        providers: list[str],
        strata: tuple[tuple[Stratum, ...], ...],
        domains: list[list[tuple[str | None, ...]]],
        listed: Mapping[Stratum, tuple[str, ...]],
        linked: set[str],
    ) -> None:
        self.compiler = compiler
        self.pairs = pairs
        self.providers = providers
        self.strata = strata
        self.domains = domains
        self.listed = listed
        self.linked = linked
        self.everything: Query = {"terms": {s("cell"): [cell_key(*pair) for pair in pairs]}}

    def body(self, partition: int, partitions: int) -> dict[str, Any]:
        """The request for one partition of the identifiers (none with `partitions` 0)."""

        def ids(field: str) -> dict[str, Any]:
            if partitions == 0:  # counts only
                return {"missing": {"field": field}}
            terms: dict[str, Any] = {"field": field, "size": TERMS_SIZE}
            if partitions > 1:
                terms["include"] = {"partition": partition, "num_partitions": partitions}
            return {"terms": terms}

        rows_ids = {"sid": ids(s("series")), "tid": ids(s("study"))}
        c = self.compiler
        everything = self.everything
        provider_aggs: dict[str, Any] = {"ids": ids("subject"), **c.rows_aggs(everything, rows_ids)}
        if self.linked:
            provider_aggs["lk"] = ids("linkage")
        aggs: dict[str, Any] = {
            "P": {
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
        }
        for i, pair in enumerate(self.pairs):
            rows: Query = {"term": {s("cell"): cell_key(*pair)}}
            aggs[f"D{i}"] = {
                "filter": conj([{"term": {"provider": pair[0]}}, c.matches(rows)]),
                "aggs": {"ids": ids("subject"), **c.rows_aggs(rows, rows_ids)},
            }
        for n, (dims, domain) in enumerate(zip(self.strata, self.domains, strict=True)):
            values = {
                f"v{j}": conj(
                    [
                        dimension_value(d, v, self.listed.get(d, ()))
                        for d, v in zip(dims, cell, strict=True)
                    ]
                )
                for j, cell in enumerate(domain)
            }
            inner = {
                "v": {
                    "filters": {"filters": values},
                    "aggs": {
                        "sid": ids(s("series")),
                        "tid": {
                            "terms": {"field": s("provider"), "size": BIG},
                            "aggs": {"t": ids(s("study"))},
                        },
                    },
                }
            }
            aggs[f"T{n}"] = {
                "filter": c.matches(everything),
                "aggs": {
                    "subj": {
                        "filters": {
                            "filters": {k: c.has_counted(everything, v) for k, v in values.items()}
                        },
                        "aggs": {"ids": ids("subject")},
                    },
                    **c.rows_aggs(everything, inner),
                },
            }
        return {
            "size": 0,
            "track_total_hits": False,
            "query": conj([{"term": {"kind": "subject"}}, {"terms": {"provider": self.providers}}]),
            "aggs": aggs,
        }

    def result(self, responses: list[dict[str, Any]], evidence: bool) -> ExactResult:
        first = responses[0]["aggregations"]
        by_provider: dict[str, ExactCounts] = {}
        fingerprints: dict[str, CellEvidence] = {}
        ranks: dict[str, list[tuple[int, int]]] = {p: [] for p in self.linked}

        def read(buckets: list[Mapping[str, Any]]) -> tuple[ExactCounts, CellEvidence]:
            """A provider or dataset cell (one bucket per partition of the identifiers):
            studies are its distinct counted study ids (one provider's)."""
            subjects: set[int] = set()
            studies: set[int] = set()
            series: set[int] = set()
            for bucket in buckets:
                subjects.update(int(b["key"]) for b in bucket["ids"]["buckets"])
                for part in counted_parts(bucket):
                    series.update(int(b["key"]) for b in part["sid"]["buckets"])
                    studies.update(int(b["key"]) for b in part["tid"]["buckets"])
            n_series = sum(int(part["doc_count"]) for part in counted_parts(buckets[0]))
            counts = ExactCounts(
                subjects=int(buckets[0]["doc_count"]), studies=len(studies), series=n_series
            )
            return counts, CellEvidence(
                subject_fp=_xor(subjects),
                study_fp=_xor(studies),
                series_fp=_xor(series),
                sketch=_sketch(subjects) if evidence else (),
            )

        for p in self.providers:
            buckets = [r["aggregations"]["P"]["by"]["buckets"][p] for r in responses]
            by_provider[p], fingerprints[f"provider:{p}"] = read(buckets)
            if p in self.linked:
                for bucket in buckets:
                    for b in bucket["lk"]["buckets"]:
                        value = int(b["key"])
                        ranks[p].append((value >> RANK_BITS, value & ((1 << RANK_BITS) - 1)))
        by_dataset: dict[tuple[str, str], ExactCounts] = {}
        for i, pair in enumerate(self.pairs):
            buckets = [r["aggregations"][f"D{i}"] for r in responses]
            by_dataset[pair], fingerprints[f"dataset:{pair[0]}/{pair[1]}"] = read(buckets)
        tables = []
        for n, (dims, domain) in enumerate(zip(self.strata, self.domains, strict=True)):
            found_cells = []
            for j, values in enumerate(domain):
                key = f"v{j}"
                subjects: set[int] = set()
                studies: set[int] = set()
                series: set[int] = set()
                keyed: set[tuple[str, int]] = set()
                n_series = 0
                for r, response in enumerate(responses):
                    table = response["aggregations"][f"T{n}"]
                    subject_bucket = table["subj"]["buckets"][key]
                    subjects.update(int(b["key"]) for b in subject_bucket["ids"]["buckets"])
                    for part in counted_parts(table):
                        bucket = part["v"]["buckets"][key]
                        series.update(int(b["key"]) for b in bucket["sid"]["buckets"])
                        for by in bucket["tid"]["buckets"]:
                            keyed.update(
                                (str(by["key"]), int(b["key"])) for b in by["t"]["buckets"]
                            )
                        if r == 0:
                            n_series += int(bucket["doc_count"])
                studies = {study for _, study in keyed}
                n_studies = len(keyed)
                subject_count = int(first[f"T{n}"]["subj"]["buckets"][key]["doc_count"])
                found_cells.append(
                    StratumCell(
                        values=values,
                        counts=ExactCounts(
                            subjects=subject_count, studies=n_studies, series=n_series
                        ),
                        evidence=CellEvidence(
                            subject_fp=_xor(subjects),
                            study_fp=_xor(studies),
                            series_fp=_xor(series),
                            sketch=_sketch(subjects) if evidence else (),
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
