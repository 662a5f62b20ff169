"""Feasibility latency: HTTP GraphQL beside plain DuckDB SQL and an indexed SQLite row store.

    .venv/bin/python bench/feasibility.py [--data-dir DIR] [--repeat N] [--skip-sqlite]
        [--sqlite-repeat N] [--sqlite-cap SECONDS] [--baselines-only] [--reference]

Builds the IDC demo under DIR/demo and harvests it into DIR with exact disclosure (reusing a
harvest already in DIR), then times a mix of nested feasibility queries (docs/feasibility.md)
three ways, in the same run:

- GraphQL over HTTP against `catalogue serve` (the cohort index of the harvest);
- plain DuckDB SQL: the IDC rows parsed once from idc_index.parquet into a TEMP table, and per
  query the statement an analyst would write (correlated EXISTS per criterion, GROUP BY);
- SQLite: the same rows in an indexed SQLite file in DIR (the row store of i2b2-like systems,
  bench/sqlite_rows.py) and the same SQL text (bench/feasibility_sql.py compiles it from the
  query for both).

Each query is warmed up on every path, then timed round-robin over the paths, so that load from
elsewhere on the machine weighs on all of them alike; SQLite takes fewer runs (--sqlite-repeat)
and a run over --sqlite-cap seconds is recorded as a timeout at the cap.

The three must agree on every provider's subjects, studies and series and on the strata
tables; any mismatch is printed and the exit status is 1. Targets: the GraphQL median within
2x of plain DuckDB SQL, and at least 10x faster than SQLite. `--baselines-only` skips the
harvest and GraphQL and checks the two SQL paths against each other and against
tests/reference/idc_sql.py (`--reference` adds that check to a full run).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from feasibility_sql import (
    SCHEMA_VERSION,
    Answer,
    StrataKey,
    Triple,
    answer_of,
    compile_sql,
    load_duckdb,
)
from serving import NO_AUTH, NO_RATE_LIMITS, prepare_demo, serve
from sqlite_rows import open_sqlite

from catalogue.config import DisclosureSettings, Settings
from catalogue.domain.cohort import (
    AnnotationKind,
    CohortQuery,
    Criterion,
    DatasetScope,
    SeriesCriteria,
    Sex,
    Stratum,
    StudyCriteria,
    SubjectCriteria,
)
from examples.demo.idc import build, idc_paths

ROOT = Path(__file__).resolve().parents[1]
WARMUPS = 2
GRAPHQL_VS_DUCKDB = 2.0
SQLITE_VS_GRAPHQL = 10.0
EXACT = DisclosureSettings.exact_counts()
EXACT_ENV = {"CATALOGUE_DISCLOSURE": EXACT.model_dump_json()}
"""The server's disclosure settings as one JSON value (a nested `None` cannot be spelt as a
CATALOGUE_DISCLOSURE__EPSILON variable)."""

COUNTS = "subjects { value } studies { value } series { value }"
GRAPHQL = f"""query Feasibility($query: FeasibilityQuery!, $strata: [[StratumValue!]!]) {{
  feasibility(query: $query, strata: $strata) {{
    {COUNTS}
    byProvider {{ provider {{ id }} {COUNTS} }}
    strata {{ dimensions cells {{ values {COUNTS} }} }}
  }}
}}"""


# --- the mix ---------------------------------------------------------------------------------


def ser(**fields: Any) -> SeriesCriteria:
    return SeriesCriteria(**fields)


def series(**fields: Any) -> Criterion:
    return Criterion(series=SeriesCriteria(**fields))


def study(**fields: Any) -> Criterion:
    return Criterion(study=StudyCriteria(**fields))


def subject(**fields: Any) -> Criterion:
    return Criterion(subject=SubjectCriteria(**fields))


def all_of(*children: Criterion) -> Criterion:
    return Criterion(all_of=children)


def any_of(*children: Criterion) -> Criterion:
    return Criterion(any_of=children)


def not_(child: Criterion) -> Criterion:
    return Criterion(not_=child)


F, M = (Sex.FEMALE,), (Sex.MALE,)
SEG, RTSTRUCT = AnnotationKind.SEG, AnnotationKind.RTSTRUCT


@dataclass(frozen=True)
class BenchQuery:
    """One query of the mix: the domain query and the strata tables asked for."""

    name: str
    cohort: CohortQuery
    strata: tuple[StrataKey, ...] = ()

    @property
    def graphql_variables(self) -> dict[str, Any]:
        variables: dict[str, Any] = {"query": graphql_input(self.cohort)}
        if self.strata:
            variables["strata"] = [[d.name for d in table] for table in self.strata]
        return variables


QUERIES = (
    BenchQuery("no criteria", CohortQuery()),
    BenchQuery(
        "flat: F 40-60, MR BREAST",
        CohortQuery(
            subject=SubjectCriteria(sex=F, age_min=40, age_max=60),
            series=(ser(modality=["MR"], body_part=["BREAST"]),),
        ),
    ),
    BenchQuery(
        "flat: CT and PT",
        CohortQuery(series=(ser(modality=["CT"]), ser(modality=["PT"]))),
    ),
    BenchQuery(
        "sameStudy: PT and CT",
        CohortQuery(series=(ser(modality=["PT"]), ser(modality=["CT"])), same_study=True),
    ),
    BenchQuery(
        "study 1999-2001 with CT and SEG",
        CohortQuery(
            studies=(StudyCriteria(year_min=1999, year_max=2001, modalities=["CT", "SEG"]),)
        ),
    ),
    BenchQuery(
        "MR, never CT",
        CohortQuery(where=all_of(series(modality=["MR"]), not_(series(modality=["CT"])))),
    ),
    BenchQuery(
        "(F and MG) or (M and CT CHEST)",
        CohortQuery(
            where=any_of(
                all_of(subject(sex=F), series(modality=["MG"])),
                all_of(subject(sex=M), series(modality=["CT"], body_part=["CHEST"])),
            )
        ),
    ),
    BenchQuery(
        "CT with a SEG on it",
        CohortQuery(series=(ser(modality=["CT"], has_annotation=[SEG]),)),
    ),
    BenchQuery(
        "neuro: MR BRAIN|HEAD annotated",
        CohortQuery(
            datasets=DatasetScope(providers=["neuro-head-neck"]),
            series=(
                ser(modality=["MR"], body_part=["BRAIN", "HEAD"], has_annotation=[SEG, RTSTRUCT]),
            ),
        ),
    ),
    BenchQuery(
        "GE LightSpeed, 55-74",
        CohortQuery(
            subject=SubjectCriteria(age_min=55, age_max=74),
            series=(
                ser(
                    manufacturer=["GE MEDICAL SYSTEMS"],
                    model=["LightSpeed16", "LightSpeed QX/i", "lightspeed  ultra"],
                ),
            ),
        ),
    ),
    BenchQuery(
        "(Skyra or Philips MR), not F",
        CohortQuery(
            where=all_of(
                any_of(
                    series(manufacturer=["siemens"], model=["Skyra"]),
                    series(manufacturer=["Philips", "Philips Medical Systems"], modality=["MR"]),
                ),
                not_(subject(sex=F)),
            )
        ),
    ),
    BenchQuery(
        "lung cancer types: >= 65, CT, no PT",
        CohortQuery(
            datasets=DatasetScope(cancer_types=["Lung Cancer", "Non-small Cell Lung Cancer"]),
            subject=SubjectCriteria(age_min=65),
            where=all_of(series(modality=["CT"]), not_(series(modality=["PT"]))),
        ),
    ),
    BenchQuery(
        "PUBLIC breast: MG and MR",
        CohortQuery(
            datasets=DatasetScope(providers=["breast"], access_rights=["PUBLIC"]),
            where=all_of(series(modality=["MG"]), series(modality=["MR"])),
        ),
    ),
    BenchQuery(
        "nlst+lidc+nsclc: CT study >= 2000, no SR",
        CohortQuery(
            datasets=DatasetScope(datasets=["nlst", "lidc_idri", "nsclc_radiomics"]),
            where=all_of(study(year_min=2000, modalities=["CT"]), not_(series(modality=["SR"]))),
        ),
    ),
    BenchQuery(
        "deep tree (5 levels)",
        CohortQuery(
            where=all_of(
                any_of(
                    all_of(
                        subject(sex=F),
                        any_of(
                            series(modality=["MG"]), series(modality=["MR"], body_part=["BREAST"])
                        ),
                    ),
                    all_of(
                        subject(sex=M),
                        not_(subject(age_max=49)),
                        study(modalities=["CT"], series=[ser(body_part=["CHEST"])]),
                    ),
                ),
                not_(any_of(series(modality=["RTSTRUCT"]), study(year_max=1990))),
            )
        ),
    ),
    BenchQuery(
        "no known age, US|CR|DX",
        CohortQuery(where=all_of(not_(subject(age_min=0)), series(modality=["US", "CR", "DX"]))),
    ),
    BenchQuery(
        "genitourinary: MR PROSTATE + SEG in one study",
        CohortQuery(
            datasets=DatasetScope(providers=["genitourinary"]),
            studies=(
                StudyCriteria(
                    series=[ser(modality=["MR"], body_part=["PROSTATE"]), ser(modality=["SEG"])]
                ),
            ),
        ),
    ),
    BenchQuery(
        "CT CHEST, by SEX",
        CohortQuery(series=(ser(modality=["CT"], body_part=["CHEST"]),)),
        strata=((Stratum.SEX,),),
    ),
    BenchQuery(
        "thoracic CT study 1999-2002, by SEX x AGE_BAND",
        CohortQuery(
            datasets=DatasetScope(providers=["thoracic"]),
            studies=(StudyCriteria(year_min=1999, year_max=2002, modalities=["CT"]),),
        ),
        strata=((Stratum.SEX, Stratum.AGE_BAND),),
    ),
    BenchQuery(
        "MR or MG, by SEX and by AGE_BAND",
        CohortQuery(where=any_of(series(modality=["MR"]), series(modality=["MG"]))),
        strata=((Stratum.SEX,), (Stratum.AGE_BAND,)),
    ),
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _graphql_value(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {_camel(k): _graphql_value(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_graphql_value(v, key) for v in value]
    if key == "sex":
        return Sex(value).name
    return value


def graphql_input(query: CohortQuery) -> dict[str, Any]:
    """A CohortQuery as the GraphQL FeasibilityQuery input: camelCase fields, defaults left
    out, sex codes as SexValue names (allOf/anyOf/not are the criterion aliases already)."""
    dumped = query.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    converted: dict[str, Any] = _graphql_value(dumped)
    return converted


# --- the paths -------------------------------------------------------------------------------

Runner = Callable[[], Answer]


@dataclass
class Timing:
    """One path's runs of one query: the last answer (None: it timed out) and the times (ms)."""

    answer: Answer | None = None
    times: list[float] = field(default_factory=list)
    timed_out: bool = False


