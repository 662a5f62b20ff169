"""Disclosure control: the one place an exact count becomes a publishable one (docs/privacy.md).

Pure functions, no I/O.

- `disclose` (dataset summaries): a count from 1 to threshold-1 is suppressed, zero is published
  only with `publish_zero`, any other count is rounded to the nearest multiple of `rounding`
  (halves up) and never published below the threshold.
- `publish` (feasibility answers): the same rules on every cell of an answer, with deterministic
  Laplace noise keyed by the counted set (`noise.laplace_noise`), suppression of the cells the
  differencing check flagged, and complementary suppression, so that no suppressed cell is a
  published parent minus its published children.

With threshold 1, rounding 1, `publish_zero` and no epsilon counts are exact (trusted use, tests).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

from catalogue.config import DisclosureSettings
from catalogue.domain.cohort import CellEvidence, ExactCounts
from catalogue.services.noise import laplace_noise

__all__ = [
    "CellInput",
    "DisclosedCount",
    "Group",
    "PublishedCell",
    "Reason",
    "disclose",
    "laplace_noise",
    "publish",
    "publish_estimate",
]

Reason = Literal[
    "small", "zero", "complementary", "differencing", "noise", "unavailable", "incomplete"
]
Kind = Literal["subjects", "studies", "series"]
KINDS: tuple[Kind, ...] = ("subjects", "studies", "series")


@dataclass(frozen=True)
class DisclosedCount:
    """A count fit to publish: a value, or suppressed; `precision` says how it was published."""

    value: int | None
    suppressed: bool
    precision: str
    reason: Reason | None = None
    """Why it is suppressed: 1..threshold-1 ("small"), an unpublished zero ("zero"), to protect
    another cell ("complementary"), close to an earlier answer ("differencing"), or its noisy
    value fell below the threshold ("noise"); in a federated answer, a node that did not answer
    ("unavailable") or a total over a cell that is suppressed or unavailable ("incomplete");
    None when published."""


class PublishedCell(NamedTuple):
    """The disclosed subjects, studies and series of one cell."""

    subjects: DisclosedCount
    studies: DisclosedCount
    series: DisclosedCount


CellInput = tuple[ExactCounts, CellEvidence]
"""A cell's exact counts and the evidence (fingerprints) its noise is keyed by."""

Published = tuple[int | None, int | None, int | None]
"""The subjects, studies and series values an answer published for a cell (None: suppressed)."""

Group = tuple[str, Sequence[str]]
"""(parent key, child keys): the parent's count is (about) the sum of its children's."""


def precision(rules: DisclosureSettings, scale: float | None = None) -> str:
    """How counts are published under `rules` with Laplace noise of `scale` (None: no noise)."""
    exact = rules.threshold <= 1 and rules.rounding <= 1
    rounded = "exact" if exact else f"rounded to {rules.rounding}"
    if scale is None:
        return rounded
    return f"noised (Laplace scale {scale:g}), rounded to {rules.rounding}"


def _suppressed(text: str, reason: Reason) -> DisclosedCount:
    return DisclosedCount(value=None, suppressed=True, precision=text, reason=reason)


