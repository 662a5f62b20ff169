"""Disclosure attacks played through HTTP GraphQL against a small real catalogue under the
DEFAULT disclosure settings (docs/privacy.md, "Attacks and what defeats them").

Every test states the attacker's goal, plays it as an attacker would, computes the attacker's
best inference from what was published, and checks it against the ground truth computed here,
independently, from the rows this module generated (never from the API under test).

The provider is a dicom-table parquet written by the test: a few hundred generated subjects, and
one "target", the only 93-year-old woman, whose MR of the KNEE was made by a scanner from
"Xenon Imaging" (nobody else has that manufacturer); "Yoyodyne" is a manufacturer nobody has,
so a chain ending on it is the same chain in a world where the target does not exist.

Each query spends privacy budget and feeds the differencing check of its user and project; the
TestClient's address is fixed, so each test (or attacker) asks under its own project header.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalogue.api.app import create_app
from catalogue.config import AuthSettings, DisclosureSettings, Settings, load_providers
from catalogue.services.ingest import harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from tests.conftest import NO_RATE_LIMITS

USER = "anonymous@testclient"  # catalogue.api.auth.anonymous: the TestClient's address
THRESHOLD = DisclosureSettings().threshold
ROUNDING = DisclosureSettings().rounding
KINDS = ("subjects", "studies", "series")
XENON = "Xenon Imaging"
NOBODY = "Yoyodyne"

# -- the provider's rows, generated --------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One generated series, as the test knows it (the ground truth)."""

    provider: str
    dataset: str
    subject: str
    study: str
    series: str
    sex: str
    age: int
    year: int
    modality: str
    body_part: str
    manufacturer: str


def _subject(
    out: list[Row],
    provider: str,
    dataset: str,
    subject: str,
    sex: str,
    age: int,
    studies: Sequence[tuple[int, Sequence[tuple[str, str, str]]]],
) -> None:
    """A subject with its studies: (year, [(modality, body part, manufacturer), ...])."""
    first = studies[0][0]
    for s, (year, series) in enumerate(studies):
        for n, (modality, body_part, manufacturer) in enumerate(series):
            out.append(
                Row(
                    provider=provider,
                    dataset=dataset,
                    subject=subject,
                    study=f"{subject}.{s}",
                    series=f"{subject}.{s}.{n}",
                    sex=sex,
                    age=age + year - first,
                    year=year,
                    modality=modality,
                    body_part=body_part,
                    manufacturer=manufacturer,
                )
            )


def generate() -> list[Row]:
    rng = random.Random(20240611)
    out: list[Row] = []
    modalities = ["CT", "CT", "MR", "PT", "CR"]
    body_parts = ["CHEST", "ABDOMEN", "HEAD", "PELVIS", "BREAST"]
    makers = ["SIEMENS", "GE MEDICAL SYSTEMS", "Philips", "TOSHIBA"]
    # 260 background subjects aged 20..88 over their studies
    for i in range(260):
        years = sorted(rng.sample(range(2015, 2024), rng.randint(1, 3)))
        studies = [
            (
                year,
                [
                    (rng.choice(modalities), rng.choice(body_parts), rng.choice(makers))
                    for _ in range(rng.randint(1, 3))
                ],
            )
            for year in years
        ]
        sex = "F" if i % 2 else "M"
        _subject(out, "hospital", "general", f"B{i}", sex, rng.randint(20, 80), studies)
    # three subjects of sex O, each with a CT of the chest
    for i in range(3):
        _subject(
            out, "hospital", "general", f"O{i}", "O", 40 + i, [(2020, [("CT", "CHEST", "GE")])]
        )
    # 20 men over 90, each with a CT of the chest; 16 of them also with an MR of the head
    for i in range(20):
        series = [("CT", "CHEST", "GE")] + ([("MR", "HEAD", "SIEMENS")] if i < 16 else [])
        _subject(out, "hospital", "general", f"OM{i}", "M", 90 + i % 5, [(2021, series)])
    # 22 women aged 90..92: 15 with an MR of the head, 2 with an MR of the knee, 5 with a CT
    for i in range(22):
        if i < 15:
            series = [("MR", "HEAD", "SIEMENS")]
        elif i < 17:
            series = [("MR", "KNEE", "SIEMENS")]
        else:
            series = [("CT", "CHEST", "GE MEDICAL SYSTEMS")]
        _subject(out, "hospital", "general", f"W{i}", "F", 90 + i % 3, [(2020, series)])
    # the target: the only 93-year-old woman, the only subject with a Xenon scanner
    _subject(
        out,
        "hospital",
        "general",
        "TARGET",
        "F",
        93,
        [(2019, [("MR", "KNEE", XENON), ("CT", "CHEST", "SIEMENS")])],
    )
    # a small second provider: 16 subjects, 4 with a PET
    for i in range(16):
        series = [("PT", "CHEST", "GE")] if i < 4 else [("CT", "ABDOMEN", "GE")]
        _subject(
            out, "clinic", "clinic-ds", f"C{i}", "F" if i % 2 else "M", 30 + 2 * i, [(2021, series)]
        )
    return out


ROWS = generate()


def table_rows(rows: Sequence[Row]) -> list[dict[str, object]]:
    """The rows as a dicom-table source has them (DICOM keywords)."""
    return [
        {
            "collection_id": r.dataset,
            "PatientID": r.subject,
            "StudyInstanceUID": f"1.2.826.{r.study}",
            "SeriesInstanceUID": f"1.2.826.{r.series}",
            "PatientSex": r.sex,
            "PatientAge": f"{r.age:03d}Y",
            "StudyDate": f"{r.year}0315",
            "Modality": r.modality,
            "BodyPartExamined": r.body_part,
            "Manufacturer": r.manufacturer,
            "instanceCount": 50,
        }
        for r in rows
    ]


