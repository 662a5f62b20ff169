"""Files per second of the `dicom-files` harvester against a naive loop and a header-only limit.

    .venv/bin/python bench/dicom_harvest.py [--files N] [--dir D]

Generates N small CT/MR Part 10 files (a few hundred series, 16x16 pixels) from pydicom's real
test files, unless D already holds them, then measures on the same tree:
(a) the harvester end to end into a fresh temporary catalogue;
(b) a single-process loop of full `pydicom.dcmread`;
(c) the limit: header-only `dcmread(stop_before_pixels=True, specific_tags=...)` with the
    harvester's tags, in a process pool over every core, doing nothing else;
(d) for reference, that read parsed from memory, as the harvester does (one read of each file's
    first bytes): the harvester's own overhead is the gap between (a) and (d).
(a), (c) and (d) run interleaved `--rounds` times (default 3); their medians are compared.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.uid import generate_uid

from catalogue.config import Settings, load_providers
from catalogue.services.ingest import harvest
from catalogue.services.runtime import open_catalogue
from harvesters.dicom_files import PREFIX_BYTES, READ_TAGS

TARGET = 0.8
PER_SERIES = 50


def generate(root: Path, n_files: int) -> None:
    """A tree patient/study/series/instance of real-shaped CT and MR files."""
    templates = [
        pydicom.dcmread(str(pydicom.data.get_testdata_file(name)))
        for name in ("CT_small.dcm", "MR_small.dcm")
    ]
    for ds in templates:
        ds.Rows, ds.Columns = 16, 16
        ds.PixelData = bytes(range(256)) * 2  # 16 x 16 x 16 bits
    rng = random.Random(7)
    n_series = max(1, n_files // PER_SERIES)
    written = 0
    for s in range(n_series):
        ds = templates[s % 2]
        patient, study = s // 4, s // 2
        ds.PatientID = f"BENCH-{patient:05d}"
        ds.PatientName = f"Bench^{patient}"
        ds.PatientSex = "F" if patient % 2 else "M"
        ds.PatientAge = f"{rng.randint(20, 89):03d}Y"
        ds.StudyDate = f"20{10 + s % 14:02d}0{1 + s % 9}15"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1.{study}"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.10.1.{study}.{s}"
        ds.BodyPartExamined = ("CHEST", "HEAD", "ABDOMEN")[s % 3]
        folder = root / f"p{patient:05d}" / f"st{study}" / f"se{s}"
        folder.mkdir(parents=True, exist_ok=True)
        count = min(PER_SERIES, n_files - written) if s < n_series - 1 else n_files - written
        for i in range(count):
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = i + 1
            ds.SliceLocation = float(i)
            ds.save_as(folder / f"{i:04d}.dcm")
        written += count


def files_of(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.dcm"))


def header_chunk(paths: list[str]) -> int:
    for path in paths:
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=READ_TAGS)
    return len(paths)


def memory_header_chunk(paths: list[str]) -> int:
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(PREFIX_BYTES)
        pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True, specific_tags=READ_TAGS)
    return len(paths)


def rate_harvester(root: Path, n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        providers = Path(tmp) / "providers.yaml"
        providers.write_text(
            "providers:\n  - id: bench\n    name: Bench\n    sources:\n"
            f"      - kind: dicom-files\n        path: {root}\n        dataset: bench\n"
        )
        settings = Settings(data_dir=Path(tmp) / "data", secret="bench-secret-0123456789")
        started = time.perf_counter()
        with open_catalogue(settings) as catalogue:
            report = harvest(catalogue, load_providers(providers))
        seconds = time.perf_counter() - started
    assert report.ok, report.failed
    return n / seconds, report.sources[0].series


def rate_naive(paths: list[str]) -> float:
    started = time.perf_counter()
    for path in paths:
        pydicom.dcmread(path)
    return len(paths) / (time.perf_counter() - started)


def rate_pool(paths: list[str], workers: int, chunk: Callable[[list[str]], int]) -> float:
    chunks = [paths[i : i + 256] for i in range(0, len(paths), 256)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        done = sum(pool.map(chunk, chunks))
    assert done == len(paths)
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs; medians shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or Path(scratch) / "tree"
        paths = files_of(root) if root.is_dir() else []
        if len(paths) != args.files:
            started = time.perf_counter()
            if paths:  # generating over them would leave the others in the measured tree
                raise SystemExit(
                    f"{root} holds {len(paths)} files, not {args.files}: give a new --dir"
                )
            generate(root, args.files)
            paths = files_of(root)
            print(f"generated {len(paths)} files in {time.perf_counter() - started:.1f} s")
        workers = os.cpu_count() or 1
        harvesters, limits, memory = [], [], []
        for _ in range(args.rounds):  # interleaved, so all see the same machine noise
            rate, series = rate_harvester(root, len(paths))
            harvesters.append(rate)
            limits.append(rate_pool(paths, workers, header_chunk))
            memory.append(rate_pool(paths, workers, memory_header_chunk))
        harvester, limit = statistics.median(harvesters), statistics.median(limits)
        print("harvester runs: " + ", ".join(f"{r:.0f}" for r in harvesters) + " files/s")
        print("limit runs:     " + ", ".join(f"{r:.0f}" for r in limits) + " files/s")
        print("memory runs:    " + ", ".join(f"{r:.0f}" for r in memory) + " files/s")
        naive = rate_naive(paths)
        ratio = harvester / limit
        print(f"files: {len(paths)}, series: {series}, cores: {workers}")
        print(f"(a) harvester end to end:              {harvester:9.0f} files/s")
        print(f"(b) naive full dcmread, one process:   {naive:9.0f} files/s")
        print(f"(c) limit, header-only dcmread, pool:  {limit:9.0f} files/s")
        print(f"(d) header-only, parsed from memory:   {statistics.median(memory):9.0f} files/s")
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"(a)/(c) = {ratio:.0%} ({verdict} the target of at least {TARGET:.0%} of the limit)")
        print(
            f"(a)/(d) = {harvester / statistics.median(memory):.0%} (the harvester's own overhead)"
        )


if __name__ == "__main__":
    main()
