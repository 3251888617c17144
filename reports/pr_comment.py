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
from planner.planfile import Plan
from planner.review.check import CheckResult
from planner.review.diff import CostChange, ModelChange, PlanDiff
from planner.review.gates import Gate
from reports.format import money, percent, seconds_spent
from reports.summary import node_loss_sentence

MARKER = "<!-- placement-planner-check -->"
MAX_COMMENT_CHARS = 65_000
MAX_PROBLEMS_SHOWN = 50  # problems listed in the comment and annotated when a side is invalid
MAX_BULLET_CHARS = 500  # one bullet of the comment at most
MAX_NOTE_CHARS = 300  # the note of one model change (reasons a model is unplaced)
MAX_COST_ROWS = 40  # teams (or pools) in the cost table; the rest summed in one row
TOP_CHANGES = 30  # model changes in the comment's first table
MAX_TOP_CHARS = 16_000  # that table at most
MAX_CAPACITY_CHARS = 8_000  # the capacity table at most
TABLE_SLACK = 100  # characters kept free for the lines around the fitted tables


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


def _cost_row(name: str, row: CostChange, cur: str) -> str:
    return (f"| {name} | {_money(row.before, cur)} | {_money(row.after, cur)} | "
            f"{_money(row.change, cur, True)} |")


def _cost_rows(kind: str, rows: list[CostChange], cur: str) -> list[str]:
    """The rows of `kind` whose cost changes; past MAX_COST_ROWS the largest changes, and one
    row that sums the rest, so the table still adds up."""
    changed = [r for r in rows if r.change]
    shown = changed
    if len(changed) > MAX_COST_ROWS:
        largest = sorted(changed, key=lambda r: (-abs(r.change), r.name))[:MAX_COST_ROWS - 1]
        shown = [r for r in changed if r in largest]
    lines = [_cost_row(f"{kind} {inert(r.name)}", r, cur) for r in shown]
    rest = [r for r in changed if r not in shown]
    if rest:
        lines.append(_cost_row(f"{len(rest)} more {kind}s", CostChange(
            name="rest", before=sum((r.before for r in rest), Decimal(0)),
            after=sum((r.after for r in rest), Decimal(0))), cur))
    return lines


def cost_table(diff: PlanDiff) -> list[str]:
    """The total, then every team whose cost changes and idle capacity (together they add up
    to the total's change), then every pool whose cost changes (they add up to it too)."""
    cur = diff.currency
    lines = ["| cost per month | before | after | change |", "|---|---:|---:|---:|",
             f"| **total** | {_money(diff.total.before, cur)} | {_money(diff.total.after, cur)} "
             f"| **{_money(diff.total.change, cur, True)}** "
             f"({_pct(diff.total.change, diff.total.before)}) |"]
    lines += _cost_rows("team", diff.teams, cur)
    if diff.idle.change:
        lines.append(_cost_row(inert(diff.idle.name), diff.idle, cur))
    return lines + _cost_rows("pool", diff.pools, cur)


CHANGES_HEADER = ["| model | team | change | pool | replicas | cost per month | note |",
                  "|---|---|---|---|---:|---:|---|"]


def _change_row(m: ModelChange, currency: str) -> str:
    return (f"| {inert(m.name)} | {inert(m.team)} | {', '.join(m.kinds)} | {_placement(m)} | "
            f"{_replicas(m)} | {_money(m.cost_per_month_before, currency)} → "
            f"{_money(m.cost_per_month_after, currency)} | "
            f"{inert(_clip(m.note, MAX_NOTE_CHARS))} |")


def changes_table(diff: PlanDiff) -> list[str]:
    """Every model that changes, one row each."""
    return CHANGES_HEADER + [_change_row(m, diff.currency) for m in diff.models]


def _size(lines: list[str]) -> int:
    """Characters that `lines` take in the body, newlines included."""
    return sum(len(line) + 1 for line in lines)


def _fit(header: list[str], rows: list[str], room: int, more,
         limit: int | None = None) -> list[str]:
    """`header` and as many `rows` as fit in `room` characters (at most `limit`), then the row
    `more(hidden)` that counts the rows left out; nothing at all when not even the header and
    that row fit (a table without its header would render as text)."""
    if _size(header + rows) <= room and (limit is None or len(rows) <= limit):
        return header + rows
    reserve = len(more(len(rows))) + 1  # the counting row, at its longest
    kept: list[str] = []
    used = _size(header)
    for row in rows:
        if used + len(row) + 1 + reserve > room or len(kept) == limit:
            break
        kept.append(row)
        used += len(row) + 1
    lines = header + kept + [more(len(rows) - len(kept))]
    return lines if _size(lines) <= room else []


def render_diff_markdown(diff: PlanDiff) -> str:
    lines = ["## Placement plan diff", "", *cost_table(diff), ""]
    lines += changes_table(diff) if diff.models else ["No model changes its placement."]
    return "\n".join(lines) + "\n"


