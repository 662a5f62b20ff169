"""Distinct subjects across providers (docs/federation.md): the union of the providers'
HyperLogLog sketches, estimated and then disclosed under the same rules as every count. Only
the disclosed estimate and its stated error leave this module."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from catalogue.config import DisclosureSettings
from catalogue.domain.linkage import ERROR_BOUND, HllSketch
from catalogue.services.disclosure import DisclosedCount, publish_estimate

NO_KEY = "harvested without a federation key"


@dataclass(frozen=True)
class DistinctSubjects:
    """The disclosed estimate of how many distinct subjects match, over `providers`."""

    estimate: DisclosedCount
    relative_error: float
    """The stated relative error of the estimate before rounding and noise (3 standard
    errors of HyperLogLog++)."""
    lower: int | None
    """A lower bound of the distinct subjects of `providers`, allowing for the stated error,
    the rounding and, with noise, three noise scales (None when suppressed)."""
    upper: int | None
    """The upper bound likewise (None when suppressed, or when a provider in scope is
    `missing`)."""
    providers: tuple[str, ...]
    """The providers whose subjects the estimate counts."""
    missing: dict[str, str] = field(default_factory=dict)
    """Providers in scope the estimate leaves out, with why."""


def distinct_subjects(
    sketches: Mapping[str, HllSketch],
    missing: Mapping[str, str],
    rules: DisclosureSettings,
    secret: bytes,
) -> DistinctSubjects:
    """Merge the providers' sketches, estimate the union and disclose it."""
    union = HllSketch.empty()
    for sketch in sketches.values():
        union = union.merged(sketch)
    estimate = union.estimate()
    fingerprint = int.from_bytes(hashlib.sha256(union.registers).digest()[:8], "big")
    text = f"estimated from HyperLogLog sketches (±{ERROR_BOUND:.1%})"
    published = publish_estimate(estimate, fingerprint, rules, secret, text)
    value = published.value
    lower = upper = None
    if value is not None:
        slack = rules.rounding / 2 + (3 / rules.epsilon if rules.epsilon is not None else 0)
        lower = max(0, math.ceil((value - slack) / (1 + ERROR_BOUND)))  # counts are whole
        upper = None if missing else math.floor((value + slack) / (1 - ERROR_BOUND))
    return DistinctSubjects(
        estimate=published,
        relative_error=ERROR_BOUND,
        lower=lower,
        upper=upper,
        providers=tuple(sorted(sketches)),
        missing=dict(sorted(missing.items())),
    )
