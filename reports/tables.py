"""Rich tables of a plan for the terminal: one row per pool, then totals and solver status."""

from __future__ import annotations

from rich.table import Table

from planner.planfile import Plan
from reports.format import percent as _percent


def plan_tables(plan: Plan) -> list[Table]:
    currency = plan.summary.currency
    pools = Table(title=f"Placement plan by pool (costs in {currency})", title_justify="left")
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
                      f"{pool.cost_per_hour:,.2f}", f"{pool.idle_cost_per_hour:,.2f}")
    s, solver = plan.summary, plan.solver
    totals = Table(title="Totals", title_justify="left", show_header=False)
    totals.add_column("what")
    totals.add_column("value", justify="right")
    totals.add_row("models placed", f"{s.models} ({s.replicas} replicas)")
    totals.add_row("unplaced models", str(s.unplaced))
    totals.add_row("nodes / GPUs used", f"{s.nodes} / {s.gpus}")
    totals.add_row("cost per hour", f"{s.cost_per_hour:,.2f} {currency}")
    totals.add_row("cost per month", f"{s.cost_per_month:,.2f} {currency}")
    totals.add_row("baseline per month (one GPU per replica)",
                   f"{s.baseline_cost_per_month:,.2f} {currency}")
    totals.add_row("savings per month", f"{s.savings_per_month:,.2f} {currency}")
    totals.add_row("solver", f"{solver.name}, {solver.status}, gap {solver.gap:.2%}, "
                   f"{solver.seconds:.2f} s")
    return [pools, totals]
