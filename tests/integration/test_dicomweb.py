"""The dicomweb harvester against a real Orthanc with its DICOMweb plugin, and against scripted
servers (httpx.MockTransport) for paging, retries and failures."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pydicom
import pydicom.datadict
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset

from catalogue.config import Settings, load_providers
from catalogue.domain.cohort import CohortQuery, SeriesCriteria
from catalogue.domain.identifiers import Pseudonymiser
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from harvesters import dicomweb
from tests.conftest import EXACT, require
from tests.services.process import free_port, stop, wait_until_answering

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

USER, PASSWORD = "catalogue", "orthanc-test-password-41"
PROVIDER_SECRET = "dicomweb-test-provider-secret"
PLUGINS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)

# Orthanc 1.10 has no bind-address setting and listens on every interface; this preload keeps
# the test server on the loopback interface only.
LOOPBACK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    int (*real)(int, const struct sockaddr *, socklen_t) = dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in local;
        memcpy(&local, addr, sizeof local);
        local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return real(fd, (const struct sockaddr *)&local, sizeof local);
    }
    if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 local;
        memcpy(&local, addr, sizeof local);
        local.sin6_addr = in6addr_loopback;
        return real(fd, (const struct sockaddr *)&local, sizeof local);
    }
    return real(fd, addr, len);
}
"""


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Orthanc:
    url: str
    stored: list[Path]


