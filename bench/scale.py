"""Scale: ingest throughput and feasibility latency on N x the IDC data, embedded and Elasticsearch.

    .venv/bin/python bench/scale.py [--factor 10] [--work-dir data/bench-scale] [--repeat 5]
        [--lanes embedded,elasticsearch] [--reuse-harvest] [--es-heap 1g]

Generates --factor times the IDC rows, real-shaped (bench/scale_data.py: fresh identifiers per
copy, the demo's six providers and 179 datasets), under --work-dir, reusing an earlier
generation. Then, per lane, in the same process:

- embedded (always): tantivy + DuckDB + Oxigraph in WORK/embedded-x<factor>;
- elasticsearch: IndexSettings(backend="elasticsearch") on a single node started with
  tests/services/elasticsearch.py (Oxigraph still holds the graph), when an `elasticsearch`
  cohort index plugin is registered and Maven and a JDK are there; else the run says why not.

Each lane harvests the providers file through the real `harvest` (a fresh folder, or
--reuse-harvest) and prints the ingest time and series/s, then answers the query mix of
bench/feasibility.py through `FeasibilityService.run` in process (exact disclosure, the audit
log written as in production; no HTTP), each query warmed up then timed --repeat times
round-robin over the lanes, and prints p50/p95 per query and lane. The lanes' answers must be
equal (every provider, every strata cell): a difference is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from feasibility import EXACT, QUERIES, WARMUPS, BenchQuery, Lane, Timing, _p50, _p95, _time_query
from feasibility_sql import Answer, StrataKey, Triple, compile_sql, load_duckdb
from feasibility_sql import answer_of as sql_answer
from scale_data import Generation, generate

from catalogue import plugins
from catalogue.config import ElasticsearchSettings, IndexSettings, Settings, load_providers
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.disclosure import PublishedCell
from catalogue.services.feasibility import Feasibility, FeasibilityService
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue
from examples.demo.idc import idc_paths

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-scale"
"""One deployment secret for every lane: the same pseudonyms everywhere."""
LANES = ("embedded", "elasticsearch")
TITLES = {"embedded": "embedded (tantivy+DuckDB)", "elasticsearch": "Elasticsearch"}


# --- machine and versions --------------------------------------------------------------------


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> str:
    packages = ("duckdb", "tantivy", "pyoxigraph", "idc-index-data", "elasticsearch")
    versions = ", ".join(f"{p} {_version(p)}" for p in packages)
    return (
        f"machine: {os.cpu_count()} cores, {_memory_gib():.1f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}\nversions: {versions}"
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


# --- the Elasticsearch lane's node -----------------------------------------------------------


@dataclass(frozen=True)
class Node:
    url: str
    version: str


def elasticsearch_unavailable() -> str | None:
    """Why the Elasticsearch lane cannot run here, or None."""
    known = plugins.available(plugins.COHORT_INDEXES)
    if "elasticsearch" not in known:
        return f"no `elasticsearch` cohort index plugin registered (known: {', '.join(known)})"
    for group in (plugins.COHORT_INDEXES, plugins.DATASET_INDEXES):
        try:
            plugins.load(group, "elasticsearch")
        except Exception as exc:
            return str(exc)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import tests.conftest  # noqa: F401  (first: tests.services.elasticsearch imports it)
    from tests.services.elasticsearch import elasticsearch_available

    ok, reason = elasticsearch_available()
    return None if ok else reason


@contextmanager
def elasticsearch_node(work_dir: Path, heap: str) -> Iterator[Node]:
    """A fresh single-node cluster (tests/services/elasticsearch.py) with its home in
    `work_dir`, stopped on exit."""
    import tests.services.elasticsearch as es

    es.HEAP = (f"-Xms{heap}", f"-Xmx{heap}")
    if work_dir.exists():
        shutil.rmtree(work_dir)
    try:
        node = es.start_elasticsearch(work_dir)
    except BaseException as exc:  # pytest.fail raises an OutcomeException (a BaseException)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise RuntimeError(f"the Elasticsearch node did not start: {exc}") from exc
    try:
        yield Node(node.url, node.version)
    finally:
        es.stop_elasticsearch(node)


def elasticsearch_sizes(url: str, prefix: str) -> str:
    """Documents and store size of the lane's indices, from _cat/indices."""
    response = httpx.get(
        f"{url}/_cat/indices/{prefix}*",
        params={"format": "json", "bytes": "b", "h": "index,docs.count,store.size,pri"},
        timeout=60,
    )
    lines = []
    for row in sorted(response.raise_for_status().json(), key=lambda r: str(r["index"])):
        size = int(row.get("store.size") or 0)
        lines.append(
            f"    {row['index']}: {int(row['docs.count'] or 0):,} docs, {_gib(size)}, "
            f"{row['pri']} primary shard(s)"
        )
    return "\n".join(lines)


