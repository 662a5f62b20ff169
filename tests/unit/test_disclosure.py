"""Disclosure rules: single counts (`disclose`), deterministic noise and whole answers
(`publish`), exhaustively over small ranges and by property."""

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.config import DisclosureSettings
from catalogue.domain.cohort import CellEvidence, ExactCounts
from catalogue.services.disclosure import (
    KINDS,
    CellInput,
    Group,
    PublishedCell,
    disclose,
    laplace_noise,
    noise_label,
    publish,
)

SECRET = b"deployment secret"
NO_NOISE = DisclosureSettings(epsilon=None)
EXACT = DisclosureSettings(threshold=1, rounding=1, publish_zero=True, epsilon=None)


def cell(
    subjects: int, studies: int | None = None, series: int | None = None, fp: int = 0
) -> CellInput:
    studies = subjects if studies is None else studies
    series = studies if series is None else series
    counts = ExactCounts(subjects=subjects, studies=studies, series=series)
    return counts, CellEvidence(subject_fp=fp, study_fp=fp + 1, series_fp=fp + 2)


def values(published: dict[str, PublishedCell], kind: str = "subjects") -> dict[str, int | None]:
    return {key: getattr(c, kind).value for key, c in published.items()}


# disclose: dataset summaries


def test_defaults_suppress_small_counts_and_zero_and_round_the_rest() -> None:
    rules = DisclosureSettings()
    assert rules.threshold == 10
    assert rules.rounding == 5
    zero = disclose(0, rules)
    assert (zero.value, zero.suppressed, zero.reason) == (None, True, "zero")
    assert disclose(0, rules.model_copy(update={"publish_zero": True})).value == 0
    for count in range(1, 10):
        published = disclose(count, rules)
        assert published.suppressed
        assert published.value is None
        assert published.reason == "small"
    assert disclose(10, rules).value == 10
    assert disclose(12, rules).value == 10
    assert disclose(13, rules).value == 15
    assert disclose(1234, rules).value == 1235
    assert disclose(13, rules).precision == "rounded to 5"
    assert disclose(13, rules).reason is None
    with pytest.raises(ValueError, match="negative"):
        disclose(-1, rules)


def test_exact_mode() -> None:
    for count in range(0, 50):
        published = disclose(count, EXACT)
        assert published.value == count
        assert not published.suppressed
        assert published.precision == "exact"


@given(
    count=st.integers(min_value=0, max_value=10**7),
    threshold=st.integers(min_value=1, max_value=100),
    rounding=st.integers(min_value=1, max_value=100),
    publish_zero=st.booleans(),
)
def test_no_published_value_below_threshold(
    count: int, threshold: int, rounding: int, publish_zero: bool
) -> None:
    rules = DisclosureSettings(threshold=threshold, rounding=rounding, publish_zero=publish_zero)
    published = disclose(count, rules)
    if published.suppressed:
        assert published.value is None
        assert 0 < count < threshold or (count == 0 and not publish_zero)
        assert published.reason == ("zero" if count == 0 else "small")
    else:
        assert published.value is not None
        assert published.value == 0 or published.value >= threshold
        assert published.value % rounding == 0
        assert (published.value == 0) == (count == 0)
        assert abs(published.value - count) <= max(rounding, threshold)


# laplace_noise


def test_noise_is_deterministic_and_keyed() -> None:
    one = laplace_noise(SECRET, "subjects", 42, 2.0)
    assert one == laplace_noise(SECRET, "subjects", 42, 2.0)
    assert one != laplace_noise(b"another secret", "subjects", 42, 2.0)
    assert one != laplace_noise(SECRET, "studies", 42, 2.0)
    assert one != laplace_noise(SECRET, "subjects", 43, 2.0)
    # the scale scales one standard sample: a cohort asked with more tables gets no fresh noise
    assert laplace_noise(SECRET, "subjects", 42, 6.0) == pytest.approx(3 * one)
    # a fingerprint is 64 bits whether spelt signed or unsigned
    assert laplace_noise(SECRET, "subjects", -1, 1.0) == laplace_noise(
        SECRET, "subjects", 2**64 - 1, 1.0
    )
    other = [laplace_noise(b"another secret", "subjects", fp, 1.0) for fp in range(100)]
    mine = [laplace_noise(SECRET, "subjects", fp, 1.0) for fp in range(100)]
    assert sum(a != b for a, b in zip(mine, other, strict=True)) == 100
    with pytest.raises(ValueError, match="scale"):
        laplace_noise(SECRET, "subjects", 42, 0.0)


