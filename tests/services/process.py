"""Starting and stopping the server processes the tests run: a free port, waiting until the
server answers, and stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
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
