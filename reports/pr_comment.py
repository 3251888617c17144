"""The diff and the check, for people and for CI: tables, markdown comments, annotations, JSON.

The markdown starts with a hidden marker line so a CI job can find and update its earlier
comment, and stays under GitHub's 65,536-character comment limit. Text that comes from the
registry or a plan (names, reasons, messages) is data, never markup: `inert()` escapes it for
markdown and `_data()`/`_property()` for workflow commands, as GitHub documents them.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

from planner.errors import InputError, printable
from planner.review.check import CheckResult
from planner.review.diff import PlanDiff
from reports.format import money, percent

MARKER = "<!-- placement-planner-check -->"
MAX_COMMENT_CHARS = 65_000
MAX_PROBLEMS_SHOWN = 50  # problems listed in the comment and annotated when a side is invalid
MAX_BULLET_CHARS = 500  # one bullet of the comment at most


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")


def inert(value: object) -> str:
    """`value` as inert markdown: one line, HTML written as entities (so no `<img>`, `<!--` or
    `</details>` gets through), markdown punctuation escaped (no links, images, code or table
    cells), and `@` followed by a zero-width space so that no one is mentioned."""
    escaped = (printable(str(value)).replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;"))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped).replace("@", "@&#8203;")


def _data(value: str) -> str:
    """A workflow command's message, escaped as GitHub's runner decodes it."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    """A workflow command's property value (file, title): also `:` and `,` escaped."""
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def _money(amount: Decimal | float, currency: str, sign: bool = False) -> str:
    return money(amount, currency, sign=sign)


def _pct(change: Decimal | float, before: Decimal | float) -> str:
    return percent(change, before, sign=True, digits=1) if before else "new"


def _placement(m) -> str:
    if "added" in m.kinds or "placed" in m.kinds:
        return f"→ {inert(m.pool_after)}"
    if m.pool_before and m.pool_after and m.pool_before != m.pool_after:
        return f"{inert(m.pool_before)} → {inert(m.pool_after)}"
    return inert(m.pool_after or m.pool_before or "-")


def _replicas(m) -> str:
    if m.replicas_before == m.replicas_after:
        return str(m.replicas_after)
    return f"{m.replicas_before if m.replicas_before is not None else '-'} → " \
           f"{m.replicas_after if m.replicas_after is not None else '-'}"


def cost_table(diff: PlanDiff) -> list[str]:
    """The total, then every team whose cost changes and idle capacity (together they add up
    to the total's change), then every pool whose cost changes (they add up to it too)."""
    cur = diff.currency
    lines = ["| cost per month | before | after | change |", "|---|---:|---:|---:|",
             f"| **total** | {_money(diff.total.before, cur)} | {_money(diff.total.after, cur)} "
             f"| **{_money(diff.total.change, cur, True)}** "
             f"({_pct(diff.total.change, diff.total.before)}) |"]
    for kind, rows in (("team", diff.teams), ("", [diff.idle]), ("pool", diff.pools)):
        lines += [f"| {f'{kind} ' if kind else ''}{inert(r.name)} | {_money(r.before, cur)} | "
                  f"{_money(r.after, cur)} | {_money(r.change, cur, True)} |"
                  for r in rows if r.change]
    return lines


def changes_table(diff: PlanDiff, limit: int | None = None) -> list[str]:
    rows = diff.models if limit is None else diff.models[:limit]
    lines = ["| model | team | change | pool | replicas | cost per month | note |",
             "|---|---|---|---|---:|---:|---|"]
    for m in rows:
        lines.append(f"| {inert(m.name)} | {inert(m.team)} | {', '.join(m.kinds)} | "
                     f"{_placement(m)} | "
                     f"{_replicas(m)} | {_money(m.cost_per_month_before, diff.currency)} → "
                     f"{_money(m.cost_per_month_after, diff.currency)} | {inert(m.note)} |")
    if limit is not None and len(diff.models) > limit:
        lines.append(f"| … {len(diff.models) - limit} more in the details below | | | | | | |")
    return lines


def render_diff_markdown(diff: PlanDiff) -> str:
    lines = ["## Placement plan diff", "", *cost_table(diff), ""]
    lines += changes_table(diff) if diff.models else ["No model changes its placement."]
    return "\n".join(lines) + "\n"


