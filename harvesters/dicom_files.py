"""`dicom-files` sources: a folder tree of DICOM Part 10 files, one feature row per series.

Headers are read without pixel data and only for the attributes features need, in parallel over
worker processes; instances are grouped by series in the parent through the shared `SeriesRows`.
Unreadable files are skipped and counted by reason:

- "not DICOM": neither the `DICM` prefix after the 128-byte preamble, nor a bare data set
  (written without the Part 10 header, as older files are) starting with group 0008;
- "truncated": the file ends inside an element (a length runs past the end of the file);
- "invalid value": a needed value or its VR cannot be decoded, or the structure does not parse;
- "missing required tags": no PatientID, StudyInstanceUID or SeriesInstanceUID.

Incremental: a SQLite state file keeps, per file (keyed by a pseudonym of its relative path) with
its size and mtime, the reason it was skipped or its feature row as `SeriesRows` built it, so
already pseudonymised and normalised. Unchanged files are not read again; the state is committed
after every chunk, so a harvest that stopped part-way resumes where it was.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import sqlite3
import struct
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import IO, ClassVar, Literal

import pyarrow as pa
import pydicom
from pydantic import Field, model_validator
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.valuerep import VR, PersonName

from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.exceptions import UnreadableSourceError
from catalogue.imaging.features import (
    ANNOTATION_MODALITIES,
    FEATURE_COLUMNS,
    READ_KEYWORDS,
    REQUIRED_KEYWORDS,
    SERIES_SCHEMA,
    SeriesRows,
)

NOT_DICOM = "not DICOM"
TRUNCATED = "truncated"
INVALID = "invalid value"
MISSING = "missing required tags"
UNREADABLE = "unreadable file"
NO_DATASET = "no dataset for folder"
REQUIRED = REQUIRED_KEYWORDS
REFERENCE_KEYWORDS = (
    "ReferencedSeriesSequence",  # SEG (and SR through the evidence sequence)
    "ReferencedFrameOfReferenceSequence",  # RTSTRUCT
    "CurrentRequestedProcedureEvidenceSequence",  # SR
)
READ_TAGS = [Tag(k) for k in (*READ_KEYWORDS, *REFERENCE_KEYWORDS)]
_KEYWORD_TAGS = [(k, Tag(k)) for k in READ_KEYWORDS]
_BARE_DATASET_STARTS = (b"\x08\x00", b"\x00\x08")
"""A data set written without the Part 10 header (older files) starts with group 0008."""
_KNOWN_VRS = frozenset(str(vr.value) for vr in VR)
_NUMERIC_TAGS = frozenset(
    Tag(k) for k in ("SliceThickness", "PixelSpacing", "MagneticFieldStrength")
)
CHUNK_FILES = 256
"""Files per task sent to a worker process; the state is committed after each chunk."""
PREFIX_BYTES = 1 << 16
"""Bytes read at once from the start of each file, in which its header is parsed."""
"""Files per task sent to a worker process; the state is committed after each chunk."""

_ITEM, _SEQ_END = 0xFFFEE000, 0xFFFEE0DD
_STATE_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c != "instances")
_EMPTY_ROW = (None,) * len(_STATE_COLUMNS)
_BOOL_COLUMNS = frozenset(f.name for f in SERIES_SCHEMA if pa.types.is_boolean(f.type))
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

Raw = dict[str, object]
"""What a worker returns per file: {"reason": str} or {"attrs": {keyword: plain value}}."""


class DicomFilesSource(SourceConfig):
    """A folder of DICOM files; all go to `dataset`, or by first-level folder name."""

    kind: Literal["dicom-files"]
    path: Path
    dataset: str | None = None
    datasets_by_folder: dict[str, str] | None = Field(
        default=None, description="First-level folder name -> dataset; other files are skipped."
    )
    workers: int | None = Field(default=None, ge=1, description="Processes; default: CPU count.")

    @model_validator(mode="after")
    def _one_dataset_rule(self) -> DicomFilesSource:
        if (self.dataset is None) == (self.datasets_by_folder is None):
            raise ValueError("give exactly one of 'dataset' or 'datasets_by_folder'")
        return self


class _Tracked:
    """A file whose short reads are noted: a file that ends inside an element is truncated."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._read = handle.read
        self.seek = handle.seek
        self.tell = handle.tell
        self.name = getattr(handle, "name", "<file>")
        self.short = False

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        if size > 0 and len(data) < size and (data or size != 8):
            self.short = True  # a clean end of data set reads 0 of an 8-byte element header
        return data


