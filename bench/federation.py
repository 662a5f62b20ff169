"""Federated feasibility latency: the query mix through a hub fanning out to 3 and to 10 local
nodes, beside a central catalogue holding the same data, in the same run.

    .venv/bin/python bench/federation.py [--work-dir DIR] [--series N] [--repeat N]

Builds the IDC demo under DIR/demo and keeps its smallest collections up to about N series in
all (--series, default 20000), from the five demo providers. Then for each split (3 and 10
nodes) it deals those collections out over that many providers `node-00`, `node-01`, ...
(largest first, each to the provider holding fewest series), and starts, for each provider, a
node (`catalogue serve` in node mode on that provider's slice, with a hub token and a response
key, so that the signature check is part of what is timed); a hub whose providers are all
`federated-node` sources; and a central catalogue that harvested every slice of that split
itself. All with exact disclosure.

The mix is bench/feasibility.py's QUERIES without strata tables (not answered across federated
providers yet) and without dataset scopes (they name the demo's providers, which the splits
replace). Each query is warmed up on every path, then timed round-robin over the four paths
(hub and central of each split), through HTTP GraphQL. The hub's answers must equal the
central catalogue's of the same split, per provider and in total; any difference is printed and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx
import yaml
from feasibility import (
    EXACT_ENV,
    GRAPHQL,
    QUERIES,
    BenchQuery,
    Lane,
    Runner,
    Timing,
    _from_graphql,
    _p50,
    _p95,
    _time_query,
)
from feasibility_sql import Answer
from serving import NO_AUTH, NO_RATE_LIMITS, serve

from catalogue.config import Settings, load_providers
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore
from catalogue.services.ingest import harvest
from catalogue.services.runtime import open_catalogue
from examples.demo.idc import build

DEMO_PROVIDERS = ("thoracic", "breast", "genitourinary", "abdominal", "neuro-head-neck")
SPLITS = (3, 10)
SECRET = "bench-federation-secret-0123456789"
NODE_ENV = {**EXACT_ENV, **NO_RATE_LIMITS, "CATALOGUE_SECRET": SECRET}


def _collections(demo: Path, budget: int) -> list[tuple[str, Path, int]]:
    """The smallest collections of the demo providers up to about `budget` series in all:
    (collection, its provider's series table, series)."""
    sizes: list[tuple[str, Path, int]] = []
    for provider in DEMO_PROVIDERS:
        table = demo / provider / "series.parquet"
        rows = duckdb.execute(
            f"SELECT collection_id, count(*) FROM read_parquet('{table}') GROUP BY 1"
        ).fetchall()
        sizes.extend((str(c), table, int(n)) for c, n in rows)
    sizes.sort(key=lambda item: (item[2], item[0]))
    kept, total = [], 0
    for item in sizes:
        if total + item[2] <= budget:
            kept.append(item)
            total += item[2]
    return kept


def _slices(collections: list[tuple[str, Path, int]], count: int, out: Path) -> list[Path]:
    """`count` series tables under `out`, the collections dealt out largest first to the
    slice holding fewest series."""
    loads: list[list[Any]] = [[0, []] for _ in range(count)]
    for item in sorted(collections, key=lambda c: -c[2]):
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += item[2]
        lightest[1].append(item)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (_, items) in enumerate(loads):
        path = out / f"node-{index:02d}.parquet"
        parts = " UNION ALL ".join(
            f"SELECT * FROM read_parquet('{table}') WHERE collection_id = '{collection}'"
            for collection, table, _ in items
        )
        duckdb.execute(f"COPY ({parts}) TO '{path}' (FORMAT parquet)")
        paths.append(path)
    return paths


def _entry(name: str, table: Path) -> dict[str, Any]:
    source = {"kind": "dicom-table", "id": "series", "path": str(table)}
    source["dataset_column"] = "collection_id"
    return {"id": name, "name": f"Bench {name}", "sources": [source]}


def _harvested(data_dir: Path, providers: list[dict[str, Any]]) -> Path:
    """Harvest `providers` into `data_dir` (exact disclosure); the providers file."""
    path = data_dir.with_suffix(".yaml")
    path.write_text(yaml.safe_dump({"providers": providers}, sort_keys=False))
    settings = Settings(data_dir=data_dir, providers=path, secret=SECRET)
    with open_catalogue(settings) as cat:
        report = harvest(cat, load_providers(path))
    if not report.ok:
        sys.exit(f"harvest of {path} failed: {[f.error for f in report.failed]}")
    return path


@contextmanager
def _split(root: Path, tables: list[Path]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Nodes on the slices, a hub asking them, and a central catalogue of every slice: a client
    of the hub and one of the central catalogue."""
    with ExitStack() as stack:
        federated = []
        names = [table.stem for table in tables]
        for name, table in zip(names, tables, strict=True):
            data_dir = root / name
            _harvested(data_dir, [_entry(name, table)])
            token = ApiTokenStore(data_dir).create("hub", [Role.HUB])
            key = f"response-key-{name}-0123456789"
            env = {
                **NODE_ENV,
                "CATALOGUE_NODE__ENABLED": "true",
                "CATALOGUE_NODE__EXCLUSIVE": "true",
                "CATALOGUE_NODE__RESPONSE_KEY": key,
            }
            node = stack.enter_context(serve(data_dir, env, "node.log"))
            source: dict[str, Any] = {"kind": "federated-node", "id": "node", "url": node.url}
            source.update({"token": token, "node_key": key, "timeout": 60})
            federated.append({"id": name, "name": f"Bench {name}", "sources": [source]})
        hub_dir = root / "hub"
        hub_file = _harvested(hub_dir, federated)
        hub_env = {**NODE_ENV, **NO_AUTH, "CATALOGUE_PROVIDERS": str(hub_file)}
        hub = stack.enter_context(serve(hub_dir, hub_env, "hub.log"))
        central_dir = root / "central"
        _harvested(central_dir, [_entry(n, t) for n, t in zip(names, tables, strict=True)])
        central = stack.enter_context(serve(central_dir, {**NODE_ENV, **NO_AUTH}, "central.log"))
        hub_client = httpx.Client(base_url=hub.url, timeout=300)
        central_client = httpx.Client(base_url=central.url, timeout=300)
        stack.enter_context(hub_client)
        stack.enter_context(central_client)
        yield hub_client, central_client


def _lane(key: str, client: httpx.Client, repeat: int) -> Lane:
    def prepare(q: BenchQuery) -> Runner:
        payload = {"query": GRAPHQL, "variables": q.graphql_variables}

        def run() -> Answer:
            return _from_graphql(client.post("/graphql", json=payload).raise_for_status().json())

        return run

    return Lane(key, prepare, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("data/bench-federation"))
    parser.add_argument("--series", type=int, default=20000, help="series in all the slices")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per query and path")
    args = parser.parse_args()
    args.work_dir = args.work_dir.resolve()  # the providers files name paths under it
    root: Path = args.work_dir
    demo = Path(build(root / "demo")).parent
    collections = _collections(demo, args.series)
    series = sum(c[2] for c in collections)
    mix = [q for q in QUERIES if not q.strata and q.cohort.datasets == type(q.cohort.datasets)()]
    print(
        f"{len(collections)} collections, {series} series; {len(mix)} queries, "
        f"{args.repeat} timed runs each per path, round-robin over the paths"
    )
    differences: list[str] = []
    timings: dict[str, dict[str, Timing]] = {q.name: {} for q in mix}
    with ExitStack() as stack:
        lanes = []
        for count in SPLITS:
            work = root / f"split-{count}"
            shutil.rmtree(work, ignore_errors=True)
            started = time.perf_counter()
            tables = _slices(collections, count, work / "slices")
            hub, central = stack.enter_context(_split(work, tables))
            print(f"{count} nodes, hub and central up in {time.perf_counter() - started:.1f} s")
            lanes += [
                _lane(f"hub-{count}", hub, args.repeat),
                _lane(f"central-{count}", central, args.repeat),
            ]
        for q in mix:
            timings[q.name] = _time_query(q, lanes)
            for count in SPLITS:
                got = timings[q.name][f"hub-{count}"].answer
                want = timings[q.name][f"central-{count}"].answer
                if got != want:
                    differences.append(f"{q.name}: {count} nodes {got} != central {want}")
    _report(mix, timings)
    for line in differences:
        print("DIFFERENCE", line)
    print("answers agree (exact mode)" if not differences else f"{len(differences)} differ")
    return 1 if differences else 0


def _report(mix: list[BenchQuery], timings: dict[str, dict[str, Timing]]) -> None:
    head = "".join(f"{f'{c} nodes':>17}{'central':>17}{'ratio':>7}" for c in SPLITS)
    print(f"\n{'query (p50 / p95 ms)':<44}{head}")
    every: dict[str, list[float]] = {}
    for q in mix:
        row = f"{q.name[:43]:<44}"
        for count in SPLITS:
            hub, central = timings[q.name][f"hub-{count}"], timings[q.name][f"central-{count}"]
            every.setdefault(f"hub-{count}", []).extend(hub.times)
            every.setdefault(f"central-{count}", []).extend(central.times)
            ratio = _p50(hub.times) / _p50(central.times)
            row += f"{_p50(hub.times):>8.1f}/{_p95(hub.times):<8.1f}"
            row += f"{_p50(central.times):>8.1f}/{_p95(central.times):<8.1f}{ratio:>6.1f}x"
        print(row)
    row = f"{'all runs':<44}"
    for count in SPLITS:
        fan, here = every[f"hub-{count}"], every[f"central-{count}"]
        row += f"{_p50(fan):>8.1f}/{_p95(fan):<8.1f}{_p50(here):>8.1f}/{_p95(here):<8.1f}"
        row += f"{_p50(fan) / _p50(here):>6.1f}x"
    print(row)


if __name__ == "__main__":
    sys.exit(main())
