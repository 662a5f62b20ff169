"""Harvesting folders of real DICOM files: features per series, skips by reason, privacy, resume."""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pydicom
import pydicom.data
import pytest
from pydicom.tag import Tag

import harvesters.dicom_files as dicom_files
from catalogue.config import Settings, load_providers
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.identifiers import Pseudonymiser
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import EXACT, require

PROVIDER = "prov"
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyDate",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "InstitutionName",
    "OperatorsName",
    "ReferringPhysicianName",
)
# pydicom's and pydicom-data's deliberately cut files (their names say so)
KNOWN_TRUNCATED = {
    "MR_truncated.dcm",
    "rtplan_truncated.dcm",
    "emri_small_jpeg_2k_lossless_too_short.dcm",
}


def _package_dir(name: str) -> Path | None:
    try:
        module = __import__(name)
    except ImportError:
        return None
    return Path(module.__file__).parent


def providers_yaml(tmp_path: Path, root: Path, mapping: str, extra: str = "") -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"providers:\n  - id: {PROVIDER}\n    name: P\n    sources:\n"
        f"      - kind: dicom-files\n        id: files\n        path: {root}\n"
        f"        {mapping}\n{extra}"
    )
    return path


def run(catalogue: Catalogue, providers: Path) -> HarvestReport:
    return harvest(catalogue, load_providers(providers))


# --- what the files say, read independently with plain pydicom -------------------------------


@dataclass
class Expected:
    """Per file: skip reason, or its dataset and full-read header."""

    reasons: Counter[str]
    instances: dict[tuple[str, str], list[tuple[str, pydicom.Dataset]]]  # (dataset, series UID)


