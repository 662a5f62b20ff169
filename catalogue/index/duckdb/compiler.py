"""Compile a normalised cohort query into one DuckDB statement (docs/feasibility.md).

Every leaf of the criterion tree becomes one or more boolean *components* computed per row.
Rows are rolled up per study (`bool_or` of each component, and the counted rows for each set of
study leaves that may hold), per study again at provider level (a study's rows may span
datasets), then per subject at each level, where a study leaf holds when all its components hold
within one study. The tree is then evaluated on the subject roll-ups, and studies and series are
counted by semi-joining the matching subjects back onto the per-study roll-ups. No Python loop
ever touches a subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from catalogue.domain.cohort import (
    Criterion,
    SeriesCriteria,
    Stratum,
    StudyCriteria,
    SubjectCriteria,
)
from catalogue.exceptions import QueryError

MAX_POSITIVE_STUDY_LEAVES = 4
"""Counted rows are pre-aggregated for every subset of the positive study leaves (2^n)."""

OTHER = "(other)"
"""The strata value of rows whose value too few subjects in scope hold to be listed."""

SKETCH_MASK = 255
"""Subject sketches have SKETCH_MASK + 1 buckets: the low bits of the keyed pseudonym."""

_STRATUM_EXPR = {
    Stratum.SEX: "s.subject_sex",
    Stratum.AGE_BAND: (
        "CASE WHEN s.age IS NULL THEN NULL WHEN s.age >= 100 THEN '100+' "
        "ELSE CAST(s.age // 10 * 10 AS VARCHAR) || '-' || CAST(s.age // 10 * 10 + 9 AS VARCHAR) "
        "END"
    ),
    Stratum.MODALITY: "s.modality",
    Stratum.BODY_PART: "s.body_part",
    Stratum.YEAR: "CAST(s.study_year AS VARCHAR)",
}


@dataclass
class Params:
    """Positional parameters collected while the SQL text is written."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass
class _Leaf:
    """One distinct leaf: its components (row-level boolean columns) and how it rolls up."""

    node: Criterion
    index: int
    components: list[str]
    positive: bool = False
    contrib: str | None = None
    """For a study leaf: which of a matching study's rows count (None: all of them)."""

    @property
    def name(self) -> str:
        return f"l{self.index}"

    @property
    def is_study(self) -> bool:
        return self.node.study is not None


@dataclass
class Scope:
    """Row filters that select the (provider, dataset) pairs in scope."""

    providers: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    empty: bool = False


@dataclass
class Compiled:
    sql: str
    params: list[Any]
    plan: list[str]
    """How the query is evaluated, in terms of the query only (shown by `explain`)."""
    choice: str
    """Where the planner started, which depends on the data (logs and benchmarks only)."""