def render_check_markdown(result: CheckResult) -> str:
    diff, failed = result.diff, [g for g in result.gates if not g.passed]
    verdict = (f"❌ **Placement check failed**: {len(failed)} of {len(result.gates)} gates"
               if failed else f"✅ **Placement check passed**: {len(result.gates)} gates")
    cost = (f"Monthly cost {_money(diff.total.before, diff.currency)} → "
            f"{_money(diff.total.after, diff.currency)} "
            f"({_money(diff.total.change, diff.currency, True)}, "
            f"{_pct(diff.total.change, diff.total.before)}).")
    head = [MARKER, f"{verdict}. {cost}" if diff.changed else f"{verdict}. No change to cost "
            "or placement.", ""]
    if diff.changed:
        head += ["### Cost", "", *cost_table(diff), "", "### Placement changes", ""]
        head += changes_table(diff, limit=30) if diff.models else ["No model changes its "
                                                                     "placement."]
        head.append("")
    if failed:
        head += ["### Failed gates", ""]
        head += [f"- **{g.name}**: {inert(g.message)}. To pass: {inert(g.fix)}." for g in failed]
        head.append("")
    detail = ["<details><summary>Full detail</summary>", "", "#### Gates", "",
              "| gate | result | detail |", "|---|---|---|"]
    detail += [f"| {g.name} | {'pass' if g.passed else 'fail'} | {inert(g.message)} |"
               for g in result.gates]
    detail += ["", "#### Capacity", "", "| pool | nodes | GPUs used |", "|---|---:|---:|"]
    detail += [f"| {inert(c.pool)} | {c.nodes_before} → {c.nodes_after} | {c.gpus_before} → "
               f"{c.gpus_after} |" for c in diff.capacity]
    s = result.new.solver
    detail += ["", f"Solver: {s.name}, {s.status}, gap {s.gap:.2%}, {s.seconds:.2f} s; "
               f"{s.moved_replicas} replicas moved against the base plan.", ""]
    if diff.models:
        detail += ["#### Every model change", ""]
    closing = ["", "</details>"]
    text = "\n".join(head + detail)
    rows = changes_table(diff) if diff.models else []
    budget = MAX_COMMENT_CHARS - len(text) - len("\n".join(closing)) - 200
    kept: list[str] = []
    for row in rows:
        if sum(len(r) + 1 for r in kept) + len(row) > budget:
            kept.append(f"| … {len(rows) - len(kept)} more rows cut to fit a comment "
                        "| | | | | | |")
            break
        kept.append(row)
    return "\n".join([text, *kept, *closing]) + "\n"


def _shown(path: Path, root: Path) -> str:
    """A path as the pull request names it: relative to the repository's root when inside."""
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) \
        else path.as_posix()


def _error_command(title: str, message: str, root: Path, file: Path | None = None,
                   line: int | None = None) -> str:
    """One `::error` workflow command, at a file and line when there is one."""
    where = f"file={_property(_shown(file, root))},line={line or 1}," if file is not None \
        else ""
    return f"::error {where}title={_property(title)}::{_data(message)}"


def render_annotations(result: CheckResult, root: Path) -> list[str]:
    """GitHub workflow commands pointing at the files and lines behind failed gates."""
    return [_error_command(gate.name, note.message, root, note.file, note.line)
            for gate in result.gates if not gate.passed for note in gate.annotations]


def _problem_text(problem) -> str:
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


def render_problem_annotations(error: InputError, root: Path) -> list[str]:
    """GitHub workflow commands for a registry that does not validate (the check's exit 2)."""
    return [_error_command("invalid registry", printable(_problem_text(p)), root, p.file,
                           p.line) for p in error.problems[:MAX_PROBLEMS_SHOWN]]


def render_invalid_markdown(error: InputError, root: Path) -> str:
    """The comment when the check cannot run because either side does not validate."""
    problems = error.problems
    lines = [MARKER, f"❌ **Placement check could not run**: the registry does not validate "
             f"({len(problems)} problem{'s' if len(problems) != 1 else ''}).", ""]
    for p in problems[:MAX_PROBLEMS_SHOWN]:
        where = "" if p.file is None else \
            f"**{inert(_shown(p.file, root))}{f':{p.line}' if p.line else ''}**: "
        lines.append(f"- {where}{inert(_clip(_problem_text(p), MAX_BULLET_CHARS))}")
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"- … and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    lines += ["", "`planner validate` in the registry lists every problem; the check runs again "
              "on the next push."]
    return "\n".join(lines) + "\n"


def render_invalid_json(error: InputError, root: Path) -> str:
    """`--format json` when the check cannot run: every problem with its file and line."""
    body = {"passed": False, "valid": False,
            "problems": [{"file": _shown(p.file, root) if p.file is not None else None,
                          "line": p.line, "field": p.field, "message": p.message}
                         for p in error.problems]}
    return json.dumps(body, indent=2) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def render_check_json(result: CheckResult) -> str:
    """The diff in the same shape as `planner diff --format json`, with the gates beside it."""
    body = {
        **result.diff.model_dump(mode="json"),
        "passed": result.passed,
        "gates": [{"name": g.name, "passed": g.passed, "message": g.message, "fix": g.fix,
                   "annotations": [{"file": str(a.file), "line": a.line, "message": a.message}
                                   for a in g.annotations]} for g in result.gates],
    }
    return json.dumps(body, indent=2) + "\n"
