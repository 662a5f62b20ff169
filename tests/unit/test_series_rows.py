"""The shared series-feature builder: allow-listed, pseudonymised, normalised."""

import pytest

from catalogue.domain.identifiers import Pseudonymiser
from catalogue.imaging.features import SERIES_SCHEMA, SeriesRows
from catalogue.imaging.normalise import age_from_dates, count_of, decimal_of

PSEUDO = Pseudonymiser(b"0123456789abcdef-test")


def test_a_full_row() -> None:
    rows = SeriesRows(PSEUDO)
    attrs = {
        "PatientID": "PID-7",
        "PatientName": "Doe^Jane",
        "StudyInstanceUID": "1.2.3",
        "SeriesInstanceUID": "1.2.3.4",
        "PatientSex": "F",
        "PatientBirthDate": "19600415",
        "StudyDate": "20210414",
        "Modality": "seg",
        "BodyPartExamined": "chest",
        "Manufacturer": "Siemens ",
        "ManufacturerModelName": "SOMATOM  Force",
        "SliceThickness": "1.25",
        "PixelSpacing": ["0.7", "0.7"],
        "MagneticFieldStrength": None,
        "ContrastBolusAgent": "Omnipaque",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.66.4",
        "instanceCount": "120",
        "ReferencedSeriesUID": "1.2.3.9",
        "InstitutionName": "St Elsewhere",
    }
    assert rows.add("lung-ct", attrs) is None
    batch = rows.take()
    assert batch.schema == SERIES_SCHEMA
    row = batch.to_pylist()[0]
    assert row["subject"] == PSEUDO("PID-7") and row["series"] == PSEUDO("1.2.3.4")
    assert row["age"] == 60  # one day before the 61st birthday
    assert row["study_year"] == 2021
    assert (row["modality"], row["body_part"], row["manufacturer"]) == ("SEG", "CHEST", "siemens")
    assert row["model"] == "somatom force"
    assert row["slice_thickness"] == pytest.approx(1.25)
    assert row["pixel_spacing"] == pytest.approx(0.7)
    assert row["field_strength"] is None
    assert row["contrast"] is True
    assert row["is_annotation"] is True
    assert row["annotated_series"] == PSEUDO("1.2.3.9")
    assert row["instances"] == 120
    text = str(row)
    for secret in ("Doe", "PID-7", "1.2.3.4", "19600415", "20210414", "Elsewhere"):
        assert secret not in text
    assert len(rows) == 0


def test_age_prefers_patient_age_and_skips_rows_without_ids() -> None:
    rows = SeriesRows(PSEUDO)
    ids = {"PatientID": "a", "StudyInstanceUID": "1", "SeriesInstanceUID": "1.1"}
    assert (
        rows.add(
            "d",
            {**ids, "PatientAge": "045Y", "PatientBirthDate": "19000101", "StudyDate": "20200101"},
        )
        is None
    )
    assert rows.add("d", {**ids, "PatientID": " "}) == "missing identifier or dataset"
    assert rows.add(None, ids) == "missing identifier or dataset"
    assert rows.add("d", {**ids, "ContrastBolusAgent": ""}) is None
    out = rows.take().to_pylist()
    assert [r["age"] for r in out] == [45, None]
    assert [r["contrast"] for r in out] == [None, None]  # "no contrast" is never inferred


@pytest.mark.parametrize(
    ("birth", "study", "age"),
    [
        ("19600415", "20210415", 61),
        ("19600415", "20210414", 60),
        ("2000-02-29", "2001-02-28", 0),
        ("20210101", "20200101", None),
        ("1960", "20210101", None),
        (None, "20210101", None),
    ],
)
def test_age_from_dates(birth: object, study: object, age: int | None) -> None:
    assert age_from_dates(birth, study) == age


def test_numbers() -> None:
    assert count_of("12.0") == 12 and count_of("x") is None and count_of(-1) is None
    assert decimal_of("0.5\\0.5") == 0.5 and decimal_of([]) is None and decimal_of("0") is None