@pytest.fixture(scope="module")
def orthanc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Orthanc]:
    binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")
    plugin = next((p for p in PLUGINS if Path(p).is_file()), None)
    require(
        request.config,
        bool(binary and plugin),
        "orthanc not installed: apt-get install orthanc orthanc-dicomweb",
    )
    compiler = shutil.which("cc") or shutil.which("gcc")
    require(request.config, compiler is not None, "a C compiler (cc) to keep Orthanc on loopback")
    assert binary and plugin and compiler
    root = tmp_path_factory.mktemp("orthanc")
    (root / "shim.c").write_text(LOOPBACK_SHIM)
    shim = root / "loopback.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(shim), str(root / "shim.c"), "-ldl"], check=True
    )
    port = free_port()
    config = {
        "Name": "catalogue-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "DicomServerEnabled": False,
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = (root / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [binary, str(root / "orthanc.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LD_PRELOAD": str(shim)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=10) as client:
            wait_until_answering(
                process,
                lambda: client.get("/system").status_code == 200,
                "Orthanc",
                root / "orthanc.log",
                30,
            )
            stored = []
            for name in get_testdata_files():
                path = Path(name)
                if not path.is_file():
                    continue
                answer = client.post("/instances", content=path.read_bytes())
                body = answer.json() if answer.status_code == 200 else None
                if isinstance(body, dict) and body.get("Status") == "Success":
                    stored.append(path)
        assert len(stored) > 40
        yield Orthanc(f"{base}/dicom-web", stored)
    finally:
        stop(process, timeout=20)
        log.close()


def providers_yaml(path: Path, sources: dict[str, str]) -> Path:
    """A providers file with one provider per entry (id -> source YAML, indented 8)."""
    body = "providers:\n"
    for provider, source in sources.items():
        body += (
            f"  - id: {provider}\n    name: {provider}\n    secret: {PROVIDER_SECRET}\n"
            f"    sources:\n      - kind: dicomweb\n        id: pacs\n{source}"
        )
    path.write_text(body)
    return path


def dicomweb_source(url: str, authorization: str | None, page_size: int = 100) -> str:
    lines = [f"url: {url}", "dataset: imaging", f"page_size: {page_size}", "timeout: 5"]
    if authorization:
        lines.append(f"headers: {{Authorization: '{authorization}'}}")
    return "".join(f"        {line}\n" for line in lines)


# --- independent expectations: plain pydicom reads of the files Orthanc stored -------------


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _age(ds: Dataset) -> int | None:
    match = re.fullmatch(r"(\d{1,3})Y", _text(ds, "PatientAge"))
    if match:
        return int(match.group(1))
    born, seen = _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")
    if len(born) == 8 and len(seen) == 8:
        b, s = date.fromisoformat(born), date.fromisoformat(seen)
        return s.year - b.year - ((s.month, s.day) < (b.month, b.day))
    return None


def _referenced(ds: Dataset) -> str | None:
    if ds.get("Modality") == "SEG":
        return str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID)
    if ds.get("Modality") == "RTSTRUCT":
        frame = ds.ReferencedFrameOfReferenceSequence[0]
        study = frame.RTReferencedStudySequence[0]
        return str(study.RTReferencedSeriesSequence[0].SeriesInstanceUID)
    if ds.get("Modality") == "SR" and "CurrentRequestedProcedureEvidenceSequence" in ds:
        evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
        return str(evidence.ReferencedSeriesSequence[0].SeriesInstanceUID)
    return None


def expected_series(files: list[Path], pseudo: Pseudonymiser) -> tuple[dict[int, Any], set[int]]:
    """Features per series pseudonym, and the pseudonyms of series whose UID Orthanc holds under
    more than one patient or study (it lists them but cannot serve their metadata). Orthanc keeps
    value padding that pydicom strips, so one SOP instance stored twice also marks a series."""
    by_uid: dict[str, list[Dataset]] = defaultdict(list)
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        by_uid[_text(ds, "SeriesInstanceUID")].append(ds)
    expected: dict[int, Any] = {}
    ambiguous: set[int] = set()
    for uid, items in by_uid.items():
        owners = {(_text(d, "PatientID"), _text(d, "StudyInstanceUID")) for d in items}
        sops = {_text(d, "SOPInstanceUID") for d in items}
        if len(owners) > 1 or len(sops) < len(items):
            ambiguous.add(pseudo(uid))
            continue
        ds = items[0]
        if not (uid and _text(ds, "PatientID") and _text(ds, "StudyInstanceUID")):
            continue  # not countable without identifiers
        referenced = _referenced(ds)
        sex = _text(ds, "PatientSex").upper()
        features = {
            "subject": pseudo(_text(ds, "PatientID")),
            "study": pseudo(_text(ds, "StudyInstanceUID")),
            "modality": " ".join(_text(ds, "Modality").split()).upper() or None,
            "body_part": " ".join(_text(ds, "BodyPartExamined").split()).upper() or None,
            "manufacturer": " ".join(_text(ds, "Manufacturer").split()).casefold() or None,
            "model": " ".join(_text(ds, "ManufacturerModelName").split()).casefold() or None,
            "instances": len(items),
            "sex": sex if sex in ("F", "M", "O") else "U",
            "age": _age(ds),
            "study_year": int(_text(ds, "StudyDate")[:4]) if _text(ds, "StudyDate") else None,
            "sop_class": _text(ds, "SOPClassUID") or None,
            "is_annotation": _text(ds, "Modality") in ("SEG", "RTSTRUCT", "SR"),
            "annotated_series": pseudo(referenced) if referenced else None,
        }
        for other in items[1:]:  # the compared attributes agree within each series
            assert _text(other, "Modality") == _text(ds, "Modality")
            assert _text(other, "Manufacturer") == _text(ds, "Manufacturer")
        expected[pseudo(uid)] = features
    return expected, ambiguous


def harvested_rows(data_dir: Path, provider: str) -> dict[int, dict[str, Any]]:
    """The cohort index rows of a provider, read straight from the closed DuckDB file."""
    (path,) = data_dir.rglob("cohort.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute("SELECT * FROM series WHERE provider = ?", [provider])
        names = [d[0] for d in cursor.description]
        return {
            row[names.index("series")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }


@pytest.mark.service
def test_orthanc_series_match_the_files(orthanc: Orthanc, tmp_path: Path) -> None:
    providers = providers_yaml(
        tmp_path / "providers.yaml",
        {"pacs": dicomweb_source(orthanc.url, basic(USER, PASSWORD), page_size=7)},
    )
    settings = Settings(data_dir=tmp_path / "data", secret="s" * 24, disclosure=EXACT)
    pseudo = Pseudonymiser(PROVIDER_SECRET.encode())
    expected, ambiguous = expected_series(orthanc.stored, pseudo)
    mr_subjects = {f["subject"] for f in expected.values() if f["modality"] == "MR"}
    with open_catalogue(settings) as catalogue:
        report = harvest(catalogue, load_providers(providers))
        assert report.ok, report.failed
        mr = catalogue.cohort.count(CohortQuery(series=(SeriesCriteria(modality=("MR",)),)))
    rows = harvested_rows(settings.data_dir, "pacs")

    (source,) = report.sources
    assert source.series == len(rows)
    assert set(expected) <= set(rows)
    assert set(rows) - set(expected) <= ambiguous
    assert len(expected) > 15
    assert {f["modality"] for f in expected.values()} >= {"CT", "MR", "SEG", "RTSTRUCT", "US"}
    for key, features in expected.items():
        got = {name: rows[key][name] for name in features}
        assert got == features, key
    assert all(rows[k]["dataset"] == "imaging" for k in rows)
    assert sum(f["annotated_series"] is not None for f in expected.values()) >= 2
    assert not any(rows[k]["modality"] == "MR" for k in ambiguous if k in rows)
    assert mr.total.subjects == len(mr_subjects)
    assert mr.total.series == sum(f["modality"] == "MR" for f in expected.values())


@pytest.mark.service
def test_wrong_password_fails_alone(orthanc: Orthanc, tmp_path: Path) -> None:
    providers = providers_yaml(
        tmp_path / "providers.yaml",
        {
            "locked": dicomweb_source(orthanc.url, basic(USER, "not-the-password")),
            "anonymous": dicomweb_source(orthanc.url, None),
            "open": dicomweb_source(orthanc.url, basic(USER, PASSWORD)),
        },
    )
    settings = Settings(data_dir=tmp_path / "data", secret="s" * 24, disclosure=EXACT)
    with open_catalogue(settings) as catalogue:
        report = harvest(catalogue, load_providers(providers))
        result = catalogue.cohort.count(CohortQuery())
    by_provider = {s.provider_id: s for s in report.sources}
    for name in ("locked", "anonymous"):
        assert not by_provider[name].ok
        assert "HTTP 401" in (by_provider[name].error or "")
        assert "not-the-password" not in (by_provider[name].error or "")
    assert by_provider["open"].ok
    assert by_provider["open"].series > 15
    assert list(result.by_provider) == ["open"]
    assert result.total.series == by_provider["open"].series


# --- scripted servers --------------------------------------------------------------------


def dicom_json(**attrs: Any) -> dict[str, Any]:
    ds = Dataset()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds.to_json_dict()


class FakeDicomWeb:
    """A DICOMweb server with `studies` studies of `per_study` series (the last one a SEG of the
    first); QIDO leaves out body part and slice thickness, so they come from WADO-RS metadata."""

    def __init__(self, studies: int = 5, per_study: int = 3) -> None:
        self.studies = studies
        self.per_study = per_study
        self.requests: list[httpx.Request] = []
        self.fault: Callable[[httpx.Request], httpx.Response | None] = lambda _: None

    def study(self, i: int) -> dict[str, Any]:
        return dicom_json(
            PatientID=f"P{i}",
            StudyInstanceUID=f"1.2.3.{i}",
            PatientSex="F" if i % 2 else "M",
            PatientAge=f"{40 + i:03d}Y",
            StudyDate="20200102",
        )

    def series(self, i: int, j: int) -> dict[str, Any]:
        return dicom_json(
            StudyInstanceUID=f"1.2.3.{i}",
            SeriesInstanceUID=f"1.2.3.{i}.{j}",
            Modality="SEG" if j == self.per_study - 1 else "CT",
            Manufacturer="Acme",
            NumberOfSeriesRelatedInstances=10 + j,
        )

    def instance(self, i: int, j: int) -> dict[str, Any]:
        item = dicom_json(
            SeriesInstanceUID=f"1.2.3.{i}.{j}",
            BodyPartExamined="CHEST",
            SliceThickness="2.5",
            PixelSpacing=["0.7", "0.7"],
            SOPClassUID="1.2.840.10008.5.1.4.1.1.2",
        )
        if j == self.per_study - 1:
            reference = Dataset()
            reference.SeriesInstanceUID = f"1.2.3.{i}.0"
            holder = Dataset()
            holder.ReferencedSeriesSequence = [reference]
            item.update(holder.to_json_dict())
        return item

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = self.fault(request)
        if fault is not None:
            return fault
        parts = request.url.path.removeprefix("/dicom-web/").split("/")
        limit = int(request.url.params.get("limit", "1000"))
        offset = int(request.url.params.get("offset", "0"))
        if parts == ["studies"]:
            items = [self.study(i) for i in range(self.studies)]
        elif len(parts) == 3 and parts[2] == "series":
            i = int(parts[1].rsplit(".", 1)[1])
            items = [self.series(i, j) for j in range(self.per_study)]
        elif len(parts) == 5 and parts[4] == "metadata":
            i, j = (int(n) for n in parts[3].split(".")[-2:])
            return httpx.Response(200, json=[self.instance(i, j)] * (10 + j))
        else:
            return httpx.Response(404)
        return httpx.Response(200, json=items[offset : offset + limit])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeDicomWeb:
    fake = FakeDicomWeb()
    monkeypatch.setattr(dicomweb, "transport", lambda: httpx.MockTransport(fake))
    monkeypatch.setattr(dicomweb, "BACKOFF_SECONDS", 0.0)
    return fake


def run(catalogue: Catalogue, tmp_path: Path, page_size: int = 2) -> HarvestReport:
    source = dicomweb_source("http://pacs.example/dicom-web/", "Bearer token-1", page_size)
    return harvest(catalogue, load_providers(providers_yaml(tmp_path / "p.yaml", {"h": source})))


def test_pages_through_studies_and_series(
    server: FakeDicomWeb, catalogue: Catalogue, tmp_path: Path
) -> None:
    report = run(catalogue, tmp_path, page_size=2)
    assert report.ok, report.failed
    assert report.sources[0].series == 15
    total = catalogue.cohort.count(CohortQuery()).total
    assert (total.subjects, total.studies, total.series) == (5, 5, 15)
    chest = catalogue.cohort.count(CohortQuery(series=(SeriesCriteria(body_part=("CHEST",)),)))
    assert chest.total.series == 15  # filled in from WADO-RS metadata
    seg = catalogue.cohort.count(CohortQuery(series=(SeriesCriteria(modality=("SEG",)),)))
    assert seg.total.series == 5

    queries = [(r.url.path, r.url.params) for r in server.requests]
    study_offsets = [p["offset"] for path, p in queries if path == "/dicom-web/studies"]
    assert study_offsets == ["0", "2", "4"]
    series_pages = [
        p["offset"] for path, p in queries if path == "/dicom-web/studies/1.2.3.0/series"
    ]
    assert series_pages == ["0", "2"]
    assert all(p["limit"] == "2" for path, p in queries if not path.endswith("/metadata"))
    studies_query = next(p for path, p in queries if path == "/dicom-web/studies")
    assert {"PatientID", "PatientSex", "PatientAge"} <= set(studies_query.get_list("includefield"))
    first = server.requests[0]
    assert first.headers["Authorization"] == "Bearer token-1"
    assert first.headers["User-Agent"].startswith("cancer-imaging-catalogue/")
    assert "application/dicom+json" in first.headers["Accept"]


def test_retries_a_server_error(server: FakeDicomWeb, catalogue: Catalogue, tmp_path: Path) -> None:
    failures = iter([httpx.Response(500), httpx.Response(503)])
    server.fault = lambda request: next(failures, None)
    report = run(catalogue, tmp_path)
    assert report.ok, report.failed
    assert catalogue.cohort.count(CohortQuery()).total.series == 15
    assert [r.url.params["offset"] for r in server.requests[:3]] == ["0", "0", "0"]


def _raise(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def fault(request: httpx.Request) -> httpx.Response:
        raise exc("scripted failure", request=request)

    return fault


FAILURES: dict[str, tuple[Callable[[httpx.Request], httpx.Response | None], str]] = {
    "persistent 500": (lambda r: httpx.Response(500), "HTTP 500 Internal Server Error after 4"),
    "403": (lambda r: httpx.Response(403), "HTTP 403 Forbidden"),
    "redirect to a login page": (
        lambda r: httpx.Response(302, headers={"Location": "https://pacs.example/login"}),
        "HTTP 302 Found",
    ),
    "read timeout": (_raise(httpx.ReadTimeout), "no response within 5.0s"),
    "connection refused": (_raise(httpx.ConnectError), "cannot connect after 4 attempts"),
    "invalid JSON": (lambda r: httpx.Response(200, content=b"[{"), "not valid JSON"),
    "not an array": (lambda r: httpx.Response(200, json={"a": 1}), "not a DICOM JSON array"),
}


@pytest.mark.parametrize("name", list(FAILURES))
@pytest.mark.parametrize("where", ["/studies", "/metadata"])
def test_failure_keeps_previous_rows(
    server: FakeDicomWeb,
    catalogue: Catalogue,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    where: str,
) -> None:
    assert run(catalogue, tmp_path).ok
    before = catalogue.cohort.count(CohortQuery())
    monkeypatch.setattr(dicomweb, "BATCH_SERIES", 1)  # some batches are written before it fails
    server.studies, server.per_study = 7, 2
    fault, message = FAILURES[name]
    late = "/studies/1.2.3.6/series/1.2.3.6.1/metadata"
    target = "/dicom-web/studies" if where == "/studies" else f"/dicom-web{late}"
    server.fault = lambda request: fault(request) if request.url.path == target else None
    report = run(catalogue, tmp_path)
    (source,) = report.sources
    assert not source.ok
    assert message in (source.error or ""), source.error
    assert target in (source.error or "")
    assert catalogue.cohort.count(CohortQuery()) == before


@pytest.mark.parametrize(
    "empty", [httpx.Response(204), httpx.Response(200, json=[])], ids=["204", "[]"]
)
def test_an_empty_server_empties_the_source(
    server: FakeDicomWeb, catalogue: Catalogue, tmp_path: Path, empty: httpx.Response
) -> None:
    assert run(catalogue, tmp_path).ok
    server.fault = lambda request: empty if request.url.path == "/dicom-web/studies" else None
    report = run(catalogue, tmp_path)
    assert report.ok, report.failed
    assert report.sources[0].series == 0
    assert catalogue.cohort.count(CohortQuery()).total.series == 0


def test_response_size_is_capped(
    server: FakeDicomWeb, catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dicomweb, "MAX_RESPONSE_BYTES", 1000)
    report = run(catalogue, tmp_path)
    assert not report.ok
    assert "exceeds the size cap" in (report.sources[0].error or "")


def test_unreachable_server(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dicomweb, "BACKOFF_SECONDS", 0.0)
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    providers = providers_yaml(tmp_path / "p.yaml", {"down": dicomweb_source(url, None)})
    report = harvest(catalogue, load_providers(providers))
    assert not report.ok
    assert f"{url}/studies: cannot connect after 4 attempts" in (report.sources[0].error or "")


@pytest.mark.service
def test_orthanc_harvest_equals_the_folder_harvest(orthanc: Orthanc, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for i, path in enumerate(orthanc.stored):
        shutil.copy(path, folder / f"{i:03d}-{path.name}")
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "providers:\n"
        f"  - id: web\n    name: web\n    secret: {PROVIDER_SECRET}\n    sources:\n"
        f"      - kind: dicomweb\n        id: pacs\n"
        + dicomweb_source(orthanc.url, basic(USER, PASSWORD))
        + f"  - id: disk\n    name: disk\n    secret: {PROVIDER_SECRET}\n    sources:\n"
        f"      - kind: dicom-files\n        path: {folder}\n        dataset: imaging\n"
    )
    settings = Settings(data_dir=tmp_path / "data", secret="s" * 24, disclosure=EXACT)
    pseudo = Pseudonymiser(PROVIDER_SECRET.encode())
    _, ambiguous = expected_series(orthanc.stored, pseudo)
    with open_catalogue(settings) as catalogue:
        report = harvest(catalogue, load_providers(providers))
    assert report.ok, report.failed
    web, disk = harvested_rows(settings.data_dir, "web"), harvested_rows(settings.data_dir, "disk")
    shared = (set(web) & set(disk)) - ambiguous
    assert len(shared) > 15
    assert set(web) - ambiguous == set(disk) - ambiguous
    compared = [c for c in web[next(iter(shared))] if c not in ("provider", "source")]
    server_omissions = []
    for key in sorted(shared):
        differ = [c for c in compared if web[key][c] != disk[key][c]]
        for column in differ:
            # the only accepted difference: the server itself gives no value for an attribute
            # the file has (Orthanc leaves some DS values of odd files empty in its metadata)
            assert web[key][column] is None, (key, column)
            assert column in SERVER_OMITTABLE, (key, column)
            keyword = SERVER_OMITTABLE[column]
            uid = next(u for u, k in orthanc_series_uids(orthanc).items() if pseudo(u) == key)
            assert server_value(orthanc, uid, keyword) in (None, "", []), (key, column)
            server_omissions.append((key, column))
    assert len(server_omissions) <= 2, server_omissions


SERVER_OMITTABLE = {
    "pixel_spacing": "PixelSpacing",
    "slice_thickness": "SliceThickness",
    "field_strength": "MagneticFieldStrength",
}


def orthanc_series_uids(orthanc: Orthanc) -> dict[str, str]:
    """Series UID -> study UID of every series the server lists (QIDO-RS)."""
    with httpx.Client(auth=(USER, PASSWORD), timeout=10) as client:
        found = client.get(f"{orthanc.url}/series", params={"limit": 1000}).json()
    return {
        item["0020000E"]["Value"][0]: item["0020000D"]["Value"][0]
        for item in found
        if "Value" in item.get("0020000E", {})
    }


def server_value(orthanc: Orthanc, series_uid: str, keyword: str) -> object:
    """An attribute of the series' first instance, as the server's WADO-RS metadata gives it."""
    study = orthanc_series_uids(orthanc)[series_uid]
    with httpx.Client(auth=(USER, PASSWORD), timeout=10) as client:
        meta = client.get(f"{orthanc.url}/studies/{study}/series/{series_uid}/metadata").json()
    tag = f"{pydicom.datadict.tag_for_keyword(keyword):08X}"
    return meta[0].get(tag, {}).get("Value")
