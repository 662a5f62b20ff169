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


def age_from_dates(birth: object, study: object) -> int | None:
    """Whole years between a birth date and a study date (YYYYMMDD); None when either is bad."""
    born, seen = _date_parts(birth), _date_parts(study)
    if born is None or seen is None or seen < born:
        return None
    years = seen[0] - born[0] - ((seen[1], seen[2]) < (born[1], born[2]))
    return years if years <= 150 else None


def _date_parts(value: object) -> tuple[int, int, int] | None:
    if value is None:
        return None
    text = str(value).strip().replace("-", "")
    if len(text) != 8 or not text.isdigit():
        return None
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return (year, month, day)


def count_of(value: object) -> int | None:
    """A non-negative whole count from an int, a float or a text such as '12' or '12.0'."""
    if value is None:
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    if number != number or number < 0 or number > 2**31 - 1 or number != int(number):
        return None
    return int(number)


def decimal_of(value: object) -> float | None:
    """A positive measurement (DS or FD): the first value of a multi-valued one (PixelSpacing)."""
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        items = list(value)  # type: ignore[call-overload]
        if not items:
            return None
        value = items[0]
    try:
        number = float(str(value).split("\\")[0])
    except ValueError:
        return None
    if number != number or number <= 0 or number > 1e6:
        return None
    return number
