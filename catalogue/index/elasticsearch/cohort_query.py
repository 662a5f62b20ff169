"""A feasibility query (docs/feasibility.md) as Elasticsearch query DSL over the cohort index's
subject documents (schemas/index/cohort.json): one document per (provider, subject), its studies
nested in it and their series nested in them.

Every criterion is an exists-criterion over the subject's rows in a cell, so each nested clause
carries the cell's rows filter (`cell` among the (provider, dataset) keys of the cell): the same
compiled tree then answers a provider cell, a dataset cell or the total. Subject sex and the
`hasAnnotation` bits are precomputed per row when the documents are written (they do not depend
on the scope). Counted rows (docs/feasibility.md, "What is counted") are selected at series level
per combination of positive study leaves holding on the study (`combinations`): within one
combination a row's being counted is a condition on the row alone."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from catalogue.domain.cohort import (
    Criterion,
    SeriesCriteria,
    Stratum,
    StudyCriteria,
    SubjectCriteria,
)
from catalogue.exceptions import QueryError

Query = dict[str, Any]

STUDIES = "studies"
SERIES = "studies.series"
OTHER = "(other)"
SEXES: tuple[str | None, ...] = ("F", "M", "O", "U")
AGE_BANDS: tuple[str | None, ...] = (
    *(f"{low}-{low + 9}" for low in range(0, 100, 10)),
    "100+",
    None,
)
MAX_POSITIVE_STUDY_LEAVES = 4
"""Counted rows are selected per combination of positive study leaves (2^k of them)."""

MATCH_ALL: Query = {"match_all": {}}
MATCH_NONE: Query = {"match_none": {}}
SEP = "\x1f"
"""Between provider and dataset in a cell key."""


def cell_key(provider: str, dataset: str) -> str:
    return f"{provider}{SEP}{dataset}"


def s(name: str) -> str:
    """The full name of a series field."""
    return f"{SERIES}.{name}"


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    if age >= 100:
        return "100+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def conj(clauses: Sequence[Query]) -> Query:
    if not clauses:
        return MATCH_ALL
    if len(clauses) == 1:
        return clauses[0]
    return {"bool": {"filter": list(clauses)}}


def disj(clauses: Sequence[Query]) -> Query:
    if not clauses:
        return MATCH_NONE
    if len(clauses) == 1:
        return clauses[0]
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def neg(clause: Query) -> Query:
    return {"bool": {"must_not": [clause]}}


def nested(path: str, query: Query) -> Query:
    return {"nested": {"path": path, "query": query, "score_mode": "none"}}


def rows_where(clauses: Sequence[Query]) -> Query:
    """At root level: the subject has a series meeting every clause."""
    return nested(STUDIES, nested(SERIES, conj(clauses)))


def _range(name: str, low: float | None, high: float | None) -> Query:
    bounds: dict[str, float] = {}
    if low is not None:
        bounds["gte"] = low
    if high is not None:
        bounds["lte"] = high
    return {"range": {name: bounds}}


@dataclass
class Compiler:
    """Compiles one normalised tree for cells given by their row filters."""

    tree: Criterion
    expansions: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    """Concept values (CURIEs) -> the (provider, normalised raw value) pairs they stand for."""

    def __post_init__(self) -> None:
        seen: dict[Criterion, None] = {}
        for leaf in _positive(self.tree):
            seen.setdefault(leaf, None)
        self.series_leaves = [leaf.series for leaf in seen if leaf.series is not None]
        self.study_leaves = [leaf.study for leaf in seen if leaf.study is not None]
        if len(self.study_leaves) > MAX_POSITIVE_STUDY_LEAVES:
            raise QueryError(
                f"at most {MAX_POSITIVE_STUDY_LEAVES} study criteria may be counted at once "
                f"(this query has {len(self.study_leaves)} outside a `not`)"
            )
        self.positive = bool(self.series_leaves or self.study_leaves)

    # -- series level --------------------------------------------------------------------------

    def _values(self, name: str, values: tuple[str, ...]) -> Query:
        concepts = [v for v in values if v in self.expansions]
        raw = [v for v in values if v not in self.expansions]
        parts: list[Query] = [{"terms": {s(name): raw}}] if raw else []
        by_provider: dict[str, set[str]] = {}
        for concept in concepts:
            for provider, value in self.expansions[concept]:
                by_provider.setdefault(provider, set()).add(value)
        for provider in sorted(by_provider):
            parts.append(
                conj(
                    [
                        {"term": {s("provider"): provider}},
                        {"terms": {s(name): sorted(by_provider[provider])}},
                    ]
                )
            )
        return disj(parts)

    def item(self, item: SeriesCriteria) -> list[Query]:
        """The clauses a series row meets when it meets the item."""
        out: list[Query] = []
        for name in ("modality", "body_part"):
            values = getattr(item, name)
            if values:
                out.append(self._values(name, values))
        for name in ("manufacturer", "model"):
            values = getattr(item, name)
            if values:
                out.append({"terms": {s(name): list(values)}})
        for name in ("slice_thickness", "field_strength"):
            low, high = getattr(item, f"{name}_min"), getattr(item, f"{name}_max")
            if low is not None or high is not None:
                out.append(_range(s(name), low, high))
        if item.contrast is True:
            out.append({"term": {s("contrast"): True}})
        elif item.contrast is False:
            out.append(neg({"term": {s("contrast"): True}}))
        if item.has_annotation:
            out.append({"terms": {s("ann"): sorted(k.value for k in item.has_annotation)}})
        return out

    def row_selects(self, leaf: StudyCriteria) -> Query:
        """The rows a met study leaf counts of its study."""
        if not leaf.modalities and not leaf.series:
            return MATCH_ALL
        parts: list[Query] = []
        if leaf.modalities:
            parts.append(self._values("modality", leaf.modalities))
        parts.extend(conj(self.item(i)) for i in leaf.series)
        return disj(parts)

    def counted(self, rows: Query, combination: Collection[int]) -> Query | None:
        """At series level: a row of the cell counted when the study leaves numbered in
        `combination` (and no other) hold on its study; None when none can be."""
        if not self.positive:
            return rows
        parts = [conj(self.item(i)) for i in self.series_leaves]
        parts.extend(self.row_selects(self.study_leaves[n]) for n in sorted(combination))
        if not parts:
            return None
        return conj([rows, disj(parts)])

    # -- study level ---------------------------------------------------------------------------

    def study_holds(self, leaf: StudyCriteria, rows: Query) -> Query:
        """At study level: the study's rows in the cell meet the leaf."""
        clauses = [nested(SERIES, rows)]
        if leaf.year_min is not None or leaf.year_max is not None:
            clauses.append(
                nested(SERIES, conj([rows, _range(s("year"), leaf.year_min, leaf.year_max)]))
            )
        clauses.extend(
            nested(SERIES, conj([rows, self._values("modality", (m,))])) for m in leaf.modalities
        )
        clauses.extend(nested(SERIES, conj([rows, *self.item(i)])) for i in leaf.series)
        return conj(clauses)

    def combinations(self, rows: Query) -> list[tuple[tuple[int, ...], Query]]:
        """Each combination of positive study leaves with the study-level filter of the
        studies on which exactly those hold (one combination, no filter, without them)."""
        n = len(self.study_leaves)
        if n == 0:
            return [((), MATCH_ALL)]
        holds = [self.study_holds(leaf, rows) for leaf in self.study_leaves]
        out = []
        for bits in product((False, True), repeat=n):
            chosen = tuple(i for i in range(n) if bits[i])
            clause: Query = {
                "bool": {
                    "filter": [holds[i] for i in chosen] or [MATCH_ALL],
                    "must_not": [holds[i] for i in range(n) if not bits[i]],
                }
            }
            out.append((chosen, clause))
        return out

    # -- subject level -------------------------------------------------------------------------

    def subject(self, leaf: SubjectCriteria, rows: Query) -> Query:
        if leaf.sex:
            return {"terms": {"sex": sorted(v.value for v in leaf.sex)}}
        if leaf.diagnosis:
            return {"terms": {"diagnoses": list(leaf.diagnosis)}}
        return rows_where([rows, _range(s("age"), leaf.age_min, leaf.age_max)])

    def node(self, node: Criterion, rows: Query) -> Query:
        """At root level: the (sub)tree holds on the subject's rows in the cell."""
        if node.all_of is not None:
            return conj([self.node(c, rows) for c in node.all_of])
        if node.any_of is not None:
            return disj([self.node(c, rows) for c in node.any_of])
        if node.not_ is not None:
            return neg(self.node(node.not_, rows))
        if node.subject is not None:
            return self.subject(node.subject, rows)
        if node.series is not None:
            return rows_where([rows, *self.item(node.series)])
        assert node.study is not None
        return nested(STUDIES, self.study_holds(node.study, rows))

    def matches(self, rows: Query) -> Query:
        """At root level: the subject has rows in the cell and the tree holds on them."""
        return conj([rows_where([rows]), self.node(self.tree, rows)])

    def has_counted(self, rows: Query, extra: Query) -> Query:
        """At root level: the subject has a counted row in the cell meeting `extra`."""
        if not self.positive:
            return rows_where([rows, extra])
        parts = [rows_where([rows, *self.item(i), extra]) for i in self.series_leaves]
        parts.extend(
            nested(
                STUDIES,
                conj(
                    [
                        self.study_holds(leaf, rows),
                        nested(SERIES, conj([rows, self.row_selects(leaf), extra])),
                    ]
                ),
            )
            for leaf in self.study_leaves
        )
        return disj(parts)

    def rows_aggs(self, rows: Query, inner: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Aggregations (under root-level buckets) counting the counted rows of a cell: per
        combination `k<i>`, `r` (series) > `c` (counted; its doc count is series) > `inner`."""
        aggs: dict[str, Any] = {}
        for i, (chosen, study_filter) in enumerate(self.combinations(rows)):
            counted = self.counted(rows, chosen)
            if counted is None:
                continue
            below = dict(inner or {})
            aggs[f"k{i}"] = {
                "filter": study_filter,
                "aggs": {
                    "r": {
                        "nested": {"path": SERIES},
                        "aggs": {"c": {"filter": counted, "aggs": below}},
                    }
                },
            }
        return {"rows": {"nested": {"path": STUDIES}, "aggs": aggs}}


def counted_parts(bucket: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The `c` buckets of `rows_aggs` under a root-level bucket."""
    rows = bucket["rows"]
    return [rows[k]["r"]["c"] for k in rows if k.startswith("k")]


def _positive(node: Criterion) -> list[Criterion]:
    """The series and study leaves under an even number of `not`s."""
    return [
        leaf
        for leaf, positive in node.leaves()
        if positive and (leaf.series is not None or leaf.study is not None)
    ]


def dimension_value(dim: Stratum, value: str | None, listed: Collection[str]) -> Query:
    """At series level: a row has the value of a strata cell in one dimension."""
    name = {
        Stratum.SEX: "sex",
        Stratum.AGE_BAND: "age_band",
        Stratum.MODALITY: "modality",
        Stratum.BODY_PART: "body_part",
        Stratum.YEAR: "year",
    }[dim]
    if value is None:
        return neg({"exists": {"field": s(name)}})
    if value == OTHER and dim not in (Stratum.SEX, Stratum.AGE_BAND):
        known = [int(v) for v in listed] if dim is Stratum.YEAR else sorted(listed)
        return conj([{"exists": {"field": s(name)}}, neg({"terms": {s(name): known}})])
    return {"term": {s(name): int(value) if dim is Stratum.YEAR else value}}


def strata_domain(
    dims: tuple[Stratum, ...], listed: Mapping[Stratum, tuple[str, ...]]
) -> list[tuple[str | None, ...]]:
    """Every cell of a table: fixed sexes and age bands; listed values, '(other)' and unknown
    for the data-valued dimensions."""
    axes: list[tuple[str | None, ...]] = []
    for dim in dims:
        if dim is Stratum.SEX:
            axes.append(SEXES)
        elif dim is Stratum.AGE_BAND:
            axes.append(AGE_BANDS)
        else:
            axes.append((*listed[dim], OTHER, None))
    return list(product(*axes))
