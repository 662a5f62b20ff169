"""Browser fixtures: the IDC demo served by `catalogue serve`, Debian's chromium driven by
Playwright.

`catalogue demo --no-serve` builds and harvests the demo in a folder of the session's; two
`catalogue serve` processes serve it: `demo` as `make demo` does (authentication disabled) and
`secured`, on a copy, with authentication on, where a curator signs in by pasting the API token
`catalogue token create` made. Screenshots and the measured page timings go to artifacts/browser/
(git-ignored); the timings are printed at the end of the run, never asserted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from catalogue.config import DisclosureSettings
from tests.conftest import require
from tests.services.process import CATALOGUE, start_catalogue_serve, stop, wait_serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
"""Screenshots and timings.json of the last run."""

VIEWPORT = {"width": 1366, "height": 768}

DEMO_RULES = {
    "CATALOGUE_DISCLOSURE": DisclosureSettings(
        epsilon=None, budget_daily=None, budget_total=None, differencing=False
    ).model_dump_json()
}
"""The default threshold and rounding (so some cells are suppressed), without noise, budget or
differencing checks: the tests ask the API the same questions the pages ask."""

TIMINGS: dict[str, float] = {}
"""Page timings in milliseconds, by what was measured."""

WATCH_SCRIPT = """
(() => {
  const watched = %s;
  window.__firstSeen = {};
  const look = () => {
    for (const [name, selector] of Object.entries(watched)) {
      if (!(name in window.__firstSeen) && document.querySelector(selector)) {
        window.__firstSeen[name] = performance.now();
      }
    }
  };
  new MutationObserver(look).observe(document, {childList: true, subtree: true, attributes: true});
})();
"""
WATCHED = {
    "results": "#results li.result",
    "chart": "#chart-providers g.bar",
    "builder": "#criteria .add-criterion",
    "unmapped": "#unmapped tr[data-value]",
}
"""Elements whose first appearance each page records, in ms since navigation start."""


@dataclasses.dataclass
class Site:
    """A served catalogue: its base URL and an API client for the ground truth."""

    url: str
    api: httpx.Client
    token: str | None = None

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a GraphQL answer; fails on errors."""
        response = self.api.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data


def record_timing(name: str, milliseconds: float) -> None:
    """Keep a measured figure: printed at the end of the run and saved in timings.json."""
    TIMINGS[name] = round(milliseconds, 1)
    print(f"timing {name}: {milliseconds:.0f} ms")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under ARTIFACTS."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2, sort_keys=True) + "\n")
    terminalreporter.section("browser page timings (ms, measured, not asserted)")
    for name, value in sorted(TIMINGS.items()):
        terminalreporter.write_line(f"{name}: {value:.0f}")
    terminalreporter.write_line(f"screenshots and timings.json in {ARTIFACTS}")


@contextmanager
def catalogue_serve(data_dir: Path, settings: dict[str, str]) -> Iterator[str]:
    """`catalogue serve` on the data folder with these settings (environment variables); ready
    once /health answers; stopped at the end."""
    log = data_dir.parent / f"serve-{data_dir.parent.name}.log"
    process, url = start_catalogue_serve(data_dir, settings, log)
    try:
        wait_serving(process, url, log, 300)
        yield url
    finally:
        stop(process, 30)


@pytest.fixture(scope="session")
def demo_data(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The IDC demo as `make demo` builds it: `catalogue demo --no-serve` in a folder of its own.
    (The browser comes first: without one the tests skip before the harvest.)"""
    data_dir = tmp_path_factory.mktemp("browser-demo") / "data"
    env = {**os.environ, "CATALOGUE_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [str(CATALOGUE), "demo", "--no-serve"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return data_dir


def site(url: str, token: str | None = None) -> Iterator[Site]:
    """A served catalogue and its API client, which sends `token`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as api:
        yield Site(url, api, token)


@pytest.fixture(scope="session")
def demo(demo_data: Path) -> Iterator[Site]:
    """The demo as `make demo` serves it: `catalogue serve` with authentication disabled."""
    with catalogue_serve(demo_data, {**DEMO_RULES, "CATALOGUE_AUTH__DISABLED": "true"}) as url:
        yield from site(url)


@pytest.fixture(scope="session")
def secured(demo_data: Path) -> Iterator[Site]:
    """`catalogue serve` with authentication on, over a copy of the demo (a folder is served by
    one process); its `token` is a curator's, made by `catalogue token create`."""
    data_dir = demo_data.parent.parent / "secured" / "data"
    shutil.copytree(demo_data, data_dir)
    env = {**os.environ, "CATALOGUE_DATA_DIR": str(data_dir)}
    created = subprocess.run(
        [str(CATALOGUE), "token", "create", "browser-curator", "--role", "curator"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.split()[-1]
    with catalogue_serve(data_dir, DEMO_RULES) as url:
        yield from site(url, token)


@pytest.fixture(scope="session")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (never Playwright's own download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require(request.config, False, f"playwright is not installed ({exc})")
        raise
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(
        request.config, executable is not None, "no chromium on PATH (apt-get install chromium)"
    )
    playwright: Playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@dataclasses.dataclass
class Tab:
    """A page at 1366x768, the uncaught errors in it and its console errors."""

    page: Page
    errors: list[str]
    console: list[str]

    def assert_no_errors(self) -> None:
        assert not self.errors, (
            f"uncaught errors in the page: {self.errors} (console: {self.console})"
        )


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")  # type: ignore[arg-type]
    context.add_init_script(WATCH_SCRIPT % json.dumps(WATCHED))
    context.set_default_timeout(15_000)
    page = context.new_page()
    opened = Tab(page, [], [])
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on(
        "console",
        lambda message: opened.console.append(message.text) if message.type == "error" else None,
    )
    try:
        yield opened
    finally:
        context.close()