@dataclass(frozen=True)
class Lane:
    """A path under test: how to make the runner of a query, how often to run it."""

    key: str
    prepare: Callable[[BenchQuery], Runner]
    repeat: int
    warmups: int = WARMUPS
    cap: float | None = None
    """Seconds after which a run is a timeout (recorded at the cap, the query not compared)."""


class RunTimeoutError(Exception):
    """A run went over its lane's cap."""


def _time_query(q: BenchQuery, lanes: Sequence[Lane]) -> dict[str, Timing]:
    """Warm each lane up on `q`, then take the timed runs round-robin over the lanes, so that
    a load from elsewhere on the machine weighs on every path alike."""
    runners = {lane.key: lane.prepare(q) for lane in lanes}
    out = {lane.key: Timing() for lane in lanes}

    def attempt(lane: Lane, timed: bool) -> None:
        timing = out[lane.key]
        if timing.timed_out:
            return
        started = time.perf_counter()
        try:
            timing.answer = runners[lane.key]()
        except RunTimeoutError:
            assert lane.cap is not None
            timing.answer, timing.timed_out = None, True
            timing.times = [lane.cap * 1000] * lane.repeat
            return
        if timed:
            timing.times.append((time.perf_counter() - started) * 1000)

    for lane in lanes:
        for _ in range(lane.warmups):
            attempt(lane, timed=False)
    for round_ in range(max(lane.repeat for lane in lanes)):
        for lane in lanes:
            if round_ < lane.repeat:
                attempt(lane, timed=True)
    return out