# --- a lane: harvest, then answers -----------------------------------------------------------


def lane_settings(lane: str, data_dir: Path, node: Node | None) -> Settings:
    if lane == "embedded":
        index = IndexSettings(backend="embedded")
    else:
        assert node is not None
        index = IndexSettings(
            backend="elasticsearch",
            elasticsearch=ElasticsearchSettings(url=node.url, index_prefix="bench-scale"),
        )
    return Settings(data_dir=data_dir, secret=SECRET, disclosure=EXACT, index=index, providers=None)


def ingest(cat: Catalogue, generation: Generation, title: str) -> HarvestReport:
    """Harvest the generated providers file, printing progress about every million series."""
    done = {"rows": 0, "next": 1_000_000}
    started = time.perf_counter()

    def progress(label: str, rows: int) -> None:
        done["rows"] += rows
        if done["rows"] >= done["next"]:
            done["next"] += 1_000_000
            elapsed = time.perf_counter() - started
            print(f"    {title}: {done['rows']:,} series read in {elapsed:.0f} s", flush=True)

    report = harvest(cat, load_providers(generation.providers_file), progress=progress)
    if not report.ok:
        for failed in report.failed:
            print(f"harvest failed: {failed.provider_id}/{failed.source_id}: {failed.error}")
        sys.exit(1)
    return report


def _triple(cell: PublishedCell) -> Triple:
    values = (cell.subjects.value, cell.studies.value, cell.series.value)
    if any(v is None for v in values):
        raise RuntimeError("a suppressed count: the disclosure settings are not exact")
    return (int(values[0] or 0), int(values[1] or 0), int(values[2] or 0))


def answer_of(result: Feasibility) -> Answer:
    strata: dict[StrataKey, dict[tuple[str | None, ...], Triple]] = {}
    for table in result.strata:
        strata[table.dimensions] = {c.values: _triple(c.cell) for c in table.cells}
    answer = Answer({p.id: _triple(c) for p, c in result.by_provider}, strata)
    if _triple(result.total) != answer.total:
        raise RuntimeError(f"total {_triple(result.total)} is not the providers' sum")
    return answer


FAILED = Answer({"(the lane failed)": (-1, -1, -1)})
"""The answer recorded for a run that raised (the error is kept in `failures`)."""


def service_runner(
    lane: str, service: FeasibilityService, failures: dict[tuple[str, str], str]
) -> Callable[[BenchQuery], Callable[[], Answer]]:
    """Runs of `service`; a run that raises records its error in `failures` (the query is then
    reported as failed on this lane, and the exit status is 1) instead of ending the bench."""

    def prepare(q: BenchQuery) -> Callable[[], Answer]:
        def run() -> Answer:
            try:
                return answer_of(service.run(q.cohort, strata=q.strata))
            except Exception as exc:
                cause = getattr(exc.__cause__, "info", None) or exc.__cause__ or ""
                failures[(lane, q.name)] = f"{type(exc).__name__}: {exc} {cause}"[:2000]
                return FAILED

        return run

    return prepare


@dataclass
class Ingest:
    series: int
    seconds: float
    disk: str