def _checked(elem: pydicom.DataElement) -> object:
    """An element's value as plain Python; a numeric string that is no number is invalid."""
    value = _plain(elem.value)
    if elem.VR in ("DS", "IS"):
        for item in value if isinstance(value, list) else [value]:
            if item is not None and item != "":
                float(str(item))  # raises ValueError
    return value


def _raw_value(elem: object) -> object:
    """A text attribute straight from its undecoded bytes (every feature attribute is a text VR):
    cheaper than pydicom's conversion; a DS or IS that is no number is invalid."""
    if not isinstance(elem, RawDataElement):
        return _checked(elem)  # type: ignore[arg-type]
    if elem.VR is not None and elem.VR not in _KNOWN_VRS:
        raise ValueError(f"unknown VR {elem.VR!r}")
    raw = elem.value
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.strip(" \x00")
    if elem.tag in _NUMERIC_TAGS:
        for item in text.split("\\"):
            if item.strip():
                float(item)  # raises ValueError
    return text


def _plain(value: object) -> object:
    if isinstance(value, MultiValue | list):
        return [_plain(v) for v in value]
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, PersonName | str):
        return str(value)
    return None if value is None else str(value)


def _referenced_series(ds: pydicom.Dataset) -> str | None:
    """The first series an annotation (SEG, RTSTRUCT, SR) refers to, other than its own."""
    own = str(ds.get("SeriesInstanceUID", ""))
    items: list[pydicom.Dataset] = list(ds.get("ReferencedSeriesSequence", []))
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            items.extend(study.get("RTReferencedSeriesSequence", []))
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        items.extend(study.get("ReferencedSeriesSequence", []))
    for item in items:
        uid = str(item.get("SeriesInstanceUID", "")).strip()
        if uid and uid != own:
            return uid
    return None


def _pixel_data_problem(fp: IO[bytes], ds: pydicom.Dataset, size: int) -> str | None:
    """Reading stopped before the end: is it at pixel data whose value ends within the file?"""
    implicit, little = ds.original_encoding
    endian = ">" if little is False else "<"
    head = fp.read(8)
    if len(head) < 8:
        return TRUNCATED
    group, element = struct.unpack(f"{endian}HH", head[:4])
    if group << 16 | element not in _PIXEL_TAGS:
        return INVALID  # the parser gave up on an element it could not decode
    if not implicit and head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"UN"):
        extra = fp.read(4)
        if len(extra) < 4:
            return TRUNCATED
        length = struct.unpack(f"{endian}L", extra)[0]
    elif implicit or not b"AA" <= head[4:6] <= b"ZZ":  # implicit VR, as pydicom also assumes
        length = struct.unpack(f"{endian}L", head[4:])[0]
    else:
        return INVALID
    if length != 0xFFFFFFFF:
        if fp.tell() + length > size:
            return TRUNCATED
        fp.seek(length, os.SEEK_CUR)
        return _trailing_problem(fp, bool(implicit), endian, size)
    item = struct.Struct(f"{endian}HHL")
    while True:  # encapsulated: walk the fragment items to the sequence delimiter
        data = fp.read(8)
        if len(data) < 8:
            return TRUNCATED
        group, element, length = item.unpack(data)
        tag = group << 16 | element
        if tag == _SEQ_END:
            return _trailing_problem(fp, bool(implicit), endian, size)
        if tag != _ITEM:
            return INVALID
        if fp.tell() + length > size:
            return TRUNCATED
        fp.seek(length, os.SEEK_CUR)


def _trailing_problem(fp: IO[bytes], implicit: bool, endian: str, size: int) -> str | None:
    """Elements after the pixel data (such as padding) must also end within the file."""
    while fp.tell() < size:
        head = fp.read(8)
        if len(head) < 8:
            return TRUNCATED
        if implicit or head[4:6] in _LONG_VRS:
            extra = head[4:] if implicit else fp.read(4)
            if len(extra) < 4:
                return TRUNCATED
            length = struct.unpack(f"{endian}L", extra)[0]
        else:
            length = struct.unpack(f"{endian}H", head[6:])[0]
        if length == 0xFFFFFFFF:
            return None  # an undefined-length sequence after the pixels: not checked further
        if fp.tell() + length > size:
            return TRUNCATED
        fp.seek(length, os.SEEK_CUR)
    return None


