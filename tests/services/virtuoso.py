"""A real Virtuoso (Debian `virtuoso-opensource`) for the tests: `virtuoso-t +foreground` on
free loopback ports, its database in a temporary folder. The `virtuoso` fixture is registered in
tests/conftest.py, so one server serves the whole session."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from catalogue.config import StoreSettings
from tests.conftest import require
from tests.services.process import free_port, stop, wait_until_answering

PASSWORD = "VirtuosoTest73pw"  # letters and digits: +pwddba mangles some others
MAX_ROWS = 12_000
"""[SPARQL] ResultSetMaxRows: what one query may return (Debian's default is 10,000)."""

INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
CheckpointInterval = 60
NumberOfBuffers = 20000
MaxDirtyBuffers = 12000
ThreadsPerQuery = 2
DirsAllowed = {db}

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {www}
ServerThreads = 6
MaxClientConnections = 6
Charset = UTF-8

[SPARQL]
ResultSetMaxRows = {max_rows}
MaxQueryExecutionTime = 120
"""


def binary() -> str | None:
    return shutil.which("virtuoso-t") or shutil.which("virtuoso-t", path="/usr/bin:/usr/sbin")


@dataclass
class Virtuoso:
    """One Virtuoso server; `start` it, and `stop` or `kill` it (it can be started again)."""

    root: Path
    executable: str
    http_port: int = field(default_factory=free_port)
    sql_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: BinaryIO | None = None

    @property
    def url(self) -> str:
        """The SPARQL endpoint that takes digest authentication, for queries and updates."""
        return f"http://127.0.0.1:{self.http_port}/sparql-auth"

    def store_settings(self, **extra: object) -> StoreSettings:
        values: dict[str, object] = {
            "backend": "sparql",
            "url": self.url,
            "user": "dba",
            "password": PASSWORD,
            **extra,
        }
        return StoreSettings.model_validate(values)

    def client(self) -> httpx.Client:
        return httpx.Client(auth=httpx.DigestAuth("dba", PASSWORD), timeout=120)

    def update(self, text: str) -> httpx.Response:
        """Send one update as it is; the caller looks at the answer."""
        with self.client() as client:
            return client.post(
                self.url,
                content=text.encode(),
                headers={"Content-Type": "application/sparql-update"},
            )

    def select(self, query: str) -> list[dict[str, dict[str, str]]]:
        with self.client() as client:
            answer = client.post(
                self.url,
                data={"query": query},
                headers={"Accept": "application/sparql-results+json"},
            )
        answer.raise_for_status()
        rows: list[dict[str, dict[str, str]]] = answer.json()["results"]["bindings"]
        return rows

    def start(self) -> None:
        db, www = self.root / "db", self.root / "www"
        first = not db.exists()
        db.mkdir(parents=True, exist_ok=True)
        www.mkdir(exist_ok=True)
        ini = self.root / "virtuoso.ini"
        ini.write_text(
            INI.format(
                db=db,
                www=www,
                sql_port=self.sql_port,
                http_port=self.http_port,
                max_rows=MAX_ROWS,
            )
        )
        command = [self.executable, "+configfile", str(ini), "+foreground"]
        log = self.root / "virtuoso.out"
        self.log = log.open("ab")
        if first:  # creates the database, sets the dba password, then exits
            subprocess.run(
                [*command, "+pwdold", "dba", "+pwddba", PASSWORD, "+pwddav", PASSWORD],
                stdout=self.log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=True,
            )
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until_answering(self.process, self._answers, f"Virtuoso at {self.url}", log, 90)
        except BaseException:
            self.kill()
            raise

    def _answers(self) -> bool:
        self.select("SELECT (1 AS ?one) WHERE {}")
        return True

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM: Virtuoso checkpoints and exits)."""
        if self.process is not None:
            stop(self.process, timeout=60)
        self._close_log()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._close_log()

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def launch(request: pytest.FixtureRequest, root: Path) -> Virtuoso:
    """A started Virtuoso in `root`; skips (fails under --require-services) when not installed."""
    executable = binary()
    require(
        request.config,
        executable is not None,
        "virtuoso-opensource is not installed: apt-get install virtuoso-opensource",
    )
    assert executable is not None
    server = Virtuoso(root, executable)
    server.start()
    return server


@pytest.fixture(scope="session", name="virtuoso")
def virtuoso_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Virtuoso]:
    """One Virtuoso for the test session, as the fixture `virtuoso` in the modules that import
    `virtuoso_fixture`; tests clean up the graphs they write."""
    server = launch(request, tmp_path_factory.mktemp("virtuoso"))
    try:
        yield server
    finally:
        server.stop()
