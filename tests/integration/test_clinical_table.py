"""Clinical diagnoses from a `clinical-table` source, counted with a provider's series.

Expected counts are computed here from the generated rows, following docs/feasibility.md,
without the cohort index's SQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalogue.config import ProvidersFile, load_providers
from catalogue.domain.cohort import CohortQuery, ExactCounts
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue

C34 = "ICD10CM:C34.1"
C50 = "ICD10CM:C50.9"
MODALITIES = ("CT", "MR", "PT", "SEG")


def patient_id(p: int) -> str:
    return f"MRN{p:05d}QZ"


NO_IMAGES = patient_id(99_999)
"""A patient with a diagnosis and no series."""


@dataclass(frozen=True)
class Row:
    provider: str
    dataset: str
    patient: str
    study: str
    series: str
    modality: str


def series_rows(provider: str, patients: range, seed: int) -> list[Row]:
    rng = random.Random(seed)
    out = []
    for p in patients:
        datasets = ["ds-a", "ds-b"] if p == 0 else ["ds-a" if p % 3 else "ds-b"]
        for d, dataset in enumerate(datasets):
            for s in range(1 + (p + d) % 2):
                study = f"1.2.{provider}.{p}.{d}.{s}"
                for k in range(rng.randint(1, 3)):
                    modality = rng.choice(MODALITIES)
                    out.append(
                        Row(provider, dataset, patient_id(p), study, f"{study}.{k}", modality)
                    )
    return out


def write_series(path: Path, rows: list[Row]) -> Path:
    table = [
        {
            "collection_id": r.dataset,
            "PatientID": r.patient,
            "PatientName": f"Doe^{r.patient}",
            "StudyInstanceUID": r.study,
            "SeriesInstanceUID": r.series,
            "Modality": r.modality,
            "PatientSex": "F",
        }
        for r in rows
    ]
    pq.write_table(pa.Table.from_pylist(table), path)
    return path


def clinical_rows(patients: range) -> tuple[list[dict[str, object]], dict[str, set[str]]]:
    """Raw table rows (spelt in various ways, with duplicates and blanks) and the normalised
    codes each patient should end up with."""
    raw: list[dict[str, object]] = []
    expected: dict[str, set[str]] = {}

    def add(patient: str | None, code: object, normalised: str | None = None) -> None:
        raw.append({"PatientID": patient, "diagnosis_code": code, "note": f"secret {patient}"})
        if patient is not None and normalised is not None:
            expected.setdefault(patient, set()).add(normalised)

    for p in patients:
        pid = patient_id(p)
        if p % 4 == 0:
            add(pid, " c34.1 " if p % 8 == 0 else "C34.1", C34)
        if p % 5 == 0:
            add(pid, "icd10cm:C50.9" if p % 10 == 0 else "C50.9", C50)
        if p == 4:
            add(pid, "C34.1", C34)  # a duplicate row
        if p in (1, 2):
            add(pid, " " if p == 1 else None)  # empty codes: skipped
    add(NO_IMAGES, "C34.1", C34)
    add(None, "C50.9")  # no patient: skipped
    return raw, expected


def write_clinical(path: Path, rows: list[dict[str, object]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def providers(tmp_path: Path, series: Path, clinical: Path, other: Path) -> ProvidersFile:
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"""providers:
  - id: h
    name: H
    sources:
      - kind: dicom-table
        id: pacs
        path: {series}
        dataset_column: collection_id
      - kind: clinical-table
        id: registry
        path: {clinical}
        code_system: "ICD10CM:"
  - id: other
    name: Other
    sources:
      - kind: dicom-table
        id: pacs
        path: {other}
        dataset_column: collection_id
