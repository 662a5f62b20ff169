"""The `catalogue` command: demo, harvest, serve, schemas."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalogue.config import Settings, providers_json_schema, read_providers
from catalogue.exceptions import CatalogueError, ConfigError
from catalogue.services.ingest import HarvestReport, harvest, reindex_all
from catalogue.services.runtime import open_catalogue

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(stderr=True)

ProvidersOption = Annotated[
    Path | None,
    typer.Option("--providers", help="YAML providers file (default: CATALOGUE_PROVIDERS)."),
]


@contextmanager
def _progress() -> Iterator[Callable[[str, int], None]]:
    tasks: dict[str, Any] = {}
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} series"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:

        def hook(label: str, rows: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=None)
            progress.advance(tasks[label], rows)

        yield hook


def _print_report(report: HarvestReport) -> None:
    table = Table(title=f"Harvest ({report.seconds:.1f} s)")
    for column in ("provider", "source", "kind", "datasets", "series", "skipped", "status"):
        table.add_column(column)
    for s in report.sources:
        skipped = ", ".join(f"{k}: {v}" for k, v in s.skipped.items()) or "-"
        status = "[green]ok" if s.ok else f"[red]failed: {s.error}"
        table.add_row(
            s.provider_id, s.source_id, s.kind, str(s.datasets), f"{s.series:,}", skipped, status
        )
    console.print(table)


def _harvest(settings: Settings, providers: Path, only: str | None) -> bool:
    """Harvest the valid providers of the file; False when anything failed."""
    parsed, errors = read_providers(providers)
    for error in errors:
        console.print(f"[red]error:[/red] {error} (provider skipped)", soft_wrap=True)
    if not parsed.providers:
        raise ConfigError(f"{providers}: no valid provider to harvest")
    with open_catalogue(settings) as catalogue, _progress() as hook:
        report = harvest(catalogue, parsed, only=only, progress=hook)
    _print_report(report)
    return report.ok and not errors


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from catalogue.api.app import create_app

    console.print(f"GraphiQL at http://{host}:{port}/graphql")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("harvest")
def harvest_command(
    providers: ProvidersOption = None,
    provider: Annotated[str | None, typer.Option(help="Harvest only this provider.")] = None,
) -> None:
    """Harvest every provider (or one) into the store and indexes."""
    settings = Settings()
    path = providers or settings.providers
    if path is None:
        raise CatalogueError("no providers file: give --providers or set CATALOGUE_PROVIDERS")
    if not _harvest(settings, path, provider):
        raise typer.Exit(code=2)


@app.command("reindex")
def reindex_command() -> None:
    """Rebuild the datasets index from the graph store (the source of truth)."""
    with open_catalogue(Settings()) as catalogue:
        counts = reindex_all(catalogue)
    for provider, n in counts.items():
        console.print(f"{provider}: {n} datasets indexed")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql)."""
    _serve(Settings(), host, port)


@app.command("demo")
def demo_command(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after harvesting.")
    ] = True,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Build the IDC demo providers, harvest all of them, and serve."""
    from examples.demo.idc import build

    settings = Settings()
    console.print("Building demo providers from idc-index-data ...")
    providers = build(settings.data_dir / "demo")
    _harvest(settings, providers, None)
    if serve:
        _serve(settings, host, port)


@app.command("schemas")
def schemas_command(
    out: Annotated[Path, typer.Option(help="Folder to write into.")] = Path("schemas"),
) -> None:
    """Export the providers-file JSON Schema and the GraphQL SDL."""
    from catalogue.api.graphql.schema import schema

    out.mkdir(parents=True, exist_ok=True)
    (out / "providers.schema.json").write_text(
        json.dumps(providers_json_schema(), indent=2, sort_keys=True) + "\n"
    )
    (out / "graphql").mkdir(exist_ok=True)
    (out / "graphql" / "schema.graphql").write_text(schema.as_str() + "\n")
    console.print(f"schemas written to {out}")


def main() -> None:
    """Console entry point: a failure exits non-zero with a one-line reason."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CatalogueError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors and the unexpected: one line, no traceback
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        sys.exit(1)
