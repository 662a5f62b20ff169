"""`dicomweb` sources: a DICOMweb server (PACS, Orthanc, dcm4chee, a cloud DICOM store).

Studies and their series are paged through QIDO-RS; attributes QIDO does not return, and the
series an annotation refers to, come from the WADO-RS metadata of the series' first instance.
Every series goes through the shared `SeriesRows`, so nothing but features is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal, overload

import httpx
import pyarrow as pa
from pydantic import Field, SecretStr
from pydicom.datadict import keyword_for_tag

from catalogue import __version__
from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.exceptions import UnreadableSourceError
from catalogue.imaging.features import ANNOTATION_MODALITIES, READ_KEYWORDS, SeriesRows
from catalogue.imaging.normalise import coded
from catalogue.net.http import headers_field, plain_headers, read_capped

USER_AGENT = f"cancer-imaging-catalogue/{__version__}"
STUDY_FIELDS = ("PatientID", "PatientSex", "PatientAge", "PatientBirthDate", "StudyDate")
SERIES_FIELDS = (
    "SeriesInstanceUID",
    "Modality",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "NumberOfSeriesRelatedInstances",
    "SliceThickness",
    "PixelSpacing",
    "MagneticFieldStrength",
    "ContrastBolusAgent",
    "SOPClassUID",
)
RETRIES = 3
"""Further attempts after a connection error or a 5xx response."""
BACKOFF_SECONDS = 0.5
"""First pause between attempts; doubled after each."""
MAX_RESPONSE_BYTES = 256 << 20
"""Largest response body read; a series' metadata is the largest response."""
BATCH_SERIES = 4096
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())  # noqa: SIM905


class DicomWebSource(SourceConfig):
    """A DICOMweb root URL; every series goes to `dataset`."""

    kind: Literal["dicomweb"]
    url: str = Field(description="DICOMweb root, such as http://pacs:8042/dicom-web")
    dataset: str
    headers: dict[str, SecretStr] = headers_field()
    page_size: int = Field(default=100, ge=1, le=10_000)
    timeout: float = Field(default=30, gt=0, description="Seconds per request.")


def transport() -> httpx.BaseTransport | None:
    """The transport of new clients; None is httpx's own (tests return a MockTransport)."""
    return None


class DicomWebHarvester:
    """Pages through a DICOMweb server into the cohort index, in one transaction per source."""

    config_model: ClassVar[type[SourceConfig]] = DicomWebSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DicomWebSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        with _Client(source, transport()) as client:
            report.series = sink.put_series(_batches(client, source, ctx, report))
        return report


def _batches(
    client: _Client, source: DicomWebSource, ctx: HarvestContext, report: SourceReport
) -> Iterator[pa.RecordBatch]:
    """SERIES_SCHEMA batches; any error is raised inside, so the sink rolls back."""
    rows = SeriesRows(ctx.pseudonymise, linkage=ctx.linkage)
    seen: set[str] = set()
    study_fields = {"includefield": list(STUDY_FIELDS)}
    for study in client.pages("studies", study_fields):
        study_uid = _text(study.get("StudyInstanceUID"))
        if not study_uid:
            report.skip("study without StudyInstanceUID")
            continue
        series_path = f"studies/{study_uid}/series"
        for series in client.pages(series_path, {"includefield": list(SERIES_FIELDS)}):
            series_uid = _text(series.get("SeriesInstanceUID"))
            if not series_uid:
                report.skip("series without SeriesInstanceUID")
                continue
            if series_uid in seen:
                continue
            attrs = _series_attrs(client, study, series, f"{series_path}/{series_uid}/metadata")
            skipped = (
                "series metadata not found" if attrs is None else rows.add(source.dataset, attrs)
            )
            if skipped:
                report.skip(skipped)
            else:
                seen.add(series_uid)
            if len(rows) >= BATCH_SERIES:
                yield rows.take()
    yield rows.take()


def _series_attrs(
    client: _Client, study: Mapping[str, Any], series: Mapping[str, Any], metadata_path: str
) -> dict[str, Any] | None:
    """Study QIDO values, overridden by non-empty series QIDO values; what QIDO left out or
    gave empty comes from the series' first instance.

    None when the server lists the series but has no metadata for it (deleted meanwhile, or a
    UID it holds under two patients)."""
    attrs = dict(study)
    attrs.update((k, v) for k, v in series.items() if v not in (None, "", []) or k not in attrs)
    missing = [k for k in READ_KEYWORDS if attrs.get(k) in (None, "", [])]
    count = attrs.get("NumberOfSeriesRelatedInstances")
    if missing or count is None or _is_annotation(attrs):
        instances = client.get_list(metadata_path, not_found_ok=True)
        if instances is None:
            return None
        if instances:
            first = instances[0]
            attrs.update({k: first[k] for k in missing if first.get(k) not in (None, "", [])})
            if count is None:
                count = len(instances)
            if _is_annotation(attrs):
                attrs["ReferencedSeriesUID"] = referenced_series(first)
    attrs["instanceCount"] = count
    return attrs


