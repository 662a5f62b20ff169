"""Compile a normalised cohort query into one DuckDB statement (docs/feasibility.md).

The statement reads roll-ups of the series rows that every write renews (see
`catalogue.index.duckdb`), keyed by dense integers: `cell` (provider, dataset), `pid`
(provider), `dst` (provider, dataset, subject, study), `dsub` (provider, dataset, subject) and
`psub` (provider, subject):

- `facts`: the rows grouped by study and by every column a criterion or a strata dimension
  reads, with their number `n` and series fingerprint `x`, and `annotated`, which
  `hasAnnotation` criteria the row meets;
- `studies`: one row per `dst` (its rows' `n` and `x`, whether its subject spans datasets of its
  provider, whether its id is alone in its cell, provider and everywhere);
- `subjects`: one row per `dsub` (sex, distinct known ages), `spanners` those spanning datasets.

Every series and study leaf of the criterion tree becomes one or more boolean *components*
computed per row; only the rows in scope where a component holds (the *hits*) are read further.
They are rolled up per study (`bool_or` of each component, and the counted rows for each set of
study leaves that may hold), then per subject, where a study leaf holds when all its
components hold within one study. Subject leaves (sex, age, diagnosis) are evaluated on the
`subjects` roll-up. The tree is evaluated per subject, and studies and series are counted by
semi-joining the matching subjects back onto the per-study roll-ups (or onto `studies` when
every row of a matching subject counts). Without study leaves, when subject leaves may reject
subjects with hits, subjects are rolled up from the hits first and only the matching ones' are
rolled up per study.

A subject whose rows lie in one dataset of its provider matches at provider level exactly when
it matches in that dataset, with the same counted rows; only the few subjects spanning datasets
are rolled up again at provider level. Distinct studies and subjects are counted as rows where
their ids are alone, and de-duplicated only where they are not. The statement returns partial
rows of each cell that the caller adds up. No Python loop ever touches a subject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import combinations, product
from typing import Any

from catalogue.domain.cohort import (
    AnnotationKind,
    Criterion,
    SeriesCriteria,
    Stratum,
    StudyCriteria,
    SubjectCriteria,
)
from catalogue.domain.linkage import RANK_BITS
from catalogue.exceptions import QueryError

MAX_POSITIVE_STUDY_LEAVES = 4
"""Counted rows are pre-aggregated for every subset of the positive study leaves (2^n)."""

OTHER = "(other)"
"""The strata value of rows whose value too few subjects in scope hold to be listed."""

SKETCH_MASK = 255
"""Subject sketches have SKETCH_MASK + 1 buckets: the low bits of the keyed pseudonym."""

ANNOTATION_KINDS = tuple(AnnotationKind)
"""Annotation kinds, by bit: `facts.annotated` has bit m - 1 set when a `hasAnnotation` of
the kinds in bitmask m (bit i: the i-th kind) holds on the row (written with the rows)."""

_MAX_ENUMERATED = 10
"""Subject-level leaves up to which the compiler works out whether a subject without any
matching row can match (beyond: assumed it can, which is always exact, only slower)."""

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
_STRATUM_COLUMNS = {
    Stratum.SEX: "subject_sex",
    Stratum.AGE_BAND: "age",
    Stratum.MODALITY: "modality",
    Stratum.BODY_PART: "body_part",
    Stratum.YEAR: "study_year",
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
    subject_sql: str | None = None
    """For a subject leaf: its value on a `subjects` row `sj`."""

    @property
    def name(self) -> str:
        return f"l{self.index}"

    @property
    def is_study(self) -> bool:
        return self.node.study is not None

    @property
    def on_rows(self) -> bool:
        """Whether the leaf is rolled up from rows (a series leaf, a study leaf with parts)."""
        return bool(self.components)

    def study_flag(self, prefix: str = "") -> str:
        """Whether a study meets the leaf, on a per-study roll-up."""
        return " AND ".join(f"{prefix}{c}" for c in self.components) or "TRUE"


@dataclass
class Scope:
    """The cells (dense (provider, dataset) keys) in scope; None: every cell."""

    cells: tuple[int, ...] | None = None

    @property
    def empty(self) -> bool:
        return self.cells is not None and not self.cells

    def sql(self, column: str) -> str:
        """A filter on a cell column (literal integers, so that zone maps apply)."""
        if self.cells is None:
            return "TRUE"
        if not self.cells:
            return "FALSE"
        return f"{column} IN ({', '.join(str(int(c)) for c in self.cells)})"


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
    selectivity: Callable[[Criterion], float] | None  # None: no planning
    params: Params = field(default_factory=Params)
    leaves: dict[str, _Leaf] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    """Row-level component expressions, by position (column c<i>)."""
    conditions: list[str] = field(default_factory=list)
    """The same as row filters (true, false or unknown), by position."""
    parts: list[SeriesCriteria | None] = field(default_factory=list)
    """For each component, a series item its rows meet (None: a study year)."""
    plan: list[str] = field(default_factory=list)
    choice: str = "every row in scope"
    domains: Mapping[Stratum, tuple[str, ...]] = field(default_factory=dict)
    expansions: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    """Concept values of the query -> the (provider, raw value) pairs they stand for."""
    providers: Mapping[str, int] = field(default_factory=dict)
    """Provider -> its dense key (`pid`)."""
    spanning: bool = True
    """Whether some subject's rows lie in more than one dataset of its provider."""
    linkage: bool = False
    """Whether to add each provider's HyperLogLog registers of the matching subjects."""
    shared: bool = True
    """Whether some study id in scope has rows of another subject, dataset or provider."""
    shared_subjects: bool = True
    """Whether some subject id in scope is also a subject of another provider."""

    # -- leaves and components ------------------------------------------------------------

    def component(self, expr: str, part: SeriesCriteria | None = None) -> str:
        """A row-level column; `part`: a series item the rows meeting it meet (for planning)."""
        self.columns.append(f"coalesce({expr}, false)")
        self.conditions.append(expr)
        self.parts.append(part)
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
                parts.append(self.values_expr(column, values))
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
            mask = sum(1 << ANNOTATION_KINDS.index(k) for k in set(item.has_annotation))
            parts.append(f"(s.annotated & {1 << (mask - 1)}) <> 0")
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def values_expr(self, column: str, values: tuple[str, ...]) -> str:
        """A column among raw values, or among the raw values a concept expands to (each
        provider's own: a concept's mapped values are per provider)."""
        concepts = [v for v in values if v in self.expansions]
        raw = tuple(v for v in values if v not in self.expansions)
        parts = [self.in_list(f"s.{column}", raw)] if raw else []
        by_provider: dict[str, set[str]] = {}
        for concept in concepts:
            for provider, value in self.expansions[concept]:
                by_provider.setdefault(provider, set()).add(value)
        for provider in sorted(by_provider):
            if provider in self.providers:
                listed = self.in_list(f"s.{column}", tuple(sorted(by_provider[provider])))
                parts.append(f"(s.pid = {int(self.providers[provider])} AND {listed})")
        return "(" + (" OR ".join(parts) or "FALSE") + ")"

    def subject_expr(self, subject: SubjectCriteria) -> str:
        """A subject leaf on a `subjects` row `sj` (at provider level, on its roll-up)."""
        if subject.sex:
            return f"coalesce({self.in_list('sj.sex', tuple(s.value for s in subject.sex))}, false)"
        if subject.diagnosis:
            codes = self.params.add(list(subject.diagnosis))
            return (
                "EXISTS (SELECT 1 FROM diagnoses AS dx WHERE dx.provider = sj.provider "
                f"AND dx.subject = sj.subject AND list_contains({codes}, dx.code))"
            )
        bounds = []
        if subject.age_min is not None:
            bounds.append(f"a >= {self.params.add(subject.age_min)}")
        if subject.age_max is not None:
            bounds.append(f"a <= {self.params.add(subject.age_max)}")
        test = " AND ".join(bounds) or "TRUE"
        return f"coalesce(len(list_filter(sj.ages, lambda a: {test})) > 0, false)"

    def study_components(self, study: StudyCriteria) -> tuple[list[str], str | None]:
        components, contrib = [], []
        if study.year_min is not None or study.year_max is not None:
            components.append(
                self.component(self.between("s.study_year", study.year_min, study.year_max))
            )
        for modality in study.modalities:
            part = SeriesCriteria(modality=(modality,))
            components.append(self.component(f"s.modality = {self.params.add(modality)}", part))
            contrib.append(components[-1])
        for item in study.series:
            components.append(self.component(self.series_expr(item), item))
            contrib.append(components[-1])
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
            contrib, subject_sql = None, None
            components: list[str] = []
            if node.study is not None:
                components, contrib = self.study_components(node.study)
            elif node.series is not None:
                components = [self.component(self.series_expr(node.series), node.series)]
            else:
                assert node.subject is not None
                subject_sql = self.subject_expr(node.subject)
            leaf = self.leaves[key] = _Leaf(
                node, len(self.leaves), components, contrib=contrib, subject_sql=subject_sql
            )
        leaf.positive = leaf.positive or positive

    def tree_expr(self, node: Criterion, value: Mapping[int, str]) -> str:
        """The tree as SQL, each leaf (by index) standing for `value[index]`."""
        if node.all_of is not None:
            inner = " AND ".join(self.tree_expr(c, value) for c in node.all_of)
            return "(" + (inner or "TRUE") + ")"
        if node.any_of is not None:
            inner = " OR ".join(self.tree_expr(c, value) for c in node.any_of)
            return "(" + (inner or "FALSE") + ")"
        if node.not_ is not None:
            return f"(NOT {self.tree_expr(node.not_, value)})"
        return value[self.leaves[node.model_dump_json()].index]

    def evaluate(self, node: Criterion, value: Mapping[int, bool]) -> bool:
        if node.all_of is not None:
            return all(self.evaluate(c, value) for c in node.all_of)
        if node.any_of is not None:
            return any(self.evaluate(c, value) for c in node.any_of)
        if node.not_ is not None:
            return not self.evaluate(node.not_, value)
        return value[self.leaves[node.model_dump_json()].index]

    def rowless_may_match(self) -> bool:
        """Whether a subject none of whose rows meets a row component may match: the tree with
        every row leaf false, for some truth values of the subject leaves."""
        free = [leaf.index for leaf in self.leaves.values() if not leaf.on_rows]
        if len(free) > _MAX_ENUMERATED:
            return True
        fixed = {leaf.index: False for leaf in self.leaves.values() if leaf.on_rows}
        return any(
            self.evaluate(self.tree, {**fixed, **dict(zip(free, values, strict=True))})
            for values in product((False, True), repeat=len(free))
        )

    # -- planning -------------------------------------------------------------------------

    def conjuncts(self) -> list[Criterion]:
        tree = self.tree
        return list(tree.all_of) if tree.all_of is not None else [tree]

    def row_filters(self, used: bool = True) -> list[str]:
        """Exact row filters: a subject's sex is the same on all its rows."""
        filters = []
        for node in self.conjuncts():
            if node.subject is not None and node.subject.sex:
                if used:
                    sexes = tuple(s.value for s in node.subject.sex)
                    filters.append(self.in_list("s.subject_sex", sexes))
                self.plan.append(f"rows filtered on subject sex {list(node.subject.sex)}")
        return filters

    def share(self, column: int) -> float:
        """An upper estimate of the share of subjects with a row meeting a component."""
        part = self.parts[column]
        if part is None or self.selectivity is None:
            return _UNKNOWN_SHARE
        return float(self.selectivity(Criterion(series=part)))

    def candidates(self) -> str | None:
        """A necessary row condition selecting few subjects, to start from (or None): worth it
        when the rows meeting the other components are many more."""
        if self.selectivity is None:
            return None
        best: tuple[float, int, Criterion] | None = None
        for node in self.conjuncts():
            if node.not_ is not None or node.all_of is not None or node.any_of is not None:
                continue
            if node.subject is not None:
                continue
            leaf = self.leaves[node.model_dump_json()]
            for name in leaf.components:
                share = self.share(int(name[1:]))
                if best is None or share < best[0]:
                    best = (share, int(name[1:]), node)
        # which criterion, if any, is chosen depends on the data: it stays out of the plan
        # users see (`choice` is for logs and benchmarks only)
        self.plan.append(
            "start: the top-level criterion the index statistics estimate most selective, when "
            f"it selects under {_START_SHARE:.0%} of the subjects and the other criteria many "
            "more; else every row in scope"
        )
        others = sum(self.share(i) for i in range(len(self.columns)) if best and i != best[1])
        if best is None or best[0] > _START_SHARE or others < _START_GAIN * best[0]:
            self.choice = "every row in scope"
            return None
        share, column, node = best
        self.choice = f"subjects with a row meeting {node.to_json()} (about {share:.1%})"
        return self.conditions[column]

    # -- SQL ------------------------------------------------------------------------------

    def compile(self) -> Compiled:
        self.collect(self.tree, True)
        leaves = list(self.leaves.values())
        row_leaves = [leaf for leaf in leaves if leaf.on_rows]
        positive_series = [
            leaf.components[0] for leaf in leaves if leaf.positive and leaf.node.series is not None
        ]
        positive_studies = [leaf for leaf in leaves if leaf.is_study and leaf.positive]
        rowless = not row_leaves or self.rowless_may_match()
        # without subject leaves, the matching subjects' keys come with their hits
        alone = bool(row_leaves) and not rowless and all(leaf.on_rows for leaf in leaves)
        # without study leaves, when subject leaves may reject many subjects with hits, the
        # subjects are rolled up from the hits first, and only their studies then
        direct = (
            bool(row_leaves)
            and not alone
            and not self.strata
            and not any(leaf.is_study for leaf in leaves)
        )
        if len(positive_studies) > MAX_POSITIVE_STUDY_LEAVES:
            raise QueryError(
                f"at most {MAX_POSITIVE_STUDY_LEAVES} study criteria may be asked for "
                "(outside a not)"
            )
        # a positive study leaf without parts holds for every study: every row then counts
        counts_all = (not positive_series and not positive_studies) or any(
            not leaf.on_rows for leaf in positive_studies
        )
        s_hit = "TRUE" if counts_all else " OR ".join(positive_series) or "FALSE"
        # strata group counted rows: when some are not hits (every row of a study counts),
        # every row in scope is read
        whole = bool(self.strata) and (
            counts_all or any(leaf.contrib is None for leaf in positive_studies)
        )
        scope = self.scope.sql("s.cell")
        if row_leaves and not whole:
            self.plan.append("only rows meeting a series or study criterion are read")
        ctes: list[str] = []

        # -- the rows read: in scope, meeting a component (or all, for strata) ------------------
        hits = bool(row_leaves) or bool(self.strata)
        if hits:
            where = [w for w in [scope, *self.row_filters()] if w != "TRUE"]
            start = self.candidates() if not self.scope.empty and row_leaves else None
            if start is not None:
                ctes.append(
                    "cand AS (SELECT DISTINCT s.psub FROM facts AS s"
                    f"\n    WHERE {' AND '.join([*where, start])})"
                )
                where.append("s.psub IN (SELECT psub FROM cand)")
            component_cols = "".join(f", {expr} AS c{i}" for i, expr in enumerate(self.columns))
            extra = ""
            if direct:
                # rolled up per subject from the rows: with the subject's keys
                extra = ", s.dsub"
                if self.spanning:
                    extra += ", s.pid, s.subject, s.multi"
            if self.strata:
                extra += "".join(f", s.{c}" for c in self.strata_columns())
            inner = (
                f"SELECT s.dst, s.n, s.x{extra}{component_cols}"
                f"\n    FROM facts AS s\n    WHERE {' AND '.join(where) or 'TRUE'}"
            )
            contrib_cols = "".join(
                f", {leaf.contrib} AS k{leaf.index}"
                for leaf in positive_studies
                if leaf.contrib is not None
            )
            outer = f"SELECT *, ({s_hit}) AS s_hit{contrib_cols} FROM ({inner})"
            if row_leaves and not whole:
                outer += " WHERE " + " OR ".join(f"c{i}" for i in range(len(self.columns)))
            # read again (per subject and per study, for strata), or streamed into the roll-up
            # per study
            materialized = " MATERIALIZED" if self.strata or direct else ""
            ctes.append(f"hits AS{materialized} (\n    {outer})")
        else:
            self.row_filters(used=False)  # the plan says so all the same

        # -- per study --------------------------------------------------------------------------
        subsets = [
            subset
            for size in range(len(positive_studies) + 1)
            for subset in combinations(positive_studies, size)
        ]
        counted_subsets = (
            [sub for sub in subsets if all(leaf.contrib is not None for leaf in sub)]
            if not counts_all
            else []
        )

        def counted(subset: tuple[_Leaf, ...]) -> str:
            return " OR ".join(["s_hit", *(f"k{leaf.index}" for leaf in subset)])

        def subset_name(subset: tuple[_Leaf, ...]) -> str:
            return "_".join(str(leaf.index) for leaf in subset) or "none"

        carried = (
            ", any_value(cell) AS cell, any_value(pid) AS pid, any_value(psub) AS psub, "
            "any_value(subject) AS subject, any_value(multi) AS multi"
            if alone
            else ""
        )

        def picked(kind: str, prefix: str) -> str:
            """The counted rows of a study (n: how many, x: their fingerprint), given which
            positive study leaves it meets."""
            if not positive_studies:
                return f"{prefix}{kind}_none"
            cases = []
            for sub in sorted(subsets, key=len, reverse=True):
                chosen = {leaf.index for leaf in sub}
                cond = " AND ".join(
                    f"({leaf.study_flag(prefix)})"
                    if leaf.index in chosen
                    else f"NOT ({leaf.study_flag(prefix)})"
                    for leaf in positive_studies
                )
                value = (
                    f"{prefix}{kind}_{subset_name(sub)}"
                    if all(leaf.contrib is not None for leaf in sub)
                    else f"{prefix}{kind}"
                )
                cases.append(f"WHEN {cond} THEN {value}")
            return "CASE " + " ".join(cases) + " END"

        def flags(prefix: str) -> str:
            return "".join(
                f", bool_or({leaf.study_flag(prefix)}) AS {leaf.name}" for leaf in row_leaves
            )

        def matching(subjects: str, rolled: str, keys: str, using: str, alone: bool = False) -> str:
            """Subjects of `subjects` (alias sj) meeting the tree, with the row leaves' values
            from `rolled` (alias f): all subjects in scope when one without a hit may match.
            `alone`: `rolled` holds the subjects' keys, and no subject leaf is asked."""
            value: dict[int, str] = {}
            for leaf in leaves:
                if leaf.on_rows:
                    value[leaf.index] = (
                        f"coalesce(f.{leaf.name}, false)" if rowless else f"f.{leaf.name}"
                    )
                elif leaf.subject_sql is not None:
                    value[leaf.index] = leaf.subject_sql
                else:  # a study leaf without parts: the subject has a study in the cell
                    value[leaf.index] = "TRUE"
            tree = self.tree_expr(self.tree, value) if not self.tree.is_true else "TRUE"
            if alone:
                return f"SELECT {keys.replace('sj.', 'f.')} FROM {rolled} AS f\n    WHERE {tree}"
            if not row_leaves:
                source = subjects
            elif rowless:
                source = f"{subjects} LEFT JOIN {rolled} AS f USING ({using})"
            else:
                source = f"{subjects} JOIN {rolled} AS f USING ({using})"
            return f"SELECT {keys} FROM {source}\n    WHERE {tree}"

        if row_leaves and not direct:
            # the keys of a study the statement reads further on
            wanted = {"dsub"}
            if not counts_all:
                wanted |= {"cell", "pid", "multi", "study", "d_one", "p_one"}
                if any(leaf.contrib is None for leaf in positive_studies):
                    wanted |= {"n", "x"}
            if self.spanning:
                wanted |= {"pid", "subject", "study", "multi", "p_one"}
            if alone:
                wanted |= {"cell", "pid", "psub", "subject", "multi"}
            order = ("dsub", "cell", "pid", "psub", "subject", "study", "multi", "d_one", "p_one")
            keys = ", ".join(f"t.{k}" for k in (*order, "n", "x") if k in wanted)
            bool_cols = "".join(f", bool_or(c{i}) AS c{i}" for i in range(len(self.columns)))
            sums = "".join(
                f", coalesce(sum(n) FILTER (WHERE {counted(sub)}), 0) AS n_{subset_name(sub)}"
                f", bit_xor(x) FILTER (WHERE {counted(sub)}) AS x_{subset_name(sub)}"
                for sub in counted_subsets
            )
            ctes.append(
                f"st_d AS MATERIALIZED (\n    SELECT g.*, {keys} FROM (SELECT dst{bool_cols}{sums}"
                "\n    FROM hits GROUP BY dst) AS g JOIN studies AS t USING (dst))"
            )
            rolled_d = "st_d"
        else:
            # no study leaf: subjects are rolled up from their rows directly
            rolled_d = "hits"

        # -- per subject, dataset level -----------------------------------------------------------
        if row_leaves:
            ctes.append(f"sf_d AS (SELECT dsub{carried}{flags('')} FROM {rolled_d} GROUP BY dsub)")
        ctes.append(
            "m_d AS MATERIALIZED (\n    "
            + matching(
                f"(SELECT * FROM subjects WHERE {self.scope.sql('cell')}) AS sj",
                "sf_d",
                "sj.dsub, sj.cell, sj.pid, sj.psub, sj.subject, sj.multi",
                "dsub",
                alone,
            )
            + ")"
        )
        # -- per subject, provider level: only subjects spanning datasets --------------------------
        if self.spanning:
            if row_leaves and not direct:
                resums = "".join(
                    f", sum(n_{subset_name(sub)}) AS n_{subset_name(sub)}"
                    f", bit_xor(x_{subset_name(sub)}) AS x_{subset_name(sub)}"
                    for sub in counted_subsets
                )
                bools = "".join(f", bool_or(c{i}) AS c{i}" for i in range(len(self.columns)))
                rolled = (
                    f"SELECT pid, subject, study, any_value(p_one) AS p_one{bools}{resums} "
                    "FROM st_d WHERE multi "
                    "GROUP BY pid, subject, study"
                )
                if not counts_all and any(leaf.contrib is None for leaf in positive_studies):
                    # every row of the study in scope counts, in datasets without hits too
                    rolled = (
                        f"SELECT g.*, a.n, a.x FROM ({rolled}) AS g JOIN (SELECT pid, subject, "
                        "study, sum(n) AS n, bit_xor(x) AS x FROM studies "
                        f"WHERE multi AND {self.scope.sql('cell')} GROUP BY pid, subject, study) "
                        "AS a USING (pid, subject, study)"
                    )
                ctes.append(f"st_p AS MATERIALIZED (\n    {rolled})")
                ctes.append(
                    f"sf_p AS (SELECT pid, subject{flags('')} FROM st_p GROUP BY pid, subject)"
                )
            elif row_leaves:
                ctes.append(
                    f"sf_p AS (SELECT pid, subject{flags('')} FROM hits WHERE multi "
                    "GROUP BY pid, subject)"
                )
            ctes.append(
                "sj_p AS (SELECT pid, subject, any_value(psub) AS psub, "
                "any_value(provider) AS provider, any_value(sex) AS sex, "
                "flatten(list(ages)) AS ages FROM spanners "
                f"WHERE {self.scope.sql('cell')} GROUP BY pid, subject)"
            )
            ctes.append(
                "m_pm AS MATERIALIZED (\n    "
                + matching("sj_p AS sj", "sf_p", "sj.pid, sj.subject, sj.psub", "pid, subject")
                + ")"
            )
            ctes.append(
                "m_p AS MATERIALIZED (SELECT pid, subject, psub FROM m_d WHERE NOT multi "
                "UNION ALL SELECT pid, subject, psub FROM m_pm)"
            )
        else:
            ctes.append("m_p AS (SELECT pid, subject, psub FROM m_d)")

        # -- counted rows per study of the matching subjects ---------------------------------------
        cols = "cell, pid, multi, study, d_one, p_one"
        if counts_all:
            # every subject in scope matches a true tree: no semi-join
            matched = "" if self.tree.is_true else " SEMI JOIN m_d USING (dsub)"
            ctes.append(
                f"rows_d AS (SELECT {cols}, n, x FROM studies{matched} "
                f"WHERE {self.scope.sql('cell')})"
            )
            multi_rows = (
                "SELECT t.pid, t.study, any_value(t.p_one) AS p_one, sum(t.n) AS n, "
                "bit_xor(t.x) AS x FROM studies AS t SEMI JOIN m_pm USING (pid, subject) "
                f"WHERE t.multi AND {self.scope.sql('t.cell')} GROUP BY t.pid, t.subject, t.study"
            )
        elif direct:
            # the counted rows are the hits meeting a positive series leaf
            ctes.append(
                f"rows_d AS (SELECT {', '.join(f't.{c}' for c in cols.split(', '))}, r.n, r.x "
                "FROM (SELECT dst, sum(n) AS n, bit_xor(x) AS x FROM hits SEMI JOIN m_d "
                "USING (dsub) WHERE s_hit GROUP BY dst) AS r JOIN studies AS t USING (dst))"
            )
            multi_rows = (
                "SELECT t.pid, t.study, any_value(t.p_one) AS p_one, sum(r.n) AS n, "
                "bit_xor(r.x) AS x FROM (SELECT dst, sum(n) AS n, bit_xor(x) AS x FROM hits "
                "SEMI JOIN m_pm USING (pid, subject) WHERE s_hit AND multi GROUP BY dst) AS r "
                "JOIN studies AS t USING (dst) GROUP BY t.pid, t.subject, t.study"
            )
        else:
            ctes.append(
                f"rows_d AS (SELECT {cols}, {picked('n', '')} AS n, "
                f"{picked('x', '')} AS x FROM st_d SEMI JOIN m_d USING (dsub))"
            )
            multi_rows = (
                "SELECT pid, study, p_one, "
                f"{picked('n', '')} AS n, {picked('x', '')} AS x "
                "FROM st_p SEMI JOIN m_pm USING (pid, subject)"
            )
        if self.spanning:
            ctes.append(
                "rows_p AS (SELECT pid, study, p_one, n, x FROM rows_d WHERE NOT multi "
                f"UNION ALL {multi_rows})"
            )
        else:
            ctes.append("rows_p AS (SELECT pid, study, p_one, n, x FROM rows_d)")
        if positive_studies:
            self.plan.append(
                f"{len(positive_studies)} study criteria: counted rows kept per study for "
                f"{len(subsets)} combinations"
            )

        # -- the answer: partial rows, added up per cell by the caller -----------------------------
        selects = []
        for level, cell, one in (("p", "pid", "p_one"), ("d", "cell", "d_one")):
            selects.append(
                f"SELECT '{level}' AS kind, {cell} AS key, count(*) AS subjects, 0 AS studies, "
                "0 AS series, bit_xor(subject) AS fx_subject, NULL AS fx_study, NULL AS fx_series, "
                f"NULL::VARCHAR[] AS vals FROM m_{level} GROUP BY {cell}"
            )
            # a study alone with its id in the cell is counted as it is; only the others (ids
            # of several subjects, studies spanning datasets) are de-duplicated
            selects.append(
                f"SELECT '{level}', {cell}, 0, count(*) FILTER (WHERE n > 0 AND {one}), "
                "coalesce(sum(n), 0), NULL, bit_xor(study) FILTER (WHERE n > 0), bit_xor(x), "
                f"NULL FROM rows_{level} GROUP BY {cell}"
            )
            if self.shared:
                selects.append(
                    f"SELECT '{level}', {cell}, 0, count(DISTINCT study), 0, NULL, NULL, NULL, "
                    f"NULL FROM rows_{level} WHERE n > 0 AND NOT {one} GROUP BY {cell}"
                )
            if self.sketches:
                selects.append(
                    f"SELECT 'k{level}', {cell}, subject & {SKETCH_MASK}, "
                    f"count(*), 0, NULL, NULL, NULL, NULL FROM m_{level} GROUP BY ALL"
                )
        if self.linkage:
            selects.append(
                f"SELECT 'hp', m.pid, l.code >> {RANK_BITS}, max(l.code & {(1 << RANK_BITS) - 1}), "
                "0, NULL, NULL, NULL, NULL FROM m_p AS m JOIN linkage AS l USING (pid, subject) "
                f"GROUP BY m.pid, l.code >> {RANK_BITS}"
            )
            self.plan.append("HyperLogLog registers of the matching subjects' linkage codes")
        if self.strata:
            ctes.extend(self.strata_ctes(positive_studies, subsets, counts_all))
            for number, dims in enumerate(self.strata):
                values = "[" + ", ".join(f"v{i}" for i in range(len(dims))) + "]"
                keys = ", ".join(f"v{i}" for i in range(len(dims)))
                rows, people = f"strata_{number}", f"strata_{number}_s"
                selects.append(
                    f"SELECT 's{number}', NULL, count(*), 0, 0, bit_xor(subject) "
                    f"FILTER (WHERE s_one), NULL, NULL, {values} FROM {people} GROUP BY {keys}"
                )
                selects.append(
                    f"SELECT 's{number}', NULL, 0, count(*) FILTER (WHERE p_one), sum(n), NULL, "
                    f"bit_xor(study) FILTER (WHERE v_one), bit_xor(x), {values} FROM {rows} "
                    f"GROUP BY {keys}"
                )
                if self.shared:
                    selects.append(
                        f"SELECT 's{number}', NULL, 0, count(DISTINCT (pid, study)), 0, NULL, "
                        f"NULL, NULL, {values} FROM {rows} WHERE NOT p_one GROUP BY {keys}"
                    )
                    selects.append(
                        f"SELECT 's{number}', NULL, 0, 0, 0, NULL, bit_xor(DISTINCT study), "
                        f"NULL, {values} FROM {rows} WHERE NOT v_one GROUP BY {keys}"
                    )
                if self.shared_subjects:
                    selects.append(
                        f"SELECT 's{number}', NULL, 0, 0, 0, bit_xor(DISTINCT subject), NULL, "
                        f"NULL, {values} FROM {people} WHERE NOT s_one GROUP BY {keys}"
                    )
                if self.sketches:
                    selects.append(
                        f"SELECT 'q{number}', NULL, subject & {SKETCH_MASK}, count(*), 0, NULL, "
                        f"NULL, NULL, {values} FROM {people} GROUP BY ALL"
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

    def strata_ctes(
        self, positive: list[_Leaf], subsets: list[tuple[_Leaf, ...]], counts_all: bool
    ) -> list[str]:
        """The counted rows of the subjects matching at provider level, for each strata table:
        rolled up per study and cell of the table (with the counted rows for each set of
        positive study leaves that may hold), the study's set picked by its provider-level
        flags (`strata_<n>`), and the subjects of each cell of the table (`strata_<n>_s`)."""
        ctes = []
        names = ["_".join(str(leaf.index) for leaf in sub) or "none" for sub in subsets]
        if counts_all:
            sums = ", sum(n) AS n, bit_xor(x) AS x"
            n, x = "sr.n", "sr.x"
        else:
            sums = ""
            for sub, name in zip(subsets, names, strict=True):
                terms = ["s_hit"]
                for leaf in sub:
                    terms.append(f"k{leaf.index}" if leaf.contrib is not None else "TRUE")
                counted = " OR ".join(terms)
                sums += (
                    f", coalesce(sum(n) FILTER (WHERE {counted}), 0) AS n_{name}"
                    f", bit_xor(x) FILTER (WHERE {counted}) AS x_{name}"
                )
            if not positive:
                n, x = "sr.n_none", "sr.x_none"
            else:
                cases_n, cases_x = [], []
                for sub, name in sorted(
                    zip(subsets, names, strict=True), key=lambda p: len(p[0]), reverse=True
                ):
                    chosen = {leaf.index for leaf in sub}
                    cond = " AND ".join(
                        f"fl.{leaf.name}" if leaf.index in chosen else f"NOT fl.{leaf.name}"
                        for leaf in positive
                    )
                    cases_n.append(f"WHEN {cond} THEN sr.n_{name}")
                    cases_x.append(f"WHEN {cond} THEN sr.x_{name}")
                n = "CASE " + " ".join(cases_n) + " END"
                x = "CASE " + " ".join(cases_x) + " END"
        join = ""
        if positive and not counts_all:
            cols = "".join(f", {leaf.study_flag()} AS {leaf.name}" for leaf in positive)
            text = f"fl AS (SELECT dst{cols} FROM st_d"
            if self.spanning:
                pcols = "".join(f", {leaf.study_flag('p.')} AS {leaf.name}" for leaf in positive)
                text += (
                    f" WHERE NOT multi UNION ALL SELECT t.dst{pcols} FROM studies AS t "
                    "JOIN st_p AS p USING (pid, subject, study) WHERE t.multi"
                )
            ctes.append(text + ")")
            join = " JOIN fl USING (dst)"
        for number, dims in enumerate(self.strata):
            exprs = "".join(f", {self.stratum_expr(d)} AS v{i}" for i, d in enumerate(dims))
            keys = "".join(f", v{i}" for i in range(len(dims)))
            sr_keys = "".join(f", sr.v{i}" for i in range(len(dims)))
            ctes.append(
                f"strata_{number} AS (SELECT * FROM (\n    SELECT t.pid, t.psub, t.subject, "
                f"t.study, t.p_one, t.v_one, t.s_one{sr_keys}, {n} AS n, {x} AS x\n    FROM "
                f"(SELECT dst{keys}{sums} FROM (SELECT *{exprs} FROM hits AS s) "
                f"GROUP BY dst{keys}) AS sr JOIN studies AS t USING (dst){join}"
                "\n    SEMI JOIN m_p AS m ON m.psub = t.psub) WHERE n > 0)"
            )
            ctes.append(
                f"strata_{number}_s AS (SELECT psub{keys}, any_value(subject) AS subject, "
                f"any_value(s_one) AS s_one FROM strata_{number} GROUP BY psub{keys})"
            )
        return ctes

    def strata_columns(self) -> list[str]:
        """The row columns the strata dimensions asked for are computed from."""
        return sorted({_STRATUM_COLUMNS[d] for dims in self.strata for d in dims})


_START_SHARE = 0.25
"""The planner starts from a criterion when it selects under this share of the subjects..."""
_START_GAIN = 2.0
"""... and the other components are estimated to select this many times more."""
_UNKNOWN_SHARE = 0.5
"""The share assumed for a component the statistics say nothing of (a study year)."""


def compile_count(
    tree: Criterion,
    scope: Scope,
    strata: tuple[tuple[Stratum, ...], ...] = (),
    sketches: bool = False,
    selectivity: Callable[[Criterion], float] | None = None,
    domains: Mapping[Stratum, tuple[str, ...]] | None = None,
    expansions: Mapping[str, frozenset[tuple[str, str]]] | None = None,
    providers: Mapping[str, int] | None = None,
    spanning: bool = True,
    shared: bool = True,
    shared_subjects: bool = True,
    linkage: bool = False,
) -> Compiled:
    """The SQL answering a normalised tree: partial rows (kind, key, subjects, studies, series,
    subject/study/series fingerprints, strata values) to be added up per kind and key (counts
    summed, fingerprints XOR-ed). Kinds: 'p' provider cells (key: `pid`), 'd' dataset cells
    (key: `cell`), 'kp'/'kd' sketch buckets (bucket in the subjects column, subjects in the
    studies column), 's<n>' cells of strata table n, 'q<n>' their sketch buckets, with `linkage`
    'hp' HyperLogLog registers (key: `pid`, register in the subjects column, its largest rank in
    the studies column) of the matching subjects' linkage codes. `domains`
    lists, for the data-valued dimensions, the values shown as they are; others are '(other)'.
    `providers` maps providers to their `pid`. What the data in scope holds: `spanning`, a
    subject whose rows lie in more than one dataset of its provider (if not, the provider level
    is the dataset level added up); `shared`, a study id with rows of another subject, dataset
    or provider; `shared_subjects`, a subject id of more than one provider (if not, nothing is
    de-duplicated)."""
    compiler = _Compiler(tree, scope, strata, sketches, selectivity)
    compiler.domains = domains or {}
    compiler.expansions = expansions or {}
    compiler.providers = providers or {}
    compiler.spanning = spanning
    compiler.shared = shared
    compiler.shared_subjects = shared_subjects
    compiler.linkage = linkage
    return compiler.compile()