def _header(fp: IO[bytes] | _Tracked, force: bool = False) -> pydicom.Dataset:
    return pydicom.dcmread(fp, force=force, stop_before_pixels=True, specific_tags=READ_TAGS)


def _parse(fp: IO[bytes], size: int, part10: bool) -> pydicom.Dataset | str:
    """The header from `fp` (at its start), or why it cannot be read; `fp` is left where
    reading stopped."""
    try:
        ds = _header(fp, force=not part10)
        if fp.tell() >= size:  # read to the end: was anything cut short?
            fp.seek(0)
            tracked = _Tracked(fp)
            ds = _header(tracked, force=not part10)
            if tracked.short:
                return TRUNCATED
    except InvalidDicomError:
        return NOT_DICOM
    except EOFError:
        return TRUNCATED
    return TRUNCATED if fp.tell() > size else ds


def _parse_prefix(head: bytes, part10: bool) -> tuple[pydicom.Dataset, int] | None:
    """The header and where it ends, if it lies wholly within `head`, the file's first bytes."""
    buffer = io.BytesIO(head)
    try:
        ds = _header(buffer, force=not part10)
    except Exception:  # decided on the whole file
        return None
    end = buffer.tell()
    return (ds, end) if end < len(head) else None


def read_file(path: str) -> Raw:
    """The raw attribute values features need from one file's header, or why it was skipped.

    The first `PREFIX_BYTES` are read at once and parsed in memory: a file's header nearly always
    lies within them, and pydicom parses from memory at about 1.6 times the speed it reads from a
    file. A header that runs past them is read from the file."""
    try:
        with open(path, "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(min(PREFIX_BYTES, size))
            part10 = len(head) >= 132 and head[128:132] == b"DICM"
            if not part10 and head[:2] not in _BARE_DATASET_STARTS:
                return {"reason": NOT_DICOM}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fp: IO[bytes]
                if len(head) >= size:  # the whole file is in memory
                    fp = io.BytesIO(head)
                    parsed = _parse(fp, size, part10)
                elif (prefix := _parse_prefix(head, part10)) is not None:
                    parsed, end = prefix
                    fp = io.BufferedReader(handle)
                    fp.seek(end)
                else:
                    fp = io.BufferedReader(handle)
                    fp.seek(0)
                    parsed = _parse(fp, size, part10)
                if isinstance(parsed, str):
                    return {"reason": parsed}
                ds = parsed
                problem = _pixel_data_problem(fp, ds, size) if fp.tell() < size else None
                if problem:
                    return {"reason": problem}
                attrs: dict[str, object] = {}
                present = ds._dict  # tag -> element, raw until decoded, without keyword look-ups
                for keyword, tag in _KEYWORD_TAGS:
                    if tag in present:
                        attrs[keyword] = _raw_value(present[tag])
                if any(not str(attrs.get(k) or "").strip() for k in REQUIRED):
                    return {"reason": MISSING}
                modality = str(attrs.get("Modality") or "").strip().upper()
                if modality in ANNOTATION_MODALITIES:
                    attrs["ReferencedSeriesUID"] = _referenced_series(ds)
    except OSError:
        return {"reason": UNREADABLE}
    except Exception:  # any value or structure pydicom cannot decode
        return {"reason": INVALID}
    return {"attrs": attrs}


StateValues = tuple[str | None, bytes | None, tuple[object, ...] | None]
"""Per file: the reason it was skipped, or the digest of its feature row (already
pseudonymised) and, the first time the chunk meets that row, the row itself."""


def read_chunk(
    paths: Sequence[str],
    datasets: Sequence[str],
    pseudonymise: Callable[[str], int],
    linkage: Callable[[str], int] | None = None,
) -> list[StateValues]:
    """Read a chunk of files and build their feature rows, in a worker process, so that the
    parent only stores results; identifiers never leave the worker in clear."""
    rows = SeriesRows(pseudonymise, linkage=linkage)
    out: list[StateValues] = []
    built: list[int] = []
    for i, (path, dataset) in enumerate(zip(paths, datasets, strict=True)):
        raw = read_file(path)
        attrs = raw.get("attrs")
        reason = raw.get("reason")
        if isinstance(attrs, dict):
            reason = rows.add(dataset, attrs)
            if reason is None:
                built.append(i)
        out.append((None if reason is None else str(reason), None, None))
    sent: set[bytes] = set()
    for i, values in zip(built, rows.take_tuples(_STATE_COLUMNS), strict=True):
        row_id = hashlib.blake2b(repr(values).encode(), digest_size=16).digest()
        out[i] = (None, row_id, None if row_id in sent else values)
        sent.add(row_id)
    return out


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes from a forkserver (the parent holds database threads, so no plain fork),
    their modules preloaded; started at once so that start-up overlaps the walk of the tree."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(workers, mp_context=context)
    for _ in range(workers):
        pool.submit(int)
    return pool


class _State:
    """Per-file state in SQLite: path pseudonym, size, mtime, then a skip reason or the id of its
    feature row. Rows are stored once per distinct content (the instances of a series share
    theirs), keyed by a digest, so a chunk's commit binds a few values per file."""

    def __init__(self, path: Path, check: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(path)
            # WAL with NORMAL sync: each chunk's commit survives a killed process, cheaply
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(_STATE_COLUMNS)
            stored = [r[1] for r in self._con.execute("PRAGMA table_info(row_values)")]
            if stored and stored != ["row_id", *_STATE_COLUMNS]:  # written by another version
                self._con.executescript("DROP TABLE row_values; DROP TABLE IF EXISTS file_state;")
            self._con.executescript(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);"
                "CREATE TABLE IF NOT EXISTS file_state (path INTEGER PRIMARY KEY, size INTEGER, "
                "mtime INTEGER, reason TEXT, row_id BLOB);"
                f"CREATE TABLE IF NOT EXISTS row_values (row_id BLOB PRIMARY KEY, {cols});"
            )
            found = self._con.execute("SELECT value FROM meta WHERE key = 'check'").fetchone()
            if found is None or found[0] != check:  # new state, or a new pseudonymisation key
                with self._con:
                    self._con.execute("DELETE FROM file_state")
                    self._con.execute("DELETE FROM row_values")
                    self._con.execute("INSERT OR REPLACE INTO meta VALUES ('check', ?)", [check])
        except sqlite3.Error as exc:
            raise UnreadableSourceError(f"{path}: harvest state unusable: {exc}") from exc
        marks = ", ".join("?" * (1 + len(_STATE_COLUMNS)))
        self._insert_row = f"INSERT OR IGNORE INTO row_values VALUES ({marks})"

    def load(self) -> dict[int, tuple[object, ...]]:
        """path key -> (key, size, mtime, reason, *row values)."""
        rows = {r[0]: r[1:] for r in self._con.execute("SELECT * FROM row_values")}
        return {
            key: (key, size, mtime, reason, *(rows[row_id] if row_id is not None else _EMPTY_ROW))
            for key, size, mtime, reason, row_id in self._con.execute("SELECT * FROM file_state")
        }

    def drop(self, keys: list[int]) -> None:
        with self._con:
            self._con.executemany("DELETE FROM file_state WHERE path = ?", [(k,) for k in keys])

    def put(
        self,
        states: list[tuple[int, int, int, str | None, bytes | None]],
        rows: list[tuple[bytes, tuple[object, ...]]],
    ) -> None:
        """(key, size, mtime, reason, row id) per file and the rows new to this chunk, as one
        commit."""
        with self._con:
            self._con.executemany(self._insert_row, [(k, *v) for k, v in rows])
            self._con.executemany(
                "INSERT OR REPLACE INTO file_state VALUES (?, ?, ?, ?, ?)", states
            )

    def close(self) -> None:
        self._con.execute(
            "DELETE FROM row_values WHERE row_id NOT IN "
            "(SELECT row_id FROM file_state WHERE row_id IS NOT NULL)"
        )
        self._con.commit()
        self._con.close()


def _walk(root: Path) -> Iterator[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under root, following no links."""
    prefix = len(os.path.join(str(root), ""))  # paths below root start with "root/"
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    yield entry.path[prefix:], stat.st_size, stat.st_mtime_ns


class DicomFilesHarvester:
    """Reads a folder tree's headers in parallel into one row per series, incrementally."""

    config_model: ClassVar[type[SourceConfig]] = DicomFilesSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, DicomFilesSource)
        root = ctx.resolve(source.path)
        if not root.is_dir():
            raise UnreadableSourceError(f"{root}: no such folder")
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        workers = source.workers or os.cpu_count() or 1
        pool = _start_pool(workers) if workers > 1 else None  # starts while the tree is walked
        try:
            return self._harvest(root, source, ctx, sink, report, pool)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _harvest(
        self,
        root: Path,
        source: DicomFilesSource,
        ctx: HarvestContext,
        sink: HarvestSink,
        report: SourceReport,
        pool: ProcessPoolExecutor | None,
    ) -> SourceReport:
        try:
            files = sorted(_walk(root))
        except OSError as exc:
            raise UnreadableSourceError(f"{root}: cannot list files: {exc}") from exc
        current: list[tuple[str, int, int, int, str]] = []  # path, size, mtime, key, dataset
        for rel, size, mtime in files:
            dataset = self._dataset(source, rel)
            if dataset is None:
                report.skip(NO_DATASET)
            else:
                current.append((rel, size, mtime, ctx.pseudonymise(f"file:{rel}"), dataset))
        state_path = ctx.base_dir / "harvest-state" / ctx.provider.id / f"{ctx.source_id}.sqlite"
        linked = f":{ctx.linkage.key_id}" if ctx.linkage else ""  # a new key: read all again
        state = _State(state_path, ctx.pseudonymise(f"harvest-state-check{linked}"))
        try:
            known = state.load()
            keys = {f[3] for f in current}
            state.drop([k for k in known if k not in keys])
            stale = [f for f in current if (k := known.get(f[3])) is None or k[1:3] != (f[1], f[2])]
            for chunk, results in self._read(root, stale, pool, ctx.pseudonymise, ctx.linkage):
                pairs = list(zip(chunk, results, strict=True))
                state.put(
                    [(f[3], f[1], f[2], reason, row_id) for f, (reason, row_id, _) in pairs],
                    [(row_id, v) for _, (_, row_id, v) in pairs if row_id and v is not None],
                )
            known = state.load()
        finally:
            state.close()
        return self._emit(current, known, report, sink)

    @staticmethod
    def _dataset(source: DicomFilesSource, rel: str) -> str | None:
        if source.dataset is not None:
            return source.dataset
        parts = Path(rel).parts
        assert source.datasets_by_folder is not None
        return source.datasets_by_folder.get(parts[0]) if len(parts) > 1 else None

    @staticmethod
    def _read(
        root: Path,
        stale: list[tuple[str, int, int, int, str]],
        pool: ProcessPoolExecutor | None,
        pseudonymise: Callable[[str], int],
        linkage: Callable[[str], int] | None = None,
    ) -> Iterator[tuple[list[tuple[str, int, int, int, str]], list[StateValues]]]:
        chunks = [stale[i : i + CHUNK_FILES] for i in range(0, len(stale), CHUNK_FILES)]
        paths = [[str(root / f[0]) for f in chunk] for chunk in chunks]
        datasets = [[f[4] for f in chunk] for chunk in chunks]
        work = partial(read_chunk, pseudonymise=pseudonymise, linkage=linkage)
        if pool is None or len(chunks) <= 1:
            for chunk, chunk_paths, chunk_datasets in zip(chunks, paths, datasets, strict=True):
                yield chunk, work(chunk_paths, chunk_datasets)
            return
        yield from zip(chunks, pool.map(work, paths, datasets), strict=True)

    @staticmethod
    def _emit(
        current: list[tuple[str, int, int, int, str]],
        known: dict[int, tuple[object, ...]],
        report: SourceReport,
        sink: HarvestSink,
    ) -> SourceReport:
        """One row per series and dataset: its first instance by path, with its instance count."""
        columns: dict[str, list[object]] = {c: [] for c in FEATURE_COLUMNS}
        first: dict[object, int] = {}
        counts: list[int] = []
        for _, _, _, key, dataset in current:  # sorted by path
            row = known[key]
            if row[3] is not None:
                report.skip(str(row[3]))
                continue
            values = dict(zip(_STATE_COLUMNS, row[4:], strict=True))
            series = (dataset, values["series"])
            at = first.get(series)
            if at is not None:
                counts[at] += 1
                continue
            first[series] = len(counts)
            counts.append(1)
            values["dataset"] = dataset
            for c in _BOOL_COLUMNS:
                values[c] = None if values[c] is None else bool(values[c])
            for c in FEATURE_COLUMNS:
                columns[c].append(values.get(c))
        columns["instances"] = list(counts)
        batch = pa.RecordBatch.from_pydict(columns, schema=SERIES_SCHEMA)
        report.series = sink.put_series([batch])
        return report
