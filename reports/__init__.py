"""Everything written from a Plan for people and machines. Reads only the Plan types."""

from __future__ import annotations

from planner.plan import Plan


def render_all(plan: Plan) -> dict[str, str]:
    """The report files of an output folder, by relative path (plan.yaml is written apart)."""
    return {}