def open_lane(
    stack: ExitStack, lane: str, args: argparse.Namespace, generation: Generation
) -> tuple[FeasibilityService, Ingest | None]:
    """Harvest (or reuse) one lane's catalogue; its feasibility service and ingest figures."""
    factor = f"x{generation.factor:g}"
    data_dir = (args.work_dir / f"{lane}-{factor}").resolve()
    node = None
    if lane == "elasticsearch":
        node = stack.enter_context(elasticsearch_node(args.work_dir / "es-node", args.es_heap))
        print(f"  Elasticsearch {node.version} at {node.url}, heap {args.es_heap}")
    stamp = data_dir / "ingest.json"
    reuse = lane == "embedded" and args.reuse_harvest and stamp.exists()
    if reuse and json.loads(stamp.read_text()).get("rows") != generation.rows:
        reuse = False
    if not reuse and data_dir.exists():
        shutil.rmtree(data_dir)
    cat = stack.enter_context(open_catalogue(lane_settings(lane, data_dir, node)))
    title = TITLES[lane]
    figures = None
    if reuse:
        print(f"  {title}: reusing the harvest in {data_dir} ({stamp.read_text().strip()})")
    else:
        print(f"  {title}: harvesting {generation.rows:,} series into {data_dir} ...", flush=True)
        report = ingest(cat, generation, title)
        series = sum(s.series for s in report.sources)
        if lane == "embedded":
            cohort, datasets = data_dir / "index" / "cohort-duckdb", data_dir / "index"
            disk = f"cohort index {_gib(_size(cohort))}, all indexes {_gib(_size(datasets))}"
        else:
            assert node is not None
            httpx.post(f"{node.url}/bench-scale*/_refresh", timeout=120)
            disk = "\n" + elasticsearch_sizes(node.url, "bench-scale")
        disk += f"; graph store {_gib(_size(data_dir / 'store'))}"
        figures = Ingest(series, report.seconds, disk)
        stamp.write_text(
            json.dumps({"rows": generation.rows, "series": series, "seconds": report.seconds})
        )
    if node is not None and not args.es_request_cache:
        httpx.put(
            f"{node.url}/bench-scale*/_settings",
            json={"index": {"requests": {"cache": {"enable": False}}}},
            timeout=60,
        ).raise_for_status()
        print("  Elasticsearch's shard request cache is off: every timed run computes its answer")
    return FeasibilityService(CatalogueView(cat)), figures


# --- comparison and report -------------------------------------------------------------------


def differences(name: str, answers: dict[str, Answer]) -> list[str]:
    """Every disagreement of a lane with the embedded lane: per provider, then per strata cell."""
    found = []
    reference = answers["embedded"].nonzero()
    for lane, answer in answers.items():
        if lane == "embedded":
            continue
        mine = answer.nonzero()
        for key in sorted(set(mine.providers) | set(reference.providers)):
            a, b = mine.providers.get(key), reference.providers.get(key)
            if a != b:
                found.append(f"{name}: provider {key} {lane}={a} embedded={b}")
        for dims in sorted(set(mine.strata) | set(reference.strata)):
            cells, theirs = mine.strata.get(dims, {}), reference.strata.get(dims, {})
            for cell in sorted(set(cells) | set(theirs), key=str):
                if cells.get(cell) != theirs.get(cell):
                    found.append(
                        f"{name}: strata {[d.name for d in dims]} {cell} "
                        f"{lane}={cells.get(cell)} embedded={theirs.get(cell)}"
                    )
    return found


