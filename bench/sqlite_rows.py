"""The SQLite row store of bench/feasibility.py: the parsed IDC rows in an indexed SQLite file.

The rows, the subjects and the datasets' metadata of bench/feasibility_sql.py, copied from the
DuckDB TEMP tables into a file in the data folder, indexed as an i2b2-like system indexes its
fact table, and reused while the rows are the same.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from feasibility_sql import ROW_COLUMNS

SQLITE_INDEXES = (
    "CREATE INDEX rows_patient ON rows (provider, patient, modality, study)",
    "CREATE INDEX rows_study ON rows (provider, patient, study, modality)",
    "CREATE INDEX rows_modality ON rows (modality, provider, patient, study, series, dataset)",
    "CREATE INDEX rows_body_part ON rows (body_part, provider, patient, study)",
    "CREATE INDEX rows_manufacturer ON rows (manufacturer, provider, patient)",
    "CREATE INDEX rows_model ON rows (model, provider, patient)",
    "CREATE INDEX rows_age ON rows (provider, patient, age)",
    "CREATE INDEX rows_year ON rows (provider, patient, study_year, study, dataset)",
    "CREATE INDEX rows_dataset ON rows (dataset, provider, patient)",
    "CREATE INDEX subjects_sex ON subjects (sex, provider, patient)",
)
"""Indexes of the SQLite row store, as i2b2 indexes its fact table: by patient (with the
concept and the encounter), by concept (modality, body part, manufacturer, model, year) with
the patient, by encounter (study) within the patient; the patient dimension by sex."""


def open_sqlite(
    path: Path, duck: Any, stamp: str, log: Callable[[str], None]
) -> sqlite3.Connection:
    """The SQLite row store at `path`, (re)built from the DuckDB tables unless it holds the
    same rows already (same `stamp`)."""
    if path.exists():
        con = _sqlite_connect(path)
        try:
            found = con.execute("SELECT value FROM bench_meta WHERE key = 'stamp'").fetchone()
        except sqlite3.DatabaseError:
            found = None
        if found is not None and found[0] == stamp:
            log(f"reusing the SQLite row store {path}")
            return con
        con.close()
        path.unlink()
    log(f"building the SQLite row store {path} ...")
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = _sqlite_connect(partial)
    columns = ", ".join(f"{name} {kind}" for name, kind in ROW_COLUMNS)
    con.executescript(
        f"""
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE rows ({columns});
        CREATE TABLE subjects (
            provider TEXT NOT NULL, patient INTEGER NOT NULL, sex TEXT NOT NULL,
            PRIMARY KEY (provider, patient)
        ) WITHOUT ROWID;
        CREATE TABLE dataset_meta (provider TEXT, dataset TEXT, kind TEXT, value TEXT);
        CREATE TABLE bench_meta (key TEXT PRIMARY KEY, value TEXT);
        """
    )
    names = [name for name, _ in ROW_COLUMNS]
    _copy(duck, con, "rows", names)
    _copy(duck, con, "subjects", ["provider", "patient", "sex"])
    _copy(duck, con, "dataset_meta", ["provider", "dataset", "kind", "value"])
    for statement in SQLITE_INDEXES:
        con.execute(statement)
    con.execute("CREATE INDEX dataset_meta_value ON dataset_meta (kind, value)")
    con.execute("ANALYZE")
    con.execute("INSERT INTO bench_meta VALUES ('stamp', ?)", [stamp])
    con.commit()
    con.close()
    partial.rename(path)
    log(f"built it in {time.perf_counter() - started:.1f} s")
    return _sqlite_connect(path)


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    # A generous page cache and memory-mapped reads: the row store at its best.
    con.executescript(
        """
        PRAGMA cache_size = -1048576;
        PRAGMA mmap_size = 4294967296;
        PRAGMA temp_store = MEMORY;
        """
    )
    return con


def _copy(duck: Any, con: sqlite3.Connection, table: str, columns: Sequence[str]) -> None:
    cursor = duck.execute(f"SELECT {', '.join(columns)} FROM {table}")
    marks = ", ".join("?" for _ in columns)
    while batch := cursor.fetchmany(50_000):
        con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