@dataclass
class _Compiler:
    tree: Criterion
    scope: Scope
    strata: tuple[tuple[Stratum, ...], ...]
    sketches: bool
    selectivity: Any  # Callable[[Criterion], float]; None: no planning
    params: Params = field(default_factory=Params)
    leaves: dict[str, _Leaf] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    """Row-level component expressions, by position (column c<i>)."""
    annotations: dict[tuple[str, ...], int] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    choice: str = "every row in scope"
    domains: Mapping[Stratum, tuple[str, ...]] = field(default_factory=dict)

    # -- leaves and components ------------------------------------------------------------

    def component(self, expr: str) -> str:
        self.columns.append(f"coalesce({expr}, false)")
        return f"c{len(self.columns) - 1}"

    def in_list(self, column: str, values: tuple[Any, ...]) -> str:
        return f"list_contains({self.params.add(list(values))}, {column})"

    def between(self, column: str, low: float | None, high: float | None) -> str:
        parts = [f"{column} IS NOT NULL"]
        if low is not None:
            parts.append(f"{column} >= {self.params.add(low)}")
        if high is not None:
            parts.append(f"{column} <= {self.params.add(high)}")
        return "(" + " AND ".join(parts) + ")"

    def series_expr(self, item: SeriesCriteria) -> str:
        """The row predicate of a series item (TRUE for an empty one)."""
        parts = []
        for column, values in (
            ("modality", item.modality),
            ("body_part", item.body_part),
            ("manufacturer", item.manufacturer),
            ("model", item.model),
        ):
            if values:
                parts.append(self.in_list(f"s.{column}", values))
        if item.slice_thickness_min is not None or item.slice_thickness_max is not None:
            low, high = item.slice_thickness_min, item.slice_thickness_max
            parts.append(self.between("s.slice_thickness", low, high))
        if item.field_strength_min is not None or item.field_strength_max is not None:
            parts.append(
                self.between("s.field_strength", item.field_strength_min, item.field_strength_max)
            )
        if item.contrast is not None:
            parts.append("s.contrast IS TRUE" if item.contrast else "s.contrast IS NOT TRUE")
        if item.has_annotation:
            kinds = tuple(k.value for k in item.has_annotation)
            n = self.annotations.setdefault(kinds, len(self.annotations))
            parts.append(
                f"(t{n}.annotated_series IS NOT NULL OR u{n}.n > 1 "
                f"OR (u{n}.n = 1 AND u{n}.one <> s.series))"
            )
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def subject_expr(self, subject: SubjectCriteria) -> str:
        if subject.sex:
            return self.in_list("s.subject_sex", tuple(s.value for s in subject.sex))
        if subject.diagnosis:
            codes = self.params.add(list(subject.diagnosis))
            return (
                "EXISTS (SELECT 1 FROM diagnoses AS dx WHERE dx.provider = s.provider "
                f"AND dx.subject = s.subject AND list_contains({codes}, dx.code))"
            )
        return self.between("s.age", subject.age_min, subject.age_max)

    def study_components(self, study: StudyCriteria) -> tuple[list[str], str | None]:
        components, contrib = [], []
        if study.year_min is not None or study.year_max is not None:
            components.append(
                self.component(self.between("s.study_year", study.year_min, study.year_max))
            )
        for modality in study.modalities:
            components.append(self.component(f"s.modality = {self.params.add(modality)}"))
        if study.modalities:
            contrib.append(self.in_list("s.modality", study.modalities))
        for item in study.series:
            expr = self.series_expr(item)
            components.append(self.component(expr))
            contrib.append(expr)
        return components, ("(" + " OR ".join(contrib) + ")" if contrib else None)

    def collect(self, node: Criterion, positive: bool) -> None:
        if node.all_of is not None or node.any_of is not None:
            for child in node.all_of if node.all_of is not None else node.any_of or ():
                self.collect(child, positive)
            return
        if node.not_ is not None:
            self.collect(node.not_, not positive)
            return
        key = node.model_dump_json()
        leaf = self.leaves.get(key)
        if leaf is None:
            contrib = None
            if node.study is not None:
                components, contrib = self.study_components(node.study)
            elif node.series is not None:
                components = [self.component(self.series_expr(node.series))]
            else:
                assert node.subject is not None
                components = [self.component(self.subject_expr(node.subject))]
            leaf = self.leaves[key] = _Leaf(node, len(self.leaves), components, contrib=contrib)
        leaf.positive = leaf.positive or positive

    def tree_expr(self, node: Criterion) -> str:
        if node.all_of is not None:
            return "(" + (" AND ".join(self.tree_expr(c) for c in node.all_of) or "TRUE") + ")"
        if node.any_of is not None:
            return "(" + (" OR ".join(self.tree_expr(c) for c in node.any_of) or "FALSE") + ")"
        if node.not_ is not None:
            return f"(NOT {self.tree_expr(node.not_)})"
        return self.leaves[node.model_dump_json()].name

    # -- planning -------------------------------------------------------------------------

    def conjuncts(self) -> list[Criterion]:
        tree = self.tree
        return list(tree.all_of) if tree.all_of is not None else [tree]

    def row_filters(self) -> list[str]:
        """Exact row filters: a subject's sex is the same on all its rows."""
        filters = []
        for node in self.conjuncts():
            if node.subject is not None and node.subject.sex:
                leaf = self.leaves[node.model_dump_json()]
                filters.append(self.columns[int(leaf.components[0][1:])])
                self.plan.append(f"rows filtered on subject sex {list(node.subject.sex)}")
        return filters

    def candidates(self) -> str | None:
        """A necessary row condition selecting few subjects, to start from (or None)."""
        if self.selectivity is None:
            return None
        best: tuple[float, str, Criterion] | None = None
        for node in self.conjuncts():
            if node.not_ is not None or node.all_of is not None or node.any_of is not None:
                continue
            if node.subject is not None and node.subject.sex:
                continue
            leaf = self.leaves[node.model_dump_json()]
            for column in leaf.components:
                share = float(self.selectivity(node, int(column[1:])))
                if best is None or share < best[0]:
                    best = (share, column, node)
        # which criterion, if any, is chosen depends on the data: it stays out of the plan
        # users see (`choice` is for logs and benchmarks only)
        self.plan.append(
            "start: the top-level criterion the index statistics estimate most selective, when "
            "it selects under a quarter of the subjects; else every row in scope"
        )
        if best is None or best[0] > 0.25:
            self.choice = "every row in scope"
            return None
        share, column, node = best
        self.choice = f"subjects with a row meeting {node.to_json()} (about {share:.1%})"
        return self.columns[int(column[1:])]

    # -- SQL ------------------------------------------------------------------------------

    def scope_filters(self) -> list[str]:
        scope = self.scope
        if scope.empty:
            return ["FALSE"]
        filters = []
        if scope.providers:
            filters.append(self.in_list("s.provider", scope.providers))
        if scope.datasets:
            filters.append(self.in_list("s.dataset", scope.datasets))
        if scope.pairs:
            keys = self.params.add([f"{p}\x1f{d}" for p, d in scope.pairs])
            filters.append(f"list_contains({keys}, s.provider || chr(31) || s.dataset)")
        return filters

    def joins(self) -> str:
        text = ""
        for n in self.annotations.values():
            text += (
                f"\n    LEFT JOIN ann_u{n} AS u{n} ON u{n}.provider = s.provider "
                f"AND u{n}.dataset = s.dataset AND u{n}.study = s.study"
            )
            text += (
                f"\n    LEFT JOIN ann_t{n} AS t{n} ON t{n}.provider = s.provider "
                f"AND t{n}.dataset = s.dataset AND t{n}.study = s.study "
                f"AND t{n}.annotated_series = s.series"
            )
        return text

    def annotation_ctes(self) -> list[str]:
        ctes = []
        for kinds, n in self.annotations.items():
            chosen = self.in_list("modality", kinds)
            ctes.append(
                f"ann_u{n} AS (SELECT provider, dataset, study, count(*) AS n, "
                f"any_value(series) AS one FROM series WHERE is_annotation AND {chosen} "
                "AND annotated_series IS NULL GROUP BY provider, dataset, study)"
            )
            ctes.append(
                f"ann_t{n} AS (SELECT DISTINCT provider, dataset, study, annotated_series "
                f"FROM series WHERE is_annotation AND {chosen} AND annotated_series IS NOT NULL)"
            )
        return ctes

    def compile(self) -> Compiled:
        self.collect(self.tree, True)
        positive_series = [
            self.columns[int(leaf.components[0][1:])]
            for leaf in self.leaves.values()
            if leaf.positive and leaf.node.series is not None
        ]
        study_leaves = [leaf for leaf in self.leaves.values() if leaf.is_study]
        positive_studies = [leaf for leaf in study_leaves if leaf.positive]
        if len(positive_studies) > MAX_POSITIVE_STUDY_LEAVES:
            raise QueryError(
                f"at most {MAX_POSITIVE_STUDY_LEAVES} study criteria may be asked for "
                "(outside a not)"
            )
        counts_all = not positive_series and not positive_studies
        s_hit = "TRUE" if counts_all else " OR ".join(positive_series) or "FALSE"

        scope = self.scope_filters()
        where = scope + self.row_filters()
        start = self.candidates() if not self.scope.empty else None
        ctes = self.annotation_ctes()
        semi = ""
        if start is not None:
            ctes.append(
                "cand AS (SELECT DISTINCT s.provider, s.subject FROM series AS s"
                f"{self.joins()}\n    WHERE {' AND '.join([*where, start])})"
            )
            semi = "\n    SEMI JOIN cand ON cand.provider = s.provider AND cand.subject = s.subject"
        contrib_cols = [
            f"coalesce({leaf.contrib}, false) AS k{leaf.index}"
            for leaf in positive_studies
            if leaf.contrib is not None
        ]
        component_cols = "".join(f", {expr} AS c{i}" for i, expr in enumerate(self.columns))
        extra = "".join(f", {c}" for c in contrib_cols)
        ctes.append(
            "scoped AS (\n    SELECT s.provider, s.dataset, s.subject, s.study, s.series, "
            "s.subject_sex, s.age, s.study_year, s.modality, s.body_part, "
            f"({s_hit}) AS s_hit{component_cols}{extra}\n    FROM series AS s{self.joins()}{semi}"
            f"\n    WHERE {' AND '.join(where) or 'TRUE'})"
        )

        # counted rows of a study for each subset of positive study leaves that may hold there
        subsets = [
            subset
            for size in range(len(positive_studies) + 1)
            for subset in combinations(positive_studies, size)
        ]

        def counted(subset: tuple[_Leaf, ...]) -> str:
            if counts_all:
                return "TRUE"
            terms = ["s_hit"]
            for leaf in subset:
                terms.append(f"k{leaf.index}" if leaf.contrib is not None else "TRUE")
            return " OR ".join(terms)

        def subset_name(subset: tuple[_Leaf, ...]) -> str:
            return "_".join(str(leaf.index) for leaf in subset) or "none"

        bool_cols = "".join(f", bool_or(c{i}) AS c{i}" for i in range(len(self.columns)))
        sums = "".join(
            f", count(*) FILTER (WHERE {counted(sub)}) AS n_{subset_name(sub)}"
            f", bit_xor(series) FILTER (WHERE {counted(sub)}) AS x_{subset_name(sub)}"
            for sub in subsets
        )
        ctes.append(
            "st_d AS MATERIALIZED (\n    SELECT provider, dataset, subject, study"
            f"{bool_cols}{sums}\n    FROM scoped GROUP BY provider, dataset, subject, study)"
        )
        resums = "".join(
            f", sum(n_{subset_name(sub)}) AS n_{subset_name(sub)}"
            f", bit_xor(x_{subset_name(sub)}) AS x_{subset_name(sub)}"
            for sub in subsets
        )
        ctes.append(
            "st_p AS MATERIALIZED (\n    SELECT provider, subject, study"
            f"{bool_cols}{resums}\n    FROM st_d GROUP BY provider, subject, study)"
        )

        def study_flag(leaf: _Leaf) -> str:
            return " AND ".join(leaf.components) or "TRUE"

        def picked(prefix: str) -> str:
            """The counted rows of a study, given which positive study leaves it meets."""
            if not positive_studies:
                return f"{prefix}_none"
            cases = []
            for sub in sorted(subsets, key=len, reverse=True):
                chosen = {leaf.index for leaf in sub}
                cond = " AND ".join(
                    f"({study_flag(leaf)})" if leaf.index in chosen else f"NOT ({study_flag(leaf)})"
                    for leaf in positive_studies
                )
                cases.append(f"WHEN {cond} THEN {prefix}_{subset_name(sub)}")
            return "CASE " + " ".join(cases) + " END"

        def subject_cols() -> str:
            cols = []
            for leaf in self.leaves.values():
                expr = study_flag(leaf) if leaf.is_study else leaf.components[0]
                cols.append(f", bool_or({expr}) AS {leaf.name}")
            return "".join(cols)

        tree = self.tree_expr(self.tree) if not self.tree.is_true else "TRUE"
        for level, keys in (("d", "provider, dataset, subject"), ("p", "provider, subject")):
            ctes.append(
                f"m_{level} AS MATERIALIZED (\n    SELECT {keys} FROM (SELECT {keys}"
                f"{subject_cols()} FROM st_{level} GROUP BY {keys}) WHERE {tree})"
            )
            cell = "provider, dataset" if level == "d" else "provider"
            ctes.append(
                f"rows_{level} AS (\n    SELECT {keys}, study, {picked('n')} AS n, "
                f"{picked('x')} AS x FROM st_{level}\n    SEMI JOIN m_{level} USING ({keys}))"
            )
            ctes.append(
                f"cnt_{level} AS (\n    SELECT {cell}, count(DISTINCT study) FILTER (WHERE n > 0) "
                "AS studies, coalesce(sum(n), 0) AS series, "
                "bit_xor(study) FILTER (WHERE n > 0) AS fx_study, bit_xor(x) AS fx_series"
                f"\n    FROM rows_{level} GROUP BY {cell})"
            )
            ctes.append(
                f"sub_{level} AS (SELECT {cell}, count(*) AS subjects, "
                f"bit_xor(subject) AS fx_subject FROM m_{level} GROUP BY {cell})"
            )
        if positive_studies:
            self.plan.append(
                f"{len(positive_studies)} study criteria: counted rows kept per study for "
                f"{len(subsets)} combinations"
            )

        selects = []
        for level in ("p", "d"):
            dataset = "dataset" if level == "d" else "NULL"
            using = "provider, dataset" if level == "d" else "provider"
            selects.append(
                f"SELECT '{level}' AS kind, provider, {dataset} AS dataset, "
                "coalesce(a.subjects, 0), coalesce(b.studies, 0), coalesce(b.series, 0), "
                "a.fx_subject, b.fx_study, b.fx_series, NULL::VARCHAR[] AS vals "
                f"FROM sub_{level} AS a FULL JOIN cnt_{level} AS b USING ({using})"
            )
            if self.sketches:
                selects.append(
                    f"SELECT 'k{level}', provider, {dataset}, subject & {SKETCH_MASK}, "
                    "count(*), 0, NULL, NULL, NULL, NULL::VARCHAR[] "
                    f"FROM m_{level} GROUP BY ALL"
                )
        if self.strata:
            ctes.append(self.counted_rows_cte(positive_studies, s_hit))
            for number, dims in enumerate(self.strata):
                values = "[" + ", ".join(self.stratum_expr(d) for d in dims) + "]"
                selects.append(
                    f"SELECT 's{number}', NULL, NULL, count(DISTINCT (s.provider, s.subject)), "
                    "count(DISTINCT (s.provider, s.study)), count(*), "
                    "bit_xor(DISTINCT s.subject), bit_xor(DISTINCT s.study), bit_xor(s.series), "
                    f"{values} FROM strata_rows AS s GROUP BY ALL"
                )
                if self.sketches:
                    selects.append(
                        f"SELECT 'q{number}', NULL, NULL, s.subject & {SKETCH_MASK}, "
                        "count(DISTINCT (s.provider, s.subject)), 0, NULL, NULL, NULL, "
                        f"{values} FROM strata_rows AS s GROUP BY ALL"
                    )
        sql = "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)
        return Compiled(sql=sql, params=self.params.values, plan=self.plan, choice=self.choice)

    def stratum_expr(self, dim: Stratum) -> str:
        """A row's value for a dimension; values outside its listed domain are '(other)'."""
        expr = _STRATUM_EXPR[dim]
        if dim not in self.domains:
            return expr
        listed = self.params.add(list(self.domains[dim]))
        return (
            f"CASE WHEN ({expr}) IS NULL THEN NULL WHEN list_contains({listed}, {expr}) "
            f"THEN {expr} ELSE '{OTHER}' END"
        )

    def counted_rows_cte(self, positive: list[_Leaf], s_hit: str) -> str:
        """The counted rows of the subjects matching at provider level, for strata."""
        terms = ["s.s_hit"]
        for leaf in positive:
            flag = " AND ".join(f"st.{c}" for c in leaf.components) or "TRUE"
            contrib = f"s.k{leaf.index}" if leaf.contrib is not None else "TRUE"
            terms.append(f"(({flag}) AND {contrib})")
        hit = "TRUE" if s_hit == "TRUE" else " OR ".join(terms)
        join = (
            "\n    JOIN st_p AS st ON st.provider = s.provider AND st.subject = s.subject "
            "AND st.study = s.study"
            if positive
            else ""
        )
        return (
            "strata_rows AS (\n    SELECT s.* FROM scoped AS s"
            f"{join}\n    SEMI JOIN m_p AS m ON m.provider = s.provider "
            f"AND m.subject = s.subject\n    WHERE {hit})"
        )


def compile_count(
    tree: Criterion,
    scope: Scope,
    strata: tuple[tuple[Stratum, ...], ...] = (),
    sketches: bool = False,
    selectivity: Any = None,
    domains: Mapping[Stratum, tuple[str, ...]] | None = None,
) -> Compiled:
    """The SQL answering a normalised tree: rows (kind, provider, dataset, subjects, studies,
    series, subject/study/series fingerprints, strata values). Kinds: 'p' provider cells, 'd'
    dataset cells, 'kp'/'kd' sketch buckets (bucket in the subjects column, subjects in the
    studies column), 's<n>' cells of strata table n, 'q<n>' their sketch buckets. `domains`
    lists, for the data-valued dimensions, the values shown as they are; others are '(other)'."""
    compiler = _Compiler(tree, scope, strata, sketches, selectivity)
    compiler.domains = domains or {}
    return compiler.compile()