def _value(count: dict[str, Any]) -> int:
    value = count["value"]
    if value is None:
        raise RuntimeError("a suppressed count: the disclosure settings are not exact")
    return int(value)


def _from_graphql(body: dict[str, Any]) -> Answer:
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    data = body["data"]["feasibility"]

    def triple(cell: dict[str, Any]) -> Triple:
        return (_value(cell["subjects"]), _value(cell["studies"]), _value(cell["series"]))

    strata: dict[StrataKey, dict[tuple[str | None, ...], Triple]] = {}
    for table in data.get("strata") or []:
        dims = tuple(Stratum[d] for d in table["dimensions"])
        strata[dims] = {
            tuple(None if v is None else str(v) for v in cell["values"]): triple(cell)
            for cell in table["cells"]
        }
    answer = Answer(
        providers={c["provider"]["id"]: triple(c) for c in data["byProvider"]}, strata=strata
    )
    if triple(data) != answer.total:
        raise RuntimeError(f"GraphQL total {triple(data)} is not the providers' sum")
    return answer


@contextmanager
def _serve(data_dir: Path) -> Iterator[httpx.Client]:
    """`catalogue serve` on the data folder with exact disclosure, no sign-in and no rate limit
    in reach, and a client of it."""
    with (
        serve(data_dir, {**EXACT_ENV, **NO_AUTH, **NO_RATE_LIMITS}) as server,
        httpx.Client(base_url=server.url, timeout=300) as client,
    ):
        yield client