def _one(count: int, rules: DisclosureSettings, text: str, noise: float | None) -> DisclosedCount:
    """One count under the rules; `noise` (None: none) is added before rounding."""
    if count < 0:
        raise ValueError("a count cannot be negative")
    if count == 0:
        return DisclosedCount(0, False, text) if rules.publish_zero else _suppressed(text, "zero")
    if count < rules.threshold:
        return _suppressed(text, "small")
    step = rules.rounding
    if noise is None:
        rounded = (count + step // 2) // step * step
    else:
        rounded = math.floor((count + noise) / step + 0.5) * step
        if rounded < rules.threshold:
            return _suppressed(text, "noise")
    floor = -(-rules.threshold // step) * step  # the smallest multiple of step >= threshold
    return DisclosedCount(value=max(rounded, floor), suppressed=False, precision=text)


def disclose(count: int, rules: DisclosureSettings) -> DisclosedCount:
    """Apply the threshold, zero and rounding rules (no noise) to one exact count."""
    return _one(count, rules, precision(rules), None)


def publish(
    cells: Mapping[str, CellInput],
    groups: Sequence[Group],
    rules: DisclosureSettings,
    secret: bytes,
    tables: int,
    flagged: Collection[str] = (),
    replacements: Mapping[str, Published] | None = None,
) -> dict[str, PublishedCell]:
    """Disclose every cell of a feasibility answer that publishes `tables` tables.

    Each count gets noise of scale tables / epsilon keyed by its set's fingerprint, is rounded,
    and is suppressed when exact 1..threshold-1 (always), an exact zero without `publish_zero`,
    or noisy below the threshold; a cell whose subjects are suppressed is suppressed whole, and
    so is a `flagged` one. Then, in every group whose parent is published, a lone suppressed
    non-zero child is protected by also suppressing the published non-zero child with the
    smallest exact count (or, if there is none, the parent), until nothing changes.

    `replacements` are the values an earlier answer published for a set that differs from a
    cell's by fewer than threshold subjects (the differencing check): such a cell publishes those
    values instead of its own, so that it cannot be told apart from the earlier one (a count its
    own rules suppress stays suppressed). Noise is keyed by the scale too: the same set asked
    with another number of tables gets an independent draw, which the budget pays for."""
    if tables < 1:
        raise ValueError("an answer publishes at least one table")
    scale = None if rules.epsilon is None else tables / rules.epsilon
    text = precision(rules, scale)
    out: dict[str, dict[Kind, DisclosedCount]] = {}
    for key, (counts, evidence) in cells.items():
        prints = {
            "subjects": evidence.subject_fp,
            "studies": evidence.study_fp,
            "series": evidence.series_fp,
        }
        row: dict[Kind, DisclosedCount] = {}
        for kind in KINDS:
            noise = None
            if scale is not None:
                noise = laplace_noise(secret, noise_label(kind, scale), prints[kind], scale)
            row[kind] = _one(getattr(counts, kind), rules, text, noise)
        out[key] = row
        if key in flagged:
            _suppress(row, "subjects", "differencing")
        elif row["subjects"].reason is not None:
            _suppress(row, "subjects", row["subjects"].reason)
        elif replacements and key in replacements:
            _replace(row, replacements[key], text)
    _complementary(out, cells, groups)
    return {key: PublishedCell(**row) for key, row in out.items()}


def publish_estimate(
    estimate: float, fingerprint: int, rules: DisclosureSettings, secret: bytes, text: str
) -> DisclosedCount:
    """One estimated count (distinct subjects across providers) under the same rules as every
    cell: threshold, zero, rounding, and noise of scale 1 / epsilon keyed by `fingerprint` (the
    estimated set's sketch). `text` says how it was estimated."""
    scale = None if rules.epsilon is None else 1 / rules.epsilon
    noise = None
    if scale is not None:
        noise = laplace_noise(secret, noise_label("distinct", scale), fingerprint, scale)
    return _one(round(estimate), rules, f"{text}; {precision(rules, scale)}", noise)


def noise_label(kind: str, scale: float) -> str:
    """What a count's noise is keyed by besides its set: its kind and the noise scale."""
    return f"{kind}@{scale:g}"


def _replace(row: dict[Kind, DisclosedCount], earlier: Published, text: str) -> None:
    """Publish an earlier answer's values where this cell's own rules publish a value."""
    for kind, value in zip(KINDS, earlier, strict=True):
        if row[kind].suppressed:
            continue
        if value is None:
            row[kind] = _suppressed(text, "differencing")
        else:
            row[kind] = DisclosedCount(value=value, suppressed=False, precision=text)
    if row["subjects"].suppressed:
        _suppress(row, "subjects", "differencing")


def _suppress(row: dict[Kind, DisclosedCount], kind: Kind, reason: Reason) -> None:
    """Suppress a count that is published (and with subjects, the whole cell)."""
    for k in KINDS if kind == "subjects" else (kind,):
        if not row[k].suppressed:
            row[k] = replace(row[k], value=None, suppressed=True, reason=reason)


def _complementary(
    out: dict[str, dict[Kind, DisclosedCount]],
    cells: Mapping[str, CellInput],
    groups: Sequence[Group],
) -> None:
    """Complementary suppression over `groups`, iterated until stable (zeros do not protect).

    A group is an equation, parent = sum of children: when exactly one of its non-zero members,
    the parent included, is hidden, it could be solved for, so the published non-zero member
    with the smallest exact count is hidden too."""

    def exact(key: str, kind: Kind) -> int:
        return int(getattr(cells[key][0], kind))

    changed = True
    while changed:
        changed = False
        for parent, members in groups:
            equation = [parent, *(c for c in dict.fromkeys(members) if c != parent)]
            for kind in KINDS:
                nonzero = [c for c in equation if exact(c, kind) > 0]
                hidden = [c for c in nonzero if out[c][kind].suppressed]
                if len(hidden) != 1:
                    continue
                shown = [(exact(c, kind), c) for c in nonzero if not out[c][kind].suppressed]
                if not shown:
                    continue
                _suppress(out[min(shown)[1]], kind, "complementary")
                changed = True
