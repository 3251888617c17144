"""Rich tables of a plan for the terminal: one row per pool, then totals and solver status."""

from __future__ import annotations

from rich.table import Table

from planner.ledger import ledger
from planner.planfile import Plan
from reports.format import money as _money
from reports.format import percent as _percent
from reports.format import rate as _rate


def plan_tables(plan: Plan) -> list[Table]:
    currency = plan.summary.currency
    pools = Table(title="Placement plan by pool", title_justify="left")
    for column in ("pool", "GPU", "sharing", "nodes", "GPUs", "replicas", "memory",
                   "compute", "cost/h", "idle/h"):
        pools.add_column(column, justify="left" if column in ("pool", "GPU", "sharing")
                         else "right")
    for pool in plan.pools:
        gpus = sum(len(node.gpus) for node in pool.nodes)
        replicas = sum(len(g.replicas) for node in pool.nodes for g in node.gpus)
        pools.add_row(pool.name, pool.gpu_type, pool.sharing, str(len(pool.nodes)),
                      f"{gpus}/{len(pool.nodes) * pool.gpus_per_node}", str(replicas),
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
    totals.add_row("baseline per month (one GPU per replica)",
                   _money(s.baseline_cost_per_month, currency))
    totals.add_row("savings per month", _money(s.baseline_cost_per_month - total, currency))
    totals.add_row("solver", f"{solver.name}, {solver.status}, gap {solver.gap:.2%}, "
                   f"{solver.seconds:.2f} s")
    return [pools, totals]