def _graphql_runner(client: httpx.Client) -> Callable[[BenchQuery], Runner]:
    def prepare(q: BenchQuery) -> Runner:
        payload = {"query": GRAPHQL, "variables": q.graphql_variables}

        def run() -> Answer:
            response = client.post("/graphql", json=payload)
            return _from_graphql(response.raise_for_status().json())

        return run

    return prepare


def _duckdb_runner(con: Any) -> Callable[[BenchQuery], Runner]:
    def prepare(q: BenchQuery) -> Runner:
        text = compile_sql(q.cohort, q.strata)
        return lambda: answer_of(con.execute(text).fetchall(), q.strata)

    return prepare


def _sqlite_runner(con: sqlite3.Connection, cap: float) -> Callable[[BenchQuery], Runner]:
    """Runs interrupted (a RunTimeoutError) when they go over `cap` seconds."""

    def prepare(q: BenchQuery) -> Runner:
        text = compile_sql(q.cohort, q.strata)

        def run() -> Answer:
            deadline = time.perf_counter() + cap
            con.set_progress_handler(lambda: int(time.perf_counter() > deadline), 100_000)
            try:
                return answer_of(con.execute(text).fetchall(), q.strata)
            except sqlite3.OperationalError as exc:
                if "interrupt" in str(exc):
                    raise RunTimeoutError from exc
                raise
            finally:
                con.set_progress_handler(None, 0)

        return run

    return prepare


def _reference_check(collections_csv: Path, duck: dict[str, Timing]) -> list[str]:
    """Compare the DuckDB baseline with tests/reference/idc_sql.py where it supports the query:
    a mismatch on a flat query (which it has always supported) is a problem, on others a note."""
    import duckdb

    sys.path.insert(0, str(ROOT))
    from tests.reference.idc_sql import reference_counts

    parquet = idc_paths()[0]
    problems = []
    for q in QUERIES:
        mine = duck[q.name].answer
        con = duckdb.connect()
        try:
            result = reference_counts(con, parquet, collections_csv, q.cohort)
        except Exception as exc:  # a query the reference does not take
            print(f"  {q.name}: not supported by the reference ({type(exc).__name__})")
            continue
        finally:
            con.close()
        theirs = Answer(
            {p: (c.subjects, c.studies, c.series) for p, c in result.by_provider.items()}
        ).nonzero()
        assert mine is not None
        if mine.nonzero().providers == theirs.providers:
            print(f"  {q.name}: agrees")
            continue
        line = f"{q.name}: reference {theirs.providers} duckdb {mine.nonzero().providers}"
        if _flat(q.cohort):
            problems.append(line)
            print(f"  {q.name}: DIFFERS")
        else:
            print(f"  {q.name}: differs (the reference may not take this query yet)")
    return problems


def _flat(query: CohortQuery) -> bool:
    """Whether the query is of the flat form tests/reference/idc_sql.py has always taken."""
    return (
        query.where is None
        and not query.studies
        and not query.same_study
        and not query.datasets.by_metadata
        and not query.subject.diagnosis
        and all(
            s
            == SeriesCriteria(
                modality=s.modality, body_part=s.body_part, manufacturer=s.manufacturer
            )
            for s in query.series
        )
    )


