"""Shared fixtures: the `--require-services` flag, temporary catalogues and the IDC demo."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from catalogue.config import (
    AuthSettings,
    DisclosureSettings,
    LimitSettings,
    Settings,
    load_providers,
)
from catalogue.services.ingest import HarvestReport, harvest
from catalogue.services.runtime import Catalogue, open_catalogue

EXACT = DisclosureSettings.exact_counts()
NO_RATE_LIMITS = LimitSettings(feasibility_per_user=None, feasibility_per_ip=None)
"""Tests ask many feasibility queries from one address (tests/e2e/test_limits.py tests them)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        default=False,
        help="fail, instead of skipping, when a test's service or data is missing (CI sets it)",
    )


def require(config: pytest.Config, available: bool, reason: str) -> None:
    """Skip when something a test needs is missing, or fail under --require-services."""
    if available:
        return
    if config.getoption("--require-services"):
        pytest.fail(f"required for CI but missing: {reason}")
    pytest.skip(reason)


_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a line of figures a test measured (beside what it asserts about them); the lines
    are printed at the end of the run, under "measured figures", so that a run's log carries
    them."""
    lines = request.config.stash.setdefault(_FIGURES, [])
    return lambda line: lines.append(f"{request.node.nodeid}: {line}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("measured figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret="test-secret-0123456789",
        disclosure=EXACT,
        auth=AuthSettings(disabled=True),
        limits=NO_RATE_LIMITS,
    )


@pytest.fixture
def catalogue(settings: Settings) -> Iterator[Catalogue]:
    with open_catalogue(settings) as opened:
        yield opened


@dataclasses.dataclass
class IdcDemo:
    """The full IDC demo, harvested once per test session with exact counts."""

    catalogue: Catalogue
    report: HarvestReport
    parquet: Path
    collections_csv: Path


@pytest.fixture(scope="session")
def idc_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdcDemo]:
    try:
        from examples.demo.idc import build, idc_paths

        parquet, _, _ = idc_paths()
    except Exception as exc:  # the optional demo dependency
        require(request.config, False, f"idc-index-data is not installed ({exc})")
        raise
    root = tmp_path_factory.mktemp("idc")
    providers = build(root / "demo")
    settings = Settings(
        data_dir=root / "data",
        secret="idc-demo-secret-0123456789",
        disclosure=EXACT,
        auth=AuthSettings(disabled=True),
        limits=NO_RATE_LIMITS,
    )
    with open_catalogue(settings) as opened:
        report = harvest(opened, load_providers(providers))
        yield IdcDemo(opened, report, parquet, root / "demo" / "collections.csv")


# registered once here, so the whole session shares one server (a fixture imported into several
# modules is set up once per module); imported last: the module imports `require` from here
from tests.services.elasticsearch import elasticsearch_fixture  # noqa: E402, F401
from tests.services.virtuoso import virtuoso_fixture  # noqa: E402, F401