@given(
    secret=st.binary(max_size=64),
    label=st.text(max_size=20),
    fingerprint=st.integers(min_value=-(2**63), max_value=2**64 - 1),
    scale=st.floats(min_value=1e-3, max_value=1e3),
)
def test_noise_is_always_finite(secret: bytes, label: str, fingerprint: int, scale: float) -> None:
    noise = laplace_noise(secret, label, fingerprint, scale)
    assert math.isfinite(noise)
    assert abs(noise) <= 37 * scale  # the uniform is never nearer 0 or 1 than 2**-53


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_noise_distribution(scale: float) -> None:
    n = 20000
    noise = [laplace_noise(SECRET, "subjects", fp * 7919 + 13, scale) for fp in range(n)]
    # Laplace(0, b): mean 0 (sd b*sqrt 2), E|X| = b (sd b), P(|X| > b) = 1/e; 5 standard errors
    assert abs(statistics.fmean(noise)) < 5 * scale * math.sqrt(2 / n)
    assert abs(statistics.fmean(abs(x) for x in noise) - scale) < 5 * scale / math.sqrt(n)
    share = sum(abs(x) > scale for x in noise) / n
    assert abs(share - math.exp(-1)) < 5 * math.sqrt(math.exp(-1) * (1 - math.exp(-1)) / n)
    assert abs(sum(x > 0 for x in noise) / n - 0.5) < 5 * math.sqrt(0.25 / n)


# publish: fixed cases


def test_exact_rules_publish_exact_counts() -> None:
    cells = {"total": cell(7, 9, 30), "provider:a": cell(7, 9, 30), "provider:b": cell(0)}
    out = publish(cells, [("total", ["provider:a", "provider:b"])], EXACT, SECRET, tables=1)
    assert values(out) == {"total": 7, "provider:a": 7, "provider:b": 0}
    assert values(out, "series") == {"total": 30, "provider:a": 30, "provider:b": 0}
    assert out["total"].subjects.precision == "exact"
    assert all(getattr(c, k).reason is None for c in out.values() for k in KINDS)


def test_precision_text_and_noise_scale() -> None:
    rules = DisclosureSettings(epsilon=0.5)
    out = publish({"total": cell(100, fp=5)}, [], rules, SECRET, tables=3)
    assert out["total"].subjects.precision == "noised (Laplace scale 6), rounded to 5"
    expected = 100 + laplace_noise(SECRET, noise_label("subjects", 6.0), 5, 6.0)
    assert out["total"].subjects.value == max(math.floor(expected / 5 + 0.5) * 5, 10)
    series = 100 + laplace_noise(
        SECRET, noise_label("series", 6.0), 7, 6.0
    )  # keyed by the series fingerprint
    assert out["total"].series.value == max(math.floor(series / 5 + 0.5) * 5, 10)
    assert publish({"t": cell(100)}, [], NO_NOISE, SECRET, 1)["t"].subjects.precision == (
        "rounded to 5"
    )
    with pytest.raises(ValueError, match="table"):
        publish({"total": cell(100)}, [], rules, SECRET, tables=0)


def test_small_and_zero_subjects_suppress_the_whole_cell() -> None:
    cells = {"a": cell(3, 40, 400), "b": cell(0, 0, 0), "c": cell(25, 4, 40)}
    out = publish(cells, [], NO_NOISE, SECRET, tables=1)
    assert [out["a"].studies.reason, out["a"].series.reason] == ["small", "small"]
    assert [out["b"].subjects.reason, out["b"].series.reason] == ["zero", "zero"]
    # studies alone small: only they are suppressed
    assert (out["c"].subjects.value, out["c"].studies.reason, out["c"].series.value) == (
        25,
        "small",
        40,
    )
    zero = publish(
        {"b": cell(0)}, [], NO_NOISE.model_copy(update={"publish_zero": True}), SECRET, 1
    )
    assert zero["b"].subjects.value == 0
    assert zero["b"].series.value == 0


def test_noise_below_threshold_suppresses() -> None:
    rules = DisclosureSettings(epsilon=1.0)
    fp = next(
        fp
        for fp in range(10**5)
        if laplace_noise(SECRET, noise_label("subjects", 2.0), fp, 2.0) < -3
    )
    out = publish({"t": cell(10, 100, 100, fp=fp)}, [], rules, SECRET, tables=2)
    assert out["t"].subjects.reason == "noise"
    assert out["t"].studies.reason == "noise" and out["t"].studies.value is None
    fp = next(
        fp
        for fp in range(10**5)
        if laplace_noise(SECRET, noise_label("subjects", 2.0), fp, 2.0) > 3
    )
    assert publish({"t": cell(10, fp=fp)}, [], rules, SECRET, tables=2)["t"].subjects.value == 15


