"""The data of bench/scale.py: the IDC demo's series tables multiplied, real-shaped.

`generate(work_dir, factor)` builds the IDC demo (examples/demo/idc.py) under WORK/demo, then
writes WORK/x<factor>/: the same six providers, the same catalog.ttl per provider (the same
179 datasets) and one series.parquet per provider holding `factor` times its rows. A factor
k + f (k whole, 0 <= f < 1) is k full copies of every row plus one partial copy of the
subjects a hash of (collection, PatientID) puts in the fraction f, whole subjects with
all their studies and series. Copy 0 keeps the real identifiers, copy c > 0 appends `.c` to
PatientID, StudyInstanceUID and SeriesInstanceUID (and ReferencedSeriesUID, where a table has
it), so subjects, studies and series multiply while every other column keeps IDC's
distribution; a query's counts at factor k are k times its counts on IDC. The rows are
written by one DuckDB `COPY ... TO` per provider; a generation of the same idc-index-data
version and factor is reused.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from examples.demo.idc import build, idc_paths

IDENTIFIERS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "ReferencedSeriesUID")
"""The columns made distinct per copy (those a table has)."""
PPM = 1_000_000


@dataclass(frozen=True)
class Generation:
    """A generated data set: its providers file and what it holds."""

    providers_file: Path
    factor: float
    rows: int
    rows_by_provider: dict[str, int]
    seconds: float
    """Time it took to write (0 when reused)."""
    reused: bool


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def split_factor(factor: float) -> tuple[int, int]:
    """(full copies, parts per million of the partial copy's subjects)."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"the factor must be a positive number, not {factor}")
    full = math.floor(factor)
    ppm = round((factor - full) * PPM)
    if ppm == PPM:
        full, ppm = full + 1, 0
    return full, ppm


def scaled_select(source: Path, columns: list[str], factor: float) -> str:
    """The SELECT of one provider's scaled rows from its demo series.parquet."""
    full, ppm = split_factor(factor)
    copies = full + (1 if ppm else 0)
    select_list = ", ".join(
        f"r.{c} || s.suffix AS {c}" if c in IDENTIFIERS else f"r.{c}" for c in columns
    )
    keep = f"s.c < {full}"
    if ppm:
        keep += (
            f" OR (s.c = {full} AND "
            f"hash(r.collection_id || '/' || coalesce(r.PatientID, '')) % {PPM} < {ppm})"
        )
    return (
        f"SELECT {select_list} FROM read_parquet({_sql_string(source)}) AS r, "
        f"(SELECT c, CASE WHEN c = 0 THEN '' ELSE '.' || c END AS suffix "
        f"FROM range({copies}) AS t(c)) AS s "
        f"WHERE {keep} ORDER BY r.collection_id, s.c, r.PatientID"
    )


def generate(work_dir: Path, factor: float, log: Any = print) -> Generation:
    """Write (or reuse) the data set of `factor` under `work_dir`."""
    demo_file = build(work_dir / "demo")
    version = idc_paths()[2]
    out = work_dir / f"x{factor:g}"
    stamp_path = out / "generation.json"
    wanted = {"idc_index_data": version, "factor": factor, "scheme": 1}
    if stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in wanted} == wanted:
            log(f"reusing the generated data in {out}")
            return Generation(
                out / "providers.yaml",
                factor,
                int(stamp["rows"]),
                dict(stamp["rows_by_provider"]),
                float(stamp["seconds"]),
                True,
            )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    demo = yaml.safe_load(demo_file.read_text())
    started = time.perf_counter()
    con = duckdb.connect()
    rows_by_provider: dict[str, int] = {}
    for provider in demo["providers"]:
        pid = provider["id"]
        (out / pid).mkdir()
        for source in provider["sources"]:
            src = demo_file.parent / source["path"]
            dst = out / source["path"]
            if source["kind"] != "dicom-table":
                shutil.copyfile(src, dst)
                continue
            columns = [
                str(r[0])
                for r in con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({_sql_string(src)})"
                ).fetchall()
            ]
            con.execute(
                f"COPY ({scaled_select(src, columns, factor)}) TO {_sql_string(dst)} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            counted = con.execute(f"SELECT count(*) FROM read_parquet({_sql_string(dst)})")
            rows_by_provider[pid] = int(counted.fetchall()[0][0])
            log(f"  {pid}: {rows_by_provider[pid]:,} series", flush=True)
    con.close()
    seconds = time.perf_counter() - started
    (out / "providers.yaml").write_text(
        f"# bench/scale.py: the IDC demo providers x{factor:g}. Generated.\n"
        + yaml.safe_dump(demo, sort_keys=False)
    )
    rows = sum(rows_by_provider.values())
    stamp_path.write_text(
        json.dumps(
            {**wanted, "rows": rows, "rows_by_provider": rows_by_provider, "seconds": seconds}
        )
    )
    return Generation(out / "providers.yaml", factor, rows, rows_by_provider, seconds, False)
