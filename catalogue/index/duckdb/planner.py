"""What the compiler needs to know of the data: per-value subject counts, to start a query from
its most selective criterion, and the values a strata table has cells for."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import duckdb

from catalogue.domain.cohort import Criterion, SeriesCriteria, Stratum
from catalogue.index.duckdb.compiler import OTHER, Scope

_COUNTED = ("modality", "body_part", "manufacturer", "model")
_UNKNOWN = 0.5
"""The share assumed for a criterion the statistics say nothing of (ranges, years, ages)."""

SEXES: tuple[str | None, ...] = ("F", "M", "O", "U")
AGE_BANDS: tuple[str | None, ...] = (
    *(f"{low}-{low + 9}" for low in range(0, 100, 10)),
    "100+",
    None,
)


@dataclass
class Statistics:
    """Distinct subjects per value of the coded columns, over the whole index."""

    subjects: int = 0
    by_value: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> Statistics:
        total = con.execute("SELECT count(DISTINCT psub) FROM facts").fetchone()
        selects = " UNION ALL ".join(
            f"SELECT '{c}', {c}, count(DISTINCT psub) FROM facts WHERE {c} IS NOT NULL GROUP BY {c}"
            for c in _COUNTED
        )
        stats = cls(subjects=int(total[0]) if total else 0)
        for column, value, n in con.execute(selects).fetchall():
            stats.by_value.setdefault(str(column), {})[str(value)] = int(n)
        return stats

    def _values(self, column: str, values: tuple[str, ...]) -> float:
        if not self.subjects:
            return 1.0
        known = self.by_value.get(column, {})
        return min(1.0, sum(known.get(v, 0) for v in values) / self.subjects)

    def _series(self, item: SeriesCriteria) -> float:
        share = 1.0
        for column in _COUNTED:
            values = getattr(item, column)
            if values:
                share = min(share, self._values(column, values))
        numeric = (
            item.slice_thickness_min,
            item.slice_thickness_max,
            item.field_strength_min,
            item.field_strength_max,
            item.contrast,
        )
        if any(v is not None for v in numeric) or item.has_annotation:
            share = min(share, _UNKNOWN)
        return share

    def share(self, node: Criterion) -> float:
        """An upper estimate of the share of subjects having a row that meets the leaf's
        condition (for a study leaf, the condition of its most selective part)."""
        if node.series is not None:
            return self._series(node.series)
        if node.study is not None:
            study = node.study
            parts = [self._values("modality", (m,)) for m in study.modalities]
            parts.extend(self._series(item) for item in study.series)
            return min(parts, default=_UNKNOWN)
        return _UNKNOWN


def data_domains(
    con: duckdb.DuckDBPyConnection,
    strata: tuple[tuple[Stratum, ...], ...],
    scope: Scope,
    min_subjects: int,
) -> dict[Stratum, tuple[str, ...]]:
    """For each data-valued dimension asked for, the values held by at least `min_subjects`
    subjects in scope: the only ones a table lists by name (the rest are '(other)'), so that
    which cells a table has says nothing a disclosure-controlled count would not."""
    out: dict[Stratum, tuple[str, ...]] = {}
    for dim in {d for dims in strata for d in dims} & set(_DATA_COLUMNS):
        rows = con.execute(
            f"SELECT {_DATA_COLUMNS[dim]} AS v FROM facts AS s WHERE {scope.sql('s.cell')} AND "
            f"{_DATA_COLUMNS[dim]} IS NOT NULL GROUP BY v "
            "HAVING count(DISTINCT s.psub) >= $1 ORDER BY v",
            [min_subjects],
        ).fetchall()
        out[dim] = tuple(str(r[0]) for r in rows)
    return out


def strata_domain(
    dims: tuple[Stratum, ...], domains: dict[Stratum, tuple[str, ...]]
) -> list[tuple[str | None, ...]]:
    """Every cell of a table: the combinations of each dimension's values, whatever the
    criteria (fixed lists for sex and age bands; listed values, '(other)' and unknown for the
    data-valued ones)."""
    axes: list[tuple[str | None, ...]] = []
    for dim in dims:
        if dim is Stratum.SEX:
            axes.append(SEXES)
        elif dim is Stratum.AGE_BAND:
            axes.append(AGE_BANDS)
        else:
            axes.append((*domains[dim], OTHER, None))
    return list(product(*axes))


_DATA_COLUMNS = {
    Stratum.MODALITY: "s.modality",
    Stratum.BODY_PART: "s.body_part",
    Stratum.YEAR: "CAST(s.study_year AS VARCHAR)",
}
