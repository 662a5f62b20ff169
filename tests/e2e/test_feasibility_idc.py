"""Feasibility over the full IDC demo (1,044,191 series) through HTTP GraphQL, in exact mode,
checked against an independent DuckDB SQL reference over idc_index.parquet; and, under default
disclosure settings, a property test that no count between 1 and threshold-1 is ever published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogue.api.app import create_app
from catalogue.config import DisclosureSettings
from catalogue.domain.cohort import CohortQuery, ExactCounts
from tests.conftest import IdcDemo
from tests.reference.idc_sql import reference_counts

pytestmark = pytest.mark.idc

CELL = "subjects { value suppressed } studies { value suppressed } series { value suppressed }"
RESULT = f"""{CELL}
byProvider {{ provider {{ id }} {CELL} }}
byDataset {{ dataset {{ identifier provider {{ id }} }} {CELL} }}
"""
FEASIBILITY = f"query($q: FeasibilityQuery!) {{ feasibility(query: $q) {{ {RESULT} }} }}"

QUERIES: list[dict[str, Any]] = [
    {},
    {"subject": {"sex": ["F"]}},
    {"subject": {"sex": ["M", "O"]}},
    {"subject": {"sex": ["U"]}},
    {"subject": {"age_min": 50, "age_max": 70}},
    {"subject": {"age_max": 17}},
    {
        "subject": {"sex": ["F"], "age_min": 50, "age_max": 70},
        "series": [{"modality": ["CT"], "body_part": ["CHEST"]}],
    },
    {"series": [{"modality": ["MR"], "body_part": ["BREAST"]}]},
    {"series": [{"modality": ["MG"]}], "subject": {"sex": ["F"], "age_min": 40, "age_max": 60}},
    {"series": [{"modality": ["CT"]}, {"modality": ["PT"]}]},
    {"series": [{"modality": ["CT"]}, {"modality": ["SEG"]}, {"modality": ["RTSTRUCT"]}]},
    {"series": [{"modality": ["CT", "MR"], "body_part": ["ABDOMEN", "PELVIS", "LIVER"]}]},
    {"series": [{"manufacturer": ["SIEMENS"]}]},
    {"series": [{"modality": ["CT"], "manufacturer": ["GE MEDICAL SYSTEMS", "TOSHIBA"]}]},
    {"series": [{"body_part": ["lung", " chest "]}]},
    {"series": [{"modality": ["SM"]}]},
    {"datasets": {"providers": ["thoracic"]}},
    {"datasets": {"providers": ["breast", "genitourinary"]}, "series": [{"modality": ["MR"]}]},
    {"datasets": {"datasets": ["nlst"]}, "subject": {"age_min": 60}},
    {
        "datasets": {"datasets": ["tcga_luad", "tcga_lusc", "nsclc_radiomics"]},
        "series": [{"modality": ["CT"]}],
    },
    {"datasets": {"providers": ["abdominal"], "datasets": ["tcga_luad"]}},
    {
        "datasets": {"providers": ["multi-site"]},
        "subject": {"sex": ["F"]},
        "series": [{"modality": ["SEG"]}],
    },
    {
        "subject": {"age_min": 30, "age_max": 39},
        "series": [{"modality": ["MR"], "body_part": ["PROSTATE"]}],
    },
    {"series": [{"modality": ["NOPE"]}]},
    {
        "datasets": {"providers": ["neuro-head-neck"]},
        "series": [{"modality": ["MR"]}, {"modality": ["CT"]}],
        "subject": {"age_min": 20, "age_max": 80},
    },
]


def camel(value: Any) -> Any:
    """snake_case keys to the API's camelCase, and DICOM sex codes to the GraphQL enum."""
    sexes = {"F": "FEMALE", "M": "MALE", "O": "OTHER", "U": "UNKNOWN"}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            head, *rest = key.split("_")
            name = head + "".join(p.title() for p in rest)
            out[name] = [sexes[s] for s in item] if key == "sex" else camel(item)
        return out
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


@pytest.fixture(scope="module")
def client(idc_demo: IdcDemo) -> Iterator[TestClient]:
    with TestClient(create_app(idc_demo.catalogue.settings, catalogue=idc_demo.catalogue)) as c:
        yield c


@pytest.fixture(scope="module")
def reference_con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