def is_part10(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def is_bare_dataset(data: bytes) -> bool:
    """Written without the Part 10 header: the data set starts with a group 0008 element."""
    return data[:2] in (b"\x08\x00", b"\x00\x08")


def read_any(path: Path) -> pydicom.Dataset:
    """Plain pydicom read of a Part 10 file or of a bare data set."""
    return pydicom.dcmread(path, stop_before_pixels=True, force=not is_part10(path.read_bytes()))


def expected_reason(path: Path) -> str | None:
    data = path.read_bytes()
    if not is_part10(data) and not is_bare_dataset(data):
        return "not DICOM"
    if path.name in KNOWN_TRUNCATED:
        return "truncated"
    ds = read_any(path)
    if not all(str(ds.get(k, "")).strip() for k in dicom_files.REQUIRED):
        return "missing required tags"
    return None


def expected_from(root: Path, folder_datasets: dict[str, str]) -> Expected:
    reasons: Counter[str] = Counter()
    instances: dict[tuple[str, str], list[tuple[str, pydicom.Dataset]]] = defaultdict(list)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        dataset = folder_datasets.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if dataset is None:
            reasons["no dataset for folder"] += 1
            continue
        reason = expected_reason(path)
        if reason:
            reasons[reason] += 1
            continue
        ds = read_any(path)
        instances[(dataset, str(ds.SeriesInstanceUID).strip())].append((str(rel), ds))
    for series in instances.values():
        series.sort(key=lambda item: item[0])
    return Expected(reasons, dict(instances))


def expected_age(ds: pydicom.Dataset) -> int | None:
    age = str(ds.get("PatientAge", "") or "").strip().upper()
    if age[-1:] in ("D", "W", "M", "Y") and age[:-1].strip().isdigit() and len(age) <= 5:
        days = {"D": 1, "W": 7, "M": 365.25 / 12, "Y": 365.25}[age[-1]]
        return int(int(age[:-1]) * days / 365.25 + 1e-9)
    birth, study = str(ds.get("PatientBirthDate", "") or ""), str(ds.get("StudyDate", "") or "")
    if len(birth) == 8 and len(study) == 8 and birth.isdigit() and study.isdigit():
        years = int(study[:4]) - int(birth[:4]) - (study[4:] < birth[4:])
        return years if 0 <= years <= 150 else None
    return None


def expected_text(ds: pydicom.Dataset, keyword: str, fold: bool) -> str | None:
    value = " ".join(str(ds.get(keyword, "") or "").split())
    return (value.casefold() if fold else value.upper()) or None


def index_rows(settings: Settings) -> list[dict[str, object]]:
    """Rows of the cohort index, read straight from the DuckDB file (catalogue closed)."""
    path = settings.data_dir / "index" / "cohort-duckdb" / "cohort.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute("SELECT * FROM series WHERE provider = ?", [PROVIDER])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- real files: pydicom, pydicom-data, deid-data ---------------------------------------------


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("real") / "tree"
    pydicom_root = Path(pydicom.data.__file__).parent
    folders: dict[str, str] = {}
    for name in pydicom.data.get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        if pydicom_root in path.parents:
            target = root / "pydicom" / path.relative_to(pydicom_root)
            folders["pydicom"] = "collection-a"
        else:  # pydicom-data, found by pydicom as an external source
            target = root / "pydicom-data" / path.name
            folders["pydicom-data"] = "collection-b"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    deid = _package_dir("deid_data")
    if deid is not None:
        shutil.copytree(deid / "data", root / "deid-data", ignore=shutil.ignore_patterns("*.pyc"))
        folders["deid-data"] = "collection-c"
    shutil.copyfile(pydicom.data.get_testdata_file("CT_small.dcm"), root / "stray.dcm")
    (root / "unmapped").mkdir()
    shutil.copyfile(pydicom.data.get_testdata_file("MR_small.dcm"), root / "unmapped" / "x")
    return root, folders


@pytest.fixture(scope="module")
def real_harvest(
    real_tree: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, HarvestReport, Expected, Path]:
    root, folders = real_tree
    tmp = tmp_path_factory.mktemp("real-catalogue")
    settings = Settings(data_dir=tmp / "data", secret="test-secret-0123456789", disclosure=EXACT)
    mapping = "datasets_by_folder: {" + ", ".join(f"{k}: {v}" for k, v in folders.items()) + "}"
    with open_catalogue(settings) as catalogue:
        report = run(catalogue, providers_yaml(tmp, root, mapping, "        workers: 2\n"))
    return settings, report, expected_from(root, folders), root


def test_real_files_one_row_per_series(
    request: pytest.FixtureRequest,
    real_harvest: tuple[Settings, HarvestReport, Expected, Path],
) -> None:
    settings, report, expected, _ = real_harvest
    assert report.ok, report.failed
    source = report.sources[0]
    assert source.skipped == dict(expected.reasons)
    assert source.skipped["truncated"] == 3
    assert source.skipped["no dataset for folder"] == 2
    assert source.series == len(expected.instances)
    rows = index_rows(settings)
    pseudo = Pseudonymiser.for_provider(settings.master_secret(), PROVIDER)
    got = {(r["dataset"], r["series"]): r for r in rows}
    assert len(got) == len(rows) == len(expected.instances)
    per_dataset = Counter(dataset for dataset, _ in expected.instances)
    assert Counter(r["dataset"] for r in rows) == per_dataset
    for (dataset, uid), files in expected.instances.items():
        row = got[(dataset, pseudo(uid))]
        first = files[0][1]
        assert row["instances"] == len(files), uid
        assert row["subject"] == pseudo(str(first.PatientID).strip())
        assert row["modality"] == expected_text(first, "Modality", fold=False), files[0][0]
        assert row["body_part"] == expected_text(first, "BodyPartExamined", fold=False)
        assert row["manufacturer"] == expected_text(first, "Manufacturer", fold=True)
        assert row["age"] == expected_age(first), files[0][0]
        sex = str(first.get("PatientSex", "") or "").strip().upper()
        assert row["sex"] == (sex if sex in ("F", "M", "O") else "U")
    require(request.config, "collection-b" in per_dataset, "pydicom-data is not installed")
    require(request.config, "collection-c" in per_dataset, "deid-data is not installed")


def test_real_files_known_values(
    real_harvest: tuple[Settings, HarvestReport, Expected, Path],
) -> None:
    """A few series checked against values written here from the files' documented headers."""
    settings, _, expected, root = real_harvest
    pseudo = Pseudonymiser.for_provider(settings.master_secret(), PROVIDER)
    rows = {(r["dataset"], r["series"]): r for r in index_rows(settings)}
    ct = pydicom.dcmread(root / "pydicom" / "test_files" / "CT_small.dcm")
    row = rows[("collection-a", pseudo(ct.SeriesInstanceUID))]
    assert (row["modality"], row["sex"], row["age"]) == ("CT", "O", 0)
    assert row["manufacturer"] == "ge medical systems"
    assert row["slice_thickness"] == pytest.approx(5.0)
    assert row["pixel_spacing"] == pytest.approx(0.661468)
    mr = pydicom.dcmread(root / "pydicom" / "test_files" / "MR_small.dcm")
    row = rows[("collection-a", pseudo(mr.SeriesInstanceUID))]
    assert (row["modality"], row["sex"], row["manufacturer"]) == ("MR", "F", "toshiba_mec")
    # MR_small and its re-encodings (big endian, RLE, JPEG...) are instances of one series
    mr_copies = [
        p for p in (root / "pydicom" / "test_files").glob("MR_small*") if p.name != "MR_truncated"
    ]
    assert row["instances"] == len(mr_copies) >= 8
    segs = [
        files
        for (dataset, _), files in expected.instances.items()
        if str(files[0][1].get("Modality", "")) == "SEG"
    ]
    assert segs
    for files in segs:
        ds = files[0][1]
        refs = ds.get("ReferencedSeriesSequence")
        if refs:
            key = next(k for k, v in expected.instances.items() if v is files)
            seg = rows[(key[0], pseudo(key[1]))]
            assert seg["is_annotation"] is True
            assert seg["annotated_series"] == pseudo(str(refs[0].SeriesInstanceUID))


def test_real_files_counts_through_the_cohort_index(
    real_harvest: tuple[Settings, HarvestReport, Expected, Path],
) -> None:
    settings, _, expected, _ = real_harvest
    with open_catalogue(settings) as catalogue:
        for modality in ("CT", "MR", "US"):
            want: dict[str, set[str]] = defaultdict(set)
            for (dataset, _), files in expected.instances.items():
                if str(files[0][1].get("Modality", "")).strip() == modality:
                    want[dataset].add(str(files[0][1].PatientID).strip())
            query = CohortQuery.model_validate({"series": [{"modality": [modality]}]})
            result = catalogue.cohort.count(query)
            got = {d: c.subjects for (_, d), c in result.by_dataset.items() if c.subjects}
            assert got == {d: len(p) for d, p in want.items()}, modality
        total = catalogue.cohort.count(CohortQuery()).total
        assert total.series == len(expected.instances)


def test_no_identifying_value_reaches_the_data_folder(
    real_harvest: tuple[Settings, HarvestReport, Expected, Path],
) -> None:
    settings, _, _, root = real_harvest
    secrets: set[bytes] = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if not is_part10(data) and not is_bare_dataset(data):
            continue
        try:
            ds = read_any(path)
        except Exception:  # a broken file: what it holds was never harvested either
            continue
        for keyword in IDENTIFYING:
            value = str(ds.get(keyword, "") or "").strip()
            # short all-digit IDs ("0010") turn up in any engine log's numbers: no evidence
            if len(value) >= 4 and not (value.isdigit() and len(value) < 8):
                secrets.add(value.encode("utf-8"))
    assert len(secrets) > 50
    # words the storage engines write anyway (RocksDB logs say "merge_operator") are no leak
    baseline = Settings(data_dir=root.parent / "empty-data", secret="x" * 24, disclosure=EXACT)
    with open_catalogue(baseline):
        pass
    empty = b"".join(p.read_bytes() for p in baseline.data_dir.rglob("*") if p.is_file())
    secrets = {s for s in secrets if s not in empty}
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert any("harvest-state" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        found = [s for s in secrets if s in data]
        assert not found, (path, found[:5])


# --- corrupt files ----------------------------------------------------------------------------


def _value_tell(path: Path, keyword: str) -> tuple[int, int]:
    """Offset and length of an element's value, as pydicom reports them."""
    ds = pydicom.dcmread(path, defer_size=None)
    elem = ds.get_item(Tag(keyword))
    assert elem is not None
    return elem.value_tell, elem.length


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def corrupt_files(folder: Path) -> dict[str, str]:
    """Write broken variants of real files; return file name -> expected skip reason."""
    out: dict[str, str] = {}

    def put(name: str, data: bytes, reason: str) -> None:
        (folder / name).write_bytes(data)
        out[name] = reason

    for base in ("CT_small.dcm", "MR_small.dcm"):
        src = Path(pydicom.data.get_testdata_file(base))
        data = src.read_bytes()
        stem = base.split("_")[0]
        pixels, pixel_len = _value_tell(src, "PixelData")
        patient, _ = _value_tell(src, "PatientID")
        image_type, image_type_len = _value_tell(src, "ImageType")  # not read by the harvester
        series, _ = _value_tell(src, "SeriesInstanceUID")
        modality, _ = _value_tell(src, "Modality")
        thickness, thickness_len = _value_tell(src, "SliceThickness")
        for label, cut in [
            ("mid-pixels", pixels + pixel_len // 2),
            ("last-byte", len(data) - 1),
            ("pixel-header", pixels - 6),
            ("mid-wanted-value", patient + 1),
            ("mid-skipped-value", image_type + image_type_len // 2),
            ("mid-element-header", series - 3),
            ("in-meta", 150),
        ]:
            put(f"{stem}-cut-{label}.dcm", data[:cut], "truncated")
        put(f"{stem}-cut-preamble.dcm", data[:100], "not DICOM")
        put(f"{stem}-cut-magic.dcm", data[:130], "not DICOM")
        put(f"{stem}-no-preamble.dcm", data[128:], "not DICOM")
        put(f"{stem}-no-magic.dcm", data[132:], "not DICOM")
        put(f"{stem}-flip-magic.dcm", _patch(data, 131, bytes([data[131] ^ 0x01])), "not DICOM")
        # explicit VR little endian: the VR sits 4 bytes before a short value length's value
        put(f"{stem}-bad-vr.dcm", _patch(data, modality - 4, b"XX"), "invalid value")
        bad_ds = b"x" * thickness_len
        put(f"{stem}-bad-ds.dcm", _patch(data, thickness, bad_ds), "invalid value")
        flipped_tag = bytes([data[series - 6] ^ 0x01])  # (0020,000E) -> (0020,000F)
        put(f"{stem}-flip-series-tag.dcm", _patch(data, series - 6, flipped_tag), MISSING)
        for keyword in dicom_files.REQUIRED:
            ds = pydicom.dcmread(src)
            delattr(ds, keyword)
            ds.save_as(folder / f"{stem}-no-{keyword}.dcm")
            out[f"{stem}-no-{keyword}.dcm"] = MISSING
        ds = pydicom.dcmread(src)
        ds.PatientID = ""
        ds.save_as(folder / f"{stem}-empty-PatientID.dcm")
        out[f"{stem}-empty-PatientID.dcm"] = MISSING

    encapsulated = Path(pydicom.data.get_testdata_file("JPEG2000.dcm"))
    data = encapsulated.read_bytes()
    pixels, _ = _value_tell(encapsulated, "PixelData")
    put("jpeg2000-cut-fragment.dcm", data[: pixels + (len(data) - pixels) // 2], "truncated")
    put("jpeg2000-cut-delimiter.dcm", data[:-4], "truncated")
    put("empty.dcm", b"", "not DICOM")
    put("tiny.dcm", b"DICM", "not DICOM")
    put("garbage.dcm", bytes(range(256)) * 20, "not DICOM")
    put("notes.txt", b"not an image\n" * 20, "not DICOM")
    return out


MISSING = "missing required tags"


def test_corrupt_files_are_skipped_by_reason(tmp_path: Path, catalogue: Catalogue) -> None:
    root = tmp_path / "tree"
    (root / "nested" / "deeper").mkdir(parents=True)
    broken = corrupt_files(root / "nested")
    assert len(broken) >= 30
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
        shutil.copyfile(pydicom.data.get_testdata_file(name), root / "nested" / "deeper" / name)
    # each file alone, through the reader, gives the expected reason
    got = {
        name: dicom_files.read_file(str(root / "nested" / name)).get("reason") for name in broken
    }
    assert got == broken
    report = run(catalogue, providers_yaml(tmp_path, root, "dataset: d"))
    assert report.ok, report.failed
    assert report.sources[0].skipped == dict(Counter(broken.values()))
    assert report.sources[0].series == 3
    result = catalogue.cohort.count(CohortQuery())
    assert (result.total.series, result.total.studies) == (3, 3)


def test_reading_from_a_prefix_in_memory_changes_no_outcome(
    tmp_path: Path, real_tree: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a header is parsed from the whole file in memory, from a prefix or from the file,
    every real and corrupt file reads to the same attributes or the same reason."""
    broken = corrupt_files(tmp_path)
    paths = [str(tmp_path / name) for name in broken]
    paths += sorted(str(p) for p in real_tree[0].rglob("*") if p.is_file())
    outcomes = []
    for prefix in (1 << 40, 4096, 132):  # whole files; headers within or past; past nearly all
        monkeypatch.setattr(dicom_files, "PREFIX_BYTES", prefix)
        outcomes.append([dicom_files.read_file(path) for path in paths])
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert {o.get("reason") for o in outcomes[0]} >= set(broken.values())


# --- incremental and resumed harvests -----------------------------------------------------------


def series_tree(root: Path, n_series: int, per_series: int) -> None:
    """Copies of CT_small: n_series series of per_series instances over n_series // 2 patients."""
    template = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    for s in range(n_series):
        for i in range(per_series):
            template.PatientID = f"PAT-{s // 2:04d}"
            template.PatientSex = "F" if (s // 2) % 2 == 0 else "M"
            template.StudyInstanceUID = f"1.2.826.0.1.99.{s // 2}"
            template.SeriesInstanceUID = f"1.2.826.0.1.99.{s // 2}.{s}"
            template.SOPInstanceUID = f"1.2.826.0.1.99.{s // 2}.{s}.{i}"
            folder = root / f"p{s // 2}" / f"s{s}"
            folder.mkdir(parents=True, exist_ok=True)
            template.save_as(folder / f"{i}.dcm")


READ_FILE: Callable[[str], dicom_files.Raw] = dicom_files.read_file


def counting_reader(monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> list[str]:
    calls: list[str] = []
    real = READ_FILE

    def counted(path: str) -> dicom_files.Raw:
        if fail_after is not None and len(calls) >= fail_after:
            raise RuntimeError("simulated crash")
        calls.append(path)
        return real(path)

    monkeypatch.setattr(dicom_files, "read_file", counted)
    return calls


def series_count(catalogue: Catalogue, query: dict[str, object]) -> int:
    return catalogue.cohort.count(CohortQuery.model_validate(query)).total.series


def test_second_harvest_reads_nothing_and_changes_are_picked_up(
    tmp_path: Path, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    series_tree(root, n_series=6, per_series=3)
    (root / "junk.bin").write_bytes(b"junk")
    providers = providers_yaml(tmp_path, root, "dataset: d", "        workers: 1\n")
    calls = counting_reader(monkeypatch)
    first = run(catalogue, providers)
    assert len(calls) == 19
    before = catalogue.cohort.count(CohortQuery())
    assert (before.total.subjects, before.total.series) == (3, 6)
    assert series_count(catalogue, {"subject": {"sex": ["F"]}}) == 4  # patients 0 and 2
    assert series_count(catalogue, {"series": [{"modality": ["MR"]}]}) == 0

    calls.clear()
    second = run(catalogue, providers)
    assert calls == []
    assert catalogue.cohort.count(CohortQuery()) == before
    assert second.sources[0].skipped == first.sources[0].skipped == {"not DICOM": 1}

    changed = root / "p0" / "s0" / "1.dcm"  # becomes the one MR instance of a new series
    ds = pydicom.dcmread(changed)
    ds.SeriesInstanceUID = "1.2.826.0.1.99.0.77"
    ds.Modality = "MR"
    ds.save_as(changed)
    (root / "p2" / "s5" / "0.dcm").unlink()
    (root / "p2" / "s5" / "1.dcm").unlink()
    (root / "p2" / "s5" / "2.dcm").unlink()
    calls.clear()
    run(catalogue, providers)
    assert calls == [str(changed)]
    after = catalogue.cohort.count(CohortQuery())
    assert (after.total.subjects, after.total.series) == (3, 6)  # one series gone, one new
    assert series_count(catalogue, {"subject": {"sex": ["F"]}}) == 4  # s0, s77, s1, s4
    assert series_count(catalogue, {"series": [{"modality": ["MR"]}]}) == 1
    catalogue.close()
    rows = index_rows(catalogue.settings)
    pseudo = Pseudonymiser.for_provider(catalogue.settings.master_secret(), PROVIDER)
    instances = {r["series"]: r["instances"] for r in rows}
    assert instances[pseudo("1.2.826.0.1.99.0.0")] == 2
    assert instances[pseudo("1.2.826.0.1.99.0.77")] == 1
    assert pseudo("1.2.826.0.1.99.2.5") not in instances


def test_a_harvest_stopped_part_way_resumes_without_duplicates(
    tmp_path: Path, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    root = tmp_path / "tree"
    series_tree(root, n_series=8, per_series=4)
    providers = providers_yaml(tmp_path, root, "dataset: d", "        workers: 1\n")
    monkeypatch.setattr(dicom_files, "CHUNK_FILES", 5)
    calls = counting_reader(monkeypatch, fail_after=13)
    crashed = run(catalogue, providers)
    assert not crashed.ok
    assert "simulated crash" in (crashed.sources[0].error or "")
    assert catalogue.cohort.count(CohortQuery()).total.series == 0  # nothing half-written

    calls = counting_reader(monkeypatch)
    assert run(catalogue, providers).ok
    assert len(calls) == 32 - 10  # the two chunks committed before the crash are not re-read
    resumed = catalogue.cohort.count(CohortQuery())
    assert (resumed.total.subjects, resumed.total.studies, resumed.total.series) == (4, 4, 8)

    clean_settings = Settings(
        data_dir=tmp_path / "clean", secret="test-secret-0123456789", disclosure=EXACT
    )
    with open_catalogue(clean_settings) as clean:
        assert run(clean, providers).ok
        assert clean.cohort.count(CohortQuery()) == resumed
    catalogue.close()
    rows = index_rows(settings)
    assert len(rows) == 8
    assert sorted(r["instances"] for r in rows) == [4] * 8


def test_config_needs_exactly_one_dataset_rule(tmp_path: Path) -> None:
    from catalogue.exceptions import ConfigError

    both = "dataset: d\n        datasets_by_folder: {a: b}"
    for mapping in (both, "workers: 2"):
        with pytest.raises((ConfigError, ValueError)):
            load_providers(providers_yaml(tmp_path, tmp_path, mapping))


def test_missing_folder_fails_alone(tmp_path: Path, catalogue: Catalogue) -> None:
    report = run(catalogue, providers_yaml(tmp_path, tmp_path / "nowhere", "dataset: d"))
    assert not report.ok
    assert "nowhere: no such folder" in (report.sources[0].error or "")


def test_state_holds_no_path(tmp_path: Path, catalogue: Catalogue) -> None:
    root = tmp_path / "tree"
    series_tree(root, n_series=2, per_series=1)
    os.rename(root / "p0", root / "SMITH-JOHN")
    assert run(catalogue, providers_yaml(tmp_path, root, "dataset: d")).ok
    state = catalogue.settings.data_dir / "harvest-state" / PROVIDER / "files.sqlite"
    assert state.is_file()
    assert b"SMITH" not in state.read_bytes()