"""
    )
    return load_providers(path)


# --- expected counts, per docs/feasibility.md ---------------------------------------------------

Match = Callable[[str, str, list[Row]], bool]
"""Whether a subject (provider, patient, its rows in the cell) matches."""


def expected(
    rows: list[Row], match: Match, counted: Callable[[Row], bool]
) -> dict[str, ExactCounts]:
    """Counts per cell ('total', 'provider:<id>', 'dataset:<provider>/<dataset>')."""
    cells: dict[str, list[Row]] = {}
    for r in rows:
        cells.setdefault(f"provider:{r.provider}", []).append(r)
        cells.setdefault(f"dataset:{r.provider}/{r.dataset}", []).append(r)
    out = {}
    for cell, cell_rows in cells.items():
        by_subject: dict[tuple[str, str], list[Row]] = {}
        for r in cell_rows:
            by_subject.setdefault((r.provider, r.patient), []).append(r)
        matched = {k for k, v in by_subject.items() if match(k[0], k[1], v)}
        kept = [r for r in cell_rows if (r.provider, r.patient) in matched and counted(r)]
        out[cell] = ExactCounts(
            subjects=len(matched),
            studies=len({(r.provider, r.study) for r in kept}),
            series=len(kept),
        )
    out["total"] = ExactCounts(
        subjects=sum(c.subjects for k, c in out.items() if k.startswith("provider:")),
        studies=sum(c.studies for k, c in out.items() if k.startswith("provider:")),
        series=sum(c.series for k, c in out.items() if k.startswith("provider:")),
    )
    return out


def got(catalogue: Catalogue, query: dict[str, Any]) -> dict[str, ExactCounts]:
    result = catalogue.cohort.count(CohortQuery.model_validate(query))
    out = {f"provider:{p}": c for p, c in result.by_provider.items()}
    out.update({f"dataset:{p}/{d}": c for (p, d), c in result.by_dataset.items()})
    out["total"] = result.total
    return out


@dataclass
class Harvested:
    catalogue: Catalogue
    report: HarvestReport
    rows: list[Row]
    diagnoses: dict[str, set[str]]
    files: dict[str, Path]
    providers: ProvidersFile

    def dx(self, provider: str, patient: str) -> set[str]:
        """The codes the provider supplied for the patient (only `h` supplies any)."""
        return self.diagnoses.get(patient, set()) if provider == "h" else set()


@pytest.fixture
def harvested(tmp_path: Path, catalogue: Catalogue) -> Harvested:
    rows = series_rows("h", range(40), seed=3)
    other_rows = series_rows("other", range(10), seed=4)  # same PatientIDs, no diagnoses
    raw, diagnoses = clinical_rows(range(40))
    files = {
        "series": write_series(tmp_path / "series.parquet", rows),
        "clinical": write_clinical(tmp_path / "clinical.parquet", raw),
        "other": write_series(tmp_path / "other.parquet", other_rows),
    }
    parsed = providers(tmp_path, files["series"], files["clinical"], files["other"])
    report = harvest(catalogue, parsed)
    return Harvested(catalogue, report, rows + other_rows, diagnoses, files, parsed)


def test_report(harvested: Harvested) -> None:
    assert harvested.report.ok, harvested.report.failed
    clinical = next(s for s in harvested.report.sources if s.kind == "clinical-table")
    assert clinical.skipped == {"empty diagnosis code": 2, "missing PatientID": 1}
    assert clinical.warnings == []
    assert clinical.series == 0
    # the patient with diagnoses and no series is stored, but never counted
    assert harvested.diagnoses[NO_IMAGES] == {C34}
    assert NO_IMAGES not in {r.patient for r in harvested.rows}


def _has(modality: str) -> Callable[[list[Row]], bool]:
    return lambda rows: any(r.modality == modality for r in rows)


QUERIES: dict[str, tuple[dict[str, Any], Callable[[set[str], list[Row]], bool], str | None]] = {
    # name: (query, subject matches given its codes and rows in the cell, counted modality)
    "one code": ({"subject": {"diagnosis": ["icd10cm:c34.1"]}}, lambda dx, _: C34 in dx, None),
    "either code": (
        {"subject": {"diagnosis": [C34, f" {C50.lower()} "]}},
        lambda dx, _: bool(dx & {C34, C50}),
        None,
    ),
    "both codes": (
        {
            "where": {
                "allOf": [{"subject": {"diagnosis": [C34]}}, {"subject": {"diagnosis": [C50]}}]
            }
        },
        lambda dx, _: {C34, C50} <= dx,
        None,
    ),
    "bare code is another code": ({"subject": {"diagnosis": ["C34.1"]}}, lambda dx, _: False, None),
    "with series": (
        {"subject": {"diagnosis": [C50]}, "series": [{"modality": ["MR"]}]},
        lambda dx, rows: C50 in dx and _has("MR")(rows),
        "MR",
    ),
    "with sex": (
        {"subject": {"diagnosis": [C34], "sex": ["F"]}},
        lambda dx, _: C34 in dx,
        None,
    ),
    "under not": (
        {"where": {"not": {"subject": {"diagnosis": [C34]}}}},
        lambda dx, _: C34 not in dx,
        None,
    ),
    "not, with series": (
        {
            "where": {
                "allOf": [
                    {"not": {"subject": {"diagnosis": [C50]}}},
                    {"series": {"modality": ["CT"]}},
                ]
            }
        },
        lambda dx, rows: C50 not in dx and _has("CT")(rows),
        "CT",
    ),
    "inside anyOf": (
        {"where": {"anyOf": [{"subject": {"diagnosis": [C50]}}, {"series": {"modality": ["PT"]}}]}},
        lambda dx, rows: C50 in dx or _has("PT")(rows),
        "PT",
    ),
    "anyOf in a study": (
        {
            "where": {
                "anyOf": [
                    {"subject": {"diagnosis": [C34]}},
                    {"study": {"modalities": ["CT", "SEG"]}},
                ]
            }
        },
        lambda dx, rows: (
            C34 in dx
            or any(
                {"CT", "SEG"} <= {r.modality for r in rows if r.study == s}
                for s in {r.study for r in rows}
            )
        ),
        "CT|SEG",
    ),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_diagnosis_criteria_count_as_documented(harvested: Harvested, name: str) -> None:
    query, holds, modality = QUERIES[name]
    dx = harvested.dx

    def match(provider: str, patient: str, rows: list[Row]) -> bool:
        return holds(dx(provider, patient), rows)

    def counted(row: Row) -> bool:
        if modality is None:
            return True
        if "|" not in modality:
            return row.modality == modality
        # a study leaf counts the rows of a matching study with one of its modalities
        wanted = set(modality.split("|"))
        study = {r.modality for r in harvested.rows if r.study == row.study}
        return wanted <= study and row.modality in wanted

    want = expected(harvested.rows, match, counted)
    assert got(harvested.catalogue, query) == want
    if name == "one code":  # some subjects match, not all, and none of the other provider
        everyone = harvested.catalogue.cohort.count(CohortQuery()).by_provider["h"].subjects
        assert 0 < want["provider:h"].subjects < everyone
        assert want["provider:other"].subjects == 0


def test_generated_data_cover_the_cases(harvested: Harvested) -> None:
    imaged = {r.patient for r in harvested.rows if r.provider == "h"}
    dx = {p: c for p, c in harvested.diagnoses.items() if p in imaged}
    assert any(c == {C34} for c in dx.values())
    assert any(c == {C50} for c in dx.values())
    assert any(c == {C34, C50} for c in dx.values())
    assert len(imaged - set(dx)) > 10  # patients without any diagnosis
    both = {(r.patient, r.dataset) for r in harvested.rows if r.patient == patient_id(0)}
    assert len(both) == 2  # a diagnosed patient with series in two datasets


def count_c34(catalogue: Catalogue) -> int:
    query = CohortQuery.model_validate({"subject": {"diagnosis": [C34]}})
    return catalogue.cohort.count(query).total.subjects


def test_reharvest_replaces(harvested: Harvested) -> None:
    before = count_c34(harvested.catalogue)
    assert before > 0
    raw: list[dict[str, object]] = [
        {"PatientID": patient_id(p), "diagnosis_code": "C61"} for p in range(3)
    ]
    write_clinical(harvested.files["clinical"], raw)
    assert harvest(harvested.catalogue, harvested.providers).ok
    assert count_c34(harvested.catalogue) == 0
    query = CohortQuery.model_validate({"subject": {"diagnosis": ["ICD10CM:C61"]}})
    assert harvested.catalogue.cohort.count(query).total.subjects == 3


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing column", "missing required column(s): diagnosis_code"),
        ("corrupt parquet", "clinical.parquet: not a readable parquet table"),
        ("not parquet", "clinical.parquet: not a readable parquet table"),
        ("missing file", "clinical.parquet: no such file"),
    ],
)
def test_a_malformed_table_fails_alone_and_keeps_the_diagnoses(
    harvested: Harvested, damage: str, message: str
) -> None:
    catalogue = harvested.catalogue
    before = count_c34(catalogue)
    everything = catalogue.cohort.count(CohortQuery())
    path = harvested.files["clinical"]
    if damage == "missing column":
        write_clinical(path, [{"PatientID": patient_id(1), "code": "C61"}])
    elif damage == "corrupt parquet":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not parquet":
        path.write_text("PatientID,diagnosis_code\nA,C61\n")
    else:
        path.unlink()
    report = harvest(catalogue, harvested.providers)
    failed = [(s.provider_id, s.source_id) for s in report.failed]
    assert failed == [("h", "registry")]
    assert message in (report.failed[0].error or "")
    assert count_c34(catalogue) == before
    assert catalogue.cohort.count(CohortQuery()) == everything


def test_a_failure_part_way_rolls_back(harvested: Harvested) -> None:
    catalogue = harvested.catalogue
    before = count_c34(catalogue)

    def failing() -> Iterator[tuple[int, str]]:
        for i in range(100_000):  # more than one chunk is written before the failure
            yield i, "ICD10CM:C61"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        catalogue.cohort.replace_diagnoses("h", "registry", failing())
    assert count_c34(catalogue) == before
    assert catalogue.cohort.replace_diagnoses("h", "elsewhere", iter([(1, "X"), (1, "X")])) == 1


def test_csv_mapped_columns_and_integer_patient_ids(tmp_path: Path, catalogue: Catalogue) -> None:
    series = [
        {"PatientID": p, "StudyInstanceUID": f"1.{p}", "SeriesInstanceUID": f"1.{p}.1"}
        for p in (101, 102, 103)
    ]
    pq.write_table(pa.Table.from_pylist(series), tmp_path / "series.parquet")
    (tmp_path / "dx.csv").write_text(
        "mrn,icd,comment\n101,SNOMED:254637007,x\n102, c34.1 ,y\n102,,z\n"
    )
    (tmp_path / "providers.yaml").write_text(
        f"""providers:
  - id: h
    name: H
    sources:
      - kind: dicom-table
        path: {tmp_path / "series.parquet"}
        dataset: d
      - kind: clinical-table
        path: dx.csv
        columns: {{PatientID: mrn, code: icd}}
