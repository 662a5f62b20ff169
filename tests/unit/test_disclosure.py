"""Disclosure rules on single counts, exhaustively over small ranges and by property."""

from hypothesis import given
from hypothesis import strategies as st

from catalogue.config import DisclosureSettings
from catalogue.services.disclosure import disclose


def test_defaults_suppress_small_counts_and_round_the_rest() -> None:
    rules = DisclosureSettings()
    assert rules.threshold == 10
    assert rules.rounding == 5
    assert disclose(0, rules).value == 0
    for count in range(1, 10):
        published = disclose(count, rules)
        assert published.suppressed
        assert published.value is None
    assert disclose(10, rules).value == 10
    assert disclose(12, rules).value == 10
    assert disclose(13, rules).value == 15
    assert disclose(1234, rules).value == 1235
    assert disclose(13, rules).precision == "rounded to 5"


def test_exact_mode() -> None:
    rules = DisclosureSettings(threshold=1, rounding=1)
    for count in range(0, 50):
        published = disclose(count, rules)
        assert published.value == count
        assert not published.suppressed
        assert published.precision == "exact"


@given(
    count=st.integers(min_value=0, max_value=10**7),
    threshold=st.integers(min_value=1, max_value=100),
    rounding=st.integers(min_value=1, max_value=100),
)
def test_no_published_value_below_threshold(count: int, threshold: int, rounding: int) -> None:
    published = disclose(count, DisclosureSettings(threshold=threshold, rounding=rounding))
    if published.suppressed:
        assert published.value is None
        assert 0 < count < threshold
    else:
        assert published.value is not None
        assert published.value == 0 or published.value >= threshold
        assert published.value % rounding == 0
        assert (published.value == 0) == (count == 0)
        assert abs(published.value - count) <= max(rounding, threshold)
