"""Feasibility latency: the service layer, HTTP GraphQL and plain DuckDB SQL over the parquet.

    .venv/bin/python bench/feasibility.py [--data-dir DIR] [--repeat N]

Builds the IDC demo under DIR/demo and harvests it into DIR with exact disclosure (reusing a
harvest already in DIR), then times a mix of queries three ways: FeasibilityService.run in
process; GraphQL over HTTP against `catalogue serve`; and the independent reference evaluator
(tests/reference/idc_sql.py) straight over idc_index.parquet with a fresh DuckDB connection per
run. The three must agree; the target is an HTTP GraphQL median within 2x of plain SQL.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import httpx

from catalogue.config import DisclosureSettings, Settings, load_providers
from catalogue.domain.cohort import (
    CohortQuery,
    DatasetScope,
    ExactResult,
    SeriesCriteria,
    Sex,
    SubjectCriteria,
)
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.feasibility import Feasibility, FeasibilityService
from catalogue.services.ingest import harvest
from catalogue.services.runtime import open_catalogue
from examples.demo.idc import build, idc_paths

ROOT = Path(__file__).resolve().parents[1]
WARMUPS = 2
TARGET_RATIO = 2.0
EXACT_ENV = {"CATALOGUE_DISCLOSURE__THRESHOLD": "1", "CATALOGUE_DISCLOSURE__ROUNDING": "1"}

SELECTION = """{
    subjects { value suppressed }
    studies { value suppressed }
    series { value suppressed }
    byProvider { provider { id } subjects { value } studies { value } series { value } }
    byDataset {
      dataset { identifier provider { id } }
      subjects { value } studies { value } series { value }
    }
  }"""

Triple = tuple[int, int, int]
K = TypeVar("K")


@dataclass(frozen=True)
class BenchQuery:
    """One query of the mix, as a domain query and as the equivalent GraphQL input literal."""

    name: str
    cohort: CohortQuery
    graphql_input: str

    @property
    def graphql(self) -> str:
        return f"query {{\n  feasibility(query: {self.graphql_input}) {SELECTION}\n}}"


def _q(
    providers: tuple[str, ...] = (),
    datasets: tuple[str, ...] = (),
    sex: tuple[Sex, ...] = (),
    age_min: int | None = None,
    age_max: int | None = None,
    series: tuple[SeriesCriteria, ...] = (),
) -> CohortQuery:
    return CohortQuery(
        datasets=DatasetScope(providers=providers, datasets=datasets),
        subject=SubjectCriteria(sex=sex, age_min=age_min, age_max=age_max),
        series=series,
    )


QUERIES = (
    BenchQuery("no criteria", _q(), "{}"),
    BenchQuery("sex F", _q(sex=(Sex.FEMALE,)), "{subject: {sex: [FEMALE]}}"),
    BenchQuery("age 50-69", _q(age_min=50, age_max=69), "{subject: {ageMin: 50, ageMax: 69}}"),
    BenchQuery(
        "CT + CHEST",
        _q(series=(SeriesCriteria(modality=("CT",), body_part=("CHEST",)),)),
        '{series: [{modality: ["CT"], bodyPart: ["CHEST"]}]}',
    ),
    BenchQuery(
        "MR + BREAST, F 40-60",
        _q(
            sex=(Sex.FEMALE,),
            age_min=40,
            age_max=60,
            series=(SeriesCriteria(modality=("MR",), body_part=("BREAST",)),),
        ),
        "{subject: {sex: [FEMALE], ageMin: 40, ageMax: 60}, "
        'series: [{modality: ["MR"], bodyPart: ["BREAST"]}]}',
    ),
    BenchQuery(
        "provider neuro-head-neck, MR",
        _q(providers=("neuro-head-neck",), series=(SeriesCriteria(modality=("MR",)),)),
        '{datasets: {providers: ["neuro-head-neck"]}, series: [{modality: ["MR"]}]}',
    ),
    BenchQuery(
        "datasets nlst, tcga_luad",
        _q(datasets=("nlst", "tcga_luad")),
        '{datasets: {datasets: ["nlst", "tcga_luad"]}}',
    ),
    BenchQuery(
        "CT and PT",
        _q(series=(SeriesCriteria(modality=("CT",)), SeriesCriteria(modality=("PT",)))),
        '{series: [{modality: ["CT"]}, {modality: ["PT"]}]}',
    ),
    BenchQuery(
        "manufacturer SIEMENS",
        _q(series=(SeriesCriteria(manufacturer=("SIEMENS",)),)),
        '{series: [{manufacturer: ["SIEMENS"]}]}',
    ),
    BenchQuery(
        "SEG", _q(series=(SeriesCriteria(modality=("SEG",)),)), '{series: [{modality: ["SEG"]}]}'
    ),
    BenchQuery(
        "body part PROSTATE | PELVIS",
        _q(series=(SeriesCriteria(body_part=("PROSTATE", "PELVIS")),)),
        '{series: [{bodyPart: ["PROSTATE", "PELVIS"]}]}',
    ),
    BenchQuery(
        "thoracic, 55-74, CT",
        _q(
            providers=("thoracic",),
            age_min=55,
            age_max=74,
            series=(SeriesCriteria(modality=("CT",)),),
        ),
        '{datasets: {providers: ["thoracic"]}, subject: {ageMin: 55, ageMax: 74}, '
        'series: [{modality: ["CT"]}]}',
    ),
    BenchQuery(
        "sex M | O, age >= 80",
        _q(sex=(Sex.MALE, Sex.OTHER), age_min=80),
        "{subject: {sex: [MALE, OTHER], ageMin: 80}}",
    ),
    BenchQuery(
        "unnormalised body parts",
        _q(series=(SeriesCriteria(body_part=(" left  breast", "RIGHT breast")),)),
        '{series: [{bodyPart: [" left  breast", "RIGHT breast"]}]}',
    ),
    BenchQuery(
        "breast+multi-site, sex U, MG | DX",
        _q(
            providers=("breast", "multi-site"),
            sex=(Sex.UNKNOWN,),
            series=(SeriesCriteria(modality=("MG", "DX")),),
        ),
        '{datasets: {providers: ["breast", "multi-site"]}, subject: {sex: [UNKNOWN]}, '
        'series: [{modality: ["MG", "DX"]}]}',
    ),
)


@dataclass(frozen=True)
class Answer:
    """Counts of one answer, whichever path produced it: (subjects, studies, series)."""

    total: Triple
    providers: dict[str, Triple]
    datasets: dict[tuple[str, str], Triple]


def _value(count: Any) -> int:
    value = count.value if hasattr(count, "value") else count["value"]
    if value is None:
        raise RuntimeError("a suppressed count: the disclosure settings are not exact")
    return int(value)


def _from_service(answer: Feasibility) -> Answer:
    def triple(cell: Any) -> Triple:
        return (_value(cell.subjects), _value(cell.studies), _value(cell.series))

    return Answer(
        total=triple(answer.total),
        providers={p.id: triple(c) for p, c in answer.by_provider},
        datasets={(d.provider_id, d.identifier): triple(c) for d, c in answer.by_dataset},
    )


def _from_graphql(body: dict[str, Any]) -> Answer:
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    data = body["data"]["feasibility"]

    def triple(cell: dict[str, Any]) -> Triple:
        return (_value(cell["subjects"]), _value(cell["studies"]), _value(cell["series"]))

    return Answer(
        total=triple(data),
        providers={c["provider"]["id"]: triple(c) for c in data["byProvider"]},
        datasets={
            (c["dataset"]["provider"]["id"], c["dataset"]["identifier"]): triple(c)
            for c in data["byDataset"]
        },
    )


def _from_exact(result: ExactResult) -> Answer:
    def triple(c: Any) -> Triple:
        return (c.subjects, c.studies, c.series)

    return Answer(
        total=triple(result.total),
        providers={p: triple(c) for p, c in result.by_provider.items()},
        datasets={k: triple(c) for k, c in result.by_dataset.items()},
    )


def _timed(run: Callable[[], Answer], repeat: int) -> tuple[Answer, list[float]]:
    """Warm up, then time `repeat` runs; milliseconds, and the last answer."""
    answer = run()
    for _ in range(WARMUPS - 1):
        answer = run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = run()
        times.append((time.perf_counter() - started) * 1000)
    return answer, times


def _prepare(data_dir: Path, settings: Settings) -> None:
    """Build the demo, and harvest it unless the data folder already holds a harvest."""
    providers = build(data_dir / "demo")
    if (data_dir / "store").exists():
        print(f"reusing the harvest in {data_dir}")
        return
    print(f"harvesting {providers} into {data_dir} ...", flush=True)
    started = time.perf_counter()
    with open_catalogue(settings) as cat:
        report = harvest(cat, load_providers(providers))
    print(f"harvest took {time.perf_counter() - started:.1f} s")
    if not report.ok:
        for failed in report.failed:
            print(f"harvest failed: {failed.provider_id}/{failed.source_id}: {failed.error}")
        sys.exit(1)


def _service_path(settings: Settings, repeat: int) -> dict[str, tuple[Answer, list[float]]]:
    out = {}
    with open_catalogue(settings) as cat:
        service = FeasibilityService(CatalogueView(cat))

        def ask(query: CohortQuery) -> Answer:
            return _from_service(service.run(query))

        for q in QUERIES:
            out[q.name] = _timed(partial(ask, q.cohort), repeat)
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_path(data_dir: Path, repeat: int) -> dict[str, tuple[Answer, list[float]]]:
    port = _free_port()
    env = {**os.environ, "CATALOGUE_DATA_DIR": str(data_dir), **EXACT_ENV}
    executable = Path(sys.executable).with_name("catalogue")
    log_path = data_dir / "bench-serve.log"
    out = {}
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(executable), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=120) as client:
                _wait_healthy(client, server, log_path)

                def ask(text: str) -> Answer:
                    response = client.post("/graphql", json={"query": text})
                    return _from_graphql(response.raise_for_status().json())

                for q in QUERIES:
                    out[q.name] = _timed(partial(ask, q.graphql), repeat)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return out


def _wait_healthy(client: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}); see {log}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within 120 s; see {log}")


def _sql_path(collections_csv: Path, repeat: int) -> dict[str, tuple[Answer, list[float]]]:
    sys.path.insert(0, str(ROOT))
    from tests.reference.idc_sql import reference_counts

    parquet = idc_paths()[0]

    def run(query: CohortQuery) -> Answer:
        con = duckdb.connect()
        try:
            return _from_exact(reference_counts(con, parquet, collections_csv, query))
        finally:
            con.close()

    return {q.name: _timed(partial(run, q.cohort), repeat) for q in QUERIES}


def _differences(name: str, answers: dict[str, Answer]) -> list[str]:
    """Every disagreement between the paths: totals and provider subjects first, then the
    other per-provider and per-dataset cells."""
    found = []
    reference = answers["sql"]
    for path, answer in answers.items():
        if path == "sql":
            continue
        if answer.total != reference.total:
            found.append(f"{name}: total {path}={answer.total} sql={reference.total}")
        found += _cells(f"{name}: provider", path, answer.providers, reference.providers)
        found += _cells(f"{name}: dataset", path, answer.datasets, reference.datasets)
    return found


def _cells(
    label: str, path: str, mine: Mapping[K, Triple], theirs: Mapping[K, Triple]
) -> list[str]:
    keys = sorted(set(mine) | set(theirs), key=str)
    return [
        f"{label} {key} {path}={mine.get(key)} sql={theirs.get(key)}"
        for key in keys
        if mine.get(key) != theirs.get(key)
    ]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _report(results: dict[str, dict[str, tuple[Answer, list[float]]]]) -> None:
    paths = (("service", "service"), ("http", "HTTP GraphQL"), ("sql", "plain SQL"))
    width = max(len(q.name) for q in QUERIES)
    print()
    print(f"{'query':<{width}}  {'subjects':>8}  " + "  ".join(f"{t:>12}" for _, t in paths))
    for q in QUERIES:
        medians = "  ".join(
            f"{statistics.median(results[p][q.name][1]):>9.1f} ms" for p, _ in paths
        )
        subjects = results["sql"][q.name][0].total[0]
        print(f"{q.name:<{width}}  {subjects:>8}  {medians}")
    print()
    overall = {p: [t for _, times in results[p].values() for t in times] for p, _ in paths}
    for p, title in paths:
        runs = overall[p]
        print(
            f"{title:<13} median {statistics.median(runs):8.1f} ms   p95 {_p95(runs):8.1f} ms"
            f"   ({len(runs)} timed runs)"
        )
    sql_median = statistics.median(overall["sql"])
    http_ratio = statistics.median(overall["http"]) / sql_median
    service_ratio = statistics.median(overall["service"]) / sql_median
    print(f"HTTP GraphQL / plain SQL (medians): {http_ratio:.2f}")
    print(f"service / plain SQL (medians):      {service_ratio:.2f}")
    verdict = "MET" if http_ratio <= TARGET_RATIO else "NOT MET"
    print(f"target: HTTP GraphQL median within {TARGET_RATIO:g}x of plain SQL -> {verdict}")


def main() -> None:
    """Prepare, time the three paths, check they agree, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    data_dir: Path = args.data_dir.resolve()
    repeat: int = max(1, args.repeat)
    settings = Settings(data_dir=data_dir, disclosure=DisclosureSettings(threshold=1, rounding=1))

    _prepare(data_dir, settings)
    results = {}
    print(f"timing {len(QUERIES)} queries, {WARMUPS} warm-ups + {repeat} runs each per path")
    print("(a) service layer ...", flush=True)
    results["service"] = _service_path(settings, repeat)
    print("(b) HTTP GraphQL ...", flush=True)
    results["http"] = _http_path(data_dir, repeat)
    print("(c) plain DuckDB SQL over the parquet ...", flush=True)
    results["sql"] = _sql_path(data_dir / "demo" / "collections.csv", repeat)

    problems = []
    for q in QUERIES:
        problems += _differences(q.name, {p: results[p][q.name][0] for p in results})
    _report(results)
    if problems:
        print()
        for line in problems:
            print(f"MISMATCH {line}")
        sys.exit(1)
    print("\nall three paths agree on every query (totals, every provider and every dataset)")


if __name__ == "__main__":
    main()