"""
    )
    report = harvest(catalogue, load_providers(tmp_path / "providers.yaml"))  # dx.csv beside it
    assert report.ok, report.failed
    assert report.sources[1].skipped == {"empty diagnosis code": 1}

    def subjects(codes: list[str]) -> int:
        query = CohortQuery.model_validate({"subject": {"diagnosis": codes}})
        return catalogue.cohort.count(query).total.subjects

    assert subjects(["snomed:254637007"]) == 1
    assert subjects(["C34.1"]) == 1  # no code_system: codes kept as given
    assert subjects(["C34.1", "SNOMED:254637007"]) == 2


def test_unknown_column_key_is_a_config_error(tmp_path: Path) -> None:
    from catalogue.exceptions import ConfigError

    path = tmp_path / "providers.yaml"
    path.write_text(
        "providers:\n  - id: h\n    name: H\n    sources:\n      - kind: clinical-table\n"
        "        path: dx.csv\n        columns: {patient: mrn}\n"
    )
    with pytest.raises(ConfigError, match="unknown column key"):
        load_providers(path)


def test_no_patient_id_reaches_the_data_folder(harvested: Harvested) -> None:
    harvested.catalogue.close()
    secrets = {patient_id(p).encode() for p in range(40)} | {NO_IMAGES.encode(), b"secret MRN"}
    files = [p for p in harvested.catalogue.settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "cohort.duckdb" for p in files)
    for path in files:
        data = path.read_bytes()
        found = [s for s in secrets if s in data]
        assert not found, (path, found[:5])
