"""The canonical form of feasibility queries (docs/feasibility.md, "Canonical form"): equivalent
forms are one question, different questions stay apart, and malformed criteria are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from catalogue.domain.cohort import CohortQuery, Criterion

CT = {"series": {"modality": ["CT"]}}
MR = {"series": {"modality": ["MR"]}}
SEG = {"series": {"modality": ["SEG"]}}
FEMALE = {"subject": {"sex": ["F"]}}
OLD = {"subject": {"age_min": 60}}


def canonical(raw: dict[str, Any]) -> str:
    return CohortQuery.model_validate(raw).canonical_json()


EQUIVALENT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "values reordered",
        {"series": [{"modality": ["MR", "CT"], "body_part": ["PELVIS", "ABDOMEN"]}]},
        {"series": [{"modality": ["CT", "MR"], "body_part": ["ABDOMEN", "PELVIS"]}]},
    ),
    (
        "series items reordered",
        {"series": [{"modality": ["CT"]}, {"body_part": ["CHEST"]}]},
        {"series": [{"body_part": ["CHEST"]}, {"modality": ["CT"]}]},
    ),
    (
        "values repeated",
        {"series": [{"modality": ["CT", "CT"], "model": ["skyra", "Skyra"]}]},
        {"series": [{"modality": ["CT"], "model": ["skyra"]}]},
    ),
    (
        "series items repeated",
        {"series": [{"modality": ["CT"]}, {"modality": ["CT"]}]},
        {"series": [{"modality": ["CT"]}]},
    ),
    (
        "codes: whitespace and case",
        {"series": [{"modality": [" ct "], "body_part": ["head \t neck"]}]},
        {"series": [{"modality": ["CT"], "body_part": ["HEAD NECK"]}]},
    ),
    (
        "names: whitespace and case",
        {"series": [{"manufacturer": ["GE  Medical\nSystems"], "model": [" LightSpeed 16"]}]},
        {"series": [{"manufacturer": ["ge medical systems"], "model": ["lightspeed 16"]}]},
    ),
    (
        "sex reordered and repeated",
        {"subject": {"sex": ["M", "F", "M"]}},
        {"subject": {"sex": ["F", "M"]}},
    ),
    (
        "annotation kinds reordered and repeated",
        {"series": [{"has_annotation": ["SR", "SEG", "SR"]}]},
        {"series": [{"has_annotation": ["SEG", "SR"]}]},
    ),
    (
        "study modalities and series reordered",
        {"studies": [{"modalities": ["MR", "ct"], "series": [SEG["series"], CT["series"]]}]},
        {"studies": [{"modalities": ["CT", "MR"], "series": [CT["series"], SEG["series"]]}]},
    ),
    (
        "an empty series item of a study is any series of it",
        {"studies": [{"year_min": 2000, "series": [{}, CT["series"]]}]},
        {"studies": [{"year_min": 2000, "series": [CT["series"]]}]},
    ),
    ("children reordered", {"where": {"all_of": [CT, MR]}}, {"where": {"all_of": [MR, CT]}}),
    (
        "children repeated",
        {"where": {"any_of": [CT, MR, CT]}},
        {"where": {"any_of": [MR, CT]}},
    ),
    (
        "nested allOf flattened",
        {"where": {"all_of": [CT, {"all_of": [MR, {"all_of": [SEG]}]}]}},
        {"where": {"all_of": [CT, MR, SEG]}},
    ),
    (
        "nested anyOf flattened",
        {"where": {"any_of": [{"any_of": [CT, MR]}, SEG]}},
        {"where": {"any_of": [CT, MR, SEG]}},
    ),
    ("one child is the child", {"where": {"all_of": [{"any_of": [CT]}]}}, {"where": CT}),
    ("double negation", {"where": {"not": {"not": CT}}}, {"where": CT}),
    (
        "double negation, nested",
        {"where": {"any_of": [MR, {"not": {"not": {"all_of": [CT, FEMALE]}}}]}},
        {"where": {"any_of": [{"all_of": [FEMALE, CT]}, MR]}},
    ),
    (
        "camelCase and snake_case",
        {"where": {"allOf": [CT, {"not": MR}, {"anyOf": [SEG, OLD]}]}},
        {"where": {"all_of": [CT, {"not_": MR}, {"any_of": [SEG, OLD]}]}},
    ),
    (
        "sameStudy series are one study leaf",
        {"series": [CT["series"], SEG["series"]], "same_study": True},
        {"where": {"study": {"series": [SEG["series"], CT["series"]]}}},
    ),
    (
        "flat subject fields are leaves of the tree",
        {"subject": {"sex": ["F"], "age_min": 60}},
        {"where": {"all_of": [OLD, FEMALE]}},
    ),
    (
        "flat series and studies are leaves of the tree",
        {"series": [CT["series"]], "studies": [{"year_min": 2010}]},
        {"where": {"all_of": [{"study": {"year_min": 2010}}, CT]}},
    ),
    (
        "flat fields and where are ANDed",
        {"subject": {"sex": ["F"]}, "where": {"any_of": [CT, MR]}},
        {"where": {"all_of": [{"any_of": [MR, CT]}, FEMALE]}},
    ),
    ("allOf of nothing is no criterion", {"where": {"all_of": []}}, {}),
    ("an empty subject is no criterion", {"subject": {}, "where": {"subject": {}}}, {}),
    ("true is absorbed by and", {"where": {"all_of": [CT, {"all_of": []}]}}, {"where": CT}),
    ("false is absorbed by or", {"where": {"any_of": [CT, {"any_of": []}]}}, {"where": CT}),
    (
        "false absorbs and",
        {"where": {"all_of": [CT, {"any_of": []}]}},
        {"where": {"any_of": []}},
    ),
    ("true absorbs or", {"where": {"any_of": [CT, {"all_of": []}]}}, {}),
    ("x and not x is false", {"where": {"all_of": [CT, {"not": CT}]}}, {"where": {"any_of": []}}),
    ("x or not x is true", {"where": {"any_of": [{"not": MR}, MR]}}, {}),
    ("not false is true", {"where": {"not": {"any_of": []}}}, {}),
    (
        "scope reordered, repeated, spaced",
        {"datasets": {"providers": ["b", " a", "b"], "datasets": ["nlst ", "cmmd"]}},
        {"datasets": {"providers": ["a", "b"], "datasets": ["cmmd", "nlst"]}},
    ),
]


@pytest.mark.parametrize(("name", "one", "other"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_equivalent_forms_have_one_canonical_form(
    name: str, one: dict[str, Any], other: dict[str, Any]
) -> None:
    assert canonical(one) == canonical(other), name
    assert CohortQuery.model_validate(one).normalised() == (
        CohortQuery.model_validate(other).normalised()
    )


DIFFERENT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("another modality", {"series": [CT["series"]]}, {"series": [MR["series"]]}),
    (
        "two series, or one series with both",
        {"series": [{"modality": ["CT"]}, {"body_part": ["CHEST"]}]},
        {"series": [{"modality": ["CT"], "body_part": ["CHEST"]}]},
    ),
    (
        "sameStudy or not",
        {"series": [CT["series"], SEG["series"]], "same_study": True},
        {"series": [CT["series"], SEG["series"]]},
    ),
    ("and or or", {"where": {"all_of": [CT, MR]}}, {"where": {"any_of": [CT, MR]}}),
    ("negated or not", {"where": {"not": CT}}, {"where": CT}),
    (
        "negation of a conjunction, or conjunction of negations",
        {"where": {"not": {"all_of": [CT, MR]}}},
        {"where": {"all_of": [{"not": CT}, {"not": MR}]}},
    ),
    (
        "manufacturer or model",
        {"series": [{"manufacturer": ["skyra"]}]},
        {"series": [{"model": ["skyra"]}]},
    ),
    ("lower or upper age bound", {"subject": {"age_min": 50}}, {"subject": {"age_max": 50}}),
    (
        "lower or upper year bound",
        {"studies": [{"year_min": 2000}]},
        {"studies": [{"year_max": 2000}]},
    ),
    (
        "annotation kinds",
        {"series": [{"has_annotation": ["SEG"]}]},
        {"series": [{"has_annotation": ["SR"]}]},
    ),
    ("contrast or none", {"series": [{"contrast": True}]}, {"series": [{"contrast": False}]}),
    ("a scope or all", {"datasets": {"providers": ["a"]}}, {}),
    (
        "provider or dataset scope",
        {"datasets": {"providers": ["nlst"]}},
        {"datasets": {"datasets": ["nlst"]}},
    ),
    ("true or false", {"where": {"all_of": []}}, {"where": {"any_of": []}}),
]


@pytest.mark.parametrize(("name", "one", "other"), DIFFERENT, ids=[d[0] for d in DIFFERENT])
def test_different_questions_stay_apart(
    name: str, one: dict[str, Any], other: dict[str, Any]
) -> None:
    assert canonical(one) != canonical(other), name


def test_canonical_json_is_the_normalised_tree() -> None:
    raw = {
        "datasets": {"providers": ["thoracic"]},
        "subject": {"sex": ["F"]},
        "where": {"not": {"series": {"modality": [" seg "]}}},
    }
    text = canonical(raw)
    found = json.loads(text)
    assert found["datasets"] == {"providers": ["thoracic"]}
    children = found["where"]["allOf"]
    assert sorted(children, key=json.dumps) == sorted(
        [{"not": {"series": {"modality": ["SEG"]}}}, {"subject": {"sex": ["F"]}}], key=json.dumps
    )
    again = CohortQuery.model_validate(
        {"datasets": {"providers": ["thoracic"]}, "where": {"allOf": list(reversed(children))}}
    )
    assert again.canonical_json() == text


def test_normalising_twice_changes_nothing() -> None:
    raw = {
        "subject": {"sex": ["M", "F"], "age_min": 30, "age_max": 40},
        "series": [{"modality": ["ct"]}, {"modality": ["seg"]}],
        "same_study": True,
        "where": {"any_of": [{"not": {"not": MR}}, {"all_of": [OLD, {"any_of": [CT]}]}]},
    }
    once = CohortQuery.model_validate(raw).normalised()
    assert once.normalised() == once
    assert once.canonical_json() == canonical(raw)


def test_subject_leaves_are_split_per_attribute() -> None:
    tree = CohortQuery.model_validate(
        {"subject": {"sex": ["F"], "age_min": 40, "diagnosis": ["c50"]}}
    ).criterion()
    assert tree.all_of is not None and len(tree.all_of) == 3
    subjects = [c.subject for c in tree.all_of]
    assert all(s is not None for s in subjects)
    assert {s.model_dump_json(exclude_defaults=True) for s in subjects if s is not None} == {
        '{"sex":["F"]}',
        '{"age_min":40}',
        '{"diagnosis":["C50"]}',
    }


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({}, "got none"),
        ({"subject": {"sex": ["F"]}, "series": {"modality": ["CT"]}}, "got subject, series"),
        ({"all_of": [], "not": {"all_of": []}}, "got allOf, not"),
    ],
)
def test_a_criterion_takes_exactly_one_field(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Criterion.model_validate(raw)
    message = str(caught.value)
    assert "exactly one of allOf, anyOf, not, subject, study, series" in message
    # the fields given are named (in either spelling)
    assert named in message.replace("all_of", "allOf").replace("not_", "not")


def test_a_malformed_criterion_deep_in_the_tree_is_refused() -> None:
    raw = {"where": {"any_of": [CT, {"all_of": [MR, {"not": {"study": {}, "series": {}}}]}]}}
    with pytest.raises(ValidationError, match="got study, series"):
        CohortQuery.model_validate(raw)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"subject": {"age_min": 70, "age_max": 60}}, "ageMin is greater than ageMax"),
        ({"studies": [{"year_min": 2020, "year_max": 2010}]}, "yearMin is greater than yearMax"),
        (
            {"series": [{"slice_thickness_min": 5, "slice_thickness_max": 1}]},
            "sliceThicknessMin is greater than sliceThicknessMax",
        ),
        (
            {"where": {"series": {"field_strength_min": 3, "field_strength_max": 1.5}}},
            "fieldStrengthMin is greater than fieldStrengthMax",
        ),
        (
            {
                "where": {
                    "not": {
                        "study": {"series": [{"slice_thickness_min": 2, "slice_thickness_max": 1}]}
                    }
                }
            },
            "sliceThicknessMin is greater than sliceThicknessMax",
        ),
        ({"subject": {"age_min": -1}}, "age_min"),
        ({"studies": [{"year_min": 1700}]}, "year_min"),
        ({"series": [{"modalty": ["CT"]}]}, "modalty"),
    ],
)
def test_invalid_ranges_and_fields_are_refused_by_name(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        CohortQuery.model_validate(raw)


def test_canonical_json_spells_the_api_names() -> None:
    query = CohortQuery.model_validate(
        {
            "subject": {"age_min": 60, "age_max": 60},
            "series": [{"body_part": ["CHEST"], "has_annotation": ["SEG"]}],
        }
    )
    text = query.canonical_json()
    for api_name in ("ageMin", "ageMax", "bodyPart", "hasAnnotation"):
        assert api_name in text