# --- comparison and report -------------------------------------------------------------------


def _differences(name: str, answers: dict[str, Answer]) -> list[str]:
    """Every disagreement with the DuckDB baseline: per provider, then per strata cell."""
    found = []
    reference = answers["duckdb"].nonzero()
    for path, answer in answers.items():
        if path == "duckdb":
            continue
        mine = answer.nonzero()
        for key in sorted(set(mine.providers) | set(reference.providers)):
            a, b = mine.providers.get(key), reference.providers.get(key)
            if a != b:
                found.append(f"{name}: provider {key} {path}={a} duckdb={b}")
        for dims in sorted(set(mine.strata) | set(reference.strata)):
            if dims not in mine.strata or dims not in reference.strata:
                found.append(f"{name}: strata {[d.name for d in dims]} missing in one path")
                continue
            cells, theirs = mine.strata[dims], reference.strata[dims]
            for cell in sorted(set(cells) | set(theirs), key=str):
                if cells.get(cell) != theirs.get(cell):
                    found.append(
                        f"{name}: strata {[d.name for d in dims]} {cell} "
                        f"{path}={cells.get(cell)} duckdb={theirs.get(cell)}"
                    )
    return found


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _fmt(timing: Timing | None) -> str:
    if timing is None:
        return f"{'-':>19}"
    if timing.timed_out:
        return f"{'>= ' + format(timing.times[0] / 1000, 'g') + ' s (timeout)':>19}"
    return f"{_p50(timing.times):>8.1f} {_p95(timing.times):>8.1f} ms"


def _brief(timing: Timing) -> str:
    if timing.timed_out:
        return "timed out"
    return f"p50 {_p50(timing.times):.1f} ms, p95 {_p95(timing.times):.1f} ms"


PATHS = (("http", "HTTP GraphQL"), ("duckdb", "DuckDB SQL"), ("sqlite", "SQLite"))


def _title(key: str) -> str:
    return dict(PATHS)[key]


def _report(results: dict[str, dict[str, Timing]]) -> None:
    paths = [(p, t) for p, t in PATHS if p in results]
    width = max(len(q.name) for q in QUERIES)
    print()
    print(f"p50 and p95 per query, milliseconds ({', '.join(t for _, t in paths)})")
    header = f"{'query':<{width}}  {'subjects':>8}  " + "  ".join(f"{t:>19}" for _, t in paths)
    if "http" in results:
        header += f"  {'GQL/DuckDB':>10}"
        if "sqlite" in results:
            header += f"  {'SQLite/GQL':>10}"
    print(header)
    for q in QUERIES:
        answer = results["duckdb"][q.name].answer
        subjects = answer.total[0] if answer else 0
        line = f"{q.name:<{width}}  {subjects:>8}  " + "  ".join(
            _fmt(results[p][q.name]) for p, _ in paths
        )
        if "http" in results:
            http = _p50(results["http"][q.name].times)
            line += f"  {http / _p50(results['duckdb'][q.name].times):>10.2f}"
            if "sqlite" in results:
                sqlite = results["sqlite"][q.name]
                mark = ">=" if sqlite.timed_out else "  "
                line += f"  {mark}{_p50(sqlite.times) / http:>8.1f}"
        print(line)
    print()
    overall = {p: [t for timing in results[p].values() for t in timing.times] for p, _ in paths}
    for p, title in paths:
        runs = overall[p]
        timeouts = sum(1 for timing in results[p].values() if timing.timed_out)
        note = f", {timeouts} queries timed out (counted at the cap)" if timeouts else ""
        print(
            f"{title:<13} p50 {_p50(runs):9.1f} ms   p95 {_p95(runs):9.1f} ms"
            f"   ({len(runs)} timed runs over {len(results[p])} queries{note})"
        )
    if "http" not in results:
        return
    duck_ratio = _p50(overall["http"]) / _p50(overall["duckdb"])
    verdict = "PASS" if duck_ratio <= GRAPHQL_VS_DUCKDB else "FAIL"
    print(
        f"{verdict}: GraphQL p50 / DuckDB SQL p50 = {duck_ratio:.2f}"
        f" (target <= {GRAPHQL_VS_DUCKDB:g})"
    )
    if "sqlite" in results:
        sqlite_ratio = _p50(overall["sqlite"]) / _p50(overall["http"])
        verdict = "PASS" if sqlite_ratio >= SQLITE_VS_GRAPHQL else "FAIL"
        bound = ">= " if any(t.timed_out for t in results["sqlite"].values()) else ""
        print(
            f"{verdict}: SQLite p50 / GraphQL p50 = {bound}{sqlite_ratio:.1f}"
            f" (target >= {SQLITE_VS_GRAPHQL:g})"
        )


