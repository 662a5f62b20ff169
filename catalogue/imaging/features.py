"""The series-feature record every DICOM source produces, as an Arrow schema.

One row per series. Identifiers are keyed pseudonyms; no name, identifier or date beyond the
year is ever part of it.
"""

from __future__ import annotations

import pyarrow as pa

SERIES_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("subject", pa.int64(), nullable=False),
        pa.field("study", pa.int64(), nullable=False),
        pa.field("series", pa.int64(), nullable=False),
        pa.field("sex", pa.string(), nullable=False),
        pa.field("age", pa.int16()),
        pa.field("study_year", pa.int16()),
        pa.field("modality", pa.string()),
        pa.field("body_part", pa.string()),
        pa.field("manufacturer", pa.string()),
        pa.field("instances", pa.int32()),
    ]
)
"""Columns of a series-feature batch, in order."""

FEATURE_COLUMNS = tuple(SERIES_SCHEMA.names)
