"""`catalogue reindex --to elasticsearch` on a harvested catalogue: the Elasticsearch indexes
are built from the graph store and the DuckDB cohort index, checked, and a catalogue opened
with CATALOGUE_INDEX__BACKEND=elasticsearch then gives the same GraphQL answers (search,
facets, feasibility per provider, dataset and strata cell, under exact and under default
disclosure) as before the switch; switching back rebuilds the embedded indexes alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalogue.api.app import create_app
from catalogue.cli import app as cli
from catalogue.config import (
    AuthSettings,
    DisclosureSettings,
    ElasticsearchSettings,
    IndexSettings,
    Settings,
    load_providers,
)
from catalogue.exceptions import ConfigError
from catalogue.services.index_switch import switch_indexes
from catalogue.services.ingest import harvest
from catalogue.services.runtime import open_catalogue
from tests.conftest import NO_RATE_LIMITS
from tests.integration.test_harvest import rows
from tests.providers import hospital
from tests.services.elasticsearch import ElasticsearchNode, delete_indices

pytestmark = pytest.mark.service

SEARCH = """{ datasets(search: "optin", first: 10) { totalCount
  facets { field values { value count } } edges { node { identifier title } } } }"""
FEASIBILITY = """query($q: FeasibilityQuery!) {
  feasibility(query: $q, strata: [[SEX], [MODALITY]]) {
  subjects { value suppressed } studies { value suppressed } series { value suppressed }
  byProvider { provider { id } subjects { value } studies { value } series { value } }
  byDataset { dataset { identifier } subjects { value } studies { value } series { value } }
  strata { dimensions cells { values subjects { value suppressed } series { value } } } } }"""
QUERIES: list[dict[str, Any]] = [
    {},
    {"subject": {"sex": ["FEMALE"]}},
    {"series": [{"modality": ["CT"]}]},
    {"where": {"not": {"series": {"modality": ["CT"]}}}},
    {"subject": {"ageMin": 40, "ageMax": 70}, "series": [{"modality": ["MR", "CT"]}]},
]


def _settings(data_dir: Path, node: ElasticsearchNode, prefix: str, **extra: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        secret="switch-test-secret-0123456789",
        auth=AuthSettings(disabled=True),
        limits=NO_RATE_LIMITS,
        index=IndexSettings(
            elasticsearch=ElasticsearchSettings(url=node.url, index_prefix=prefix),
            **extra,
        ),
    )


def _answers(settings: Settings, disclosure: DisclosureSettings) -> list[Any]:
    """The answers to SEARCH and QUERIES, asked by a user with no history (the audit log,
    which the differencing check and the budget read, starts empty)."""
    (settings.data_dir / "audit.sqlite").unlink(missing_ok=True)
    chosen = settings.model_copy(update={"disclosure": disclosure})
    with open_catalogue(chosen) as catalogue, TestClient(create_app(chosen, catalogue)) as client:
        out: list[Any] = [client.post("/graphql", json={"query": SEARCH}).json()]
        for query in QUERIES:
            body = {"query": FEASIBILITY, "variables": {"q": query}}
            out.append(client.post("/graphql", json=body).json())
    assert all("errors" not in answer for answer in out), out
    return out


@pytest.fixture
def prefix(elasticsearch_node: ElasticsearchNode) -> Iterator[str]:
    chosen = f"switch-{uuid.uuid4().hex[:12]}"
    yield chosen
    delete_indices(elasticsearch_node, chosen)


def test_switching_to_elasticsearch_and_back_keeps_every_answer(
    tmp_path: Path,
    elasticsearch_node: ElasticsearchNode,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    series = rows(40, dataset="lung-ct") + rows(12, dataset="rare", prefix="R")
    embedded = _settings(tmp_path / "data", elasticsearch_node, prefix)
    with open_catalogue(embedded) as catalogue:
        assert harvest(catalogue, load_providers(hospital(tmp_path, series))).ok
        with pytest.raises(ConfigError, match="already"):
            switch_indexes(catalogue, "embedded")
    exact, default = DisclosureSettings.exact_counts(), DisclosureSettings()
    before = [_answers(embedded, exact), _answers(embedded, default)]

    # the documented command, as an operator runs it
    monkeypatch.setenv("CATALOGUE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CATALOGUE_SECRET", "switch-test-secret-0123456789")
    monkeypatch.setenv("CATALOGUE_INDEX__ELASTICSEARCH__URL", elasticsearch_node.url)
    monkeypatch.setenv("CATALOGUE_INDEX__ELASTICSEARCH__INDEX_PREFIX", prefix)
    done = CliRunner().invoke(cli, ["reindex", "--to", "elasticsearch"])
    assert done.exit_code == 0, done.output
    assert "CATALOGUE_INDEX__BACKEND=elasticsearch" in done.output

    switched = _settings(tmp_path / "data", elasticsearch_node, prefix, backend="elasticsearch")
    assert (switched.index.datasets, switched.index.cohort) == ("elasticsearch",) * 2
    after = [_answers(switched, exact), _answers(switched, default)]
    for got, want in zip(after[1], before[1], strict=True):
        assert got == want
    assert after == before
    assert before[0][1]["data"]["feasibility"]["subjects"]["value"] == 52  # not all empty

    # and back, into a fresh data folder's embedded indexes
    with open_catalogue(switched) as catalogue:
        report = switch_indexes(catalogue, "embedded", root=tmp_path / "back")
    assert sum(report.series.values()) == len(series)