def main() -> None:
    """Prepare, time the paths, check they agree, and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query")
    parser.add_argument(
        "--sqlite-repeat", type=int, default=3, help="timed runs per query on SQLite"
    )
    parser.add_argument(
        "--sqlite-cap", type=float, default=60.0, help="seconds before a SQLite run times out"
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="leave SQLite out")
    parser.add_argument(
        "--baselines-only",
        action="store_true",
        help="no harvest and no GraphQL: the SQL baselines and the reference check only",
    )
    parser.add_argument(
        "--reference", action="store_true", help="also check tests/reference/idc_sql.py"
    )
    args = parser.parse_args()
    data_dir: Path = args.data_dir.resolve()
    repeat: int = max(1, args.repeat)
    sqlite_repeat: int = max(1, args.sqlite_repeat)

    build(data_dir / "demo")
    parquet, collections_parquet, version = idc_paths()
    collections_csv = data_dir / "demo" / "collections.csv"
    if not args.baselines_only:
        prepare_demo(data_dir, Settings(data_dir=data_dir, disclosure=EXACT))

    with ExitStack() as stack:
        started = time.perf_counter()
        duck = load_duckdb(parquet, collections_csv, collections_parquet)
        stack.callback(duck.close)
        print(f"parsed idc_index.parquet into DuckDB in {time.perf_counter() - started:.1f} s")
        lanes = []
        if not args.baselines_only:
            client = stack.enter_context(_serve(data_dir))
            lanes.append(Lane("http", _graphql_runner(client), repeat))
        lanes.append(Lane("duckdb", _duckdb_runner(duck), repeat))
        if not args.skip_sqlite:
            stamp = json.dumps(
                {
                    "idc_index_data": version,
                    "schema": SCHEMA_VERSION,
                    "csv": collections_csv.stat().st_mtime,
                }
            )
            lite = open_sqlite(data_dir / "bench-rows.sqlite", duck, stamp, print)
            stack.callback(lite.close)
            runner = _sqlite_runner(lite, args.sqlite_cap)
            lanes.append(Lane("sqlite", runner, sqlite_repeat, warmups=1, cap=args.sqlite_cap))

        print(f"{len(QUERIES)} queries, timed round-robin over the paths:")
        for lane in lanes:
            cap = f", a run over {lane.cap:g} s is a timeout" if lane.cap else ""
            print(f"  {_title(lane.key)}: {lane.warmups} warm-ups, {lane.repeat} timed runs{cap}")
        results: dict[str, dict[str, Timing]] = {lane.key: {} for lane in lanes}
        for q in QUERIES:
            timings = _time_query(q, lanes)
            for key, timing in timings.items():
                results[key][q.name] = timing
            shown = ", ".join(f"{_title(k)} {_brief(t)}" for k, t in timings.items())
            print(f"  {q.name}: {shown}", flush=True)

    problems = []
    if args.baselines_only or args.reference:
        print("reference check (tests/reference/idc_sql.py) ...", flush=True)
        problems += _reference_check(collections_csv, results["duckdb"])
    for q in QUERIES:
        answers = {p: t[q.name].answer for p, t in results.items()}
        problems += _differences(q.name, {p: a for p, a in answers.items() if a is not None})
    _report(results)
    timeouts = [
        q.name for q in QUERIES if "sqlite" in results and results["sqlite"][q.name].timed_out
    ]
    if timeouts:
        print(f"\nSQLite timed out (not compared): {', '.join(timeouts)}")
    if problems:
        print()
        for line in problems:
            print(f"MISMATCH {line}")
        sys.exit(1)
    compared = " and ".join(t for p, t in PATHS if p in results)
    print(f"\n{compared} agree on every query (every provider, every strata cell)")


if __name__ == "__main__":
    main()