def _is_annotation(attrs: Mapping[str, Any]) -> bool:
    return coded(attrs.get("Modality")) in ANNOTATION_MODALITIES


def referenced_series(instance: Mapping[str, Any]) -> str | None:
    """The series a SEG, RTSTRUCT or SR instance annotates, other than its own."""
    own = _text(instance.get("SeriesInstanceUID"))
    candidates: list[Mapping[str, Any]] = [*_items(instance, "ReferencedSeriesSequence")]
    for frame in _items(instance, "ReferencedFrameOfReferenceSequence"):
        for study in _items(frame, "RTReferencedStudySequence"):
            candidates.extend(_items(study, "RTReferencedSeriesSequence"))
    for evidence in _items(instance, "CurrentRequestedProcedureEvidenceSequence"):
        candidates.extend(_items(evidence, "ReferencedSeriesSequence"))
    for item in candidates:
        uid = _text(item.get("SeriesInstanceUID"))
        if uid and uid != own:
            return uid
    return None


def _items(dataset: Mapping[str, Any], keyword: str) -> list[Mapping[str, Any]]:
    value = dataset.get(keyword)
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def from_dicom_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DICOM JSON dataset (PS3.18 F.2) as keyword -> value, as pydicom would give it: one value
    as itself, several as a list, an empty text as ""; sequences as lists of such dicts, person
    names as their Alphabetic form. Private and unknown tags are dropped."""
    out: dict[str, Any] = {}
    for tag, element in item.items():
        try:
            keyword = keyword_for_tag(int(tag, 16))
        except ValueError:
            continue
        if not keyword or not isinstance(element, Mapping):
            continue
        values, vr = element.get("Value"), element.get("vr")
        if not isinstance(values, list) or not values:  # present without a value
            out[keyword] = [] if vr == "SQ" else "" if vr in _TEXT_VRS else None
            continue
        if vr == "SQ":
            out[keyword] = [from_dicom_json(v) for v in values if isinstance(v, Mapping)]
            continue
        values = [v.get("Alphabetic") if isinstance(v, Mapping) else v for v in values]
        out[keyword] = values[0] if len(values) == 1 else values
    return out


def _text(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


class _Client:
    """GETs DICOM JSON with retries, a size cap and errors as UnreadableSourceError."""

    def __init__(self, source: DicomWebSource, transport: httpx.BaseTransport | None) -> None:
        self._root = source.url.rstrip("/")
        self._page_size = source.page_size
        self._http = httpx.Client(
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/dicom+json, application/json",
                **plain_headers(source.headers),
            },
            timeout=httpx.Timeout(source.timeout),
            transport=transport,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result of a QIDO-RS query, a page at a time; a short page is the last."""
        offset = 0
        while True:
            page = self.get_list(path, {**params, "limit": self._page_size, "offset": offset})
            yield from page
            if len(page) < self._page_size:
                return
            offset += len(page)

    @overload
    def get_list(
        self, path: str, params: dict[str, Any] | None = None, not_found_ok: Literal[False] = ...
    ) -> list[dict[str, Any]]: ...

    @overload
    def get_list(
        self, path: str, params: dict[str, Any] | None = None, *, not_found_ok: bool
    ) -> list[dict[str, Any]] | None: ...

    def get_list(
        self, path: str, params: dict[str, Any] | None = None, not_found_ok: bool = False
    ) -> list[dict[str, Any]] | None:
        """A DICOM JSON array as keyword dicts; no content is an empty list, and a 404 is None
        when `not_found_ok`."""
        url = f"{self._root}/{path}"
        body = self._get(url, params, not_found_ok)
        if body is None:
            return None
        if not body.strip():
            return []
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise UnreadableSourceError(f"{url}: response is not valid JSON: {exc}") from exc
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise UnreadableSourceError(f"{url}: response is not a DICOM JSON array of datasets")
        return [from_dicom_json(d) for d in data]

    def _get(self, url: str, params: dict[str, Any] | None, not_found_ok: bool) -> bytes | None:
        pause = BACKOFF_SECONDS
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                with self._http.stream("GET", url, params=params) as response:
                    if response.status_code >= 500 and not last:
                        time.sleep(pause)
                        pause *= 2
                        continue
                    if response.status_code == 404 and not_found_ok:
                        return None
                    if not response.is_success:  # a redirect too: to a login page, say
                        tried = f" after {attempt + 1} attempts" if attempt else ""
                        raise UnreadableSourceError(
                            f"{url}: HTTP {response.status_code} {response.reason_phrase}{tried}"
                        )
                    return read_capped(url, response, MAX_RESPONSE_BYTES)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise UnreadableSourceError(
                        f"{url}: cannot connect after {attempt + 1} attempts: {exc}"
                    ) from exc
                time.sleep(pause)
                pause *= 2
            except httpx.TimeoutException as exc:
                raise UnreadableSourceError(
                    f"{url}: no response within {self._http.timeout.read}s ({exc!r})"
                ) from exc
            except httpx.HTTPError as exc:
                raise UnreadableSourceError(f"{url}: request failed: {exc!r}") from exc
        raise AssertionError("unreachable")
