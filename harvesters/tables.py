"""Parquet and CSV table files of the table sources (`dicom-table`, `clinical-table`): the file
and its required columns checked before anything is read, then the columns read in batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalogue.exceptions import UnreadableSourceError

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Table:
    """A table file with the names of its columns."""

    path: Path
    format: str
    """'parquet' or 'csv'."""
    columns: frozenset[str]

    @classmethod
    def open(
        cls,
        path: Path,
        fmt: str | None,
        required: Iterable[str],
        csv_suffixes: tuple[str, ...] = (".csv",),
    ) -> Table:
        """The table at `path`, in `fmt` (by default csv for a name ending in one of
        `csv_suffixes`, else parquet); UnreadableSourceError unless it is a readable file with
        the `required` columns."""
        if not path.is_file():
            raise UnreadableSourceError(f"{path}: no such file")
        fmt = fmt or ("csv" if path.suffix.lower() in csv_suffixes else "parquet")
        table = cls(path, fmt, _column_names(path, fmt))
        missing = [c for c in dict.fromkeys(required) if c not in table.columns]
        if missing:
            raise UnreadableSourceError(f"{path}: missing required column(s): {', '.join(missing)}")
        return table

    def batches(
        self, columns: list[str], missing_as_null: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """The `columns` (all present) in batches; CSV values are read as text, and a column
        the CSV reader does not find is null with `missing_as_null`, else unreadable."""
        if self.format == "parquet":
            try:
                parquet = pq.ParquetFile(self.path)
            except (OSError, pa.ArrowInvalid) as exc:
                raise UnreadableSourceError(
                    f"{self.path}: not a readable parquet file: {exc}"
                ) from exc
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
            return
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    include_missing_columns=missing_as_null,
                    column_types=dict.fromkeys(columns, pa.string()),
                ),
            )
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableSourceError(f"{self.path}: not a readable CSV file: {exc}") from exc
        yield from reader

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Around the sink's transaction that consumes the batches: a read error part-way
        becomes an UnreadableSourceError (the transaction has changed nothing)."""
        try:
            yield
        except (OSError, pa.ArrowInvalid) as exc:
            raise UnreadableSourceError(
                f"{self.path}: table unreadable part-way, nothing changed: {exc}"
            ) from exc


def _column_names(path: Path, fmt: str) -> frozenset[str]:
    """The column names of the parquet schema or of the CSV header line."""
    try:
        if fmt == "parquet":
            return frozenset(pq.read_schema(path).names)
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8-sig", "replace")
        return frozenset(c.strip().strip('"') for c in header.rstrip("\r\n").split(","))
    except (OSError, pa.ArrowInvalid) as exc:
        raise UnreadableSourceError(f"{path}: not a readable {fmt} table: {exc}") from exc
