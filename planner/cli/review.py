"""`planner diff` and `planner check`: plan changes for pull requests."""

from __future__ import annotations

import dataclasses
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.app import RegistryOption, app, guarded
from planner.errors import InputError


class DiffFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command()
@guarded
def diff(
    base_plan: Annotated[Path, typer.Argument(help="The plan before.", dir_okay=False)],
    new_plan: Annotated[Path, typer.Argument(help="The plan after.", dir_okay=False)],
    format: Annotated[DiffFormat, typer.Option("--format")] = DiffFormat.table,
) -> None:
    """Compare two plans: cost per team and pool, and every model that changes."""
    from planner.cli.console import out as stdout
    from planner.planfile import load_plan
    from planner.review.diff import diff_plans
    from reports.pr_comment import render_diff_markdown

    result = diff_plans(load_plan(base_plan), load_plan(new_plan))
    if format is DiffFormat.json:
        stdout.print_json(result.model_dump_json())
    elif format is DiffFormat.markdown:
        typer.echo(render_diff_markdown(result), nl=False)
    else:
        from rich.markdown import Markdown

        stdout.print(Markdown(render_diff_markdown(result)))


class CheckFormat(StrEnum):
    markdown = "markdown"
    json = "json"
    github = "github"


@app.command()
@guarded
def check(
    base: Annotated[str | None, typer.Option(help="The git ref to compare with, for example "
                                             "origin/main.", show_default=False)] = None,
    base_plan: Annotated[Path | None, typer.Option(
        "--base-plan", help="Compare with this plan.yaml instead of a git ref.", dir_okay=False,
        show_default=False)] = None,
    registry: RegistryOption = None,
    format: Annotated[CheckFormat, typer.Option("--format", help="github adds ::error "
                                                "annotations and the step summary.")]
    = CheckFormat.markdown,
    max_increase: Annotated[float | None, typer.Option(
        help="Fail if the monthly cost rises by more than this amount.")] = None,
    max_increase_pct: Annotated[float | None, typer.Option(
        help="Fail if the monthly cost rises by more than this percentage.")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Fail if the monthly cost exceeds this amount.")] = None,
    out_file: Annotated[Path | None, typer.Option(help="Also write the report to this file.",
                                                  dir_okay=False)] = None,
    time_limit: Annotated[float, typer.Option(
        "--time-limit", min=0.1, help="Budget of each solve, in CP-SAT deterministic seconds "
        "(the check solves by counted work, so base and change are planned alike on any "
        "machine).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed of the solver.")] = 0,
    html: Annotated[Path | None, typer.Option(
        "--html", file_okay=False, show_default=False,
        help="Also write check.html to this folder: each pool that changed, drawn before and "
        "after (replaced atomically).")] = None,
) -> None:
    """Check a registry change for a pull request: the cost and placement diff and its gates.

    Exit 0 when every gate passes, 1 when one fails, 2 when either side does not validate.
    Both sides are solved on counted work (as `planner plan --deterministic`), so the same
    base and change give the same report on any machine, however loaded.
    """
    from planner.pipeline import SolverSettings
    from planner.registry.locate import resolve_registry
    from planner.review.base import check_ref
    from planner.review.check import run_check
    from planner.review.gates import Thresholds
    from planner.simulation.node_loss import with_node_loss
    from reports import pr_comment

    if out_file is not None and out_file.is_symlink():
        raise InputError(f"--out-file {out_file}: a symbolic link; give the file itself")
    cwd = Path.cwd().resolve()
    try:
        source: str | Path
        if base is not None and base_plan is None:
            check_ref(base)
            source = base
        elif base_plan is not None and base is None:
            source = base_plan
        else:
            raise InputError("give exactly one of --base REF (a git ref such as origin/main) "
                             "or --base-plan PLAN (a plan.yaml)")
        root, _ = resolve_registry(registry)
        result = run_check(root, source, Thresholds(max_increase, max_increase_pct, budget),
                           SolverSettings(time_limit_s=time_limit, seed=seed,
                                          deterministic=True))
        result = dataclasses.replace(result, new=with_node_loss(result.new))
    except InputError as exc:
        # the pull request still hears why: annotations, step summary and report file
        _publish(format, pr_comment.render_invalid_json(exc, cwd)
                 if format is CheckFormat.json else pr_comment.render_invalid_markdown(exc, cwd),
                 pr_comment.render_problem_annotations(exc, cwd), out_file, echo=False)
        raise
    text = pr_comment.render_check_json(result) if format is CheckFormat.json \
        else pr_comment.render_check_markdown(result)
    _publish(format, text, pr_comment.render_annotations(result, cwd), out_file, echo=True)
    if html is not None:
        from planner.output import write_folder
        from reports.plan_html import render_change_html

        write_folder(html, {"check.html": render_change_html(result.base, result.new)},
                     protected=[root])
    if not result.passed:
        raise typer.Exit(1)


def _publish(format: CheckFormat, text: str, annotations: list[str], out_file: Path | None,
             *, echo: bool) -> None:
    """Write the check's report where it was asked for: with `--format github` annotations on
    stdout and the step summary, then stdout (unless the errors on stderr say it all) and
    `--out-file`."""
    if format is CheckFormat.github:
        for line in annotations:
            typer.echo(line)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text)
    if echo and format is CheckFormat.github:
        # the report is data: the runner executes no workflow command until the token returns
        token = secrets.token_hex(16)
        typer.echo(f"::stop-commands::{token}")
        typer.echo(text, nl=False)
        typer.echo(f"::{token}::")
    elif echo:
        typer.echo(text, nl=False)
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
