"""The `catalogue` command: demo, harvest, runs, report, audit, reindex, coverage, propose, remap,
mappings, token, validate, serve, schemas."""

from __future__ import annotations

import dataclasses
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
from catalogue.dcat.access_levels import AccessLevel
from catalogue.domain.harvest import SourceReport
from catalogue.domain.principal import Role
from catalogue.exceptions import CatalogueError, ConfigError
from catalogue.ontology.store import ensure_vocabularies
from catalogue.services.audit import AuditLog
from catalogue.services.index_switch import switch_indexes
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


def _sources_table(title: str, sources: list[SourceReport]) -> Table:
    table = Table(title=title)
    columns = ("provider", "source", "kind", "datasets", "new/upd/same/del/rej", "series")
    for column in (*columns, "skipped", "status"):
        table.add_column(column)
    for s in sources:
        skipped = ", ".join(f"{k}: {v}" for k, v in s.skipped.items()) or "-"
        status = "[green]ok" if s.ok else f"[red]failed: {s.error}"
        if s.suspect:
            status += f"\n[yellow]suspect: {s.suspect}"
        for line in s.warnings[:5]:
            status += f"\n[yellow]warning: {line}"
        if s.normalisations:
            status += f"\n{len(s.normalisations)} normalisations"
        changes = f"{s.new}/{s.updated}/{s.unchanged}/{s.deleted}/{s.rejected}"
        row = (s.provider_id, s.source_id, s.kind, str(s.datasets), changes, f"{s.series:,}")
        table.add_row(*row, skipped, status)
    return table


def _print_report(report: HarvestReport) -> None:
    title = f"Harvest run {report.run_id} ({report.seconds:.1f} s)"
    console.print(_sources_table(title, report.sources))


