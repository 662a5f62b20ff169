"""A deliberately simple reference evaluator of feasibility queries (docs/feasibility.md).

Plain loops and sets over a list of row dicts, one per series: the SERIES_SCHEMA columns plus
`provider`. It shares only the query model with the catalogue (never its cohort index), and
follows the spec literally:

- the scope is every (provider, dataset) pair with rows, narrowed by `datasets.providers`,
  `datasets.datasets` and, when given, an explicit set of pairs (the catalogue resolves the
  metadata criteria of the scope to such a set);
- a subject is (provider, subject); its sex is the one known sex (F, M, O) of all its rows in
  the provider, whatever the scope, else U;
- for each cell (a provider's rows in scope; one pair's rows), for each subject with rows `R`
  in it, the normalised tree is evaluated recursively over `R`;
- the counted rows of a matching subject are all of `R` when the tree has no positive (under an
  even number of `not`s) series or study leaf, else the union of the rows each positive leaf
  selects;
- strata tables count the counted rows of the provider cells by their values; a table lists all
  sexes, all age bands and, for modality, body part and year, the values at least
  `strata_min_subjects` subjects hold in scope, then '(other)' for the rest, then unknown
  (docs/privacy.md, "Strata listings").
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalogue.domain.cohort import (
    CohortQuery,
    Criterion,
    ExactCounts,
    ExactResult,
    SeriesCriteria,
    StrataTable,
    Stratum,
    StratumCell,
    StudyCriteria,
    SubjectCriteria,
)

Row = Mapping[str, Any]
Diagnoses = Mapping[tuple[str, Any], Iterable[str]]

SEXES: tuple[str, ...] = ("F", "M", "O", "U")
AGE_BANDS: tuple[str | None, ...] = (
    *(f"{low}-{low + 9}" for low in range(0, 100, 10)),
    "100+",
    None,
)
"""Every value of the AGE_BAND dimension, unknown (None) included."""


def code(value: object) -> str | None:
    """A modality or body part as the spec compares it: whitespace collapsed, upper case."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).upper()
    return text or None