def test_flagged_cells_are_suppressed_for_differencing() -> None:
    cells = {"total": cell(100), "provider:a": cell(60), "provider:b": cell(40)}
    groups: list[Group] = [("total", ["provider:a", "provider:b"])]
    out = publish(cells, groups, NO_NOISE, SECRET, tables=1, flagged={"provider:b"})
    assert [getattr(out["provider:b"], k).reason for k in KINDS] == ["differencing"] * 3
    # a lone suppressed child with a published parent: its sibling is suppressed too
    assert out["provider:a"].subjects.reason == "complementary"
    assert out["total"].subjects.value == 100


def test_complementary_suppression_picks_the_smallest_published_sibling() -> None:
    cells = {
        "total": cell(40),
        "provider:a": cell(20),
        "provider:b": cell(15),
        "provider:c": cell(5),
        "provider:d": cell(0),  # a zero, published or not, protects nothing
    }
    groups: list[Group] = [("total", ["provider:a", "provider:b", "provider:c", "provider:d"])]
    for rules in (NO_NOISE, NO_NOISE.model_copy(update={"publish_zero": True})):
        out = publish(cells, groups, rules, SECRET, tables=1)
        assert values(out)["provider:a"] == 20
        assert out["provider:c"].subjects.reason == "small"
        assert [getattr(out["provider:b"], k).reason for k in KINDS] == ["complementary"] * 3


def test_complementary_suppression_cascades_and_falls_back_on_the_parent() -> None:
    # provider a: datasets x (25) and y (5); suppressing y exposes x; provider b has one dataset
    cells = {
        "total": cell(60),
        "provider:a": cell(30),
        "provider:b": cell(30),
        "dataset:a/x": cell(25),
        "dataset:a/y": cell(5),
        "dataset:b/z": cell(30),
    }
    groups: list[Group] = [
        ("total", ["provider:a", "provider:b"]),
        ("provider:a", ["dataset:a/x", "dataset:a/y"]),
        ("provider:b", ["dataset:b/z"]),
    ]
    out = publish(cells, groups, NO_NOISE, SECRET, tables=1)
    assert out["dataset:a/x"].subjects.reason == "complementary"
    assert values(out)["total"] == 60
    # a group whose only non-zero child is hidden, with no sibling to hide: the parent goes
    cells = {"total": cell(12), "stratum:F": cell(5), "stratum:M": cell(0)}
    out = publish(cells, [("total", ["stratum:F", "stratum:M"])], NO_NOISE, SECRET, tables=1)
    assert out["total"].subjects.reason == "complementary"


def test_complementary_suppression_per_kind() -> None:
    # subjects all published; studies of one child small: a sibling's studies are hidden
    cells = {"total": cell(40, 60, 500), "a": cell(20, 55, 300), "b": cell(20, 5, 200)}
    out = publish(cells, [("total", ["a", "b"])], NO_NOISE, SECRET, tables=1)
    assert values(out) == {"total": 40, "a": 20, "b": 20}
    assert out["b"].studies.reason == "small"
    assert out["a"].studies.reason == "complementary"
    assert (out["a"].series.value, out["b"].series.value) == (300, 200)


def test_repeated_questions_cannot_be_averaged() -> None:
    rules = DisclosureSettings(epsilon=0.1)  # scale 10 per table
    cells = {"total": cell(137, 300, 1200, fp=99)}
    answers = [publish(cells, [], rules, SECRET, tables=1)["total"] for _ in range(50)]
    assert all(a == answers[0] for a in answers)
    for kind in KINDS:
        average = statistics.fmean(getattr(a, kind).value or 0 for a in answers)
        assert average == getattr(answers[0], kind).value
    # the same cohort asked in another form (another cell key, same sets) gets the same answer
    again = publish({"dataset:p/d": cells["total"]}, [], rules, SECRET, tables=1)
    assert again["dataset:p/d"] == answers[0]


# publish: properties


@st.composite
def answers(draw: st.DrawFn) -> tuple[dict[str, CellInput], list[Group], set[str]]:
    """A total, its providers and their datasets (children sum to parents), with strata cells
    that need not add up (one subject can count in several), and some flagged cells."""
    small = st.integers(min_value=0, max_value=40)
    cells: dict[str, CellInput] = {}
    groups: list[Group] = []
    fps = iter(range(draw(st.integers(0, 2**40)), 2**62, 3))

    def add(key: str, subjects: int, studies: int, series: int) -> None:
        cells[key] = (
            ExactCounts(subjects=subjects, studies=studies, series=series),
            CellEvidence(subject_fp=next(fps), study_fp=next(fps), series_fp=next(fps)),
        )

    providers = []
    for p in range(draw(st.integers(1, 4))):
        datasets = []
        for d in range(draw(st.integers(1, 4))):
            s = draw(small)
            st_ = s + draw(small) if s else 0
            add(f"dataset:{p}/{d}", s, st_, st_ + (draw(small) if st_ else 0))
            datasets.append(f"dataset:{p}/{d}")
        sums = [sum(getattr(cells[d][0], k) for d in datasets) for k in KINDS]
        add(f"provider:{p}", *sums)
        groups.append((f"provider:{p}", datasets))
        providers.append(f"provider:{p}")
    add("total", *[sum(getattr(cells[p][0], k) for p in providers) for k in KINDS])
    groups.append(("total", providers))
    strata = []
    for s in range(draw(st.integers(0, 4))):
        n = draw(small)
        add(f"stratum:{s}", n, n, n)
        strata.append(f"stratum:{s}")
    if strata:
        groups.append(("total", strata))
    flagged = draw(st.sets(st.sampled_from(sorted(cells))))
    return cells, groups, flagged


