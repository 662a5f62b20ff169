"""What the HTTP benchmarks share: the IDC demo harvested into a data folder, and `catalogue
serve` on it, on a free port, as a subprocess with the environment a benchmark gives it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from catalogue.config import Settings, load_providers
from catalogue.services.ingest import harvest, reindex_all
from catalogue.services.runtime import open_catalogue
from examples.demo.idc import build

STARTUP_SECONDS = 300
OUT_OF_REACH = str(10**9)
NO_RATE_LIMITS = {
    f"CATALOGUE_LIMITS__FEASIBILITY_{key}": OUT_OF_REACH
    for key in ("PER_USER", "USER_BURST", "PER_IP", "IP_BURST")
}
"""The feasibility rate limits on (their cost is part of what is timed) but out of reach: a
benchmark's clients share one address, which the default limits would throttle at once."""
NO_AUTH = {"CATALOGUE_AUTH__DISABLED": "true"}
"""Authentication off: every caller has every role (feasibility needs a researcher)."""


def catalogue_executable() -> Path:
    """The `catalogue` command of the interpreter running the benchmark."""
    return Path(sys.executable).with_name("catalogue")


def prepare_demo(data_dir: Path, settings: Settings) -> None:
    """Build the IDC demo providers under DIR/demo and harvest them into the data folder, unless
    it already holds a harvest."""
    build(data_dir / "demo")
    if (data_dir / "store").exists():
        print(f"reusing the harvest in {data_dir}")
        with open_catalogue(settings) as cat:
            if not cat.datasets.all():
                # A datasets index of another layout is opened empty: the scopes by cancer type,
                # access rights or licence would then match nothing. Rebuild it from the store.
                print("the datasets index is empty: rebuilding it from the graph store")
                reindex_all(cat)
        return
    providers = data_dir / "demo" / "providers.yaml"
    print(f"harvesting {providers} into {data_dir} ...", flush=True)
    started = time.perf_counter()
    with open_catalogue(settings) as cat:
        report = harvest(cat, load_providers(providers))
    print(f"harvest took {time.perf_counter() - started:.1f} s")
    if not report.ok:
        for failed in report.failed:
            print(f"harvest failed: {failed.provider_id}/{failed.source_id}: {failed.error}")
        sys.exit(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running `catalogue serve`: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve(
    data_dir: Path, env: Mapping[str, str], log_name: str = "bench-serve.log"
) -> Iterator[Server]:
    """`catalogue serve` on the data folder with `env` added to this process's environment,
    logging to DIR/`log_name`; yielded once it answers /health, terminated on exit."""
    port = free_port()
    full_env = {**os.environ, "CATALOGUE_DATA_DIR": str(data_dir), **env}
    log_path = data_dir / log_name
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(catalogue_executable()), "serve", "--port", str(port)],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", process, log_path)
            wait_healthy(server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(server: Server) -> None:
    """Wait until the server answers /health (raises if it exits or takes too long)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({server.process.returncode}); see {server.log}"
                )
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(
        f"the server did not answer /health within {STARTUP_SECONDS} s; see {server.log}"
    )
