"""The shipped default mapping set: raw values seen in real data, mapped for every provider.

    python -m catalogue.ontology.default_mappings

reads the hand-curated table `ontologies/curated/default-mappings.tsv` (value, field, object,
predicate, comment) and writes `ontologies/mappings/default.sssom.tsv`: SSSOM/TSV with its
metadata embedded, CC0, every mapping approved (semapv:ManualMappingCuration), each subject
`LOCAL:*/<field>/<value>` (provider `*`: shared by every provider). Every object must be a
concept of a vocabulary the field's values are resolved in (`annotate.FIELD_SCHEMES`), or
sssom:NoTermFound (the curators decided that the value names no code). The output is
deterministic; its `mapping_set_version` is a digest of the curated table.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from catalogue.exceptions import ConfigError
from catalogue.ontology.annotate import ANY_PROVIDER, FIELD_SCHEMES
from catalogue.ontology.sssom import (
    APPLIED_PREDICATES,
    MANUAL_CURATION,
    NO_TERM_FOUND,
    VOCAB_PREFIX,
    Mapping,
    MappingSet,
    condense,
    local_id,
    local_source,
    new_mapping_set,
    read_sssom,
    validate,
    write_sssom,
)
from catalogue.ontology.vocabulary import (
    ONTOLOGIES_DIR,
    Vocabulary,
    load_vocabulary,
    shipped_files,
)

CURATED_TABLE: Final = ONTOLOGIES_DIR / "curated" / "default-mappings.tsv"
DEFAULT_SET_PATH: Final = ONTOLOGIES_DIR / "mappings" / "default.sssom.tsv"
DEFAULT_SET_ID: Final = "https://w3id.org/cancer-imaging-catalogue/mappings/default.sssom.tsv"
LICENSE: Final = "https://creativecommons.org/publicdomain/zero/1.0/"
CREATOR: Final = "Cancer imaging catalogue project"
_COLUMNS: Final = ("value", "field", "object", "predicate", "comment")


@dataclass(frozen=True)
class CuratedRow:
    """One row of the curated table."""

    value: str
    field: str
    object_id: str
    predicate: str
    comment: str
    line: int


def read_curated(path: Path = CURATED_TABLE) -> list[CuratedRow]:
    """The rows of the curated table (`#` lines are comments); ConfigError when malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    rows: list[CuratedRow] = []
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not header_seen:
            if tuple(cells) != _COLUMNS:
                raise ConfigError(f"{path}, line {number}: the header must be {_COLUMNS}")
            header_seen = True
            continue
        if len(cells) != len(_COLUMNS) or not all(c.strip() for c in cells[:4]):
            raise ConfigError(f"{path}, line {number}: {len(_COLUMNS)} cells, the first 4 given")
        value, field, object_id, predicate, comment = cells
        rows.append(CuratedRow(value, field, object_id, predicate, comment, number))
    return rows


def check_rows(rows: list[CuratedRow], vocabulary: Vocabulary) -> list[str]:
    """Every problem of the curated rows against the vocabulary (empty when they hold)."""
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    no_term: set[tuple[str, str]] = set()
    coded: set[tuple[str, str]] = set()
    for row in rows:
        where = f"line {row.line} ({row.value!r})"
        schemes = FIELD_SCHEMES.get(row.field)
        if schemes is None:
            problems.append(
                f"{where}: unknown field {row.field} (known: {', '.join(FIELD_SCHEMES)})"
            )
            continue
        if row.value != row.value.strip() or not row.value:
            problems.append(f"{where}: the value has surrounding spaces")
        if row.predicate not in APPLIED_PREDICATES:
            problems.append(f"{where}: predicate {row.predicate} is not applied by the annotator")
        key = (row.value, row.field, row.object_id)
        if key in seen:
            problems.append(f"{where}: mapped twice to {row.object_id}")
        seen.add(key)
        if row.object_id == NO_TERM_FOUND:
            no_term.add((row.value, row.field))
            continue
        coded.add((row.value, row.field))
        concept = vocabulary.concepts.get(row.object_id)
        if concept is None:
            problems.append(f"{where}: {row.object_id} is not in the shipped vocabularies")
        elif concept.scheme not in schemes:
            problems.append(
                f"{where}: {row.object_id} is in {concept.scheme}, not in a vocabulary of "
                f"{row.field} ({', '.join(schemes)})"
            )
    for value, field in sorted(no_term & coded):
        problems.append(f"{value!r} ({field}) is mapped both to codes and to {NO_TERM_FOUND}")
    return problems


