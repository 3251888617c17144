"""The check's pull-request comment fits GitHub's 65,536-character limit for any registry, and
still renders: every table keeps its header (checked with a markdown parser), every bullet is
bounded, and each "… N more" row counts exactly the rows it stands for.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from markdown_it import MarkdownIt

from planner.demo import demo_registry_path
from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from planner.review.check import CheckResult
from planner.review.diff import CapacityChange, CostChange, ModelChange, PlanDiff
from planner.review.gates import Gate
from reports.pr_comment import (
    MAX_BULLET_CHARS,
    MAX_COMMENT_CHARS,
    TOP_CHANGES,
    render_check_markdown,
)

GITHUB_LIMIT = 65_536


@pytest.fixture(scope="module")
def plan():
    return make_plan(load_registry(demo_registry_path()), SolverSettings(method="greedy"))


def _name(prefix: str, i: int) -> str:
    """A name as long as the registry allows (a DNS label: 63 characters)."""
    return f"{prefix}-{i:04d}-".ljust(63, "x")


def _big_diff(models: int, teams: int, pools: int) -> PlanDiff:
    """`models` changing models (most left unplaced, with long reasons), `teams` teams and
    `pools` pools whose costs all change."""
    changes = []
    for i in range(models):
        kind = "unplaced" if i % 10 < 8 else ("moved" if i % 10 == 8 else "resized")
        changes.append(ModelChange(
            name=_name("model", i), team=_name("team", i % teams), kinds=[kind],
            pool_before=_name("pool", i % pools), pool_after=None if kind == "unplaced"
            else _name("pool", (i + 1) % pools), replicas_before=2,
            replicas_after=None if kind == "unplaced" else 3,
            cost_per_month_before=Decimal("1234.56"),
            cost_per_month_after=Decimal(0) if kind == "unplaced" else Decimal("2345.67"),
            note="; ".join(f"{_name('pool', j)}: no room for 2 replicas within 4 nodes after "
                           "higher priorities" for j in range(5)) if kind == "unplaced" else ""))
    team_rows = [CostChange(name=_name("team", i), before=Decimal("1000.00") + i,
                            after=Decimal("1500.25") + 2 * i) for i in range(teams)]
    pool_rows = [CostChange(name=_name("pool", i), before=Decimal("9000.10") + i,
                            after=Decimal("9100.20") + 3 * i) for i in range(pools)]
    idle = CostChange(name="idle capacity", before=Decimal("500.00"), after=Decimal("750.50"))
    team_total = sum((r.after - r.before for r in team_rows), Decimal(0)) + idle.change
    pool_total = sum((r.after - r.before for r in pool_rows), Decimal(0))
    # make the pools add up to the same total as the teams and idle capacity
    pool_rows[0] = CostChange(name=pool_rows[0].name, before=pool_rows[0].before,
                              after=pool_rows[0].after + team_total - pool_total)
    before = sum((r.before for r in team_rows), Decimal(0)) + idle.before
    total = CostChange(name="total", before=before, after=before + team_total)
    capacity = [CapacityChange(pool=_name("pool", i), nodes_before=3, nodes_after=4,
                               gpus_before=12, gpus_after=16) for i in range(pools)]
    return PlanDiff(currency="USD", total=total, teams=team_rows, idle=idle, pools=pool_rows,
                    capacity=capacity, models=changes)


def _gates(diff: PlanDiff) -> list[Gate]:
    unplaced = [m.name for m in diff.models if "unplaced" in m.kinds]
    return [Gate("policy", True, "every model is admitted by a pool"),
            Gate("unplaced", False, f"{len(unplaced)} model(s) cannot be placed: "
                 + ", ".join(unplaced), "; ".join(m.note for m in diff.models[:50])),
            Gate("max-increase-pct", False, "monthly cost changes by +75.0% (limit +10%)",
                 "lower the demand of the models below or raise --max-increase-pct")]


def _tables(body: str) -> list[dict]:
    """Each table the markdown renders: its header cells and the cells of every body row."""
    tables, current, row, in_head = [], None, None, False
    for token in MarkdownIt("commonmark").enable("table").parse(body):
        if token.type == "table_open":
            current = {"header": [], "rows": []}
        elif token.type == "table_close":
            tables.append(current)
        elif token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            (current["header"].extend(row) if in_head else current["rows"].append(row))
            row = None
        elif token.type == "inline" and row is not None and current is not None:
            row.append(token.content)
    return tables


def _shown_and_hidden(rows: list[list[str]], more: str) -> tuple[int, int]:
    """Rows shown, and the rows the last row says it leaves out (0 when it is a plain row)."""
    counted = re.match(more, rows[-1][0]) if rows else None
    return (len(rows) - 1, int(counted.group(1))) if counted else (len(rows), 0)


def _render(plan, diff: PlanDiff) -> str:
    return render_check_markdown(CheckResult(plan, plan, diff, _gates(diff)))


@pytest.mark.parametrize("models,teams,pools", [(1000, 300, 120), (1000, 40, 10),
                                                (5000, 1000, 500)])
def test_a_huge_change_fits_and_renders(plan, models, teams, pools):
    diff = _big_diff(models, teams, pools)
    body = _render(plan, diff)
    assert len(body) <= MAX_COMMENT_CHARS < GITHUB_LIMIT

    tables = _tables(body)
    table_lines = [line for line in body.splitlines() if line.startswith("|")]
    assert len(table_lines) == sum(2 + len(t["rows"]) for t in tables)  # none renders as text
    for table in tables:
        assert table["header"] and all(len(r) == len(table["header"]) for r in table["rows"])
    cost, top, capacity, every = tables[0], tables[1], tables[3], tables[4]
    assert cost["header"][0] == "cost per month" and top["header"][0] == "model"
    assert capacity["header"][0] == "pool" and every["header"][0] == "model"

    for table, most in ((top, TOP_CHANGES), (every, None)):
        shown, hidden = _shown_and_hidden(table["rows"], r"… (\d+) more")
        assert shown + hidden == models and (most is None or shown <= most)
        assert [r[0] for r in table["rows"][:shown]] == [m.name for m in diff.models[:shown]]
    assert sum(_shown_and_hidden(capacity["rows"], r"… (\d+) more pools")) == pools

    def amount(cell: str) -> Decimal:
        return Decimal(re.search(r"[-+]?[\d,]+\.\d\d", cell).group().replace(",", ""))

    total = amount(cost["rows"][0][3])
    teams_rows = [r for r in cost["rows"][1:] if "team" in r[0] or r[0] == "idle capacity"]
    pools_rows = [r for r in cost["rows"][1:] if "pool" in r[0]]
    assert sum(amount(r[3]) for r in teams_rows) == total  # teams and idle add up
    assert sum(amount(r[3]) for r in pools_rows) == total  # and so do pools
    counted = sum(int(m.group(1)) if (m := re.match(r"(\d+) more teams", r[0])) else 1
                  for r in teams_rows if r[0] != "idle capacity")
    assert counted == teams

    bullets = [line for line in body.splitlines() if line.startswith("- **")]
    unenforced = [e for e in plan.enforcement if not e.enforced]  # one bullet per rule kind
    assert len(bullets) == 2 + len(unenforced) and all(len(b) < 4 * MAX_BULLET_CHARS
                                                       for b in bullets)


def test_a_small_change_shows_everything(plan):
    diff = _big_diff(12, 3, 2)
    body = _render(plan, diff)
    tables = _tables(body)
    assert [len(t["rows"]) for t in tables] == [1 + 3 + 1 + 2, 12, 3, 2, 12]
    assert "more" not in body.replace("more pools", "")
