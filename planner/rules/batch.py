"""Batch runs: a model that works in runs (a CronJob, or a one-off Job) instead of serving.

Its replicas are planned and packed as any model's, for the rate a run processes its work at
(`traffic.peak_rps`), so a run of `requests_per_run` lasts requests_per_run / peak_rps seconds.
The nodes are planned to stay; the model pays for its GPUs' share during the hours its runs
take, and the rest of that share is its pool's idle capacity. The runs of a month are the
schedule's starts in that calendar month, or, at the planning figure (`hours_per_month`), the
average over a reference year (2027, 8,760 hours) times those hours; a one-off Job runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from planner import cron
from planner.schemas import ModelSpec

SECONDS_PER_HOUR = 3600
REFERENCE_YEAR = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
REFERENCE_HOURS = 8760
# More runs than hours in a year: an hourly schedule is the most the planner counts; work
# that starts more often is a service (drop `batch`).
MAX_RUNS_PER_YEAR = 8784
CRONJOB_NAME_MAX = 52  # the API server's limit: a Job's name is the CronJob's and 11 more
JOB_NAME_MAX = 63  # a Job's pods carry its name as a label value


@dataclass(frozen=True)
class Runs:
    """What a model's runs take: hours per run and runs per month at the planning figure."""

    run_hours: float
    runs_per_month: float


def run_hours(model: ModelSpec) -> float:
    """How long one run lasts at the planned rate."""
    assert model.batch is not None
    return model.batch.requests_per_run / model.traffic.peak_rps / SECONDS_PER_HOUR


def _starts(schedule: str, time_zone: str | None, start: datetime, end: datetime
            ) -> list[datetime]:
    return cron.starts(schedule, time_zone, start, end, MAX_RUNS_PER_YEAR)


def runs(model: ModelSpec, hours_per_month: float) -> Runs | None:
    """The model's runs, or None when it is not a batch run."""
    if model.batch is None:
        return None
    if model.batch.schedule is None:
        return Runs(run_hours(model), 1.0)
    per_year = len(_starts(model.batch.schedule, model.batch.time_zone, *REFERENCE_YEAR))
    return Runs(run_hours(model), per_year / REFERENCE_HOURS * hours_per_month)


def runs_between(schedule: str | None, time_zone: str | None, start: datetime,
                 end: datetime) -> int:
    """The runs a schedule starts in [start, end); a one-off Job's one run."""
    if schedule is None:
        return 1
    return len(_starts(schedule, time_zone, start, end))


def runs_in_month(schedule: str | None, time_zone: str | None, period: str) -> int:
    """The runs a schedule starts in the calendar month `period` (`YYYY-MM`, UTC)."""
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return runs_between(schedule, time_zone, start, end)


def hours_run(run_hours_each: float, runs_in_month: float, hours: float) -> float:
    """The hours a month's runs take, never more than the month."""
    return min(run_hours_each * runs_in_month, hours)


def batch_problems(model: ModelSpec) -> list[tuple[tuple[str, ...], str]]:
    """What makes a model's `batch` unrunnable, each at its field: runs of a model that does
    not say it is batch work, runs that start more often than hourly, a run longer than the
    shortest time between two starts (the CronJob forbids overlapping runs, so the next would
    be skipped), and KEDA scaling of a run (a run's pods are its planned replicas). Names too
    long for the API server: `planner.registry.kubernetes.batch_name_problems`."""
    batch = model.batch
    if batch is None:
        return []
    problems: list[tuple[tuple[str, ...], str]] = []
    if model.serving_profile != "batch":
        problems.append((("batch",), f"runs are for batch work, and serving_profile is "
                         f"'{model.serving_profile}'; set serving_profile: batch or remove "
                         "`batch`"))
    if model.autoscaler == "keda":
        problems.append((("autoscaler",), "a batch run starts its planned replicas and ends; "
                         "nothing scales it, so remove `autoscaler: keda` or `batch`"))
    if batch.schedule is None:
        return problems
    starts = _starts(batch.schedule, batch.time_zone, *REFERENCE_YEAR)
    if len(starts) > MAX_RUNS_PER_YEAR:
        problems.append((("batch", "schedule"), f"'{batch.schedule}' starts more than once an "
                         "hour; work that runs that often is a service: remove `batch`"))
        return problems
    gaps = [(b - a).total_seconds() / SECONDS_PER_HOUR for a, b in zip(starts, starts[1:],
                                                                         strict=False)]
    each = run_hours(model)
    if gaps and min(gaps) < each:
        problems.append((("batch", "requests_per_run"), (
            f"a run of {batch.requests_per_run:,} requests at {model.traffic.peak_rps:g} rps "
            f"lasts {each:.2f} h, longer than the {min(gaps):.2f} h between two starts of "
            f"'{batch.schedule}'; raise traffic.peak_rps (more replicas), start runs less "
            "often, or process less per run")))
    return problems
