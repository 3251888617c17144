"""`summary.md`: what a person reads first about a plan."""

from __future__ import annotations

from planner.planfile import Plan
from reports.format import money as _money
from reports.format import percent as _percent


def render_summary(plan: Plan) -> str:
    s, solver, cur = plan.summary, plan.solver, plan.summary.currency
    hours = plan.metadata.hours_per_month
    lines = [
        "# Placement plan",
        "",
        f"- **Cost:** {_money(s.cost_per_month, cur)} per month "
        f"({_money(s.cost_per_hour, cur)} per hour) for {s.models} models, {s.replicas} "
        f"replicas on {s.gpus} GPUs in {s.nodes} nodes.",
        f"- **Baseline** (every replica on a GPU of its own, cheapest admitting pool): "
        f"{_money(s.baseline_cost_per_month, cur)} per month; this plan saves "
        f"{_money(s.savings_per_month, cur)} "
        f"({_percent(s.savings_per_month, s.baseline_cost_per_month)}).",
        f"- **Solver:** {solver.name}, {solver.status}, gap {solver.gap:.2%} to the proven "
        f"lower bound of {_money(solver.lower_bound, cur)} per hour, {solver.seconds:.2f} s.",
        f"- **Unplaced models:** {s.unplaced}.",
        "",
        "## Cost by team",
        "",
        "| team | models | replicas | cost per month | share |",
        "|---|---:|---:|---:|---:|",
    ]
    costs = plan.team_costs_per_month()
    for team in sorted(costs):
        members = [m for m in plan.models if m.team == team]
        lines.append(f"| {team} | {len(members)} | {sum(m.replicas for m in members)} | "
                     f"{_money(costs[team], cur)} | {_percent(costs[team], s.cost_per_month)} |")
    idle = sum(p.idle_cost_per_hour for p in plan.pools) * hours
    lines.append(f"| (idle capacity) | | | {_money(idle, cur)} | "
                 f"{_percent(idle, s.cost_per_month)} |")
    lines += ["", "## Pools", "",
              "| pool | GPU | sharing | nodes | GPUs used | memory used | compute used | "
              "cost per month | idle per month |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for pool in plan.pools:
        used = sum(len(n.gpus) for n in pool.nodes)
        lines.append(
            f"| {pool.name} | {pool.gpu_type} | {pool.sharing} | {len(pool.nodes)} | "
            f"{used}/{len(pool.nodes) * pool.gpus_per_node} | "
            f"{_percent(pool.memory_used_mib, pool.memory_capacity_mib)} | "
            f"{_percent(pool.compute_used_milli, pool.compute_capacity_milli)} | "
            f"{_money(pool.cost_per_hour * hours, cur)} | "
            f"{_money(pool.idle_cost_per_hour * hours, cur)} |")
    lines += ["", "## Models", "",
              "| model | team | pool | replicas | GPU share | memory per replica | "
              "cost per month | shares GPUs with |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for model in plan.models:
        share = f"{model.gpus_per_replica} whole" if model.whole_gpus else (
            model.mig_slice or f"{model.compute_milli / 10:.1f}% compute")
        lines.append(f"| {model.name} | {model.team} | {model.pool} | {model.replicas} | "
                     f"{share} | {model.memory_mib:,} MiB | "
                     f"{_money(model.cost_per_hour * hours, cur)} | "
                     f"{', '.join(model.shares_with) or '-'} |")
    if plan.unplaced:
        lines += ["", "## Unplaced models", "", "| model | priority | why |", "|---|---|---|"]
        lines += [f"| {u.name} | {u.priority} | {'; '.join(u.reasons)} |"
                  for u in plan.unplaced]
    if plan.explanation:
        lines += ["", "## Why capacity ran out", ""] + [f"- {e}" for e in plan.explanation]
    estimated = [m.name for m in plan.models if m.estimated]
    if estimated:
        lines += ["", f"{len(estimated)} of {len(plan.models)} models are planned from "
                  "reference profiles or stated resources, not measurements; `planner profile` "
                  "measures them."]
    return "\n".join(lines) + "\n"
