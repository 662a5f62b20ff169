"""GraphQL for curators: harvest runs and what each source did, datasets' validation reports,
and starting the harvest of one provider (in the server, in the background)."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Annotated

import strawberry

from catalogue.domain.harvest import SourceReport
from catalogue.exceptions import QueryError
from catalogue.services.harvest_jobs import jobs_for
from catalogue.services.harvest_log import HarvestLog, RunRecord

CURATORS = " For curators."
MAX_RUNS = 100


@strawberry.enum(description="Where a harvest run stands.")
class RunState(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@strawberry.type(description="How many items a source skipped for one reason.")
class SkippedCount:
    reason: str
    count: int


@strawberry.type(
    description="What one source did in a run: datasets listed, then new, updated, unchanged, "
    "rejected (by validation) and deleted; a failed source changed nothing."
)
class SourceRun:
    provider: str
    source: str
    kind: str
    ok: bool
    error: str | None
    complete: bool = strawberry.field(
        description="false: the source listed only part of its datasets (nothing deleted)."
    )
    listed: int = strawberry.field(description="Datasets the source listed.")
    new: int
    updated: int
    unchanged: int
    deleted: int
    rejected: int
    series: int = strawberry.field(description="Imaging series rows written.")
    suspect: str | None = strawberry.field(description="Why deletions were held back, if so.")
    skipped: list[SkippedCount]
    warnings: list[str]
    normalisations: list[str] = strawberry.field(
        description="Known drift from DCAT-AP repaired while reading."
    )

    @classmethod
    def of(cls, r: SourceReport) -> SourceRun:
        return cls(
            provider=r.provider_id,
            source=r.source_id,
            kind=r.kind,
            ok=r.ok,
            error=r.error,
            complete=r.complete,
            listed=r.datasets,
            new=r.new,
            updated=r.updated,
            unchanged=r.unchanged,
            deleted=r.deleted,
            rejected=r.rejected,
            series=r.series,
            suspect=r.suspect,
            skipped=[SkippedCount(reason=k, count=v) for k, v in sorted(r.skipped.items())],
            warnings=list(r.warnings),
            normalisations=list(r.normalisations),
        )


@strawberry.type(description="A harvest run and what each of its sources did.")
class HarvestRun:
    id: int
    started: str = strawberry.field(description="UTC, ISO 8601.")
    ended: str | None
    ok: bool | None = strawberry.field(description="Null until it ends.")
    state: RunState = strawberry.field(
        description="RUNNING until its results are visible in the API; INTERRUPTED: it never "
        "ended (its process stopped)."
    )
    mapping_version: int | None = strawberry.field(
        description="The curators' mapping set version it applied."
    )
    sources: list[SourceRun]

    @classmethod
    def of(cls, run: RunRecord, running: int | None) -> HarvestRun:
        if run.id == running:
            state = RunState.RUNNING
        elif run.ended is None:
            state = RunState.INTERRUPTED
        else:
            state = RunState.SUCCEEDED if run.ok else RunState.FAILED
        return cls(
            id=run.id,
            started=run.started,
            ended=run.ended,
            ok=run.ok,
            state=state,
            mapping_version=run.mapping_version,
            sources=[SourceRun.of(s) for s in run.sources],
        )


@strawberry.type(description="A dataset's SHACL validation report from one harvest run.")
class ValidationReport:
    run_id: int
    conforms: bool
    violations: int
    report: str = strawberry.field(description="The report as text, each result on its lines.")


def _log(info: strawberry.Info) -> HarvestLog:
    log: HarvestLog = info.context.view.catalogue.log
    return log


def _running(info: strawberry.Info) -> int | None:
    return jobs_for(info.context.view).running_run()


@strawberry.type
class HarvestQuery:
    @strawberry.field(description="The most recent harvest runs, newest first." + CURATORS)
    async def harvest_runs(self, info: strawberry.Info, last: int = 10) -> list[HarvestRun]:
        if not 0 <= last <= MAX_RUNS:
            raise QueryError(f"last must be between 0 and {MAX_RUNS}")
        runs = await asyncio.to_thread(_log(info).runs, last)
        running = _running(info)
        return [HarvestRun.of(r, running) for r in runs]

    @strawberry.field(description="One harvest run; null if there is none by that id." + CURATORS)
    async def harvest_run(self, info: strawberry.Info, id: int) -> HarvestRun | None:
        run = await asyncio.to_thread(_log(info).run, id)
        return None if run is None else HarvestRun.of(run, _running(info))

    @strawberry.field(
        description="A dataset's validation reports, newest first: one per harvest that found "
        "it new or changed." + CURATORS
    )
    async def validation_reports(
        self,
        info: strawberry.Info,
        provider: strawberry.ID,
        identifier: str,
        last: Annotated[
            int, strawberry.argument(description=f"At most this many (up to {MAX_RUNS}).")
        ] = 10,
    ) -> list[ValidationReport]:
        if not 0 <= last <= MAX_RUNS:
            raise QueryError(f"last must be between 0 and {MAX_RUNS}")
        found = await asyncio.to_thread(_log(info).validations, str(provider), identifier)
        return [
            ValidationReport(
                run_id=run_id, conforms=r.conforms, violations=r.violations, report=r.report
            )
            for run_id, r in found[:last]
        ]


@strawberry.type(name="Mutation")
class HarvestMutation:
    @strawberry.mutation(
        description="Start harvesting one provider of the providers file, in the background; "
        "returns its run (RUNNING: poll harvestRun). Refused while a harvest runs." + CURATORS
    )
    async def harvest_provider(self, info: strawberry.Info, provider: strawberry.ID) -> HarvestRun:
        jobs = jobs_for(info.context.view)
        run_id = await asyncio.to_thread(jobs.start, str(provider))
        run = await asyncio.to_thread(_log(info).run, run_id)
        if run is None:  # the log is only appended to
            raise QueryError(f"harvest run {run_id} is not in the harvest log")
        return HarvestRun.of(run, jobs.running_run())
