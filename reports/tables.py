"""Rich tables of a plan for the terminal: one row per pool, then totals and solver status,
and against a base plan the replicas that moved."""

from __future__ import annotations

from collections import Counter

from rich.table import Table

from planner import money
from planner.ledger import ledger
from planner.planfile import Plan, RulePrice
from reports.format import money as _money
from reports.format import percent as _percent
from reports.format import rate as _rate
from reports.format import seconds_spent


def plan_tables(plan: Plan, base: Plan | None = None) -> list[Table]:
    """The pool table and the totals; with `base`, the replicas moved from where it had them;
    with rule prices (`plan --price-rules`), what each rule costs.

    A pool's replicas are counted once each, however many GPUs a replica spans; a lazy cache's
    servers count as replicas, its members (loaded into them) do not."""
    currency = plan.summary.currency
    pools = Table(title="Placement plan by pool", title_justify="left")
    for column in ("pool", "GPU", "sharing", "nodes", "GPUs", "replicas", "memory",
                   "compute", "cost/h", "idle/h"):
        pools.add_column(column, justify="left" if column in ("pool", "GPU", "sharing")
                         else "right")
    for pool in plan.pools:
        gpus = sum(len(node.gpus) for node in pool.nodes)
        replicas = len({replica for node in pool.nodes for replica in node.replicas()}) + sum(
            c.servers for c in pool.caches if c.placed)
        pools.add_row(pool.name, pool.device, pool.sharing, str(len(pool.nodes)),
                      f"{gpus}/{pool.gpu_count}", str(replicas),
                      _percent(pool.memory_used_mib, pool.memory_capacity_mib),
                      _percent(pool.compute_used_milli, pool.compute_capacity_milli),
                      _rate(pool.cost_per_hour, currency), _rate(pool.idle_cost_per_hour, currency))
    s, solver = plan.summary, plan.solver
    totals = Table(title="Totals", title_justify="left", show_header=False)
    totals.add_column("what")
    totals.add_column("value", justify="right")
    totals.add_row("models placed", f"{s.models} ({s.replicas} replicas)")
    totals.add_row("unplaced models", str(s.unplaced))
    totals.add_row("nodes / GPUs used", f"{s.nodes} / {s.gpus}")
    total = ledger(plan).total
    totals.add_row("cost per hour", _rate(s.cost_per_hour, currency))
    totals.add_row("cost per month", _money(total, currency))
    totals.add_row("baseline per month (no GPU shared)",
                   _money(s.baseline_cost_per_month, currency))
    totals.add_row("savings per month", _money(s.baseline_cost_per_month - total, currency))
    totals.add_row("solver", f"{solver.name}, {solver.status}, gap {solver.gap:.2%}, "
                   f"{seconds_spent(solver)}")
    tables = [pools, totals]
    if base is not None:
        moves = moved_replicas(base, plan)
        totals.add_row("replicas moved against the base plan",
                       str(sum(n for _, n, _, _ in moves)))
        tables.append(_moves_table(moves))
    if plan.rule_prices:
        tables.append(_rule_prices_table(plan))
    return tables


def _rule_prices_table(plan: Plan) -> Table:
    """Each relaxation with the models it places and what it saves per month: those that
    place more models first, then the largest saving (as summary.md lists them)."""
    currency, hours = plan.summary.currency, plan.metadata.hours_per_month
    table = Table(title="What the rules cost (the plan re-solved with one rule relaxed)",
                  title_justify="left")
    for column in ("rule", "relaxed", "models placed", "saves/month", "status"):
        table.add_column(column, justify="right" if column in ("models placed", "saves/month")
                         else "left")
    for price in sorted(plan.rule_prices, key=RulePrice.rank):
        saving = money.rounded(money.monthly(price.saves_per_hour, hours), currency)
        table.add_row(price.rule, price.relaxed, f"{price.placed_more:+d}",
                      _money(saving, currency), price.status)
    return table


def _nodes(plan: Plan) -> dict[str, Counter[str]]:
    """Per model, how many of its replicas each node (`pool/node`) holds."""
    held: dict[str, Counter[str]] = {}
    for pool in plan.pools:
        for node in pool.nodes:
            for model, _ in node.replicas():
                held.setdefault(model, Counter())[node.name] += 1
    return held


def moved_replicas(base: Plan, plan: Plan) -> list[tuple[str, int, list[str], list[str]]]:
    """Per model whose replicas left a node they had in `base`: (model, replicas moved, the
    nodes they left, the nodes they went to); a model new to the plan moves nothing."""
    before, after = _nodes(base), _nodes(plan)
    moves = []
    for model in sorted(set(before) & set(after)):
        left = before[model] - after[model]
        if left:
            went = after[model] - before[model]
            moves.append((model, sum(left.values()), sorted(left.elements()),
                          sorted(went.elements())))
    return moves


def _moves_table(moves: list[tuple[str, int, list[str], list[str]]]) -> Table:
    table = Table(title="Moved against the base plan", title_justify="left")
    for column in ("model", "replicas moved", "from", "to"):
        table.add_column(column, justify="right" if column == "replicas moved" else "left")
    for model, count, left, went in moves:
        table.add_row(model, str(count), ", ".join(left), ", ".join(went) or "-")
    if not moves:
        table.add_row("(none)", "0", "-", "-")
    return table