def name(value: object) -> str | None:
    """A manufacturer or model as the spec compares it: whitespace collapsed, case folded."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).casefold()
    return text or None


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    if age >= 100:
        return "100+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


@dataclass(frozen=True)
class _Row:
    """One series row, its values normalised; `n` is its position (its identity)."""

    n: int
    provider: str
    dataset: str
    subject: Any
    study: Any
    series: Any
    sex: str
    age: int | None
    study_year: int | None
    modality: str | None
    body_part: str | None
    manufacturer: str | None
    model: str | None
    slice_thickness: float | None
    field_strength: float | None
    contrast: bool | None
    is_annotation: bool
    annotated_series: Any


def _row(n: int, raw: Row) -> _Row:
    sex = raw.get("sex")
    sex = sex.strip().upper() if isinstance(sex, str) else "U"
    return _Row(
        n=n,
        provider=str(raw["provider"]),
        dataset=str(raw["dataset"]),
        subject=raw["subject"],
        study=raw["study"],
        series=raw["series"],
        sex=sex if sex in ("F", "M", "O") else "U",
        age=raw.get("age"),
        study_year=raw.get("study_year"),
        modality=code(raw.get("modality")),
        body_part=code(raw.get("body_part")),
        manufacturer=name(raw.get("manufacturer")),
        model=name(raw.get("model")),
        slice_thickness=raw.get("slice_thickness"),
        field_strength=raw.get("field_strength"),
        contrast=raw.get("contrast"),
        is_annotation=bool(raw.get("is_annotation")),
        annotated_series=raw.get("annotated_series"),
    )


@dataclass
class _Context:
    """What a subject's evaluation in one cell sees."""

    provider: str
    subject: Any
    rows: list[_Row]
    """R: the subject's rows in the cell."""
    sex: str
    diagnoses: frozenset[str]


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    """Inclusive bounds, a missing bound open; an unknown value fails when a bound is given."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _meets(row: _Row, item: SeriesCriteria, ctx: _Context) -> bool:
    """Whether one row meets every field a series item gives."""
    if item.modality and row.modality not in item.modality:
        return False
    if item.body_part and row.body_part not in item.body_part:
        return False
    if item.manufacturer and row.manufacturer not in item.manufacturer:
        return False
    if item.model and row.model not in item.model:
        return False
    if not _within(row.slice_thickness, item.slice_thickness_min, item.slice_thickness_max):
        return False
    if not _within(row.field_strength, item.field_strength_min, item.field_strength_max):
        return False
    if item.contrast is True and row.contrast is not True:
        return False
    if item.contrast is False and row.contrast is True:
        return False
    if item.has_annotation:
        kinds = {k.value for k in item.has_annotation}
        annotated = False
        for other in ctx.rows:
            if (
                other.n != row.n
                and other.study == row.study
                and other.dataset == row.dataset
                and other.is_annotation
                and other.modality in kinds
                and (other.annotated_series is None or other.annotated_series == row.series)
            ):
                annotated = True
                break
        if not annotated:
            return False
    return True


def _studies(rows: list[_Row]) -> dict[Any, list[_Row]]:
    out: dict[Any, list[_Row]] = {}
    for row in rows:
        out.setdefault(row.study, []).append(row)
    return out


def _study_holds(rows: list[_Row], leaf: StudyCriteria, ctx: _Context) -> bool:
    """Whether the rows of one study (T) meet a study leaf."""
    dated = leaf.year_min is not None or leaf.year_max is not None
    if dated and not any(_within(r.study_year, leaf.year_min, leaf.year_max) for r in rows):
        return False
    if not all(any(r.modality == m for r in rows) for m in leaf.modalities):
        return False
    return all(any(_meets(r, item, ctx) for r in rows) for item in leaf.series)


def _study_rows(rows: list[_Row], leaf: StudyCriteria, ctx: _Context) -> list[_Row]:
    """The rows a met study leaf counts of its study."""
    if not leaf.modalities and not leaf.series:
        return list(rows)
    return [
        r
        for r in rows
        if r.modality in leaf.modalities or any(_meets(r, item, ctx) for item in leaf.series)
    ]


def _subject_holds(leaf: SubjectCriteria, ctx: _Context) -> bool:
    if leaf.sex and ctx.sex not in {s.value for s in leaf.sex}:
        return False
    aged = leaf.age_min is not None or leaf.age_max is not None
    if aged and not any(_within(r.age, leaf.age_min, leaf.age_max) for r in ctx.rows):
        return False
    return not leaf.diagnosis or bool(ctx.diagnoses & set(leaf.diagnosis))


def holds(node: Criterion, ctx: _Context) -> bool:
    """Whether a (sub)tree holds for one subject in one cell."""
    if node.all_of is not None:
        return all(holds(child, ctx) for child in node.all_of)
    if node.any_of is not None:
        return any(holds(child, ctx) for child in node.any_of)
    if node.not_ is not None:
        return not holds(node.not_, ctx)
    if node.subject is not None:
        return _subject_holds(node.subject, ctx)
    if node.series is not None:
        item = node.series
        return any(_meets(r, item, ctx) for r in ctx.rows)
    assert node.study is not None
    leaf = node.study
    return any(_study_holds(t, leaf, ctx) for t in _studies(ctx.rows).values())


def positive_leaves(node: Criterion, negations: int = 0) -> list[Criterion]:
    """The series and study leaves under an even number of `not`s."""
    if node.all_of is not None or node.any_of is not None:
        children = node.all_of if node.all_of is not None else node.any_of
        return [leaf for c in children or () for leaf in positive_leaves(c, negations)]
    if node.not_ is not None:
        return positive_leaves(node.not_, negations + 1)
    if (node.series is not None or node.study is not None) and negations % 2 == 0:
        return [node]
    return []


def counted_rows(leaves: list[Criterion], ctx: _Context) -> list[_Row]:
    """The counted rows of a matching subject in a cell."""
    if not leaves:
        return list(ctx.rows)
    chosen: dict[int, _Row] = {}
    for leaf in leaves:
        if leaf.series is not None:
            item = leaf.series
            chosen.update((r.n, r) for r in ctx.rows if _meets(r, item, ctx))
        else:
            assert leaf.study is not None
            study = leaf.study
            for t in _studies(ctx.rows).values():
                if _study_holds(t, study, ctx):
                    chosen.update((r.n, r) for r in _study_rows(t, study, ctx))
    return [chosen[n] for n in sorted(chosen)]


@dataclass
class _Tally:
    subjects: set[tuple[str, Any]] = field(default_factory=set)
    studies: set[tuple[str, Any]] = field(default_factory=set)
    series: int = 0

    def add(self, provider: str, subject: Any, rows: Iterable[_Row]) -> None:
        self.subjects.add((provider, subject))
        for row in rows:
            self.studies.add((provider, row.study))
            self.series += 1

    def counts(self) -> ExactCounts:
        return ExactCounts(
            subjects=len(self.subjects), studies=len(self.studies), series=self.series
        )


def _dimension_value(dimension: Stratum, row: _Row, sex: str) -> str | None:
    if dimension is Stratum.SEX:
        return sex
    if dimension is Stratum.AGE_BAND:
        return age_band(row.age)
    if dimension is Stratum.MODALITY:
        return row.modality
    if dimension is Stratum.BODY_PART:
        return row.body_part
    return None if row.study_year is None else str(row.study_year)


OTHER = "(other)"
"""The cell of a data-valued dimension's values too rare to be listed by name."""


