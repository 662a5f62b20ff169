"""Starting and stopping the server processes the tests run: a free port, waiting until the
server answers, and stopping it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port free on the loopback interface (now: another process may take it later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    name: str,
    log: Path,
    seconds: float,
) -> None:
    """Poll `answers` (an HTTP error or an unreadable answer counts as no answer) until it is
    true; fail the test, with the end of `log`, if the process exits first, or kill the process
    and fail if `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if answers():
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=30)
            pytest.fail(f"{name} did not answer within {seconds:g} s")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Ask the process to exit (SIGTERM) and wait `timeout` seconds; then kill it (SIGKILL)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


CATALOGUE = Path(sys.executable).with_name("catalogue")
"""The `catalogue` command of the environment running the tests."""


def start_catalogue_serve(
    data_dir: Path, settings: Mapping[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `catalogue serve` on the data folder with these settings (environment variables),
    on a free loopback port, its output in `log`; the process and its URL (not waited for)."""
    port = free_port()
    env = {**os.environ, "CATALOGUE_DATA_DIR": str(data_dir), **settings}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CATALOGUE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_serving(process: subprocess.Popen[bytes], url: str, log: Path, seconds: float) -> None:
    """Wait until the `catalogue serve` process at `url` answers /health."""
    wait_until_answering(
        process,
        lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
        "catalogue serve",
        log,
        seconds,
    )