# -- ground truth, from the rows (docs/feasibility.md) -------------------------------------

Subject = tuple[str, str]
Pred = Callable[[list[Row]], bool]


def by_subject(rows: Sequence[Row] = ROWS) -> dict[Subject, list[Row]]:
    out: dict[Subject, list[Row]] = {}
    for r in rows:
        out.setdefault((r.provider, r.subject), []).append(r)
    return out


SUBJECTS = by_subject()


def matching(*preds: Pred, provider: str | None = None) -> set[Subject]:
    return {
        key
        for key, rows in SUBJECTS.items()
        if (provider is None or key[0] == provider) and all(p(rows) for p in preds)
    }


def sex(*values: str) -> Pred:
    return lambda rows: rows[0].sex in values


def age(lo: int | None = None, hi: int | None = None) -> Pred:
    return lambda rows: any(
        (lo is None or r.age >= lo) and (hi is None or r.age <= hi) for r in rows
    )


def row_meets(
    r: Row, modality: str | None = None, body_part: str | None = None, maker: str | None = None
) -> bool:
    return (
        (modality is None or r.modality == modality)
        and (body_part is None or r.body_part == body_part)
        and (maker is None or r.manufacturer.casefold() == maker.casefold())
    )


def has(
    modality: str | None = None, body_part: str | None = None, maker: str | None = None
) -> Pred:
    return lambda rows: any(row_meets(r, modality, body_part, maker) for r in rows)


def negate(pred: Pred) -> Pred:
    return lambda rows: not pred(rows)


TARGET_COMBO = has("MR", "KNEE", XENON)
NOBODY_COMBO = has("MR", "KNEE", NOBODY)

# -- the catalogue and the API -------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    root = tmp_path_factory.mktemp("attacks")
    (root / "providers.yaml").write_text(
        f"""providers:
  - id: hospital
    name: General Hospital
    sources:
      - kind: dicom-table
        path: {root / "hospital.parquet"}
        dataset_column: collection_id
  - id: clinic
    name: Small Clinic
    sources:
      - kind: dicom-table
        path: {root / "clinic.parquet"}
        dataset_column: collection_id
"""
    )
    for provider in ("hospital", "clinic"):
        rows = [r for r in ROWS if r.provider == provider]
        pq.write_table(pa.Table.from_pylist(table_rows(rows)), root / f"{provider}.parquet")
    settings = Settings(
        data_dir=root / "data",
        secret="attack-suite-secret-0123456789",
        disclosure=DisclosureSettings(),
        auth=AuthSettings(disabled=True),
        limits=NO_RATE_LIMITS,  # the attacks are played faster than a person would
    )
    with open_catalogue(settings) as opened:
        report = harvest(opened, load_providers(root / "providers.yaml"))
        assert report.ok, report.failed
        yield opened


@contextmanager
def api(catalogue: Catalogue, rules: DisclosureSettings | None = None) -> Iterator[TestClient]:
    """A client of the API over the shared catalogue; `rules` replace the default ones for the
    app's lifetime (the feasibility service reads them when the app starts)."""
    saved = catalogue.settings.disclosure
    catalogue.settings.disclosure = rules or DisclosureSettings()
    try:
        with TestClient(create_app(catalogue.settings, catalogue=catalogue)) as client:
            yield client
    finally:
        catalogue.settings.disclosure = saved


@pytest.fixture
def client(catalogue: Catalogue) -> Iterator[TestClient]:
    with api(catalogue) as c:
        yield c


COUNT = "value suppressed precision"
CELL = f"subjects {{ {COUNT} }} studies {{ {COUNT} }} series {{ {COUNT} }}"
RESULT = f"""{CELL}
byProvider {{ provider {{ id }} {CELL} }}
byDataset {{ dataset {{ identifier }} {CELL} }}
strata {{ dimensions cells {{ values {CELL} }} }}
"""
FEASIBILITY = f"""query($q: FeasibilityQuery!, $strata: [[StratumValue!]!], $explain: Boolean!) {{
  feasibility(query: $q, strata: $strata, explain: $explain) {{ {RESULT}
    explanation @include(if: $explain) {{ normalisedQuery plan disclosure epsilonSpent }} }} }}"""


