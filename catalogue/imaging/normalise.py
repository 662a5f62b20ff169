"""Normalisation of DICOM header values into features: ages, sexes, coded strings."""

from __future__ import annotations

import re

from catalogue.domain.cohort import Sex

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_DAYS_PER_UNIT = {"D": 1, "W": 7}


def age_in_years(value: object) -> int | None:
    """Whole years from a DICOM Age String (nnnD/W/M/Y); None when it cannot be parsed.

    Ages in days and weeks use 365.25-day years; months use 12-month years.
    """
    if not isinstance(value, str):
        return None
    match = _AGE.match(value)
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2).upper()
    if unit == "Y":
        years = number
    elif unit == "M":
        years = number // 12
    else:
        years = int(number * _DAYS_PER_UNIT[unit] // 365.25)
    return years if years <= 150 else None


def sex_code(value: object) -> Sex:
    """DICOM PatientSex to a Sex; anything but F, M or O is UNKNOWN, never guessed."""
    if isinstance(value, str):
        code = value.strip().upper()
        if code in ("F", "M", "O"):
            return Sex(code)
    return Sex.UNKNOWN


def coded(value: object) -> str | None:
    """A DICOM code string (Modality, BodyPartExamined): spaces collapsed, upper case."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).upper()
    return text or None


def free_text(value: object) -> str | None:
    """A free-text attribute (Manufacturer): trimmed, case-folded, None when empty."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).casefold()
    return text or None


def year_of(value: object) -> int | None:
    """The year of a DICOM date (YYYYMMDD or YYYY-MM-DD); the rest of the date is dropped."""
    if not isinstance(value, str) or len(value.strip()) < 4 or not value.strip()[:4].isdigit():
        return None
    year = int(value.strip()[:4])
    return year if 1800 <= year <= 2200 else None
