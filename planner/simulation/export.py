"""A simulation and its node-loss report as plain data, for `--format json`."""

from __future__ import annotations

from planner.simulation.node_loss import NodeLossReport
from planner.simulation.replay import Simulation


def as_json(simulation: Simulation, report: NodeLossReport | None) -> dict:
    data: dict = {
        "runs": simulation.runs,
        "pods": [{"pod": x.pod, "model": x.model, "replica": x.replica,
                  "planned_node": x.planned_node, "planned_gpus": list(x.planned_gpus),
                  "node": x.node, "gpus": list(x.gpus), "reason": x.reason}
                 for x in simulation.landings],
        "rules": [{"rule": r.rule, "holds": r.holds, "problems": list(r.problems),
                   "note": r.note} for r in simulation.rules],
    }
    if report is not None:
        data["node_loss"] = {
            "losses": [{"node": x.node, "pool": x.pool, "lost": list(x.lost),
                        "rescheduled": [{"pod": p, "node": n} for p, n in x.rescheduled],
                        "pending": list(x.pending),
                        "below_min": [{"model": b.model, "running": b.running,
                                       "replicas_min": b.replicas_min,
                                       "served_by": b.served_by or None}
                                      for b in x.below_min]}
                       for x in report.losses],
            "headroom": [{"pool": h.pool,
                          "spares": [{"node_pool": s.node_pool,
                                      "instance_type": s.instance_type, "nodes": s.nodes,
                                      "price_per_node_hour": str(s.price_per_node_hour)}
                                     for s in h.spares],
                          "cost_per_hour": str(h.cost_per_hour),
                          "cost_per_month": str(h.cost_per_month),
                          "within_ceiling": h.within_ceiling, "covers": h.covers}
                         for h in report.headroom],
            "cost_per_month": str(report.cost_per_month), "currency": report.currency,
        }
    return data