def ask_raw(
    client: TestClient,
    project: str,
    query: Mapping[str, Any],
    strata: list[list[str]] | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    response = client.post(
        "/graphql",
        json={
            "query": FEASIBILITY,
            "variables": {"q": query, "strata": strata, "explain": explain},
        },
        headers={"X-Catalogue-Project": project},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ask(
    client: TestClient,
    project: str,
    query: Mapping[str, Any],
    strata: list[list[str]] | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    body = ask_raw(client, project, query, strata, explain)
    assert "errors" not in body, body["errors"]
    return body["data"]["feasibility"]  # type: ignore[no-any-return]


def visible(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What an attacker sees of an answer, the explanation aside."""
    return {k: v for k, v in answer.items() if k != "explanation"}


def cells(answer: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every cell of an answer, named."""
    yield "total", answer
    for p in answer["byProvider"]:
        yield f"provider:{p['provider']['id']}", p
    for d in answer["byDataset"]:
        yield f"dataset:{d['dataset']['identifier']}", d
    for n, table in enumerate(answer["strata"]):
        for c in table["cells"]:
            yield f"strata:{n}:{c['values']}", c


def suppressed(cell: Mapping[str, Any]) -> bool:
    """The whole cell is suppressed, nothing of it published."""
    return all(cell[k]["suppressed"] and cell[k]["value"] is None for k in KINDS)


def rounded(count: int) -> int:
    """The default rounding without noise (halves up), as docs/privacy.md states it."""
    return (count + ROUNDING // 2) // ROUNDING * ROUNDING


def spent(catalogue: Catalogue, project: str) -> float:
    return catalogue.audit.spent(USER, project)


WOMEN_OVER_90: dict[str, Any] = {"subject": {"sex": ["FEMALE"], "ageMin": 90}}


def without(combo: str) -> dict[str, Any]:
    """Women over 90 who have no MR of the knee by manufacturer `combo`."""
    return {
        **WOMEN_OVER_90,
        "where": {
            "not": {"series": {"modality": ["MR"], "bodyPart": ["KNEE"], "manufacturer": [combo]}}
        },
    }


def combo(maker: str) -> dict[str, Any]:
    return {"series": [{"modality": ["MR"], "bodyPart": ["KNEE"], "manufacturer": [maker]}]}


def test_the_generated_data_sets_the_scene() -> None:
    """The ground truth the attacks rely on, from the rows alone."""
    assert len(SUBJECTS) == 260 + 3 + 20 + 22 + 1 + 16
    assert matching(TARGET_COMBO) == {("hospital", "TARGET")}
    assert matching(NOBODY_COMBO) == set()
    assert matching(sex("F"), age(93, 93)) == {("hospital", "TARGET")}
    women_over_90 = matching(sex("F"), age(90))
    assert len(women_over_90) == 23
    # without noise, 23 rounds to 25 and 22 to 20: the difference would show
    assert rounded(23) - rounded(22) == ROUNDING
    assert len(matching(sex("F"), age(90), has("MR"))) == 18
    assert len(matching(sex("F"), age(90), has("MR", "KNEE"))) == 3


# -- averaging -----------------------------------------------------------------------------


def noise_cohorts() -> list[tuple[dict[str, Any], set[Subject], list[Row]]]:
    """Distinct, large cohorts with their subjects and counted rows (ground truth)."""
    out: list[tuple[dict[str, Any], set[Subject], list[Row]]] = []
    for s, name in (("F", "FEMALE"), ("M", "MALE")):
        for lo in (20, 40, 60):
            found = matching(sex(s), age(lo, lo + 19))
            query = {"subject": {"sex": [name], "ageMin": lo, "ageMax": lo + 19}}
            out.append((query, found, [r for r in ROWS if (r.provider, r.subject) in found]))
    for field, values in (
        ("modality", ["CT", "MR", "PT", "CR"]),
        ("bodyPart", ["CHEST", "ABDOMEN", "HEAD", "PELVIS", "BREAST"]),
        ("manufacturer", ["SIEMENS", "GE MEDICAL SYSTEMS", "Philips", "TOSHIBA"]),
    ):
        for value in values:

            def meets(r: Row, field: str = field, value: str = value) -> bool:
                attribute = {"modality": r.modality, "bodyPart": r.body_part}.get(
                    field, r.manufacturer
                )
                return attribute.casefold() == value.casefold()

            counted = [r for r in ROWS if meets(r)]
            found = {(r.provider, r.subject) for r in counted}
            out.append(({"series": [{field: [value]}]}, found, counted))
    return out


def test_averaging_repeated_queries_is_defeated_by_deterministic_noise(
    client: TestClient, catalogue: Catalogue
) -> None:
    """Goal: average N answers to the same question so that the noise cancels out and the exact
    count shows. Defeated by noise keyed by the counted set: every repeat is the same draw (the
    mean is one answer, as far off as it was), and a repeat costs no budget."""
    # the noise is on: over many distinct cohorts the published values are not the rounded
    # exact counts, and the error stays within what Laplace noise of the stated scale allows
    errors = []
    for n, (query, found, counted) in enumerate(noise_cohorts()):
        answer = ask(client, f"noise-{n}", query)
        exact = {
            "subjects": len(found),
            "studies": len({(r.provider, r.study) for r in counted}),
            "series": len(counted),
        }
        for kind, count in exact.items():
            assert count >= 30, (query, kind)
            published = answer[kind]
            assert not published["suppressed"], (query, kind)
            scale = re.fullmatch(
                r"noised \(Laplace scale ([0-9.]+)\), rounded to 5", published["precision"]
            )
            assert scale, published["precision"]
            bound = ROUNDING / 2 + 10 * float(scale[1])  # |noise| > 10 scales: p = e^-10
            assert published["value"] % ROUNDING == 0
            errors.append(
                (abs(published["value"] - count), published["value"] != rounded(count), query, kind)
            )
    assert len(errors) == 3 * 19
    assert sum(differs for _, differs, _, _ in errors) >= len(errors) // 4, "no noise"
    assert max(e for e, _, _, _ in errors) <= bound, "noise out of bounds"

    # the attacker averages the subjects of the cohort whose answer was furthest off
    worst = max((e for e in errors if e[3] == "subjects"), key=lambda e: e[0])
    query = worst[2]
    truth = len(next(found for q, found, _ in noise_cohorts() if q == query))
    answers = [ask(client, "averaging", query, explain=True) for _ in range(30)]
    assert all(visible(a) == visible(answers[0]) for a in answers), "repeats differ"
    mean = sum(a["subjects"]["value"] for a in answers) / len(answers)
    assert mean == answers[0]["subjects"]["value"]
    assert abs(mean - truth) == worst[0] > 0, "averaging got no closer to the truth"
    # one release, charged once
    assert [a["explanation"]["epsilonSpent"] for a in answers] == [1.0] + [0.0] * 29
    assert spent(catalogue, "averaging") == pytest.approx(1.0)
    logged = catalogue.audit.entries(user=USER, project="averaging", limit=100)
    assert len(logged) == 30
    assert {e.outcome for e in logged} == {"answered"}
    assert len({e.release_key for e in logged}) == 1
    assert sorted(e.epsilon for e in logged) == [0.0] * 29 + [1.0]


def test_averaging_over_table_counts_cannot_cancel_the_noise(catalogue: Catalogue) -> None:
    """Goal: cancel the noise by asking one cohort with 0, 1, 2, 3 and 4 strata tables: each
    answer's scale is (3 + tables) / epsilon, so if the draw were shared the attacker would see
    c + k·z for k = 3..7 and a straight line through them would give c. Defeated only if the
    draws of different scales cannot be combined so (a deployment with epsilon 0.1, whose noise
    should hide counts to about ±40)."""
    tables: list[list[list[str]] | None] = [
        None,
        [["SEX"]],
        [["SEX"], ["AGE_BAND"]],
        [["SEX"], ["AGE_BAND"], ["YEAR"]],
        [["SEX"], ["AGE_BAND"], ["YEAR"], ["BODY_PART"]],
    ]
    errors, singles = [], []
    with api(catalogue, DisclosureSettings(epsilon=0.1)) as c:
        for n, (query, found, _) in enumerate(noise_cohorts()[6:]):
            seen = []
            for k, strata in enumerate(tables, start=3):
                answer = ask(c, f"scales-{n}", query, strata=strata)
                if not answer["subjects"]["suppressed"]:
                    seen.append((k, answer["subjects"]["value"]))
            if len(seen) < 3:
                continue
            # least squares of value = c + k·z: the intercept is the attacker's estimate
            k_mean = sum(k for k, _ in seen) / len(seen)
            v_mean = sum(v for _, v in seen) / len(seen)
            slope = sum((k - k_mean) * (v - v_mean) for k, v in seen) / sum(
                (k - k_mean) ** 2 for k, _ in seen
            )
            errors.append(v_mean - slope * k_mean - len(found))
            singles.append(seen[0][1] - len(found))
    assert len(errors) >= 8
    rms = (sum(e * e for e in errors) / len(errors)) ** 0.5
    single = (sum(e * e for e in singles) / len(singles)) ** 0.5
    assert single > 10, "epsilon 0.1 gives noise"
    assert rms > 10, (
        f"five answers with 0..4 strata tables estimate the exact count to ±{rms:.1f} "
        f"(one answer: ±{single:.1f}): {[round(e, 1) for e in errors]}"
    )


# -- equivalent forms ----------------------------------------------------------------------


def test_equivalent_forms_get_one_answer(client: TestClient, catalogue: Catalogue) -> None:
    """Goal: ask one cohort in many forms, each a fresh noise draw to average. Defeated by the
    canonical form and, beyond it, by noise keyed by the counted set: forms that normalisation
    does not merge still count the same sets, so they get the same answer, and cost nothing
    after the first."""
    truth = matching(sex("F"), age(40, 79), has("CT", "CHEST"))
    assert len(truth) >= 20
    sex_leaf = {"subject": {"sex": ["FEMALE"]}}
    age_leaf = {"subject": {"ageMin": 40, "ageMax": 79}}
    ct_leaf = {"series": {"modality": ["CT"], "bodyPart": ["CHEST"]}}
    cohort = {"allOf": [sex_leaf, age_leaf, ct_leaf]}
    forms: dict[str, dict[str, Any]] = {
        "flat": {
            "subject": {"sex": ["FEMALE"], "ageMin": 40, "ageMax": 79},
            "series": [{"modality": ["CT"], "bodyPart": ["CHEST"]}],
        },
        "duplicates, case, whitespace": {
            "subject": {"sex": ["FEMALE", "FEMALE"], "ageMax": 79, "ageMin": 40},
            "series": [{"bodyPart": [" chest", "CHEST "], "modality": ["ct", " CT  "]}],
        },
        "where tree, reordered": {"where": {"allOf": [ct_leaf, age_leaf, sex_leaf]}},
        "double negation": {"where": {"not": {"not": cohort}}},
        "sameStudy with one item": {
            "subject": {"sex": ["FEMALE"], "ageMin": 40, "ageMax": 79},
            "series": [{"modality": ["CT"], "bodyPart": ["CHEST"]}],
            "sameStudy": True,
        },
        "mixed flat and where": {
            "subject": {"sex": ["FEMALE"]},
            "where": {"allOf": [age_leaf, ct_leaf]},
        },
        # semantically equal, syntactically different: normalisation keeps them apart
        "anyOf[A, A and B]": {
            "where": {
                "anyOf": [
                    cohort,
                    {"allOf": [sex_leaf, age_leaf, ct_leaf, {"subject": {"ageMin": 70}}]},
                ]
            }
        },
        "age range split in two": {
            "subject": {"sex": ["FEMALE"]},
            "series": [{"modality": ["CT"], "bodyPart": ["CHEST"]}],
            "where": {
                "anyOf": [
                    {"subject": {"ageMin": 40, "ageMax": 59}},
                    {"subject": {"ageMin": 60, "ageMax": 79}},
                ]
            },
        },
    }
    answers = {name: ask(client, "forms", q, explain=True) for name, q in forms.items()}
    first = visible(answers["flat"])
    assert not first["subjects"]["suppressed"]
    assert abs(first["subjects"]["value"] - len(truth)) <= 40  # sanity: far within the noise
    for name, answer in answers.items():
        assert visible(answer) == first, name
    # normalisation alone does not merge these: the counted set does
    canonical = {name: str(a["explanation"]["normalisedQuery"]) for name, a in answers.items()}
    assert canonical["anyOf[A, A and B]"] != canonical["flat"]
    assert canonical["age range split in two"] != canonical["flat"]
    assert len(set(canonical.values())) >= 3
    # one release: the first form paid, the others were free
    assert [a["explanation"]["epsilonSpent"] for a in answers.values()] == [1.0] + [0.0] * (
        len(forms) - 1
    )
    assert spent(catalogue, "forms") == pytest.approx(1.0)


# -- complementary queries -----------------------------------------------------------------

NEAR_TARGET = ("total", "provider:hospital", "dataset:general")
"""The cells that hold the target (the clinic's are zeros in every query about her)."""


def hidden_or_as_before(new: Mapping[str, Any], released: Mapping[str, Any]) -> bool:
    """What the differencing check may do with a cell 1..9 subjects from a released one:
    suppress it whole, or answer it exactly as the released cell; either way nothing of the
    difference shows. (A cell that was not released has nothing to be near.)"""
    if released["subjects"]["suppressed"]:
        return True
    return suppressed(new) or all(new[k] == released[k] for k in KINDS)


def show(cell: Mapping[str, Any] | None) -> str:
    if cell is None:
        return "absent"
    return "/".join("-" if cell[k]["value"] is None else str(cell[k]["value"]) for k in KINDS)


def world_differences(
    world: Mapping[str, Mapping[str, Any]], other: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Where two worlds' answers to the same questions differ, cell by cell."""
    out = []
    for step in world:
        a, b = dict(cells(world[step])), dict(cells(other[step]))
        for name in dict.fromkeys([*a, *b]):
            if a.get(name) != b.get(name):
                out.append(f"{step} {name}: {show(a.get(name))} vs {show(b.get(name))}")
    return out


def two_worlds(
    client: TestClient,
    project: str,
    questions: Mapping[str, Callable[[str], Mapping[str, Any]]],
    strata: list[list[str]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The same questions, in order, about the target's combination (maker XENON) and about one
    nobody has (NOBODY), each world in a project of its own: maker -> question -> what is seen."""
    return {
        maker: {
            step: visible(ask(client, f"{project}-{maker}", question(maker), strata=strata))
            for step, question in questions.items()
        }
        for maker in (XENON, NOBODY)
    }


RULES_WITH_AND_WITHOUT_NOISE = (
    ("noise", DisclosureSettings()),
    ("no noise", DisclosureSettings(epsilon=None)),
)
Q1_Q2: dict[str, Callable[[str], Mapping[str, Any]]] = {
    "Q1": lambda _: WOMEN_OVER_90,
    "Q2": without,
}
"""The differencing pair: women over 90, then the same without a maker's combination."""


def not_combo(maker: str) -> dict[str, Any]:
    leaf = {"modality": ["MR"], "bodyPart": ["KNEE"], "manufacturer": [maker]}
    return {"where": {"not": {"series": leaf}}}


def test_complementary_queries_do_not_reveal_a_suppressed_cell(client: TestClient) -> None:
    """Goal: learn whether anyone has the target's combination A (exact count 1) as
    total − (not A). Defeated by threshold suppression of A and by the differencing check on
    not A (1 subject from the released total); what is published must also be consistent with
    A = 0: the same questions where nobody has A (Yoyodyne) must look the same."""
    total = len(SUBJECTS)
    assert len(matching(negate(TARGET_COMBO))) == total - 1
    assert len(matching(negate(NOBODY_COMBO))) == total
    worlds = two_worlds(
        client, "complement", {"total": lambda _: {}, "A": combo, "not A": not_combo}
    )
    for maker, world in worlds.items():
        # A is suppressed whole, in every cell, whether it is 1 or 0
        assert all(suppressed(c) for _, c in cells(world["A"])), maker
    seen = worlds[XENON]
    assert not seen["total"]["subjects"]["suppressed"]
    assert abs(seen["total"]["subjects"]["value"] - total) <= 40  # sanity: far within the noise
    # which protection acted: not A (313 subjects, far above the threshold) is hidden by the
    # differencing check in the cells holding the target
    released = dict(cells(seen["total"]))
    for name, cell in cells(seen["not A"]):
        if name in NEAR_TARGET:
            assert hidden_or_as_before(cell, released[name]), name
    # so total − (not A) is unknown or 0 ...
    difference = None
    if not seen["not A"]["subjects"]["suppressed"]:
        difference = seen["total"]["subjects"]["value"] - seen["not A"]["subjects"]["value"]
    assert difference in (None, 0)
    # ... and the answers are those of a world where A = 0
    leaks = world_differences(worlds[XENON], worlds[NOBODY])
    assert leaks == [], "the attacker tells A = 1 from A = 0: " + "; ".join(leaks)


# -- differencing --------------------------------------------------------------------------


def test_differencing_two_queries_one_subject_apart(catalogue: Catalogue) -> None:
    """Goal: Q1 = women over 90, Q2 = Q1 without the target's combination; Q1 − Q2 would say
    whether the target (the only 93-year-old woman) has an MR of the knee by Xenon. Defeated by
    the sketch-based differencing check: Q2's cells 1 subject from Q1's released ones are
    hidden, with noise and without it (where rounding alone would publish 25 and 20)."""
    q1_truth = matching(sex("F"), age(90))
    q2_truth = matching(sex("F"), age(90), negate(TARGET_COMBO))
    assert q1_truth - q2_truth == {("hospital", "TARGET")}
    for label, rules in RULES_WITH_AND_WITHOUT_NOISE:
        project = f"differencing-{label}"
        with api(catalogue, rules) as c:
            q1 = ask(c, project, WOMEN_OVER_90)
            q2 = ask(c, project, without(XENON))
            # asked without Q1 before it (another project), Q2 is published: the check acted
            fresh = ask(c, f"{project}-fresh", without(XENON))
        assert not q1["subjects"]["suppressed"], label
        assert not fresh["subjects"]["suppressed"], label
        if label == "no noise":
            assert q1["subjects"]["value"] == rounded(len(q1_truth)) == 25
            assert fresh["subjects"]["value"] == rounded(len(q2_truth)) == 20
        released = dict(cells(q1))
        for name, cell in cells(q2):
            if name in NEAR_TARGET:
                assert hidden_or_as_before(cell, released[name]), (label, name)
            else:  # the clinic has no woman over 90: zero, suppressed, as in Q1
                assert cell == released[name], (label, name)
        difference = None
        if not q2["subjects"]["suppressed"]:
            difference = q1["subjects"]["value"] - q2["subjects"]["value"]
        assert difference in (None, 0), label


def test_differencing_suppression_is_not_an_oracle(catalogue: Catalogue) -> None:
    """Goal: the same Q1, Q2 pair, read differently: if Q2 is hidden only when it differs from
    Q1, its being hidden says that 1..9 of the women over 90 have the combination. Defeated
    only if the answers are those of a world where nobody has it (Q2 is then Q1's set and gets
    Q1's answer), with noise and without."""
    leaks = []
    for label, rules in RULES_WITH_AND_WITHOUT_NOISE:
        with api(catalogue, rules) as c:
            worlds = two_worlds(c, f"oracle-{label}", Q1_Q2)
        assert worlds[NOBODY]["Q2"] == worlds[NOBODY]["Q1"]  # Q1's set, Q1's answer
        leaks += [f"{label}: {d}" for d in world_differences(worlds[XENON], worlds[NOBODY])]
    assert leaks == [], "the answers show the target has the combination: " + "; ".join(leaks)


def truth_cells(found: set[Subject], strata: Sequence[Sequence[str]]) -> dict[str, set[Subject]]:
    """The subject set of every cell of an answer over `found`, for criteria without a positive
    series or study leaf (every row of a matching subject counts), named as `cells` names them."""
    out: dict[str, set[Subject]] = {"total": set(found)}
    for key in found:
        rows = SUBJECTS[key]
        out.setdefault(f"provider:{key[0]}", set()).add(key)
        out.setdefault(f"dataset:{rows[0].dataset}", set()).add(key)
        for n, dims in enumerate(strata):
            assert len(dims) == 1
            for r in rows:
                value = {"SEX": r.sex, "MODALITY": r.modality, "BODY_PART": r.body_part}[dims[0]]
                out.setdefault(f"strata:{n}:{[value]}", set()).add(key)
    return out


def test_differencing_through_strata_cells(catalogue: Catalogue) -> None:
    """Goal: the differencing attack asked with strata: Q2's total is hidden, but its SEX cell
    F is the same set as its total, and its MODALITY cell MR is Q1's MR cell less the target.
    Defeated only if the answers are those of a world where nobody has the combination (with
    noise, and without it, where rounding shows the difference: 23 → 25, 22 → 20)."""
    strata = [["SEX"], ["MODALITY"]]
    leaks = []
    for label, rules in RULES_WITH_AND_WITHOUT_NOISE:
        with api(catalogue, rules) as c:
            worlds = two_worlds(c, f"differencing-strata-{label}", Q1_Q2, strata)
        q1, q2 = dict(cells(worlds[XENON]["Q1"])), dict(cells(worlds[XENON]["Q2"]))
        assert hidden_or_as_before(q2["total"], q1["total"]), label  # the check acted
        leaks += [
            f"{label}: {d}"
            for d in world_differences(worlds[XENON], worlds[NOBODY])
            if "strata" in d
        ]
    assert leaks == [], "the strata cells show the difference: " + "; ".join(leaks)


def test_differencing_strata_cells_against_their_total(catalogue: Catalogue) -> None:
    """Goal: one question, men over 90 broken down by MODALITY: the total (20) minus the MR
    cell (16) counts the men over 90 without an MR (4), a count the threshold suppresses when
    asked for (NOT MR). Defeated only if no published cell of the answer shows a value other
    than the total's while its subject set is 1..9 subjects from the total's (with noise, and
    without it, where rounding shows 20 and 15)."""
    men_over_90 = {"subject": {"sex": ["MALE"], "ageMin": 90}}
    strata = [["MODALITY"]]
    truth = truth_cells(matching(sex("M"), age(90)), strata)
    assert 0 < len(matching(sex("M"), age(90), negate(has("MR")))) < THRESHOLD
    leaks = []
    for label, rules in RULES_WITH_AND_WITHOUT_NOISE:
        project = f"strata-total-{label}"
        with api(catalogue, rules) as c:
            no_mr = {**men_over_90, "where": {"not": {"series": {"modality": ["MR"]}}}}
            assert suppressed(ask(c, project, no_mr))  # asked for, the count is suppressed
            answer = dict(cells(ask(c, project, men_over_90, strata=strata)))
        total = answer["total"]
        assert not total["subjects"]["suppressed"], label
        leaks += [
            f"{label}: total {show(total)} − {name} {show(cell)}: "
            f"{len(truth['total'] - truth[name])} subject(s) in the total and not in {name}"
            for name, cell in answer.items()
            if name.startswith("strata")
            and not cell["subjects"]["suppressed"]
            and 0 < len(truth["total"] ^ truth.get(name, set())) < THRESHOLD
            and any(cell[k]["value"] != total[k]["value"] for k in KINDS)
        ]
    assert leaks == [], "; ".join(leaks)


# -- strata sums ---------------------------------------------------------------------------


def test_summing_strata_does_not_reveal_a_suppressed_total(client: TestClient) -> None:
    """Goal: a suppressed total (3 women over 90 with an MR of the knee) as the sum of its
    strata cells. Defeated by the threshold on every cell: no stratum publishes a value, so the
    published cells never add up to a count in 1..9."""
    truth = matching(sex("F"), age(90), has("MR", "KNEE"))
    assert 0 < len(truth) < THRESHOLD
    query = {**WOMEN_OVER_90, "series": [{"modality": ["MR"], "bodyPart": ["KNEE"]}]}
    for strata in (
        [["SEX"], ["AGE_BAND"]],
        [["SEX", "AGE_BAND"]],
        [["MODALITY"], ["BODY_PART"], ["YEAR"]],
    ):
        answer = ask(client, "strata-small", query, strata=strata)
        assert suppressed(answer)
        published = [(name, c) for name, c in cells(answer) if not c["subjects"]["suppressed"]]
        assert published == [], published
        for table in answer["strata"]:
            sums = sum(c["subjects"]["value"] or 0 for c in table["cells"])
            assert not 1 <= sums < THRESHOLD


def test_complementary_suppression_protects_a_small_stratum_and_provider(
    client: TestClient,
) -> None:
    """Goal: a small cell as a published total minus its published siblings: the 3 subjects of
    sex O with a CT as (all with a CT) − F − M, and the clinic's 4 PET subjects as total −
    hospital. Defeated by complementary suppression: a second, large, sibling is suppressed."""
    ct = {sx: matching(sex(sx), has("CT")) for sx in "FMOU"}
    assert 0 < len(ct["O"]) < THRESHOLD and not ct["U"]
    assert min(len(ct["F"]), len(ct["M"])) > 50
    answer = ask(client, "strata-complement", {"series": [{"modality": ["CT"]}]}, strata=[["SEX"]])
    assert not answer["subjects"]["suppressed"]
    by_sex = {c["values"][0]: c for c in answer["strata"][0]["cells"]}
    assert set(by_sex) == {"F", "M", "O", "U"}
    assert suppressed(by_sex["O"]) and suppressed(by_sex["U"])
    # F and M hold far more than the threshold, yet one of them is suppressed: only
    # complementary suppression does that, so O is not total − F − M
    shown = [s for s in "FM" if not by_sex[s]["subjects"]["suppressed"]]
    assert len(shown) <= 1, "O = total − F − M"
    for kind in KINDS:
        assert sum(not by_sex[s][kind]["suppressed"] for s in "FMOU") <= 2, kind

    pet_clinic = matching(has("PT"), provider="clinic")
    pet_hospital = matching(has("PT"), provider="hospital")
    assert 0 < len(pet_clinic) < THRESHOLD and len(pet_hospital) > 50
    pet = ask(client, "provider-complement", {"series": [{"modality": ["PT"]}]})
    assert not pet["subjects"]["suppressed"]
    providers = {p["provider"]["id"]: p for p in pet["byProvider"]}
    datasets = {d["dataset"]["identifier"]: d for d in pet["byDataset"]}
    assert suppressed(providers["clinic"]) and suppressed(datasets["clinic-ds"])
    # the hospital's count must not be published, neither as its own cell nor as the sum of
    # its datasets' cells (it has one: "general", the same set), else clinic = total − hospital
    for kind in KINDS:
        assert providers["hospital"][kind]["suppressed"], kind
        assert datasets["general"][kind]["suppressed"], (
            f"clinic = total − hospital's datasets: {kind} {pet[kind]['value']} − "
            f"{datasets['general'][kind]['value']}"
        )


# -- threshold probing ---------------------------------------------------------------------


def probing_chain(maker: str) -> list[dict[str, Any]]:
    """Narrowing to the target one criterion at a time; the last one names `maker`."""
    series: list[dict[str, Any]] = [
        {"modality": ["MR"]},
        {"modality": ["MR"], "bodyPart": ["KNEE"]},
        {"modality": ["MR"], "bodyPart": ["KNEE"], "manufacturer": [maker]},
    ]
    return [
        {},
        {"subject": {"sex": ["FEMALE"]}},
        WOMEN_OVER_90,
        *({**WOMEN_OVER_90, "series": [s]} for s in series),
    ]


def test_threshold_probing_cannot_tell_one_from_none(client: TestClient) -> None:
    """Goal: add one criterion at a time until the count drops to the target alone, and learn
    whether she exists (1) or not (0). Defeated by threshold and zero suppression (below 10
    every answer is suppressed, zero and small alike) and by the differencing check (a step
    that removes fewer than 10 subjects from a released cohort is hidden); the whole chain
    must look the same as when the last criterion matches nobody."""
    exact = [
        len(SUBJECTS),
        len(matching(sex("F"))),
        len(matching(sex("F"), age(90))),
        len(matching(sex("F"), age(90), has("MR"))),
        len(matching(sex("F"), age(90), has("MR", "KNEE"))),
        len(matching(sex("F"), age(90), TARGET_COMBO)),
    ]
    assert exact[-1] == 1 and len(matching(sex("F"), age(90), NOBODY_COMBO)) == 0
    assert exact[3] >= THRESHOLD and exact[2] - exact[3] < THRESHOLD
    chains = {
        maker: [ask(client, f"probe-{maker}", q, strata=[["SEX"]]) for q in probing_chain(maker)]
        for maker in (XENON, NOBODY)
    }
    target = chains[XENON]
    for step, (count, answer) in enumerate(zip(exact, target, strict=True)):
        if count < THRESHOLD:
            assert all(suppressed(c) for _, c in cells(answer)), step
    # the first steps are published and released; the next, 5 subjects short, is hidden
    assert [a["subjects"]["suppressed"] for a in target[:3]] == [False] * 3
    # (its SEX cell F is the same set as its total, so it must be hidden with it)
    released = dict(cells(target[2]))
    for name, cell in cells(target[3]):
        if name in (*NEAR_TARGET, "strata:0:['F']"):
            assert hidden_or_as_before(cell, released[name]), (
                f"a step of {exact[2] - exact[3]} subjects shows in {name}: {show(cell)} after "
                f"{show(released[name])}"
            )
    # zero and one look the same, down to the precision text, in every cell and stratum
    assert target[-1] == chains[NOBODY][-1]
    precisions = {c[k]["precision"] for _, c in cells(target[-1]) for k in ("subjects", "series")}
    assert len(precisions) == 1
    # and the whole chain is what the attacker would have seen had the target not existed
    assert target == chains[NOBODY]


# -- side channels -------------------------------------------------------------------------


def test_explain_does_not_reveal_counts(client: TestClient) -> None:
    """Goal: learn whether anyone has a scanner from Xenon Imaging (1 subject) or Yoyodyne
    (nobody) from `explain`, when both counts are suppressed. Defeated only if the
    explanation says nothing about the data beyond the published counts."""
    seen = {}
    for maker in (XENON, NOBODY):
        answer = ask(
            client, f"explain-{maker}", {"series": [{"manufacturer": [maker]}]}, explain=True
        )
        assert suppressed(answer)
        explained = dict(answer["explanation"])
        del explained["normalisedQuery"]  # the question itself, echoed
        explained["plan"] = explained["plan"].replace(maker.casefold(), "<maker>")
        seen[maker] = (visible(answer), explained)
    shares = {
        m: re.findall(r"about ([0-9.]+)% of subjects", e["plan"]) for m, (_, e) in seen.items()
    }
    assert seen[XENON] == seen[NOBODY], (
        f"explain tells them apart: {shares} of {len(SUBJECTS)} subjects, i.e. "
        f"{[round(float(s[0]) * len(SUBJECTS) / 100) if s else None for s in shares.values()]} "
        "subjects"
    )


def test_strata_listing_does_not_reveal_rare_values(client: TestClient) -> None:
    """Goal: learn whether anyone in a dataset had an examination of the KNEE (3 subjects in
    "general", none in the clinic's dataset), when the count itself is suppressed. Defeated only
    if the cells a strata table lists do not depend on a value held by 1..9 subjects (the
    dataset summaries list a body part only when 10 subjects have it)."""
    holders = {
        scope: len(
            {(r.provider, r.subject) for r in ROWS if r.body_part == "KNEE" and r.dataset == scope}
        )
        for scope in ("general", "clinic-ds")
    }
    assert 0 < holders["general"] < THRESHOLD and holders["clinic-ds"] == 0
    listed = {}
    for scope in holders:
        query = {"datasets": {"datasets": [scope]}, "series": [{"bodyPart": ["KNEE"]}]}
        answer = ask(client, f"listing-{scope}", query, strata=[["BODY_PART"]])
        assert suppressed(answer)
        listed[scope] = ["KNEE"] in [c["values"] for c in answer["strata"][0]["cells"]]
    assert listed["general"] == listed["clinic-ds"], (
        f"the BODY_PART table lists KNEE where 3 subjects have it ({listed['general']}) and not "
        f"where nobody has ({listed['clinic-ds']})"
    )


# -- budget --------------------------------------------------------------------------------


def test_budget_is_per_user_and_project_and_refusals_are_clear(catalogue: Catalogue) -> None:
    """Goal: ask without end (distinct queries, each a fresh noise draw). Defeated by the
    privacy budget: a clear PrivacyBudgetError once the daily (or total) budget is spent;
    repeats stay free; another project has its own budget; the audit log keeps the refusal."""
    distinct = [{"series": [{"modality": [m]}]} for m in ("CT", "MR", "PT", "CR")]
    with api(catalogue, DisclosureSettings(budget_daily=3.0)) as c:
        for q in distinct[:3]:
            ask(c, "budget", q)
        refused = ask_raw(c, "budget", distinct[3])
        again = ask(c, "budget", distinct[0])  # a repeat: free
        other = ask(c, "budget-other", distinct[3])  # another project: its own budget
    assert refused["data"] is None
    message = refused["errors"][0]["message"]
    assert message.startswith(f"daily privacy budget exhausted for '{USER}' on project 'budget'")
    assert "0 of 3 is left today and this query costs 1" in message
    assert "renews at" in message
    assert "Traceback" not in str(refused) and 'File "' not in str(refused)
    assert not again["subjects"]["suppressed"] and not other["subjects"]["suppressed"]
    assert spent(catalogue, "budget") == pytest.approx(3.0)
    assert spent(catalogue, "budget-other") == pytest.approx(1.0)
    logged = catalogue.audit.entries(user=USER, project="budget")
    outcomes = [e.outcome for e in reversed(logged)]
    assert outcomes[:3] == ["answered"] * 3
    assert outcomes[3] == f"refused: {message}"
    assert outcomes[4] == "answered"
    assert [e.epsilon for e in reversed(logged)] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert logged[1].published == "{}"  # nothing was published with the refusal

    with api(catalogue, DisclosureSettings(budget_daily=None, budget_total=2.0)) as c:
        for q in distinct[:2]:
            ask(c, "budget-total", q)
        refused = ask_raw(c, "budget-total", distinct[2])
    message = refused["errors"][0]["message"]
    assert message.startswith(
        f"total privacy budget exhausted for '{USER}' on project 'budget-total'"
    )
    assert "the total budget does not renew" in message