def report(results: dict[str, dict[str, Timing]], failed: set[tuple[str, str]]) -> None:
    """The table of p50/p95 per query and lane, the ratios, and the overall figures (over the
    queries every lane answered)."""
    ok = [q for q in QUERIES if not any((k, q.name) in failed for k in results)]
    lanes = [lane for lane in LANES if lane in results]
    width = max(len(q.name) for q in QUERIES)
    print("\np50 and p95 per query, milliseconds (" + ", ".join(TITLES[k] for k in lanes) + ")")
    header = f"{'query':<{width}}  {'subjects':>9}  " + "  ".join(f"{k:>19}" for k in lanes)
    if "elasticsearch" in results:
        header += f"  {'ES/embedded':>11}"
    print(header)
    for q in QUERIES:
        answer = results["embedded"][q.name].answer
        subjects = answer.total[0] if answer else 0
        cells = []
        for lane in lanes:
            times = results[lane][q.name].times
            cells.append(
                f"{'FAILED':>19}"
                if (lane, q.name) in failed
                else f"{_p50(times):>8.1f} {_p95(times):>8.1f} ms"
            )
        line = f"{q.name:<{width}}  {subjects:>9}  " + "  ".join(cells)
        if "elasticsearch" in results and q in ok:
            ratio = _p50(results["elasticsearch"][q.name].times) / _p50(
                results["embedded"][q.name].times
            )
            line += f"  {ratio:>11.2f}"
        print(line)
    print()
    if not ok:
        print("no query answered on every lane")
        return
    overall = {k: [t for q in ok for t in results[k][q.name].times] for k in lanes}
    for lane in lanes:
        runs = overall[lane]
        print(
            f"{TITLES[lane]:<26} p50 {_p50(runs):9.1f} ms   p95 {_p95(runs):9.1f} ms"
            f"   ({len(runs)} timed runs over the {len(ok)} queries every lane answered)"
        )
    if "elasticsearch" in overall:
        es, emb = overall["elasticsearch"], overall["embedded"]
        print(f"ES/embedded: p50 {_p50(es) / _p50(emb):.2f}, p95 {_p95(es) / _p95(emb):.2f}")


def scaling_differences(
    work_dir: Path, factor: int, answers: dict[str, Answer]
) -> tuple[list[str], float]:
    """Compare each answer with `factor` times the DuckDB SQL baseline of bench/feasibility.py
    over the real idc_index.parquet (an independent path: another parsing of the rows, one SQL
    statement per query); the differences and the seconds the baseline took."""
    parquet, collections_parquet, _ = idc_paths()
    started = time.perf_counter()
    con = load_duckdb(parquet, work_dir / "demo" / "collections.csv", collections_parquet)
    found = []
    try:
        for q in QUERIES:
            base = sql_answer(con.execute(compile_sql(q.cohort, q.strata)).fetchall(), q.strata)
            scaled = Answer(
                {p: _times(t, factor) for p, t in base.providers.items()},
                {
                    k: {v: _times(t, factor) for v, t in cells.items()}
                    for k, cells in base.strata.items()
                },
            )
            found += [
                line.replace("embedded=", f"{factor}xSQL=")
                for line in differences(q.name, {"embedded": scaled, "lane": answers[q.name]})
            ]
    finally:
        con.close()
    return found, time.perf_counter() - started


def _times(triple: Triple, factor: int) -> Triple:
    return (triple[0] * factor, triple[1] * factor, triple[2] * factor)