def _listed(dimension: Stratum, rows: Iterable[_Row], min_subjects: int) -> list[str]:
    """The values of a data-valued dimension that at least `min_subjects` subjects hold."""
    holders: dict[str, set[tuple[str, Any]]] = {}
    for row in rows:
        value = _dimension_value(dimension, row, "U")
        if value is not None:
            holders.setdefault(value, set()).add((row.provider, row.subject))
    return sorted(v for v, who in holders.items() if len(who) >= min_subjects)


def evaluate(
    rows: Sequence[Row],
    query: CohortQuery,
    *,
    strata: Sequence[Sequence[Stratum]] = (),
    scopes: Iterable[tuple[str, str]] | None = None,
    diagnoses: Diagnoses | None = None,
    strata_min_subjects: int = 1,
) -> ExactResult:
    """Exact counts of `query` over `rows`, per the spec, the slow and obvious way."""
    query = query.normalised()
    tree = query.where if query.where is not None else Criterion(all_of=())
    scope = query.datasets
    if scope.by_metadata and scopes is None:
        raise ValueError("the metadata criteria of the scope need an explicit set of scopes")
    table = [_row(n, raw) for n, raw in enumerate(rows)]

    known_sexes: dict[tuple[str, Any], set[str]] = {}
    for row in table:
        found = known_sexes.setdefault((row.provider, row.subject), set())
        if row.sex != "U":
            found.add(row.sex)
    sex_of = {key: next(iter(v)) if len(v) == 1 else "U" for key, v in known_sexes.items()}
    codes: dict[tuple[str, Any], frozenset[str]] = {}
    for key, values in (diagnoses or {}).items():
        codes[key] = frozenset(c for c in (code(v) for v in values) if c)

    allowed = None if scopes is None else set(scopes)
    pairs = sorted(
        {
            (r.provider, r.dataset)
            for r in table
            if (not scope.providers or r.provider in scope.providers)
            and (not scope.datasets or r.dataset in scope.datasets)
            and (allowed is None or (r.provider, r.dataset) in allowed)
        }
    )
    chosen_pairs = set(pairs)
    in_scope = [r for r in table if (r.provider, r.dataset) in chosen_pairs]
    leaves = positive_leaves(tree)

    def cell(cell_rows: list[_Row]) -> tuple[_Tally, list[tuple[_Context, list[_Row]]]]:
        by_subject: dict[tuple[str, Any], list[_Row]] = {}
        for row in cell_rows:
            by_subject.setdefault((row.provider, row.subject), []).append(row)
        tally = _Tally()
        matched = []
        for (provider, subject), subject_rows in by_subject.items():
            ctx = _Context(
                provider=provider,
                subject=subject,
                rows=subject_rows,
                sex=sex_of[(provider, subject)],
                diagnoses=codes.get((provider, subject), frozenset()),
            )
            if holds(tree, ctx):
                chosen = counted_rows(leaves, ctx)
                tally.add(provider, subject, chosen)
                matched.append((ctx, chosen))
        return tally, matched

    by_provider: dict[str, ExactCounts] = {}
    everyone: list[tuple[_Context, list[_Row]]] = []
    for provider in sorted({p for p, _ in pairs}):
        tally, matched = cell([r for r in in_scope if r.provider == provider])
        by_provider[provider] = tally.counts()
        everyone.extend(matched)
    by_dataset: dict[tuple[str, str], ExactCounts] = {}
    for pair in pairs:
        tally, _ = cell([r for r in in_scope if (r.provider, r.dataset) == pair])
        by_dataset[pair] = tally.counts()

    tables = []
    for dimensions in strata:
        dims = tuple(dimensions)
        domains: list[list[str | None]] = []
        for dimension in dims:
            if dimension is Stratum.SEX:
                domains.append(list(SEXES))
            elif dimension is Stratum.AGE_BAND:
                domains.append(list(AGE_BANDS))
            else:
                domains.append([*_listed(dimension, in_scope, strata_min_subjects), OTHER, None])
        tallies = {values: _Tally() for values in itertools.product(*domains)}
        for ctx, chosen in everyone:
            for row in chosen:
                cell_values = tuple(
                    value if value is None or value in domain else OTHER
                    for value, domain in zip(
                        (_dimension_value(d, row, ctx.sex) for d in dims), domains, strict=True
                    )
                )
                tallies[cell_values].add(ctx.provider, ctx.subject, [row])
        tables.append(
            StrataTable(
                dimensions=dims,
                cells=tuple(
                    StratumCell(values=values, counts=t.counts()) for values, t in tallies.items()
                ),
            )
        )

    total = ExactCounts(
        subjects=sum(c.subjects for c in by_provider.values()),
        studies=sum(c.studies for c in by_provider.values()),
        series=sum(c.series for c in by_provider.values()),
    )
    return ExactResult(
        total=total, by_provider=by_provider, by_dataset=by_dataset, strata=tuple(tables)
    )