def default_mapping_set(rows: list[CuratedRow], vocabulary: Vocabulary, version: str) -> MappingSet:
    """The curated rows as an approved SSSOM set; ConfigError when a row does not hold."""
    problems = check_rows(rows, vocabulary)
    if problems:
        raise ConfigError("default mappings: " + "; ".join(problems))
    mappings = []
    for row in sorted(rows, key=lambda r: (r.field, r.value, r.object_id)):
        concept = vocabulary.concepts.get(row.object_id)
        scheme = concept.scheme if concept is not None else FIELD_SCHEMES[row.field][0]
        mappings.append(
            Mapping(
                subject_id=local_id(ANY_PROVIDER, row.field, row.value),
                subject_label=row.value,
                subject_category=row.field,
                predicate_id=row.predicate,
                object_id=row.object_id,
                object_label=concept.label() if concept is not None else None,
                mapping_justification=MANUAL_CURATION,
                subject_source=local_source(ANY_PROVIDER),
                object_source=f"{VOCAB_PREFIX}:{scheme}",
                mapping_cardinality="1:0" if concept is None else None,
                comment=row.comment or None,
                review_status="approved",
            )
        )
    mapping_set = new_mapping_set(
        mappings,
        mapping_set_id=DEFAULT_SET_ID,
        license=LICENSE,
        title="Default mappings of raw values seen in real cancer-imaging data",
        version=version,
    ).model_copy(
        update={
            "mapping_set_description": (
                "Hand-curated mappings, shared by every provider (LOCAL:*), of BodyPartExamined "
                "values and collection cancer types found in NCI Imaging Data Commons "
                "(idc-index-data) to the catalogue's shipped vocabularies. Generated from "
                "ontologies/curated/default-mappings.tsv."
            ),
            "creator_label": [CREATOR],
        }
    )
    condensed = condense(mapping_set)
    errors = [p for p in validate(condensed) if p.severity == "error"]
    if errors:
        raise ConfigError("default mappings: " + "; ".join(str(p) for p in errors))
    return condensed


def table_version(path: Path = CURATED_TABLE) -> str:
    """The set's version: the first 12 hex digits of the curated table's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def build_default_set(
    curated: Path = CURATED_TABLE, vocabulary: Vocabulary | None = None
) -> MappingSet:
    """The default set from the curated table and the vocabularies (default: the shipped ones)."""
    vocabulary = vocabulary if vocabulary is not None else load_vocabulary()
    return default_mapping_set(read_curated(curated), vocabulary, table_version(curated))


def write_default_set(mapping_set: MappingSet, out: Path = DEFAULT_SET_PATH) -> Path:
    """Write the set as SSSOM/TSV at `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(write_sssom(mapping_set), encoding="utf-8")
    return out


def load_default_set(path: Path = DEFAULT_SET_PATH) -> MappingSet:
    """The shipped default set as written (MappingError when it cannot be read)."""
    return read_sssom(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--curated", type=Path, default=CURATED_TABLE, help="the curated table")
    parser.add_argument("--out", type=Path, default=DEFAULT_SET_PATH, help="the SSSOM file")
    parser.add_argument(
        "--vocabularies",
        type=Path,
        default=ONTOLOGIES_DIR,
        help="folder of the vocabularies (*.ttl) objects must belong to",
    )
    args = parser.parse_args(argv)
    vocabulary = load_vocabulary(shipped_files(args.vocabularies))
    path = write_default_set(build_default_set(args.curated, vocabulary), args.out)
    print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