def main() -> None:
    """Generate, ingest and time every lane that can run, check they agree, print figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--factor", type=float, default=10.0, help="times the IDC rows")
    parser.add_argument("--work-dir", type=Path, default=Path("data/bench-scale"))
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query and lane")
    parser.add_argument(
        "--lanes", default=",".join(LANES), help="lanes to try (embedded always runs)"
    )
    parser.add_argument(
        "--reuse-harvest",
        action="store_true",
        help="reuse the embedded lane's harvest of the same data (no ingest figures)",
    )
    parser.add_argument("--es-heap", default="1g", help="the Elasticsearch node's JVM heap")
    parser.add_argument(
        "--es-request-cache",
        action="store_true",
        help="keep Elasticsearch's shard request cache on (its default; off by default here, as "
        "the warm-ups would otherwise answer the timed runs of the same question from it)",
    )
    parser.add_argument(
        "--check-scaling",
        action="store_true",
        help="(whole factors) also check the embedded answers against factor x the DuckDB SQL "
        "baseline of bench/feasibility.py on the real IDC rows",
    )
    args = parser.parse_args()
    args.work_dir = args.work_dir.resolve()
    repeat = max(1, args.repeat)
    print(machine_facts())
    print(f"load average at start: {os.getloadavg()[0]:.2f} (other work on the machine is noise)")

    started = time.perf_counter()
    generation = generate(args.work_dir, args.factor)
    made = "reused" if generation.reused else f"written in {time.perf_counter() - started:.1f} s"
    print(
        f"data: x{args.factor:g} the IDC rows = {generation.rows:,} series over "
        f"{len(generation.rows_by_provider)} providers ({made}): {generation.providers_file}"
    )

    wanted = ["embedded"] + [k for k in args.lanes.split(",") if k.strip() == "elasticsearch"]
    skipped: dict[str, str] = {}
    if "elasticsearch" in wanted:
        reason = elasticsearch_unavailable()
        if reason:
            skipped["elasticsearch"] = reason
            wanted.remove("elasticsearch")
    else:
        skipped["elasticsearch"] = "not asked for (--lanes)"
    print("lanes: " + ", ".join(f"{TITLES[k]} RUNS" for k in wanted), end="")
    print("".join(f"; {TITLES[k]} SKIPPED: {why}" for k, why in skipped.items()))

    with ExitStack() as stack:
        services: dict[str, FeasibilityService] = {}
        ingests: dict[str, Ingest | None] = {}
        for lane in wanted:
            services[lane], ingests[lane] = open_lane(stack, lane, args, generation)
            figures = ingests[lane]
            if figures is not None:
                print(
                    f"  {TITLES[lane]}: ingest {figures.series:,} series in "
                    f"{figures.seconds:.1f} s = {figures.series / figures.seconds:,.0f} series/s"
                    f"; {figures.disk}"
                )
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"  peak RSS of this process so far: {peak:.2f} GiB", flush=True)

        failures: dict[tuple[str, str], str] = {}
        lanes = [Lane(k, service_runner(k, services[k], failures), repeat) for k in wanted]
        print(
            f"{len(QUERIES)} queries through FeasibilityService.run (in process, exact "
            f"disclosure), {WARMUPS} warm-ups and {repeat} timed runs each, round-robin:"
        )
        results: dict[str, dict[str, Timing]] = {k: {} for k in wanted}
        for q in QUERIES:
            timings = _time_query(q, lanes)
            for key, timing in timings.items():
                results[key][q.name] = timing
            for key, timing in timings.items():
                if (key, q.name) in failures:
                    timing.answer = None
            shown = ", ".join(
                f"{TITLES[k]} FAILED"
                if (k, q.name) in failures
                else f"{TITLES[k]} p50 {_p50(t.times):.1f} ms, p95 {_p95(t.times):.1f} ms"
                for k, t in timings.items()
            )
            print(f"  {q.name}: {shown}", flush=True)

    problems = [f"{q}: {TITLES[k]} failed: {why}" for (k, q), why in failures.items()]
    for q in QUERIES:
        answers = {k: r[q.name].answer for k, r in results.items()}
        problems += differences(q.name, {k: a for k, a in answers.items() if a is not None})
    report(results, set(failures))
    if args.check_scaling:
        if args.factor != int(args.factor):
            print("\nscaling check skipped: the factor is not a whole number")
        else:
            embedded = {q: t.answer for q, t in results["embedded"].items() if t.answer}
            found, seconds = scaling_differences(args.work_dir, int(args.factor), embedded)
            problems += found
            verdict = f"{len(found)} differences" if found else "equal on every query"
            print(
                f"\nscaling check: embedded answers vs {int(args.factor)} x DuckDB SQL over "
                f"the real IDC rows ({seconds:.1f} s): {verdict}"
            )
    print("\nlanes run: " + ", ".join(TITLES[k] for k in wanted))
    for lane, why in skipped.items():
        print(f"lane not run: {TITLES[lane]}: {why}")
    if problems:
        print()
        for line in problems:
            print(f"MISMATCH {line}")
        sys.exit(1)
    if len(wanted) > 1:
        print("the lanes agree on every query (every provider, every strata cell)")


if __name__ == "__main__":
    main()