def _gate_bullet(g: Gate) -> str:
    return (f"- **{g.name}**: {inert(_clip(g.message, MAX_BULLET_CHARS))}. To pass: "
            f"{inert(_clip(g.fix, MAX_BULLET_CHARS))}.")


def _node_loss(plan: Plan) -> list[str]:
    """One line under Capacity: the summary's node-loss sentence (bounded: counts only)."""
    sentence = node_loss_sentence(plan, "summary.md lists them")
    return [] if sentence is None else ["", f"Node loss: {sentence}"]


def render_check_markdown(result: CheckResult) -> str:
    """The pull-request comment, built to fit: everything but the tables of model changes and
    pools is bounded by construction, and those tables take the room that is left, each with
    its header and a last row that counts the rows it leaves out. The body is measured, and
    stays under MAX_COMMENT_CHARS for any registry."""
    diff, failed = result.diff, [g for g in result.gates if not g.passed]
    cur = diff.currency
    verdict = (f"❌ **Placement check failed**: {len(failed)} of {len(result.gates)} gates"
               if failed else f"✅ **Placement check passed**: {len(result.gates)} gates")
    cost = (f"Monthly cost {_money(diff.total.before, cur)} → {_money(diff.total.after, cur)} "
            f"({_money(diff.total.change, cur, True)}, "
            f"{_pct(diff.total.change, diff.total.before)}).")
    head = [MARKER, f"{verdict}. {cost}" if diff.changed else f"{verdict}. No change to cost "
            "or placement.", ""]
    if diff.changed:
        head += ["### Cost", "", *cost_table(diff), ""]
    gates = ["### Failed gates", "", *(_gate_bullet(g) for g in failed), ""] if failed else []
    unenforced = [e for e in result.new.enforcement if not e.enforced]
    if unenforced:
        gates += ["### Not enforced by the cluster", "",
                  *(f"- **{inert(_clip(e.rule, MAX_BULLET_CHARS))}** in "
                    f"{inert(_clip(', '.join(e.pools), MAX_BULLET_CHARS))}: "
                    f"{inert(_clip(e.how, MAX_BULLET_CHARS))}." for e in unenforced), ""]
    detail_gates = ["<details><summary>Full detail</summary>", "", "#### Gates", "",
                    "| gate | result | detail |", "|---|---|---|"]
    detail_gates += [f"| {g.name} | {'pass' if g.passed else 'fail'} | "
                     f"{inert(_clip(g.message, MAX_BULLET_CHARS))} |" for g in result.gates]
    s = result.new.solver
    solver = ["", f"Solver: {s.name}, {s.status}, gap {s.gap:.2%}, {seconds_spent(s)}; "
              f"{s.moved_replicas} replicas moved against the base plan.", ""]
    closing = ["", "</details>"]
    loss = _node_loss(result.new)
    fixed = head + gates + detail_gates + solver + closing + loss
    room = MAX_COMMENT_CHARS - _size(fixed) - TABLE_SLACK

    rows = [_change_row(m, cur) for m in diff.models]
    top = []
    if diff.changed:
        top = ["### Placement changes", ""] + (_fit(
            CHANGES_HEADER, rows, min(room // 3, MAX_TOP_CHARS),
            lambda hidden: f"| … {hidden} more model changes (see the full detail below) "
                           "| | | | | | |", limit=TOP_CHANGES)
            if rows else ["No model changes its placement."]) + [""]
        room -= _size(top)
    capacity = ["#### Capacity", ""] + _fit(
        ["| pool | nodes | GPUs used |", "|---|---:|---:|"],
        [f"| {inert(c.pool)} | {c.nodes_before} → {c.nodes_after} | {c.gpus_before} → "
         f"{c.gpus_after} |" for c in diff.capacity], min(room // 3, MAX_CAPACITY_CHARS),
        lambda hidden: f"| … {hidden} more pools | | |") + loss
    room -= _size(capacity) + 1
    every = (["#### Every model change", ""] + _fit(
        CHANGES_HEADER, rows, room - _size(["", "#### Every model change", ""]),
        lambda hidden: f"| … {hidden} more, not shown to fit a comment (`planner check "
                       "--format json` lists every change) | | | | | | |")) if rows else []
    body = head + top + gates + detail_gates + ["", *capacity] + solver[:-1] + \
        ([""] + every if every else []) + closing
    return "\n".join(body) + "\n"


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
    """The diff in the same shape as `planner diff --format json`, with the gates beside it,
    and the new plan's node loss as plan.yaml keeps it (the comment's sentence in figures;
    null where it was not replayed)."""
    loss = result.new.node_loss
    body = {
        **result.diff.model_dump(mode="json"),
        "passed": result.passed,
        "gates": [{"name": g.name, "passed": g.passed, "message": g.message, "fix": g.fix,
                   "annotations": [{"file": str(a.file), "line": a.line, "message": a.message}
                                   for a in g.annotations]} for g in result.gates],
        "node_loss": None if loss is None else {
            **loss.model_dump(mode="json"), "currency": result.new.summary.currency},
    }
    return json.dumps(body, indent=2) + "\n"