def as_counts(cell: dict[str, Any]) -> ExactCounts:
    return ExactCounts(
        subjects=cell["subjects"]["value"],
        studies=cell["studies"]["value"],
        series=cell["series"]["value"],
    )


def test_demo_harvested_every_series(idc_demo: IdcDemo) -> None:
    assert idc_demo.report.ok, idc_demo.report.failed
    harvested = sum(s.series for s in idc_demo.report.sources)
    expected = (
        duckdb.connect()
        .execute("SELECT count(*) FROM read_parquet(?)", [str(idc_demo.parquet)])
        .fetchone()
    )
    assert expected is not None and harvested == expected[0] == 1_044_191
    assert sum(s.datasets for s in idc_demo.report.sources) == 179


@pytest.mark.parametrize("raw", QUERIES, ids=[f"q{i:02d}" for i in range(len(QUERIES))])
def test_exact_counts_equal_reference_sql(
    raw: dict[str, Any],
    client: TestClient,
    idc_demo: IdcDemo,
    reference_con: duckdb.DuckDBPyConnection,
) -> None:
    response = client.post("/graphql", json={"query": FEASIBILITY, "variables": {"q": camel(raw)}})
    body = response.json()
    assert "errors" not in body, body
    got = body["data"]["feasibility"]
    expected = reference_counts(
        reference_con, idc_demo.parquet, idc_demo.collections_csv, CohortQuery.model_validate(raw)
    )
    assert as_counts(got) == expected.total
    assert {p["provider"]["id"]: as_counts(p) for p in got["byProvider"]} == expected.by_provider
    assert {
        (d["dataset"]["provider"]["id"], d["dataset"]["identifier"]): as_counts(d)
        for d in got["byDataset"]
    } == expected.by_dataset


MODALITIES = ["CT", "MR", "PT", "SEG", "SR", "MG", "RTSTRUCT", "US", "CR", "NM"]
BODY_PARTS = ["CHEST", "BREAST", "ABDOMEN", "PROSTATE", "LUNG", "PELVIS", "BRAIN", "HEAD", "KIDNEY"]
PROVIDERS = ["thoracic", "breast", "genitourinary", "abdominal", "neuro-head-neck", "multi-site"]
DATASETS = ["nlst", "tcga_brca", "lidc_idri", "cmmd", "prostatex", "tcga_kirc", "acrin_6698"]

series_items = st.fixed_dictionaries(
    {},
    optional={
        "modality": st.lists(st.sampled_from(MODALITIES), min_size=1, max_size=3),
        "bodyPart": st.lists(st.sampled_from(BODY_PARTS), min_size=1, max_size=2),
        "manufacturer": st.lists(st.sampled_from(["SIEMENS", "Philips", "TOSHIBA"]), max_size=2),
    },
)
random_queries = st.fixed_dictionaries(
    {},
    optional={
        "datasets": st.fixed_dictionaries(
            {},
            optional={
                "providers": st.lists(st.sampled_from(PROVIDERS), max_size=2),
                "datasets": st.lists(st.sampled_from(DATASETS), max_size=3),
            },
        ),
        "subject": st.fixed_dictionaries(
            {},
            optional={
                "sex": st.lists(
                    st.sampled_from(["FEMALE", "MALE", "OTHER", "UNKNOWN"]), max_size=2
                ),
                "ageMin": st.integers(0, 60),
            },
        ),
        "series": st.lists(series_items, max_size=3),
    },
)


@pytest.fixture(scope="module")
def default_client(idc_demo: IdcDemo) -> Iterator[TestClient]:
    strict = idc_demo.catalogue.settings.model_copy(update={"disclosure": DisclosureSettings()})
    view = dataclasses.replace(idc_demo.catalogue, settings=strict)
    with TestClient(create_app(strict, catalogue=view)) as c:
        yield c


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=random_queries)
def test_no_small_count_is_ever_published(
    default_client: TestClient, query: dict[str, Any]
) -> None:
    response = default_client.post(
        "/graphql", json={"query": FEASIBILITY, "variables": {"q": query}}
    )
    body = response.json()
    assert "errors" not in body, body
    result = body["data"]["feasibility"]
    cells = [result] + result["byProvider"] + result["byDataset"]
    for cell in cells:
        for name in ("subjects", "studies", "series"):
            count = cell[name]
            value = count["value"]
            if count["suppressed"]:
                assert value is None
            else:
                assert value == 0 or value >= 10, (name, count)
                assert value % 5 == 0
