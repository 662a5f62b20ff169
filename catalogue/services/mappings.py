"""The curators' mapping store: providers' local values mapped to codes, reviewed and versioned.

One SQLite file in the data folder (`mappings.sqlite`). A mapping is keyed by (provider, field,
raw value, object); each change writes the new state of the mappings it touches under a new
version of the set, recorded with its time, author and action, so any past version can still be
exported and applied. Records are kept as SSSOM (`Mapping` as JSON, with the status, author, date,
confidence and justification also in columns), so an imported set comes out with every slot it
had, extension columns included. Review status follows `catalogue.ontology.sssom`: proposals are
lexical matches, approvals and rejections are the curators'; a proposal never overrides a
curator's decision.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from catalogue.exceptions import MappingError, StoreError
from catalogue.ontology.sssom import (
    BUILTIN_PREFIXES,
    DEFAULT_CURIE_MAP,
    HUMAN_JUSTIFICATIONS,
    MANUAL_CURATION,
    REVIEW_STATUS,
    REVIEW_STATUS_DEFINITION,
    ExtensionDefinition,
    LocalValue,
    Mapping,
    MappingSet,
    ReviewStatus,
    ValueKey,
    approved,
    local_id,
    local_prefixes,
    local_source,
    parse_local,
    propagate,
    status_of,
    validate,
)

FILE_NAME: Final = "mappings.sqlite"
DEFAULT_SET_ID: Final = "https://w3id.org/cancer-imaging-catalogue/mappings/curated.sssom.tsv"
DEFAULT_LICENSE: Final = "https://creativecommons.org/publicdomain/zero/1.0/"
DEFAULT_TITLE: Final = "Curators' mappings of providers' local values to standard codes"

_MATCHER_SLOTS: Final = (
    "mapping_tool",
    "mapping_tool_id",
    "mapping_tool_version",
    "match_string",
    "subject_match_field",
    "object_match_field",
    "subject_preprocessing",
    "object_preprocessing",
    "similarity_score",
    "similarity_measure",
)
"""What a lexical proposal says about its matching; a curator's decision drops it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version INTEGER PRIMARY KEY, created TEXT NOT NULL, author TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    provider TEXT NOT NULL, field TEXT NOT NULL, raw_value TEXT NOT NULL, object_id TEXT NOT NULL,
    version INTEGER NOT NULL REFERENCES versions(version),
    status TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected')),
    author TEXT NOT NULL, date TEXT, confidence REAL, justification TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (provider, field, raw_value, object_id, version));
