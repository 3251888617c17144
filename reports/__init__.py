"""Everything written from a Plan for people and machines. Reads only the Plan types."""

from __future__ import annotations

from collections.abc import Sequence

from planner.planfile import Plan
from reports.profile_plots import ProfileCurve


def render_all(plan: Plan, *, target: str = "deployment", kserve_mode: str = "RawDeployment",
               period: str | None = None, curves: Sequence[ProfileCurve] = ()
               ) -> dict[str, str]:
    """The report files of an output folder by relative path (plan.yaml is written apart);
    `curves`, the profiles the plan was made from, are drawn in plan.html."""
    from reports.dashboards import render_dashboards
    from reports.focus import render_cost_csv
    from reports.manifests import render_manifests
    from reports.plan_html import render_plan_html
    from reports.summary import render_summary

    return {**render_manifests(plan, target, kserve_mode), **render_dashboards(plan),
            "cost.csv": render_cost_csv(plan, period),
            "summary.md": render_summary(plan, target=target, kserve_mode=kserve_mode),
            "plan.html": render_plan_html(plan, curves)}
