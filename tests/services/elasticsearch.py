"""A real Elasticsearch node for the tests, with no Docker and no Debian package: the launcher in
tests/elasticsearch (built once with Maven from the jars Elasticsearch publishes on Maven
Central) runs one single-node cluster in a JVM on a free loopback port, security off, its data in
a temporary folder.

Elasticsearch 9.x needs Java 21 or later, 8.19 runs on Java 17; the JDK is found under
$JAVA_HOME, /usr/lib/jvm or the `java` on PATH. CATALOGUE_TEST_ELASTICSEARCH picks the server
version (default `DEFAULT_VERSION`, or `FALLBACK_VERSION` without a JDK 21). Elasticsearch's
analysis-common, rest-root, reindex and painless modules are not on Maven Central: the launcher
adds the `english` analyzer and `GET /` itself; other language analyzers, most token filters
(asciifolding, stemmer...), scripts, `_reindex`, `_delete_by_query`, `bucket_sort` and
`bucket_selector` are missing."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import require
from tests.services.process import stop, wait_until_answering

LAUNCHER = Path(__file__).resolve().parents[1] / "elasticsearch"
"""The Maven project of the launcher (tests/elasticsearch)."""
MAIN = "catalogue.testing.elasticsearch.Launcher"
DEFAULT_VERSION = "9.5.3"
JAVA_NEEDED = {"8": 17, "9": 21}
"""The oldest Java that runs (and builds for) each major version of Elasticsearch."""
HEAP = ("-Xms512m", "-Xmx1g")
READY = re.compile(rb"^READY (http://127\.0\.0\.1:\d+)$", re.MULTILINE)
BUILD_SECONDS = 900  # the first build downloads about 45 MB of jars
START_SECONDS = 120


@dataclass(frozen=True)
class ElasticsearchNode:
    """One started node: its base URL, version, process and output."""

    url: str
    version: str
    process: subprocess.Popen[bytes]
    home: Path
    log: Path


FALLBACK_VERSION = "8.19.21"
"""The server version used where no JDK 21 is found (Debian's JDK 17 runs it)."""


def server_version() -> str:
    """CATALOGUE_TEST_ELASTICSEARCH, else DEFAULT_VERSION where its JDK is, else FALLBACK."""
    chosen = os.environ.get("CATALOGUE_TEST_ELASTICSEARCH")
    if chosen:
        return chosen
    return DEFAULT_VERSION if find_jdk(java_needed(DEFAULT_VERSION)) else FALLBACK_VERSION


def java_needed(version: str) -> int:
    return JAVA_NEEDED.get(version.split(".", 1)[0], 21)


def _feature(home: Path) -> int | None:
    """The feature version (17, 21, 25...) of the JDK at `home`, from its `release` file."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    has_javac = (home / "bin" / "javac").is_file() and (home / "bin" / "java").is_file()
    return int(found.group(1)) if found and has_javac else None


def find_jdk(feature: int) -> Path | None:
    """A JDK (with javac) of at least this feature version: $JAVA_HOME, the `java` on PATH,
    then the newest under /usr/lib/jvm."""
    candidates: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(home))
    if java := shutil.which("java"):
        candidates.append(Path(java).resolve().parent.parent)
    jvms = Path("/usr/lib/jvm")
    if jvms.is_dir():
        installed = [(_feature(path) or 0, path) for path in jvms.iterdir() if path.is_dir()]
        candidates += [path for _, path in sorted(installed, reverse=True)]
    for candidate in candidates:
        found = _feature(candidate)
        if found is not None and found >= feature:
            return candidate
    return None


def elasticsearch_available(version: str | None = None) -> tuple[bool, str]:
    """Whether the launcher can be built and run here: Maven and a new enough JDK; the reason
    when not."""
    version = version or server_version()
    if shutil.which("mvn") is None:
        return False, "Maven (mvn) is not installed: apt-get install maven"
    feature = java_needed(version)
    if find_jdk(feature) is None:
        return False, f"Elasticsearch {version} needs a JDK {feature} or later (set JAVA_HOME)"
    return True, ""


def _build_dir(version: str) -> Path:
    return LAUNCHER / "target" / f"es-{version}"


def _up_to_date(build: Path) -> bool:
    jar = build / "elasticsearch-launcher-1.jar"
    if not jar.is_file() or not (build / "lib").is_dir():
        return False
    sources = [LAUNCHER / "pom.xml", *(LAUNCHER / "src").rglob("*")]
    built = jar.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in sources if path.is_file())


def build_launcher(version: str, jdk: Path) -> Path:
    """Build the launcher for this server version (once: a later call finds it built); the
    folder with its jar and its dependencies in lib/."""
    build = _build_dir(version)
    build.parent.mkdir(parents=True, exist_ok=True)
    with (build.parent / f"es-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, across test processes
        if _up_to_date(build):
            return build
        if build.exists():
            shutil.rmtree(build)  # no jars of another dependency set left in lib/
        result = subprocess.run(
            [
                "mvn",
                "--batch-mode",
                "--quiet",
                "--file",
                str(LAUNCHER / "pom.xml"),
                "package",
                f"-Des.version={version}",
                f"-Dmaven.compiler.release={java_needed(version)}",
                f"-Dbuild.dir={build}",
            ],
            env={**os.environ, "JAVA_HOME": str(jdk)},
            capture_output=True,
            timeout=BUILD_SECONDS,
            check=False,
        )
        if result.returncode != 0 or not _up_to_date(build):
            output = (result.stdout + result.stderr).decode(errors="replace")
            pytest.fail(f"building the Elasticsearch {version} launcher failed: {output[-3000:]}")
    return build


def start_elasticsearch(workdir: Path, version: str | None = None) -> ElasticsearchNode:
    """Build the launcher if needed and start a node with its home in `workdir`, on a free
    loopback port; return once it answers HTTP (fail the test, with its log, if it does not)."""
    version = version or server_version()
    jdk = find_jdk(java_needed(version))
    if jdk is None:
        pytest.fail(elasticsearch_available(version)[1])
    build = build_launcher(version, jdk)
    workdir.mkdir(parents=True, exist_ok=True)
    home, log = workdir / "home", workdir / "elasticsearch.log"
    command = [
        str(jdk / "bin" / "java"),
        *HEAP,
        "--enable-native-access=ALL-UNNAMED",
        "-cp",
        f"{build / 'elasticsearch-launcher-1.jar'}{os.pathsep}{build / 'lib' / '*'}",
        MAIN,
        str(home),
        "0",  # the launcher binds a free port and prints it
    ]
    with log.open("wb") as out:
        # standard input stays open: the node stops when it closes, so it dies with the tests
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
        )
    url = ""

    def answers() -> bool:
        nonlocal url
        if not url:
            ready = READY.search(log.read_bytes())
            if ready is None:
                return False
            url = ready.group(1).decode()
        return httpx.get(f"{url}/_cluster/health", timeout=5).status_code == 200

    try:
        wait_until_answering(process, answers, f"Elasticsearch {version}", log, START_SECONDS)
    except BaseException:
        _close(process, 30)
        raise
    return ElasticsearchNode(url, version, process, home, log)


def _close(process: subprocess.Popen[bytes], timeout: float) -> None:
    stop(process, timeout)
    stdin: IO[bytes] | None = process.stdin
    if stdin is not None:
        stdin.close()


def stop_elasticsearch(node: ElasticsearchNode) -> None:
    """Stop the node cleanly (SIGTERM: it closes its indices), or kill it after 60 s."""
    _close(node.process, 60)


@pytest.fixture(scope="session", name="elasticsearch_node")
def elasticsearch_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ElasticsearchNode]:
    """One node for the test session, as the fixture `elasticsearch_node` in the modules that
    import `elasticsearch_fixture`; skips (fails under --require-services) without Maven or a
    JDK. Tests delete the indices they create."""
    require(request.config, *elasticsearch_available())
    node = start_elasticsearch(tmp_path_factory.mktemp("elasticsearch"))
    try:
        yield node
    finally:
        stop_elasticsearch(node)


def delete_indices(node: ElasticsearchNode, prefix: str) -> None:
    """Delete every index of the node whose name starts with `prefix-` (a test's own)."""
    listed = httpx.get(f"{node.url}/_cat/indices/{prefix}-*?format=json&h=index", timeout=30)
    for index in listed.raise_for_status().json():
        httpx.delete(f"{node.url}/{index['index']}", timeout=60).raise_for_status()