def _harvest(
    settings: Settings, providers: Path, only: str | None, allow_deletions: bool = False
) -> bool:
    """Harvest the valid providers of the file; False when anything failed."""
    parsed, errors = read_providers(providers)
    for error in errors:
        console.print(f"[red]error:[/red] {error} (provider skipped)", soft_wrap=True)
    if not parsed.providers:
        raise ConfigError(f"{providers}: no valid provider to harvest")
    with open_catalogue(settings) as catalogue, _progress() as hook:
        ensure_vocabularies(catalogue.store)
        report = harvest(
            catalogue, parsed, only=only, progress=hook, allow_deletions=allow_deletions
        )
    _print_report(report)
    return report.ok and not errors


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from catalogue.api.app import create_app

    console.print(f"Catalogue at http://{host}:{port}/ (GraphiQL at http://{host}:{port}/graphql)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("harvest")
def harvest_command(
    providers: ProvidersOption = None,
    provider: Annotated[str | None, typer.Option(help="Harvest only this provider.")] = None,
    allow_deletions: Annotated[
        bool,
        typer.Option(
            "--allow-deletions",
            help="Delete datasets no longer listed even past the safeguard (empty listing, "
            "or more than harvest.max_delete_share of a provider).",
        ),
    ] = False,
) -> None:
    """Harvest every provider (or one) into the store and indexes."""
    settings = Settings()
    path = providers or settings.providers
    if path is None:
        raise CatalogueError("no providers file: give --providers or set CATALOGUE_PROVIDERS")
    if not _harvest(settings, path, provider, allow_deletions):
        raise typer.Exit(code=2)


@app.command("runs")
def runs_command(
    last: Annotated[int, typer.Option(help="How many recent runs to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show the recent harvest runs and what each source did."""
    with open_catalogue(Settings()) as catalogue:
        runs = catalogue.log.runs(last)
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in runs], indent=2))
        return
    for run in runs:
        state = {None: "running or stopped", True: "ok", False: "failed"}[run.ok]
        title = f"Run {run.id}: {run.started} to {run.ended or '-'} ({state})"
        console.print(_sources_table(title, run.sources))


@app.command("report")
def report_command(
    provider: Annotated[str, typer.Argument(help="Provider id.")],
    dataset: Annotated[str, typer.Argument(help="Dataset identifier.")],
    last: Annotated[int, typer.Option(help="How many of its reports, newest first.")] = 1,
) -> None:
    """Show a dataset's SHACL validation reports from past harvests."""
    with open_catalogue(Settings()) as catalogue:
        reports = catalogue.log.validations(provider, dataset)[:last]
    if not reports:
        raise CatalogueError(f"no validation report for {provider}/{dataset}")
    for run_id, record in reports:
        verdict = "conforms" if record.conforms else f"{record.violations} violations"
        console.print(f"[bold]run {run_id}: {verdict}[/bold]")
        print(record.report)


@app.command("audit")
def audit_command(
    user: Annotated[str | None, typer.Option(help="Only this user's requests.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's requests.")] = None,
    last: Annotated[int, typer.Option(help="How many recent requests to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the feasibility audit log (administrators): who asked what, what was published."""
    settings = Settings()
    with AuditLog(settings.data_dir / "audit.sqlite") as audit:
        entries = audit.entries(user=user, project=project, limit=last)
    if as_json:
        rows = [dataclasses.asdict(e) | {"time": e.time.isoformat()} for e in entries]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Feasibility audit log ({len(entries)} newest)")
    for column in ("id", "time", "user", "project", "epsilon", "outcome", "query"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.id),
            e.time.isoformat(timespec="seconds"),
            e.user,
            e.project,
            f"{e.epsilon:g}",
            e.outcome,
            e.query,
        )
    console.print(table)


@app.command("reindex")
def reindex_command(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Build the indexes of another backend (embedded or elasticsearch) from the "
            "graph store and the current cohort index, and check them; then switch with "
            "CATALOGUE_INDEX__BACKEND.",
        ),
    ] = None,
) -> None:
    """Rebuild the datasets index from the graph store (the source of truth), or with --to,
    both indexes on another backend (docs/scaling.md)."""
    with open_catalogue(Settings()) as catalogue:
        if to is None:
            counts = reindex_all(catalogue)
            for provider, n in counts.items():
                console.print(f"{provider}: {n} datasets indexed")
            return
        with _progress() as hook:
            report = switch_indexes(catalogue, to, progress=hook)
    datasets, series = sum(report.datasets.values()), sum(report.series.values())
    console.print(
        f"{to}: {datasets} datasets, {series} series and {report.diagnoses} diagnoses indexed "
        f"and checked; now set CATALOGUE_INDEX__BACKEND={to} and restart `catalogue serve`"
    )


FieldOption = Annotated[
    str | None, typer.Option("--field", help="Only this field: body_part, modality, manufacturer.")
]


@app.command("coverage")
def coverage_command(
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    field: FieldOption = None,
    unmapped: Annotated[
        bool, typer.Option("--unmapped", help="Only values no mapping or standard term resolves.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show each raw value of the providers' series: series and subjects (exact), its codes and
    how it got them."""
    from rich.markup import escape

    from catalogue.services.curation import RESOLUTIONS, coverage

    with open_catalogue(Settings()) as catalogue:
        rows = coverage(catalogue, provider, field, unmapped)
        current, applied = catalogue.mappings.version(), catalogue.cohort.mapping_version()
    if as_json:
        out = [
            dataclasses.asdict(r)
            | {"mapped": r.mapped, "concepts": [{"curie": c, "label": n} for c, n in r.concepts]}
            for r in rows
        ]
        print(json.dumps(out, indent=2))
        return
    table = Table(title=f"Coverage of raw values (mapping set version {current})")
    for column in ("provider", "field", "value", "series", "subjects", "how", "concepts"):
        table.add_column(column, overflow="fold")
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        concepts = escape(", ".join(f"{c} {n}" for c, n in r.concepts) or "-")
        value = escape(r.value) if r.mapped else f"[yellow]{escape(r.value)}[/yellow]"
        table.add_row(
            r.provider, r.field, value, f"{r.series:,}", f"{r.subjects:,}",
            RESOLUTIONS[r.how], concepts,
        )  # fmt: skip
        total = totals.setdefault((r.provider, r.field), [0, 0, 0, 0])
        total[0] += r.mapped
        total[1] += 1
        total[2] += r.series if r.mapped else 0
        total[3] += r.series
    console.print(table)
    for (provider_id, name), (mapped, values, series_mapped, series) in totals.items():
        share = f"{series_mapped / series:.1%}" if series else "-"
        console.print(f"{provider_id} {name}: {mapped}/{values} values mapped, {share} of series")
    if applied != current:
        console.print(
            f"[yellow]the indexes apply mapping set version {applied}: run `catalogue remap`"
        )


@app.command("propose")
def propose_command(
    provider: Annotated[str | None, typer.Option(help="Only this provider's values.")] = None,
    field: FieldOption = None,
) -> None:
    """Propose mappings for unmapped raw values (lexical matches, stored as proposed: not
    applied until a curator approves them)."""
    from rich.markup import escape

    from catalogue.services.curation import mapping_key, propose_mappings

    with open_catalogue(Settings()) as catalogue:
        report = propose_mappings(catalogue, provider, field)
    table = Table(title=f"{len(report.proposals)} proposals")
    for column in ("provider", "field", "value", "object", "label", "confidence", "match"):
        table.add_column(column, overflow="fold")
    for m in report.proposals:
        provider_id, name, value = mapping_key(m) or ("", "", "")
        table.add_row(
            provider_id, name, escape(value), m.object_id or "", escape(m.object_label or ""),
            f"{m.confidence or 0:g}", m.comment or "",
        )  # fmt: skip
    console.print(table)
    console.print(f"mapping set version {report.version}")


@app.command("remap")
def remap_command() -> None:
    """Apply the current mapping set to the cohort and datasets indexes, without harvesting."""
    from catalogue.services.curation import remap

    with open_catalogue(Settings()) as catalogue:
        report = remap(catalogue)
    for provider_id, values in report.values.items():
        datasets = report.datasets.get(provider_id, 0)
        console.print(f"{provider_id}: {values} raw values, {datasets} datasets reindexed")
    typer.echo(f"mapping set version {report.version} applied")


mappings_app = typer.Typer(no_args_is_help=True, help="The curators' mapping set (SSSOM/TSV).")
app.add_typer(mappings_app, name="mappings")


@mappings_app.command("export")
def mappings_export_command(
    out: Annotated[Path | None, typer.Option(help="File to write (default: standard output).")] = (
        None
    ),
    version: Annotated[int | None, typer.Option(help="A past version of the set.")] = None,
) -> None:
    """Export the mapping set as SSSOM/TSV (every status; review_status says which)."""
    from catalogue.services.curation import mapping_set_text

    with open_catalogue(Settings()) as catalogue:
        text, number = mapping_set_text(catalogue, version)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"mapping set version {number} written to {out}")


@mappings_app.command("import")
def mappings_import_command(
    file: Annotated[Path, typer.Argument(help="An SSSOM/TSV mapping set of LOCAL subjects.")],
    author: Annotated[str, typer.Option(help="Who imports: an ORCID CURIE or a name.")],
) -> None:
    """Import an SSSOM/TSV mapping set (statuses as it gives them); `catalogue remap` applies
    it."""
    from catalogue.ontology.sssom import read_sssom

    with open_catalogue(Settings()) as catalogue:
        version = catalogue.mappings.import_set(read_sssom(file), author)
    typer.echo(f"mapping set version {version}; run `catalogue remap` to apply it")


token_app = typer.Typer(no_args_is_help=True, help="API tokens for machines (kept hashed).")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create_command(
    name: Annotated[str, typer.Argument(help="Who or what uses the token (unique).")],
    role: Annotated[list[Role], typer.Option("--role", help="A role it grants (repeatable).")],
) -> None:
    """Make an API token and print its secret, once: only its hash is kept."""
    from catalogue.services.api_tokens import ApiTokenStore

    secret = ApiTokenStore(Settings().data_dir).create(name, role)
    console.print(f"API token {name!r}; send it as `Authorization: Bearer <token>`. Keep it:")
    typer.echo(secret)


@token_app.command("list")
def token_list_command() -> None:
    """List the API tokens (never their secrets)."""
    from catalogue.services.api_tokens import ApiTokenStore

    table = Table("name", "roles", "created", "last used", "revoked")
    for token in ApiTokenStore(Settings().data_dir).list():
        table.add_row(
            token.name,
            " ".join(sorted(r.value for r in token.roles)),
            token.created.isoformat(),
            token.last_used.isoformat() if token.last_used else "",
            token.revoked.isoformat() if token.revoked else "",
        )
    Console().print(table)


@token_app.command("revoke")
def token_revoke_command(
    name: Annotated[str, typer.Argument(help="The token's name.")],
) -> None:
    """Revoke an API token: refused from now on."""
    from catalogue.services.api_tokens import ApiTokenStore

    ApiTokenStore(Settings().data_dir).revoke(name)
    console.print(f"API token {name!r} revoked")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql); sign-in as `auth` configures it."""
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
    settings.auth = settings.auth.model_copy(update={"disabled": True})  # a local demo only
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


@app.command("validate")
def validate_command(
    file: Annotated[Path, typer.Argument(help="RDF file: Turtle, RDF/XML, N-Triples, JSON-LD.")],
    level: Annotated[
        AccessLevel | None,
        typer.Option(help="Check every dataset at this level (default: its dct:accessRights)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Class ranges closed-world, as the official shapes.")
    ] = False,
) -> None:
    """Validate against DCAT-AP 3 and HealthDCAT-AP: exit 1 on violations, 2 if unreadable."""
    from rich.markup import escape

    from catalogue.dcat.rdf_io import read_rdf
    from catalogue.dcat.validation import validate
    from catalogue.exceptions import UnreadableSourceError

    try:
        graph = read_rdf(file.absolute())
    except UnreadableSourceError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    report = validate(graph, level, strict=strict)
    typer.echo(report.text(), nl=False)
    if not report.conforms:
        raise typer.Exit(code=1)


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
