"""Disclosure control: the one place an exact count becomes a publishable one.

Pure functions, no I/O. A count from 1 to threshold-1 is suppressed (no value); any other count
is rounded to the nearest multiple of `rounding` (halves up), and never below the threshold.
With threshold 1 and rounding 1 counts are exact (trusted deployments and tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from catalogue.config import DisclosureSettings


@dataclass(frozen=True)
class DisclosedCount:
    """A count fit to publish: a value, or suppressed; `precision` says how it was published."""

    value: int | None
    suppressed: bool
    precision: str


def disclose(count: int, rules: DisclosureSettings) -> DisclosedCount:
    """Apply the threshold and rounding rules to one exact count."""
    if count < 0:
        raise ValueError("a count cannot be negative")
    exact = rules.threshold <= 1 and rules.rounding <= 1
    precision = "exact" if exact else f"rounded to {rules.rounding}"
    if count == 0:
        return DisclosedCount(value=0, suppressed=False, precision=precision)
    if count < rules.threshold:
        return DisclosedCount(value=None, suppressed=True, precision=precision)
    step = rules.rounding
    rounded = (count + step // 2) // step * step
    floor = -(-rules.threshold // step) * step  # the smallest multiple of step >= threshold
    return DisclosedCount(value=max(rounded, floor), suppressed=False, precision=precision)
