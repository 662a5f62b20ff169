"""DICOM value normalisation: ages, sexes, code strings, years."""

import pytest

from catalogue.domain.cohort import Sex
from catalogue.imaging.normalise import age_in_years, coded, free_text, sex_code, year_of


@pytest.mark.parametrize(
    ("raw", "years"),
    [
        ("066Y", 66),
        ("000Y", 0),
        ("018M", 1),
        ("011M", 0),
        ("104W", 1),
        ("364D", 0),
        ("366D", 1),
        (" 45y ", 45),
        ("999Y", None),
        ("66", None),
        ("Y", None),
        ("", None),
        (None, None),
        (66, None),
    ],
)
def test_age_in_years(raw: object, years: int | None) -> None:
    assert age_in_years(raw) == years


@pytest.mark.parametrize(
    ("raw", "sex"),
    [
        ("F", Sex.FEMALE),
        ("m", Sex.MALE),
        (" O ", Sex.OTHER),
        ("0000", Sex.UNKNOWN),
        ("U", Sex.UNKNOWN),
        ("6657", Sex.UNKNOWN),
        (None, Sex.UNKNOWN),
    ],
)
def test_sex_is_never_guessed(raw: object, sex: Sex) -> None:
    assert sex_code(raw) == sex


def test_coded_and_free_text() -> None:
    assert coded(" chest  abdomen ") == "CHEST ABDOMEN"
    assert coded("   ") is None
    assert free_text("  GE   MEDICAL Systems ") == "ge medical systems"
    assert free_text(None) is None


@pytest.mark.parametrize(
    ("raw", "year"), [("20010102", 2001), ("1999-01-02", 1999), ("abcd", None), ("19", None)]
)
def test_year_only(raw: str, year: int | None) -> None:
    assert year_of(raw) == year
