"""Feasibility over the full IDC demo (1,044,191 series) through HTTP GraphQL, in exact mode,
checked against an independent reference over idc_index.parquet (DuckDB SQL per criterion, Python
set algebra for the tree: tests/reference/idc_sql.py), strata tables included, on the embedded
indexes and on Elasticsearch indexes built from them; and, under default
disclosure settings, a property test that no count between 1 and threshold-1 is ever published.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogue import plugins
from catalogue.api.app import create_app
from catalogue.config import DisclosureSettings, ElasticsearchSettings, IndexSettings
from catalogue.domain.cohort import CohortQuery, DatasetScope, ExactCounts, Stratum
from catalogue.services.index_switch import switch_indexes
from tests.conftest import IdcDemo
from tests.reference.idc_sql import reference_counts
from tests.services.elasticsearch import delete_indices

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
    # -- subject level
    {"datasets": {"providers": ["breast"]}, "subject": {"sex": ["F"], "age_min": 65}},
    {"where": {"subject": {"age_min": 90}}},
    {"subject": {"diagnosis": ["C34.1"]}},
    # -- study level: years, modalities, series within one study
    {"studies": [{"year_min": 1999, "year_max": 2001}]},
    {"studies": [{"year_max": 1960}]},
    {"studies": [{"year_min": 2010, "modalities": ["MR", "SEG"]}]},
    {"studies": [{"modalities": ["ct", "PT"]}], "subject": {"age_min": 60}},
    {
        "studies": [
            {"series": [{"modality": ["CT"], "body_part": ["CHEST"]}, {"modality": ["SEG"]}]}
        ]
    },
    {
        "studies": [
            {
                "year_min": 2008,
                "year_max": 2011,
                "series": [{"modality": ["MR"], "model": ["Skyra"]}],
            }
        ]
    },
    {"studies": [{"modalities": ["MR"]}, {"modalities": ["CT"]}]},
    # -- series level: model, annotations, contrast, measurements (not in IDC)
    {"series": [{"model": ["LightSpeed QX/i", "lightspeed16"]}]},
    {"series": [{"modality": ["CT"], "has_annotation": ["SEG"]}]},
    {
        "datasets": {"providers": ["genitourinary"]},
        "series": [{"modality": ["MR"], "has_annotation": ["SEG", "SR"]}],
    },
    {"series": [{"has_annotation": ["RTSTRUCT"]}]},
    {"datasets": {"datasets": ["nsclc_radiomics"]}, "series": [{"contrast": False}]},
    {"series": [{"contrast": True}]},
    {"series": [{"slice_thickness_max": 2.5}]},
    {"series": [{"modality": ["MR"], "field_strength_min": 1.5}]},
    # -- sameStudy
    {"series": [{"modality": ["CT"]}, {"modality": ["SEG"]}], "same_study": True},
    {
        "series": [{"modality": ["MR"], "body_part": ["PROSTATE"]}, {"modality": ["SEG"]}],
        "same_study": True,
    },
    # -- nested boolean trees
    {
        "where": {
            "any_of": [
                {"series": {"modality": ["MG"]}},
                {"all_of": [{"series": {"modality": ["MR"]}}, {"subject": {"sex": ["F"]}}]},
            ]
        }
    },
    {
        "where": {
            "all_of": [
                {"series": {"modality": ["CT"]}},
                {"not": {"series": {"modality": ["SEG", "RTSTRUCT"]}}},
            ]
        }
    },
    {
        "datasets": {"providers": ["thoracic", "breast"]},
        "where": {"not": {"any_of": [{"subject": {"sex": ["U"]}}, {"subject": {"age_max": 39}}]}},
    },
    {
        "where": {
            "all_of": [
                {
                    "any_of": [
                        {"study": {"modalities": ["PT"]}},
                        {"series": {"model": ["Biograph128"]}},
                    ]
                },
                {"not": {"all_of": [{"subject": {"sex": ["M"]}}, {"study": {"year_max": 2005}}]}},
            ]
        }
    },
    {
        "where": {
            "any_of": [
                {"not": {"study": {"year_min": 2000}}},
                {"series": {"body_part": ["BREAST"], "has_annotation": ["SEG"]}},
            ]
        }
    },
    {"datasets": {"providers": ["thoracic"]}, "where": {"not": {"study": {"modalities": ["SEG"]}}}},
    {
        "datasets": {"datasets": ["nlst", "lidc_idri", "nsclc_radiomics", "tcga_luad"]},
        "subject": {"sex": ["M"]},
        "where": {
            "any_of": [
                {"study": {"year_min": 2000, "year_max": 2000}},
                {
                    "all_of": [
                        {"series": {"modality": ["SEG"]}},
                        {"not": {"subject": {"age_min": 65}}},
                    ]
                },
            ]
        },
    },
    {
        "where": {
            "all_of": [{"series": {"modality": ["CT"]}}, {"not": {"series": {"modality": ["CT"]}}}]
        }
    },
    {"where": {"any_of": []}},
    {"where": {"all_of": []}, "datasets": {"providers": ["multi-site"]}},
    # -- scopes by catalogue metadata (resolved by the reference from collections_index.parquet)
    {"datasets": {"cancer_types": ["Lung Cancer"]}, "series": [{"modality": ["CT"]}]},
    {
        "datasets": {
            "cancer_types": ["breast cancer", "Prostate Cancer"],
            "access_rights": ["PUBLIC"],
        },
        "subject": {"age_min": 50},
    },
    {"datasets": {"licenses": ["https://creativecommons.org/licenses/by-nc/4.0/"]}},
]

STRATIFIED: list[tuple[dict[str, Any], list[list[str]]]] = [
    ({}, [["SEX"]]),
    ({"series": [{"modality": ["MR"]}]}, [["AGE_BAND"]]),
    ({"datasets": {"providers": ["breast"]}, "subject": {"sex": ["F"]}}, [["MODALITY"]]),
    ({"studies": [{"modalities": ["CT", "SEG"]}]}, [["BODY_PART"]]),
    ({"datasets": {"providers": ["genitourinary"]}, "series": [{"modality": ["MR"]}]}, [["YEAR"]]),
    (
        {"where": {"any_of": [{"series": {"modality": ["PT"]}}, {"subject": {"age_min": 70}}]}},
        [["SEX", "AGE_BAND"]],
    ),
    ({"datasets": {"providers": ["neuro-head-neck"]}}, [["MODALITY", "YEAR"], ["SEX"]]),
    ({"where": {"not": {"series": {"modality": ["SM"]}}}}, [["MODALITY"], ["BODY_PART"]]),
]


def camel(value: Any) -> Any:
    """snake_case keys to the API's camelCase (all_of, any_of and not_ to allOf, anyOf and not),
    and DICOM sex codes to the GraphQL enum."""
    sexes = {"F": "FEMALE", "M": "MALE", "O": "OTHER", "U": "UNKNOWN"}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            head, *rest = key.rstrip("_").split("_")
            name = head + "".join(p.title() for p in rest)
            out[name] = [sexes[s] for s in item] if key == "sex" else camel(item)
        return out
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def metadata_scopes(parquet: Path, collections_csv: Path, scope: DatasetScope) -> set[Any] | None:
    """The (provider, collection) pairs whose IDC collection metadata meets the scope's cancer
    types, access rights and licences (None when it has none of them): values compared
    case-insensitively, an IRI also by its last path segment."""
    if not scope.by_metadata:
        return None

    def names(value: str) -> set[str]:
        text = value.strip().casefold().rstrip("/")
        return {text, text.rsplit("/", 1)[-1]}

    def meets(asked: tuple[str, ...], have: list[str]) -> bool:
        return not asked or any(names(a) & names(h) for a in asked for h in have)

    con = duckdb.connect()
    providers = dict(
        con.execute(
            "SELECT * FROM read_csv(?, all_varchar = true)", [str(collections_csv)]
        ).fetchall()
    )
    rows = con.execute(
        "SELECT collection_id, cancer_types, sources FROM read_parquet(?)",
        [str(parquet.with_name("collections_index.parquet"))],
    ).fetchall()
    con.close()
    pairs = set()
    for collection, cancer_types, sources in rows:
        original = [s for s in sources or [] if s.get("source_type") == "original_data"]
        main = original[0] if original else (sources[0] if sources else {})
        public = (main.get("Access") or "").casefold() == "public"
        access = ".../access-right/" + ("PUBLIC" if public else "RESTRICTED")
        licence = (main.get("license") or {}).get("license_url") or ""
        types = [t.strip() for t in (cancer_types or "").split(",") if t.strip()]
        if (
            meets(scope.cancer_types, types)
            and meets(scope.access_rights, [access])
            and meets(scope.licenses, [licence])
            and collection in providers
        ):
            pairs.add((providers[collection], collection))
    return pairs


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("elasticsearch", marks=pytest.mark.service)],
)
def client(request: pytest.FixtureRequest, idc_demo: IdcDemo) -> Iterator[TestClient]:
    """The demo's API on the embedded indexes, then on Elasticsearch indexes built from them
    by `catalogue reindex --to elasticsearch` (switch_indexes): the same checks hold on both."""
    if request.param == "embedded":
        with TestClient(create_app(idc_demo.catalogue.settings, catalogue=idc_demo.catalogue)) as c:
            yield c
        return
    node = request.getfixturevalue("elasticsearch_node")
    prefix = f"idc-{uuid.uuid4().hex[:12]}"
    chosen = IndexSettings(elasticsearch=ElasticsearchSettings(url=node.url, index_prefix=prefix))
    source = dataclasses.replace(
        idc_demo.catalogue,
        settings=idc_demo.catalogue.settings.model_copy(update={"index": chosen}),
    )
    switch_indexes(source, "elasticsearch")
    target = IndexSettings(backend="elasticsearch", elasticsearch=chosen.elasticsearch)
    settings = source.settings.model_copy(update={"index": target})
    datasets = plugins.load(plugins.DATASET_INDEXES, "elasticsearch").open(Path(), target)
    cohort = plugins.load(plugins.COHORT_INDEXES, "elasticsearch").open(Path(), target)
    switched = dataclasses.replace(source, settings=settings, datasets=datasets, cohort=cohort)
    try:
        with TestClient(create_app(settings, catalogue=switched)) as c:
            yield c
    finally:
        datasets.close()
        cohort.close()
        delete_indices(node, prefix)


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
    query = CohortQuery.model_validate(raw)
    scopes = metadata_scopes(
        idc_demo.parquet, idc_demo.collections_csv, query.datasets.normalised()
    )
    expected = reference_counts(
        reference_con, idc_demo.parquet, idc_demo.collections_csv, query, scopes=scopes
    )
    assert as_counts(got) == expected.total
    assert {p["provider"]["id"]: as_counts(p) for p in got["byProvider"]} == expected.by_provider
    assert {
        (d["dataset"]["provider"]["id"], d["dataset"]["identifier"]): as_counts(d)
        for d in got["byDataset"]
    } == expected.by_dataset


STRATA_RESULT = f"""{RESULT}
strata {{ dimensions cells {{ values {CELL} }} }}
"""


def stratified(strata: list[list[str]]) -> str:
    """The feasibility document asking for `strata` (enum literals: the document does not
    depend on the name of the enum type)."""
    tables = ", ".join("[" + ", ".join(dims) + "]" for dims in strata)
    return (
        "query($q: FeasibilityQuery!) "
        f"{{ feasibility(query: $q, strata: [{tables}]) {{ {STRATA_RESULT} }} }}"
    )


@pytest.mark.parametrize(
    ("raw", "strata"), STRATIFIED, ids=[f"s{i:02d}" for i in range(len(STRATIFIED))]
)
def test_strata_equal_reference_sql(
    raw: dict[str, Any],
    strata: list[list[str]],
    client: TestClient,
    idc_demo: IdcDemo,
    reference_con: duckdb.DuckDBPyConnection,
) -> None:
    response = client.post(
        "/graphql", json={"query": stratified(strata), "variables": {"q": camel(raw)}}
    )
    body = response.json()
    assert "errors" not in body, body
    got = body["data"]["feasibility"]
    tables = tuple(tuple(Stratum[d] for d in dims) for dims in strata)
    expected = reference_counts(
        reference_con,
        idc_demo.parquet,
        idc_demo.collections_csv,
        CohortQuery.model_validate(raw),
        strata=tables,
        strata_min_subjects=idc_demo.catalogue.settings.disclosure.threshold,
    )
    assert as_counts(got) == expected.total
    assert {p["provider"]["id"]: as_counts(p) for p in got["byProvider"]} == expected.by_provider
    assert [
        (
            tuple(Stratum[d] for d in table["dimensions"]),
            {tuple(c["values"]): as_counts(c) for c in table["cells"]},
        )
        for table in got["strata"]
    ] == [(t.dimensions, {c.values: c.counts for c in t.cells}) for t in expected.strata]
    # sex partitions the counted rows (and the matching subjects that have any)
    for table in got["strata"]:
        if table["dimensions"] == ["SEX"]:
            cells = [as_counts(c) for c in table["cells"]]
            assert sum(c.series for c in cells) == got["series"]["value"]
            assert sum(c.subjects for c in cells) <= got["subjects"]["value"]


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
    # the default rules, but no budget: this test asks many questions (budgets: test_attacks)
    rules = DisclosureSettings(budget_daily=None, budget_total=None)
    strict = idc_demo.catalogue.settings.model_copy(update={"disclosure": rules})
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
