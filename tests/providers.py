"""Providers files the tests harvest: the one-hospital provider (an XNAT DCAT-AP export and a
DICOM series table) and the IDC demo's providers with their DCAT-AP sources only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import require
from tests.integration.test_harvest import DATA, providers_file, series_table


def hospital(folder: Path, series: list[dict[str, object]], provider: str = "hospital") -> Path:
    """A providers file of one hospital: the XNAT DCAT-AP file and these series rows."""
    table = series_table(folder / "series.parquet", series)
    body = f"""providers:
  - id: {provider}
    name: General Hospital
    sources:
      - kind: dcat
        path: {DATA / "xnat_integration_test.ttl"}
      - kind: dicom-table
        path: {table}
        dataset_column: collection_id
"""
    return providers_file(folder, body)


def demo_dcat_only(request: pytest.FixtureRequest, folder: Path) -> Path:
    """The IDC demo's providers built in `folder`, with their DCAT-AP sources only (their series
    tables take most of a harvest's time); skips (or fails in CI) without idc-index-data."""
    try:
        from examples.demo.idc import build

        built = build(folder)
    except Exception as exc:  # the optional demo dependency
        require(request.config, False, f"idc-index-data is not installed ({exc})")
        raise
    listed = yaml.safe_load(built.read_text())
    for provider in listed["providers"]:
        provider["sources"] = [s for s in provider["sources"] if s["kind"] == "dcat"]
    providers = folder / "providers-dcat.yaml"
    providers.write_text(yaml.safe_dump(listed, sort_keys=False))
    return providers
