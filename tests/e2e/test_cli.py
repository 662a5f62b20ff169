"""The `catalogue` command: failures exit non-zero with one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_harvest import DATA, one_source, rows, series_table

CLI = [sys.executable, "-c", "from catalogue.cli import main; main()"]


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CATALOGUE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    env.pop("CATALOGUE_PROVIDERS", None)
    return subprocess.run(
        CLI + args, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_malformed_providers_file(tmp_path: Path) -> None:
    bad = tmp_path / "providers.yaml"
    bad.write_text(
        "providers:\n  - id: a\n    name: A\n    sources:\n      - kind: ftp\n        path: x\n"
    )
    result = run(["harvest", "--providers", str(bad)], tmp_path)
    assert result.returncode == 1
    assert f"{bad}:5: providers.0.sources.0" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_providers_option(tmp_path: Path) -> None:
    result = run(["harvest"], tmp_path)
    assert result.returncode == 1
    assert "no providers file" in result.stderr


def test_harvest_reports_failures_and_keeps_going(tmp_path: Path) -> None:
    table = series_table(tmp_path / "series.parquet", rows(3))
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "providers:\n"
        + one_source("broken", f"kind: dcat\n        path: {DATA / 'truncated_piveau_catalog.ttl'}")
        + one_source("good", f"kind: dicom-table\n        path: {table}\n        dataset: d")
    )
    result = run(["harvest", "--providers", str(providers)], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "failed" in result.stderr
    assert "not valid turtle" in result.stderr
    assert "Traceback" not in result.stderr
    good = run(["harvest", "--providers", str(providers), "--provider", "good"], tmp_path)
    assert good.returncode == 0, good.stderr
    unknown = run(["harvest", "--providers", str(providers), "--provider", "nope"], tmp_path)
    assert unknown.returncode == 1
    assert "unknown provider 'nope'" in unknown.stderr


def test_malformed_provider_entry_skips_only_that_provider(tmp_path: Path) -> None:
    table = series_table(tmp_path / "series.parquet", rows(3))
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "providers:\n"
        + one_source("typo", f"kind: dicom-table\n        path: {table}")
        + one_source("good", f"kind: dicom-table\n        path: {table}\n        dataset: d")
    )
    result = run(["harvest", "--providers", str(providers)], tmp_path)
    assert result.returncode == 2
    assert f"{providers}:5: providers.0.sources.0.dicom-table" in result.stderr
    assert "provider skipped" in result.stderr
    assert "good" in result.stderr and "ok" in result.stderr


def test_runs_and_validation_reports_are_shown(tmp_path: Path) -> None:
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "providers:\n"
        + one_source("hospital", f"kind: dcat\n        path: {DATA / 'valid_project.ttl'}")
    )
    assert run(["harvest", "--providers", str(providers)], tmp_path).returncode == 0
    runs = run(["runs", "--json"], tmp_path)
    assert runs.returncode == 0
    recorded = json.loads(runs.stdout)
    assert recorded[0]["ok"] is True and recorded[0]["sources"][0]["new"] == 1
    identifier = "http://localhost/data/archive/projects/test_img2catalog"
    shown = run(["report", "hospital", identifier], tmp_path)
    assert shown.returncode == 0
    # the file lacks HealthDCAT-AP's mandatory health category: the stored report says so
    assert "healthCategory" not in (DATA / "valid_project.ttl").read_text()
    assert "violations" in shown.stderr and "healthCategory" in shown.stdout
    missing = run(["report", "hospital", "no-such-dataset"], tmp_path)
    assert missing.returncode == 1 and "no validation report" in missing.stderr


def test_audit_log_is_shown_to_administrators(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from catalogue.services.audit import AuditLog

    (tmp_path / "data").mkdir()
    with AuditLog(tmp_path / "data" / "audit.sqlite") as audit:
        now = datetime(2026, 3, 1, 12, tzinfo=UTC)
        audit.record("ann", "p1", '{"q":1}', '{"total":[10,10,15]}', 1.0, "answered", "k1", {}, now)
        audit.record("bob", "p2", '{"q":2}', "{}", 0.0, "refused: budget", "k2", {}, now)
    shown = run(["audit", "--json", "--user", "ann"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert [(e["user"], e["project"], e["epsilon"], e["outcome"]) for e in entries] == [
        ("ann", "p1", 1.0, "answered")
    ]
    table = run(["audit"], tmp_path)
    assert table.returncode == 0 and "refused: budget" in table.stdout + table.stderr