CREATE TABLE IF NOT EXISTS prefixes (prefix TEXT PRIMARY KEY, iri TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metadata (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL);
"""

_LATEST = """
SELECT s.provider, s.field, s.raw_value, s.object_id, s.record FROM states s
JOIN (SELECT provider, field, raw_value, object_id, MAX(version) AS version FROM states
      WHERE version <= ? GROUP BY provider, field, raw_value, object_id) latest
  USING (provider, field, raw_value, object_id, version)
"""

_Key = tuple[str, str, str, str]
"""(provider, field, raw value, object)."""


@dataclass(frozen=True)
class VersionRecord:
    """One version of the mapping set: when, by whom, and what changed."""

    version: int
    created: str
    author: str
    action: str
    detail: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _record(mapping: Mapping) -> str:
    return json.dumps(mapping.model_dump(mode="json", exclude_none=True), sort_keys=True)


class MappingStore:
    """Curator mappings in SQLite at `path`, versioned; see the module docstring."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(_SCHEMA)
            with self._write():
                self._con.executemany(
                    "INSERT OR IGNORE INTO prefixes VALUES (?, ?)", DEFAULT_CURIE_MAP.items()
                )
                metadata = {
                    "sssom_version": "1.1",
                    "mapping_set_id": DEFAULT_SET_ID,
                    "mapping_set_title": DEFAULT_TITLE,
                    "license": DEFAULT_LICENSE,
                    "extension_definitions": [REVIEW_STATUS_DEFINITION.model_dump()],
                }
                self._con.execute(
                    "INSERT OR IGNORE INTO metadata VALUES (1, ?)", [json.dumps(metadata)]
                )
        except sqlite3.Error as exc:
            raise StoreError(f"mapping store {path} unusable: {exc}") from exc

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> MappingStore:
        """The store of a data folder (`<data_dir>/mappings.sqlite`)."""
        return cls(data_dir / FILE_NAME)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> MappingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def version(self) -> int:
        """The current version of the set; 0 before the first change."""
        row = self._con.execute("SELECT MAX(version) FROM versions").fetchone()
        return int(row[0] or 0)

    def versions(self) -> list[VersionRecord]:
        """Every version, oldest first."""
        rows = self._con.execute("SELECT * FROM versions ORDER BY version").fetchall()
        return [VersionRecord(*row) for row in rows]

    def mappings(
        self, status: ReviewStatus | None = None, version: int | None = None
    ) -> list[Mapping]:
        """The mappings at `version` (default: now), sorted by key, optionally of one status."""
        found = self._states(self._checked_version(version))
        return [m for m in found.values() if status is None or status_of(m) == status]

    def export_set(self, version: int | None = None) -> MappingSet:
        """The set at `version` (default: now) as SSSOM; mapping_set_version is that version."""
        number = self._checked_version(version)
        return self._header(number, self._states(number).values())

    def approved_map(self, version: int | None = None) -> dict[ValueKey, list[str]]:
        """(provider, field, raw value) -> approved codes at `version`, as harvests apply them."""
        return approved(self.export_set(version))

    # -- changes -------------------------------------------------------------------------------

    def import_set(self, mapping_set: MappingSet, author: str) -> int:
        """Take in every mapping of a set (statuses as the set gives them); the new version.

        The set must validate and name LOCAL subjects only. Set-level propagatable slots are
        copied onto the mappings. An empty store adopts the set's metadata; otherwise its
        extension definitions are added to the store's. Prefixes are added; a prefix the store
        knows under another IRI is an error.
        """
        self._raise_problems(mapping_set, f"cannot import {mapping_set.mapping_set_id}")
        mapping_set = propagate(mapping_set)
        prefixes = local_prefixes(mapping_set)
        changes: dict[_Key, Mapping] = {}
        for mapping in mapping_set.mappings:
            key, local = _key_of(mapping, prefixes)
            if key in changes:
                raise MappingError(f"cannot import: two mappings of {local_id(*local)} to {key[3]}")
            update: dict[str, Any] = {
                "subject_id": local_id(*local),
                REVIEW_STATUS: status_of(mapping),
            }
            changes[key] = mapping.model_copy(update=update)
        detail = f"{mapping_set.mapping_set_id} {mapping_set.mapping_set_version or ''}".strip()
        with self._write():
            header_changed = self._merge_prefixes(mapping_set.curie_map)
            header_changed |= self._merge_metadata(mapping_set)
            return self._commit(changes, author, "import", detail, force=header_changed)

    def propose(self, mappings: Iterable[Mapping], author: str) -> int:
        """Record automatic proposals (see `sssom.propose`); the new version.

        A key a curator approved or rejected keeps the curator's decision; a proposal that only
        differs from the standing one by its date changes nothing.
        """
        changes: dict[_Key, Mapping] = {}
        prefixes = local_prefixes(self._with_prefixes([]))
        for mapping in mappings:
            if mapping.mapping_justification in HUMAN_JUSTIFICATIONS:
                raise MappingError(
                    f"a proposal cannot claim {mapping.mapping_justification} "
                    f"({mapping.subject_id} -> {mapping.object_id})"
                )
            key, local = _key_of(mapping, prefixes)
            changes[key] = mapping.model_copy(
                update={"subject_id": local_id(*local), REVIEW_STATUS: "proposed"}
            )
        self._raise_problems(self._with_prefixes(changes.values()), "cannot propose")
        with self._write():
            current = self._states(self.version())
            kept = {
                key: new
                for key, new in changes.items()
                if key not in current
                or (
                    status_of(current[key]) == "proposed"
                    and _without(current[key], "mapping_date") != _without(new, "mapping_date")
                )
            }
            return self._commit(kept, author, "propose", f"{len(kept)} proposals")

    def approve(
        self,
        key: ValueKey,
        object_id: str,
        *,
        author: str,
        predicate_id: str | None = None,
        object_label: str | None = None,
        confidence: float | None = None,
        comment: str | None = None,
    ) -> Mapping:
        """Approve (or make) the mapping of a local value to `object_id`; the stored mapping.

        Raises MappingError when the result does not validate (a prefix the store does not know,
        a confidence outside [0, 1]...).
        """
        return self._decide(
            "approved", key, object_id, author, predicate_id, object_label, confidence, comment
        )

    def reject(
        self,
        key: ValueKey,
        object_id: str,
        *,
        author: str,
        predicate_id: str | None = None,
        object_label: str | None = None,
        comment: str | None = None,
    ) -> Mapping:
        """Reject the mapping of a local value to `object_id` (kept, negated); the stored one."""
        return self._decide(
            "rejected", key, object_id, author, predicate_id, object_label, None, comment
        )

    def add_prefix(self, prefix: str, iri: str, *, author: str) -> int:
        """Declare a CURIE prefix for objects; the new version (unchanged if already known)."""
        probe = MappingSet(
            curie_map={prefix: iri}, mapping_set_id=DEFAULT_SET_ID, license=DEFAULT_LICENSE
        )
        problems = [p for p in validate(probe) if p.severity == "error" and p.column == "curie_map"]
        if problems:
            raise MappingError(f"cannot add prefix {prefix}: {problems[0].message}")
        with self._write():
            if self._prefixes().get(prefix) == iri:
                return self.version()
            self._merge_prefixes({prefix: iri})
            return self._commit({}, author, "prefix", f"{prefix}: {iri}", force=True)

    # -- internals -----------------------------------------------------------------------------

    def _decide(
        self,
        status: ReviewStatus,
        key: ValueKey,
        object_id: str,
        author: str,
        predicate_id: str | None,
        object_label: str | None,
        confidence: float | None,
        comment: str | None,
    ) -> Mapping:
        provider, field, raw = key
        full_key = (provider, field, raw, object_id)
        with self._write():
            current = self._state(full_key)
            base = current or Mapping(
                subject_id=local_id(*key),
                subject_label=raw,
                subject_category=field,
                subject_source=local_source(provider),
                object_id=object_id,
            )
            update: dict[str, Any] = dict.fromkeys(_MATCHER_SLOTS)
            update.update(
                predicate_id=predicate_id or base.predicate_id or "skos:exactMatch",
                predicate_modifier="Not" if status == "rejected" else None,
                mapping_justification=MANUAL_CURATION,
                object_label=object_label or base.object_label,
                confidence=confidence
                if confidence is not None
                else _curated(current, "confidence"),
                comment=comment if comment is not None else _curated(current, "comment"),
                mapping_date=_today(),
                **self._agent(author),
            )
            update[REVIEW_STATUS] = status
            decided = base.model_copy(update=update)
            what = f"{local_id(*key)} -> {object_id}"
            verb = {"approved": "approve", "rejected": "reject", "proposed": "propose"}[status]
            self._raise_problems(self._with_prefixes([decided]), f"cannot {verb} {what}")
            ignored = ("mapping_date", "author_id", "author_label")
            if current is not None and _without(current, *ignored) == _without(decided, *ignored):
                return current
            self._commit({full_key: decided}, author, verb, what)
        return decided

    def _agent(self, author: str) -> dict[str, list[str] | None]:
        """author_id for a CURIE of a known prefix (an ORCID...), author_label otherwise."""
        prefix, sep, local = author.partition(":")
        known = prefix in self._prefixes() or prefix in BUILTIN_PREFIXES
        if sep and local and known and " " not in author:
            return {"author_id": [author], "author_label": None}
        return {"author_id": None, "author_label": [author]}

    def _header(self, version: int, mappings: Iterable[Mapping]) -> MappingSet:
        """The store's set metadata and prefixes around `mappings`."""
        metadata = json.loads(self._con.execute("SELECT value FROM metadata").fetchone()[0])
        return MappingSet.model_validate(
            {
                **metadata,
                "curie_map": self._prefixes(),
                "mapping_set_version": str(version),
                "mappings": list(mappings),
            }
        )

    def _with_prefixes(self, mappings: Iterable[Mapping]) -> MappingSet:
        """The store's set header around `mappings`, to validate them."""
        return self._header(self.version(), mappings)

    @staticmethod
    def _raise_problems(mapping_set: MappingSet, what: str) -> None:
        errors = [p for p in validate(mapping_set) if p.severity == "error"]
        if errors:
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise MappingError(f"{what}: " + "; ".join(str(p) for p in errors[:5]) + more)

    def _prefixes(self) -> dict[str, str]:
        return dict(self._con.execute("SELECT prefix, iri FROM prefixes ORDER BY prefix"))

    def _merge_prefixes(self, curie_map: dict[str, str]) -> bool:
        """Add the set's prefixes; whether any was new."""
        known = self._prefixes()
        for prefix, iri in curie_map.items():
            if known.get(prefix, iri) != iri:
                raise MappingError(
                    f"prefix {prefix} is {known[prefix]} in the store, {iri} in the set"
                )
        self._con.executemany("INSERT OR IGNORE INTO prefixes VALUES (?, ?)", curie_map.items())
        return any(prefix not in known for prefix in curie_map)

    def _merge_metadata(self, mapping_set: MappingSet) -> bool:
        """Adopt the set's metadata (empty store) or add its extension definitions; whether the
        store's metadata changed."""
        before = self._con.execute("SELECT value FROM metadata").fetchone()[0]
        stored = json.loads(before)
        if self.version() == 0:
            stored = mapping_set.model_dump(
                mode="json",
                exclude_none=True,
                exclude={"mappings", "mapping_set_version", "curie_map"},
            )
        definitions = [
            ExtensionDefinition.model_validate(d) for d in stored.get("extension_definitions", [])
        ]
        names = {d.slot_name for d in definitions}
        for definition in [REVIEW_STATUS_DEFINITION, *(mapping_set.extension_definitions or [])]:
            if definition.slot_name not in names:
                definitions.append(definition)
                names.add(definition.slot_name)
        stored["extension_definitions"] = [d.model_dump(exclude_none=True) for d in definitions]
        after = json.dumps(stored)
        self._con.execute("UPDATE metadata SET value = ? WHERE id = 1", [after])
        return bool(json.loads(after) != json.loads(before))

    def _states(self, version: int) -> dict[_Key, Mapping]:
        rows = self._con.execute(
            _LATEST + " ORDER BY provider, field, raw_value, object_id", [version]
        ).fetchall()
        return {
            (provider, field, raw, obj): Mapping.model_validate(json.loads(record))
            for provider, field, raw, obj, record in rows
        }

    def _state(self, key: _Key) -> Mapping | None:
        row = self._con.execute(
            "SELECT record FROM states WHERE provider = ? AND field = ? AND raw_value = ? "
            "AND object_id = ? ORDER BY version DESC LIMIT 1",
            key,
        ).fetchone()
        return None if row is None else Mapping.model_validate(json.loads(row[0]))

    def _checked_version(self, version: int | None) -> int:
        current = self.version()
        if version is None:
            return current
        if not 0 <= version <= current:
            raise MappingError(f"no version {version} of the mapping set (it is at {current})")
        return version

    def _commit(
        self,
        changes: dict[_Key, Mapping],
        author: str,
        action: str,
        detail: str,
        *,
        force: bool = False,
    ) -> int:
        """Write changed states under a new version (inside `_write`); the version after."""
        current = self._states(self.version())
        changed = {
            key: mapping
            for key, mapping in changes.items()
            if key not in current or _record(current[key]) != _record(mapping)
        }
        if not changed and not force:
            return self.version()
        version = self.version() + 1
        self._con.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?)", [version, _now(), author, action, detail]
        )
        self._con.executemany(
            "INSERT INTO states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (*key, version, status_of(m), author, m.mapping_date, m.confidence,
                 m.mapping_justification or "", _record(m))
                for key, m in changed.items()
            ],
        )  # fmt: skip
        return version

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taken before reading so versions never race."""
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"mapping store: {exc}") from exc
            try:
                yield
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            try:
                self._con.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"mapping store: {exc}") from exc


def _key_of(mapping: Mapping, prefixes: set[str]) -> tuple[_Key, LocalValue]:
    local = parse_local(mapping.subject_id or "", prefixes)
    if local is None or mapping.object_id is None:
        raise MappingError(
            f"{mapping.subject_id} -> {mapping.object_id}: the store keeps mappings of "
            "LOCAL subjects to objects"
        )
    return (*local, mapping.object_id), local


def _without(mapping: Mapping, *slots: str) -> dict[str, Any]:
    data = mapping.model_dump(mode="json", exclude_none=True)
    for slot in slots:
        data.pop(slot, None)
    return data


def _curated(current: Mapping | None, slot: str) -> Any:
    """What a new decision keeps of the standing one: a curator's value, never the matcher's."""
    if current is None or status_of(current) == "proposed":
        return None
    return getattr(current, slot)
