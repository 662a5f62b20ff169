"""Load: concurrent clients on a mixed search/feasibility workload, beside /health as the ceiling.

    .venv/bin/python bench/load.py [--clients N] [--duration S] [--data-dir DIR] [--url URL]
        [--seed N] [--warmup S] [--health-duration S] [--no-auth] [--server-env K=V]

Starts `catalogue serve` on the IDC demo harvest in DIR (harvesting it first if needed, as
bench/feasibility.py does, which shares the folder), or uses the server at --url. Then, in one
run:

1. the mix: N clients (default 32), each one keep-alive HTTP/1.1 connection, loop for S seconds
   (default 60, after a --warmup) over a weighted mix: dataset searches (the 56 queries of
   tests/data/relevance/idc-queries.tsv, a page of 20 with every facet; one in four also
   filtered on a facet value), concept autocompletion (prefixes of those queries' words),
   dataset lookups by identifier, and the 20 nested feasibility queries of
   bench/feasibility.py. Each request waits for the previous answer of its client.
2. the ceiling: the same N clients on GET /health for --health-duration seconds (default 15).

An HTTP status other than 200, a GraphQL `errors` entry, a missing answer or a timeout is an
error; the first few are printed and the exit status is 1. Prints requests, errors, throughput
and p50/p95/p99 latency, overall and per kind, the /health figures, the ratio of the two
throughputs, the CPU time the server and the driver used, and PASS/FAIL for the issue's target:
32 clients for 60 s with 0 errors.

The server runs with the default disclosure rules but no privacy budget (a load test would spend
a user's daily budget in seconds) and the feasibility rate limits out of reach (the clients share
one address), with authentication on: every client signs in with a researcher API token of its
own (made in the data folder before the server starts; --no-auth serves without sign-in), and
asks under its own project, so its own privacy ledger. The settings are printed; --server-env
adds others.

The driver is one asyncio event loop; each client holds one keep-alive connection, on which it
writes HTTP/1.1 requests encoded once and reads the answers by their length (`--driver raw`):
httpx.AsyncClient (`--driver httpx`) spends about twice the server's CPU time on each /health
request, so on a small machine the ceiling it measures is the driver's, not the server's.
Threads would not help: the driver's work is CPU-bound Python under one GIL. The driver and the
server still share the machine's cores; the CPU time each used is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from feasibility import EXACT, GRAPHQL, QUERIES
from serving import NO_AUTH, NO_RATE_LIMITS, Server, prepare_demo, serve

from catalogue.api.graphql.schema import PROJECT_HEADER
from catalogue.config import DisclosureSettings, Settings
from catalogue.domain.principal import Role
from catalogue.services.api_tokens import ApiTokenStore

ROOT = Path(__file__).resolve().parents[1]
RELEVANCE_QUERIES = ROOT / "tests" / "data" / "relevance" / "idc-queries.tsv"
TARGET_CLIENTS = 32
TARGET_SECONDS = 60.0
WEIGHTS = {"search": 45, "autocomplete": 15, "dataset": 10, "feasibility": 30}
"""Share of each kind of request in the mix: 70% search side, 30% feasibility."""
SHOWN_ERRORS = 5

LOAD_DISCLOSURE = DisclosureSettings(budget_daily=None, budget_total=None)
"""The default disclosure rules (threshold, rounding, noise, differencing check against the
audit log), without the privacy budgets a load test would exhaust in seconds."""

SEARCH = """query Search($search: String, $filter: DatasetFilter) {
  datasets(search: $search, filter: $filter, first: 20) {
    totalCount
    edges { node { identifier title } }
    facets { field values { value label count } }
  }
}"""
AUTOCOMPLETE = """query Complete($search: String!) {
  concepts(search: $search, first: 10) { curie label matched }
}"""
LOOKUP = """query Lookup($provider: ID!, $identifier: String!) {
  dataset(provider: $provider, identifier: $identifier) {
    identifier title description keywords cancerTypes modalities license accessRights
    summary { numberOfUniqueIndividuals numberOfRecords modalities bodyParts }
    provider { id name }
    concepts(mostSpecific: true) { curie label }
  }
}"""
LISTING = """query Listing($after: String) {
  datasets(first: 50, after: $after, orderBy: TITLE) {
    edges { node { identifier provider { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FACETS = """query Facets { datasets(first: 1) { facets { field values { value } } } }"""
FILTERS = {"CANCER_TYPE": "cancerTypes", "BODY_PART": "bodyParts", "MODALITY": "modalities"}


# --- the workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request of the mix, its body encoded once."""

    kind: str
    path: str
    body: bytes | None = None
    """A GraphQL POST body; None: a GET."""
    field: str = ""
    """The GraphQL field whose answer must not be null."""
    label: str = ""
    """What it asks, for the error report."""


def _graphql(
    kind: str, query: str, variables: dict[str, Any], field: str, label: str = ""
) -> Request:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return Request(kind, "/graphql", body, field, label or json.dumps(variables))


def _search_texts() -> list[str]:
    with RELEVANCE_QUERIES.open(encoding="utf-8", newline="") as handle:
        return [row["query"] for row in csv.DictReader(handle, delimiter="\t")]


def _prefixes(texts: Sequence[str]) -> list[str]:
    """What a user types before picking a concept: every prefix of 3+ characters of each word
    (of 4+ letters) of the searches."""
    words = {w.strip('"-/').casefold() for text in texts for w in text.split()}
    return sorted({w[:n] for w in words if len(w) >= 4 for n in range(3, len(w) + 1)})


def _setup_query(client: httpx.Client, query: str, variables: dict[str, Any]) -> Any:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    body = response.raise_for_status().json()
    if body.get("errors"):
        raise RuntimeError(f"reading the datasets before the load failed: {body['errors']}")
    return body["data"]["datasets"]


def _listing(client: httpx.Client) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Every dataset (provider, identifier), and the facet values to filter searches on."""
    ids: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        page = _setup_query(client, LISTING, {"after": after})
        ids += [(e["node"]["provider"]["id"], e["node"]["identifier"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    facets = _setup_query(client, FACETS, {})["facets"]
    return ids, {f["field"]: [v["value"] for v in f["values"]] for f in facets}


def workload(client: httpx.Client) -> dict[str, list[Request]]:
    """Every request of the mix, by kind (dataset identifiers and facet values read from the
    server first)."""
    texts = _search_texts()
    ids, facets = _listing(client)
    if not ids:
        raise RuntimeError("the server lists no datasets: is the data folder harvested?")
    rng = random.Random(0)
    searches = [_graphql("search", SEARCH, {"search": t}, "datasets") for t in texts]
    filterable = [(FILTERS[f], v) for f, values in facets.items() if f in FILTERS for v in values]
    for text in texts[::4]:  # a facet clicked after searching
        key, value = rng.choice(filterable)
        variables = {"search": text, "filter": {key: [value]}}
        searches.append(_graphql("search", SEARCH, variables, "datasets"))
    return {
        "search": searches,
        "autocomplete": [
            _graphql("autocomplete", AUTOCOMPLETE, {"search": p}, "concepts")
            for p in _prefixes(texts)
        ],
        "dataset": [
            _graphql("dataset", LOOKUP, {"provider": p, "identifier": i}, "dataset") for p, i in ids
        ],
        "feasibility": [
            _graphql("feasibility", GRAPHQL, q.graphql_variables, "feasibility", q.name)
            for q in QUERIES
        ],
    }


HEALTH = {"health": [Request("health", "/health", label="GET /health")]}


# --- the driver ------------------------------------------------------------------------------


@dataclass
class Phase:
    """What the clients measured in one phase: latencies (seconds) by kind, and errors."""

    wall: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    driver_cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + len(self.errors)


class Connection(Protocol):
    """One client's keep-alive connection: sends a request, gives the status and body."""

    async def send(self, request: Request) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class HttpxConnection:
    """Through an httpx.AsyncClient holding one connection."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        self._client = httpx.AsyncClient(
            base_url=url,
            headers={"content-type": "application/json", **headers},
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def send(self, request: Request) -> tuple[int, bytes]:
        if request.body is None:
            response = await self._client.get(request.path)
        else:
            response = await self._client.post(request.path, content=request.body)
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


class RawConnection:
    """HTTP/1.1 written and read directly on an asyncio stream: a fraction of httpx's CPU time
    per request, so that the driver leaves the cores to the server. Reads a body by its
    Content-Length or chunked; reconnects when the connection was idle long enough for the
    server to close it, or after an error."""

    IDLE = 2.0
    """Seconds after which an idle connection is opened anew (uvicorn closes them after 5)."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        parts = httpx.URL(url)
        self._tls = parts.scheme == "https"
        self._host, self._port = parts.host, parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/").encode()
        self._timeout = timeout
        lines = [f"host: {self._host}:{self._port}", *(f"{k}: {v}" for k, v in headers.items())]
        self._headers = ("\r\n".join(lines) + "\r\n").encode()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._used = 0.0

    async def send(self, request: Request) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(request)
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, request: Request) -> tuple[int, bytes]:
        if self._streams is not None and time.perf_counter() - self._used > self.IDLE:
            await self.close()
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port, ssl=self._tls)
        reader, writer = self._streams
        path = self._prefix + request.path.encode()
        if request.body is None:
            writer.write(b"GET %s HTTP/1.1\r\n%s\r\n" % (path, self._headers))
        else:
            writer.write(
                b"POST %s HTTP/1.1\r\n%scontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s"
                % (path, self._headers, len(request.body), request.body)
            )
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        if b"transfer-encoding: chunked" in head:
            body = await self._chunked(reader)
        else:
            at = head.find(b"content-length:")
            if at < 0:
                raise ValueError(f"an answer with neither length nor chunks: {head!r:.300}")
            length = int(head[at + 15 : head.index(b"\r\n", at)])
            body = await reader.readexactly(length)
        if b"connection: close" in head:
            await self.close()
        self._used = time.perf_counter()
        return status, body

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


DRIVERS: dict[str, type[HttpxConnection | RawConnection]] = {
    "raw": RawConnection,
    "httpx": HttpxConnection,
}


def _problem(request: Request, status: int, body: bytes) -> str | None:
    """Why an answer is an error, or None."""
    if status != 200:
        return f"HTTP {status}: {body[:300]!r}"
    if request.body is None:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:300]!r}"
    if answer.get("errors"):
        return f"GraphQL errors: {json.dumps(answer['errors'])[:300]}"
    if (answer.get("data") or {}).get(request.field) is None:
        return f"no {request.field} in the answer: {body[:300]!r}"
    return None


async def _client(
    connection: Connection,
    mix: Mapping[str, Sequence[Request]],
    weights: Sequence[int],
    rng: random.Random,
    until: float,
    phase: Phase,
) -> None:
    kinds = list(mix)
    while time.perf_counter() < until:
        request = rng.choice(mix[rng.choices(kinds, weights)[0]])
        started = time.perf_counter()
        try:
            problem = _problem(request, *await connection.send(request))
        except (
            OSError,
            ValueError,
            TimeoutError,
            asyncio.IncompleteReadError,
            httpx.HTTPError,
        ) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        if problem is None:
            phase.latencies.setdefault(request.kind, []).append(elapsed)
        else:
            phase.errors.append(f"{request.kind} {request.label[:120]}: {problem}")


def _server_cpu(server: Server | None) -> float | None:
    """CPU seconds the server process used so far (None when it is not ours, or not Linux)."""
    if server is None:
        return None
    try:
        stat = Path(f"/proc/{server.process.pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run_phase(
    clients: Sequence[Connection],
    mix: Mapping[str, Sequence[Request]],
    weights: Mapping[str, int],
    seconds: float,
    seed: int,
    server: Server | None,
) -> Phase:
    """Every client loops over the mix for `seconds` (requests started before the end are
    waited for and counted)."""
    phase = Phase()
    cpu, server_cpu = time.process_time(), _server_cpu(server)
    started = time.perf_counter()
    until = started + seconds
    shares = [weights[k] for k in mix]
    async with asyncio.TaskGroup() as group:
        for i, client in enumerate(clients):
            rng = random.Random(seed * 1000 + i)
            group.create_task(_client(client, mix, shares, rng, until, phase))
    phase.wall = time.perf_counter() - started
    phase.driver_cpu = time.process_time() - cpu
    after = _server_cpu(server)
    if server_cpu is not None and after is not None:
        phase.server_cpu = after - server_cpu
    return phase


@dataclass(frozen=True)
class Plan:
    """What to run."""

    url: str
    headers: Sequence[Mapping[str, str]]
    """One set of headers per client."""
    duration: float
    warmup: float
    health_duration: float
    seed: int
    timeout: float
    driver: str
    load_average: float
    """The machine's 1-minute load average before the run."""


async def _drive(
    plan: Plan, mix: Mapping[str, Sequence[Request]], server: Server | None
) -> tuple[Phase, Phase, Phase]:
    """Warm-up, the mix, and /health, with the same clients: (warm-up, mix, health)."""
    kind = DRIVERS[plan.driver]
    clients: list[Connection] = [kind(plan.url, h, plan.timeout) for h in plan.headers]
    try:
        print(f"warm-up: {plan.warmup:g} s ...", flush=True)
        warm = await _run_phase(clients, mix, WEIGHTS, plan.warmup, plan.seed + 1, server)
        print(f"the mix: {plan.duration:g} s ...", flush=True)
        measured = await _run_phase(clients, mix, WEIGHTS, plan.duration, plan.seed, server)
        print(f"/health: {plan.health_duration:g} s ...", flush=True)
        health = await _run_phase(
            clients, HEALTH, {"health": 1}, plan.health_duration, plan.seed, server
        )
    finally:
        for client in clients:
            await client.close()
    return warm, measured, health


# --- setup -----------------------------------------------------------------------------------


def server_env(tokens: bool, extra: Mapping[str, str]) -> dict[str, str]:
    """The settings the bench serves with (beside CATALOGUE_DATA_DIR)."""
    env = {"CATALOGUE_DISCLOSURE": LOAD_DISCLOSURE.model_dump_json(), **NO_RATE_LIMITS}
    return {**env, **({} if tokens else NO_AUTH), **extra}


def researcher_tokens(data_dir: Path, count: int, run: str) -> list[str]:
    """`count` researcher API tokens, made in the data folder's token store (as `catalogue
    token create NAME --role researcher` makes them) before the server starts."""
    store = ApiTokenStore(data_dir)
    secrets = [store.create(f"bench-load-{run}-{i:02d}", [Role.RESEARCHER]) for i in range(count)]
    print(f"created {count} researcher API tokens: each client signs in with its own")
    return secrets


def client_headers(count: int, run: str, tokens: Sequence[str] | None) -> list[dict[str, str]]:
    """Per client: its own project (so its own privacy ledger) and its token, if any."""
    out = []
    for i in range(count):
        headers = {PROJECT_HEADER: f"load-{run}-c{i:02d}"}
        if tokens:
            headers["authorization"] = f"Bearer {tokens[i % len(tokens)]}"
        out.append(headers)
    return out


@contextmanager
def _target(
    args: argparse.Namespace, env: Mapping[str, str]
) -> Iterator[tuple[str, Server | None]]:
    """The server's base URL, and the server when the bench started it."""
    if args.url:
        yield args.url.rstrip("/"), None
        return
    with serve(args.data_dir, env, log_name="bench-load-serve.log") as server:
        print(f"serving {args.data_dir} at {server.url} (log: {server.log})")
        yield server.url, server


# --- report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of `values` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _row(name: str, latencies: list[float], errors: int, wall: float) -> str:
    count = len(latencies) + errors
    line = f"  {name:<14} {count:>9} {errors:>7} {count / wall:>9.1f}"
    if not latencies:
        return line
    ms = [percentile(latencies, p) * 1000 for p in (0.5, 0.95, 0.99)]
    return line + "".join(f" {v:>9.1f}" for v in ms)


def _cpu(phase: Phase, cores: int) -> str:
    driver = f"driver {phase.driver_cpu / phase.wall:.2f}"
    if phase.server_cpu is None:
        return f"{driver} cores (the server's is not known: not started by the bench)"
    return f"server {phase.server_cpu / phase.wall:.2f}, {driver} cores of {cores}"


def _first_errors(errors: Sequence[str]) -> list[str]:
    """The first error of each kind of request, then the next ones, up to SHOWN_ERRORS (or one
    per kind, when there are more kinds)."""
    firsts: dict[str, str] = {}
    for line in errors:
        firsts.setdefault(line.split(" ", 1)[0], line)
    shown = list(firsts.values())
    shown += [line for line in errors if line not in shown][: SHOWN_ERRORS - len(shown)]
    return shown


def report(plan: Plan, warm: Phase, mix: Phase, health: Phase) -> bool:
    """Print the figures; whether the run had no error."""
    cores = os.cpu_count() or 1
    every = [v for values in mix.latencies.values() for v in values]
    print()
    print(f"{'':<16} {'requests':>9} {'errors':>7} {'req/s':>9}", end="")
    print("".join(f" {p + ' ms':>9}" for p in ("p50", "p95", "p99")))
    print(f"mix, {plan.duration:g} s")
    print(_row("all", every, len(mix.errors), mix.wall))
    errors_by_kind = {k: sum(e.startswith(k + " ") for e in mix.errors) for k in WEIGHTS}
    for kind in WEIGHTS:
        latencies = mix.latencies.get(kind, [])
        print(_row(kind, latencies, errors_by_kind[kind], mix.wall))
    print(f"/health, {plan.health_duration:g} s (the ceiling)")
    print(_row("health", health.latencies.get("health", []), len(health.errors), health.wall))
    if health.requests:
        ratio = (mix.requests / mix.wall) / (health.requests / health.wall)
        print()
        print(f"throughput of the mix / /health throughput = {ratio:.3f}")
    print(f"CPU used, the mix: {_cpu(mix, cores)}; /health: {_cpu(health, cores)}")
    if cores <= 4:
        print(
            f"note: this machine has {cores} cores; the driver and the server compete for them, "
            "so both throughputs are of the pair, and under what else the machine ran "
            f"(load average before the run: {plan.load_average:.1f})"
        )
    errors = warm.errors + mix.errors + health.errors
    if errors:
        print()
        print(
            f"{len(errors)} errors (warm-up {len(warm.errors)}, mix {len(mix.errors)}, "
            f"/health {len(health.errors)}); the first of each kind, then the next ones:"
        )
        for line in _first_errors(errors):
            print(f"  {line}")
    clients = len(plan.headers)
    target = clients >= TARGET_CLIENTS and plan.duration >= TARGET_SECONDS
    scope = "" if target else f" (short of the target: {TARGET_CLIENTS} clients for 60 s)"
    verdict = "PASS" if not errors else "FAIL"
    print(
        f"{verdict}: {clients} clients for {plan.duration:g} s, "
        f"{len(errors)} errors (target: 0){scope}"
    )
    return not errors


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main() -> None:
    """Prepare, serve, load, report; exit 1 on any error."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS)
    parser.add_argument("--duration", type=float, default=TARGET_SECONDS, help="seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the mix")
    parser.add_argument("--health-duration", type=float, default=15.0, help="seconds")
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--url", help="an already running server (not started by the bench)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--driver",
        choices=sorted(DRIVERS),
        default="raw",
        help="raw: HTTP/1.1 on asyncio streams (default, the lighter); httpx: httpx.AsyncClient",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without authentication (default: each client signs in with its own "
        "researcher API token)",
    )
    parser.add_argument(
        "--server-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another setting for the server the bench starts (repeatable)",
    )
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    clients = max(1, args.clients)
    run = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    load_average = os.getloadavg()[0]

    if not args.url:
        prepare_demo(args.data_dir, Settings(data_dir=args.data_dir, disclosure=EXACT))
    tokens = None
    extra = dict(args.server_env)
    if not args.no_auth and not args.url:
        tokens = researcher_tokens(args.data_dir, clients, run)
    env = server_env(tokens is not None, extra)

    with _target(args, env) as (url, server):
        with httpx.Client(base_url=url, timeout=120) as setup:
            mix = workload(setup)
        plan = Plan(
            url=url,
            headers=client_headers(clients, run, tokens),
            duration=args.duration,
            warmup=args.warmup,
            health_duration=args.health_duration,
            seed=args.seed,
            timeout=args.timeout,
            load_average=load_average,
            driver=args.driver,
        )
        _describe(plan, mix, env if server else None, tokens)
        warm, measured, health = asyncio.run(_drive(plan, mix, server))
    sys.exit(0 if report(plan, warm, measured, health) else 1)


def _describe(
    plan: Plan,
    mix: Mapping[str, Sequence[Request]],
    env: Mapping[str, str] | None,
    tokens: Sequence[str] | None,
) -> None:
    total = sum(WEIGHTS.values())
    shares = ", ".join(
        f"{k} {100 * w / total:.0f}% ({len(mix[k])} requests)" for k, w in WEIGHTS.items()
    )
    print(
        f"{len(plan.headers)} clients, {plan.warmup:g} s warm-up, the mix for "
        f"{plan.duration:g} s, /health for {plan.health_duration:g} s, seed {plan.seed}, "
        f"timeout {plan.timeout:g} s"
    )
    print(f"the mix: {shares}")
    print(f"driver: {plan.driver} ({DRIVERS[plan.driver].__doc__ or ''}".split("\n")[0] + ")")
    if env is None:
        print("server settings: those of the server at --url (not set by the bench)")
    else:
        print("server settings (beside CATALOGUE_DATA_DIR):")
        for key, value in env.items():
            print(f"  {key}={value}")
        rules = LOAD_DISCLOSURE
        print(
            f"  i.e. disclosure threshold {rules.threshold}, rounding {rules.rounding}, "
            f"epsilon {rules.epsilon}, differencing {'on' if rules.differencing else 'off'}, "
            "no daily or total privacy budget; feasibility rate limits out of reach"
        )
    who = "a researcher token each" if tokens else "no token"
    print(f"clients: {who}, each its own project ({PROJECT_HEADER}), so its own privacy ledger")


if __name__ == "__main__":
    main()
