"""The subject documents of the Elasticsearch cohort index (schemas/index/cohort.json): one per
(provider, subject), its studies nested in it and their series nested in them, each series
keeping its original row (for rebuilds) and the positions of its pseudonym's set bits (for
XOR fingerprints by aggregation); values normalised as queries compare them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from catalogue.domain.linkage import RANK_BITS
from catalogue.imaging.features import ANNOTATION_MODALITIES
from catalogue.index.elasticsearch.cohort_query import age_band, cell_key

SKETCH_MASK = 255
"""Subject sketches have SKETCH_MASK + 1 buckets: the low bits of the pseudonym (as DuckDB's)."""
MASK64 = (1 << 64) - 1
RANK_MASK = (1 << RANK_BITS) - 1


def code(value: object) -> str | None:
    """A modality or body part as queries compare it: whitespace collapsed, upper case."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).upper() or None


def name(value: object) -> str | None:
    """A manufacturer or model as queries compare it: whitespace collapsed, case folded."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).casefold() or None


def _sex(value: object) -> str:
    text = value.strip().upper() if isinstance(value, str) else "U"
    return text if text in ("F", "M", "O") else "U"


def xor_all(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out ^= v
    return out


def bits(value: int) -> list[int]:
    """The positions of the set bits of a 64-bit pseudonym (two's complement; 63 is the sign)."""
    unsigned = value & MASK64
    return [i for i in range(64) if unsigned >> i & 1]


def from_bits(buckets: Iterable[Mapping[str, Any]]) -> int:
    """The XOR of the values whose set bits a terms aggregation on their bit positions
    counted: bit i is set when an odd number of them have it (signed, as the pseudonyms)."""
    out = 0
    for bucket in buckets:
        if int(bucket["doc_count"]) % 2:
            out |= 1 << int(bucket["key"])
    return out - (1 << 64) if out >> 63 else out


def build_documents(
    provider: str, rows: list[dict[str, Any]], diagnoses: Mapping[int, set[str]]
) -> dict[str, dict[str, Any]]:
    """The subject documents of a provider's rows (each with `source`), by document id."""
    by_subject: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(int(row["subject"]), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for subject, mine in by_subject.items():
        known = {_sex(r.get("sex")) for r in mine} - {"U"}
        sex = next(iter(known)) if len(known) == 1 else "U"
        annotated = _annotations(mine)
        studies: dict[int, list[dict[str, Any]]] = {}
        cells: set[str] = set()
        for n, row in enumerate(mine):
            cell = cell_key(provider, str(row["dataset"]))
            cells.add(cell)
            doc: dict[str, Any] = {
                "series": int(row["series"]),
                "series_bits": bits(int(row["series"])),
                "study": int(row["study"]),
                "cell": cell,
                "provider": provider,
                "dataset": str(row["dataset"]),
                "source": row["source"],
                "sex": sex,
                "age": row.get("age"),
                "age_band": age_band(row.get("age")),
                "year": row.get("study_year"),
                "modality": code(row.get("modality")),
                "body_part": code(row.get("body_part")),
                "manufacturer": name(row.get("manufacturer")),
                "model": name(row.get("model")),
                "slice_thickness": row.get("slice_thickness"),
                "field_strength": row.get("field_strength"),
                "contrast": row.get("contrast"),
                "ann": sorted(annotated[n]),
                "raw_modality": row.get("modality"),
                "raw_body_part": row.get("body_part"),
                "raw_manufacturer": row.get("manufacturer"),
                "row": row,
            }
            studies.setdefault(int(row["study"]), []).append(
                {k: v for k, v in doc.items() if v is not None and v != []}
            )
        linkage = sorted({int(r["linkage"]) for r in mine if r.get("linkage") is not None})
        register: dict[str, int] = {}
        if linkage:  # the subject's largest code, as DuckDB's
            register = {"register": linkage[-1] >> RANK_BITS, "rank": linkage[-1] & RANK_MASK}
        out[subject_id(provider, subject)] = {
            **register,
            "kind": "subject",
            "provider": provider,
            "subject": subject,
            "subject_bits": bits(subject),
            "bucket": subject & SKETCH_MASK,
            "sex": sex,
            "diagnoses": sorted(diagnoses.get(subject, ())),
            "linkage": linkage,
            "cells": sorted(cells),
            "studies": [
                {"study": t, "study_bits": bits(t), "series": series}
                for t, series in studies.items()
            ],
        }
    return out


def _annotations(rows: list[dict[str, Any]]) -> list[set[str]]:
    """Per row of one subject, the annotation kinds `hasAnnotation` finds on it: an annotation
    row of that kind, other than the row itself, in the same study and dataset, whose
    annotated series is the row's or unknown."""
    groups: dict[tuple[str, int], list[int]] = {}
    for n, row in enumerate(rows):
        groups.setdefault((str(row["dataset"]), int(row["study"])), []).append(n)
    out: list[set[str]] = [set() for _ in rows]
    for members in groups.values():
        notes = [
            n
            for n in members
            if rows[n].get("is_annotation")
            and code(rows[n].get("modality")) in ANNOTATION_MODALITIES
        ]
        for n in members:
            for a in notes:
                target = rows[a].get("annotated_series")
                if a != n and (target is None or target == rows[n]["series"]):
                    kind = code(rows[a].get("modality"))
                    assert kind is not None
                    out[n].add(kind)
    return out


def subject_id(provider: str, subject: int) -> str:
    return f"subject|{provider}|{subject}"
