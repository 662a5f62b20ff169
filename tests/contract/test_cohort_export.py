"""What `catalogue reindex --to` copies: a cohort index's sources, rows, diagnoses and value
concepts, exported and loaded into a fresh index, answer every question alike."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings

from catalogue.domain.cohort import CohortQuery, Stratum
from catalogue.imaging.features import SERIES_SCHEMA
from catalogue.index.duckdb import DuckDBCohortIndex
from tests.contract.test_cohort_queries import (
    PROPERTY,
    TINY,
    assert_same,
    batch,
    diagnoses,
    queries,
    tables,
)


def _copy(source: DuckDBCohortIndex, target: DuckDBCohortIndex) -> None:
    for provider, source_id in source.sources():
        target.replace_source(provider, source_id, source.export(provider, source_id))
        target.replace_diagnoses(provider, source_id, source.export_diagnoses(provider, source_id))
    for provider in {p for p, _ in source.sources()}:
        version = source.mapping_version(provider)
        if version is not None:
            target.replace_value_concepts(provider, source.value_concepts(provider), version)


def test_export_lists_every_source_and_its_rows(tmp_path: Path) -> None:
    index = DuckDBCohortIndex(tmp_path / "a")
    for provider in ("P", "Q"):
        rows = [r for r in TINY if r["provider"] == provider]
        index.replace_source(provider, "s1", [batch(rows[:2])])
        index.replace_source(provider, "s2", [batch(rows[2:])])
    index.replace_diagnoses("P", "clinical", [(1, "C50"), (2, "C34")])
    index.replace_value_concepts("P", [("modality", "CT", "DCM:CT")], 7)
    assert index.sources() == [("P", "clinical"), ("P", "s1"), ("P", "s2"), ("Q", "s1")]
    exported = pa.Table.from_batches(list(index.export("P", "s2")), schema=SERIES_SCHEMA)
    loaded = [r["series"] for r in TINY if r["provider"] == "P"][2:]
    assert sorted(exported.column("series").to_pylist()) == sorted(loaded)
    assert list(index.export("Q", "s2")) == []
    assert index.export_diagnoses("P", "clinical") == [(1, "C50"), (2, "C34")]
    assert index.value_concepts("P") == [("modality", "CT", "DCM:CT")]
    index.close()


@settings(PROPERTY, max_examples=40)
@given(rows=tables(), codes=diagnoses, query=queries())
def test_a_copied_index_answers_alike(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, object]],
    codes: dict[tuple[str, int], set[str]],
    query: CohortQuery,
) -> None:
    source = DuckDBCohortIndex(tmp_path_factory.mktemp("source"))
    target = DuckDBCohortIndex(tmp_path_factory.mktemp("target"))
    try:
        for provider in ("p1", "p2"):
            mine = [r for r in rows if r["provider"] == provider]
            source.replace_source(provider, "s", [batch(mine)] if mine else [])
            source.replace_diagnoses(
                provider,
                "c",
                [(s, c) for (p, s), found in codes.items() if p == provider for c in sorted(found)],
            )
        _copy(source, target)
        strata = ((Stratum.SEX,), (Stratum.MODALITY, Stratum.AGE_BAND))
        assert_same(target.count(query, strata=strata), source.count(query, strata=strata))
        for provider in ("p1", "p2"):
            assert target.summaries(provider) == source.summaries(provider)
    finally:
        source.close()
        target.close()