rule_sets = st.builds(
    DisclosureSettings,
    threshold=st.integers(1, 15),
    rounding=st.integers(1, 10),
    publish_zero=st.booleans(),
    epsilon=st.one_of(st.none(), st.floats(min_value=0.01, max_value=10)),
)


@settings(max_examples=300, deadline=None)
@given(answer=answers(), rules=rule_sets, tables=st.integers(1, 5), secret=st.binary(max_size=8))
def test_publish_properties(
    answer: tuple[dict[str, CellInput], list[Group], set[str]],
    rules: DisclosureSettings,
    tables: int,
    secret: bytes,
) -> None:
    cells, groups, flagged = answer
    out = publish(cells, groups, rules, secret, tables, flagged)
    assert out == publish(cells, groups, rules, secret, tables, flagged)  # deterministic
    assert set(out) == set(cells)
    for key, (counts, _) in cells.items():
        if out[key].subjects.suppressed:
            assert out[key].studies.suppressed and out[key].series.suppressed
        if key in flagged:
            assert all(getattr(out[key], k).suppressed for k in KINDS)
        for kind in KINDS:
            exact, shown = getattr(counts, kind), getattr(out[key], kind)
            assert shown.suppressed == (shown.value is None) == (shown.reason is not None)
            if 0 < exact < rules.threshold:  # the hard guarantee, whatever the noise
                assert shown.suppressed
            if shown.value is not None:
                assert shown.value % rules.rounding == 0
                if shown.value == 0:
                    assert exact == 0 and rules.publish_zero
                else:
                    assert shown.value >= rules.threshold
    # never exactly one suppressed non-zero child under a published parent
    for parent, children in groups:
        for kind in KINDS:
            if not getattr(out[parent], kind).suppressed:
                hidden = [
                    c
                    for c in children
                    if getattr(out[c], kind).suppressed and getattr(cells[c][0], kind) > 0
                ]
                assert len(hidden) != 1, (parent, kind, hidden)


@settings(max_examples=200, deadline=None)
@given(
    exact=st.integers(1, 14),
    threshold=st.integers(2, 15),
    epsilon=st.floats(min_value=1e-4, max_value=100),
    fp=st.integers(0, 2**64 - 1),
)
def test_small_counts_never_published_whatever_the_noise(
    exact: int, threshold: int, epsilon: float, fp: int
) -> None:
    rules = DisclosureSettings(threshold=threshold, rounding=1, epsilon=epsilon)
    shown = publish({"t": cell(exact, fp=fp)}, [], rules, SECRET, tables=1)["t"]
    if exact < threshold:
        assert all(getattr(shown, k).value is None for k in KINDS)
        assert shown.subjects.reason == "small"


def test_a_parent_is_a_member_of_its_equation() -> None:
    # the hidden provider (4) is protected by hiding the hospital; the hospital's only dataset
    # would give the hospital back, so the dataset is hidden too
    cells = {
        "total": cell(154),
        "provider:clinic": cell(4),
        "provider:hospital": cell(150),
        "dataset:hospital/general": cell(150),
    }
    groups = [
        ("total", ["provider:clinic", "provider:hospital"]),
        ("provider:hospital", ["dataset:hospital/general"]),
    ]
    out = publish(cells, groups, NO_NOISE, SECRET, tables=3)
    assert out["provider:clinic"].subjects.suppressed
    assert out["provider:hospital"].subjects.reason == "complementary"
    assert out["dataset:hospital/general"].subjects.reason == "complementary"
    assert not out["total"].subjects.suppressed


def test_replacements_publish_the_earlier_values_but_never_a_small_count() -> None:
    cells = {"a": cell(24), "b": cell(7), "c": cell(40)}
    earlier = {"a": (25, 25, None), "b": (10, 10, 10), "c": (None, None, None)}
    out = publish(cells, [], NO_NOISE, SECRET, tables=3, replacements=earlier)
    assert (out["a"].subjects.value, out["a"].studies.value) == (25, 25)
    assert out["a"].series.suppressed and out["a"].series.reason == "differencing"
    assert out["b"].subjects.suppressed and out["b"].subjects.reason == "small"
    assert out["c"].subjects.suppressed and out["c"].series.suppressed
