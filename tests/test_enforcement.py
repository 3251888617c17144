"""What the cluster enforces of each rule: in the plan file, summary.md and the PR comment,
for the demo (time-slicing, MIG and exclusive pools) and per sharing mode."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.review.check import CheckResult
from planner.review.diff import diff_plans
from planner.rules.enforcement import enforcement
from planner.schemas import Policy, Pool
from reports.pr_comment import render_check_markdown
from scripts.update_goldens import COMMAND

GPU_RULES = "GPU-scope conflicts (interactive-vs-batch, dedicated-tenants)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Plan, str, dict]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, [*COMMAND, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return (load_plan(out / "plan.yaml"), (out / "summary.md").read_text(),
            yaml.safe_load((out / "plan.yaml").read_text()))


def test_the_demo_plan_file_says_what_is_not_enforced(demo):
    _, _, document = demo
    unenforced = {e["rule"]: e["pools"] for e in document["enforcement"] if not e["enforced"]}
    assert unenforced == {GPU_RULES: ["shared-l4", "mig-a100", "batch-t4"],
                          "per-GPU memory packing": ["shared-l4", "batch-t4"],
                          "per-GPU compute share (target_utilization)": ["shared-l4",
                                                                         "batch-t4"]}
    enforced = {e["rule"] for e in document["enforcement"] if e["enforced"]}
    assert enforced == {"spread cap (max_node_share)", "max_models_per_gpu",
                        "per-slice memory and compute"}


def test_the_demo_summary_says_what_is_not_enforced(demo):
    _, summary, _ = demo
    assert ("- **Not enforced by the cluster** (held only by the plan): " + GPU_RULES
            + " in shared-l4, mig-a100, batch-t4; per-GPU memory packing in shared-l4, "
            "batch-t4; per-GPU compute share (target_utilization) in shared-l4, batch-t4.\n"
            ) in summary
    assert f"| {GPU_RULES} | shared-l4, mig-a100, batch-t4 | **no** | the device plugin, " \
           "not the plan, picks each pod's GPU or MIG slice on its node |" in summary
    assert "| max_models_per_gpu | shared-l4, batch-t4 | yes | the device plugin advertises " \
           "that many replicas of each GPU |" in summary


def test_the_pr_comment_says_what_is_not_enforced(demo):
    plan, _, _ = demo
    comment = render_check_markdown(CheckResult(plan, plan, diff_plans(plan, plan), []))
    # registry-made text (rule and pool names) is escaped: `inert` escapes `_` too
    section = comment.split("### Not enforced by the cluster\n\n")[1].split("\n\n")[0]
    assert section.splitlines() == [
        f"- **{GPU_RULES}** in shared-l4, mig-a100, batch-t4: the device plugin, not the "
        "plan, picks each pod's GPU or MIG slice on its node.",
        "- **per-GPU memory packing** in shared-l4, batch-t4: time-slicing isolates no memory: "
        "which replicas share a GPU is the device plugin's choice, and any of them may use "
        "all of its memory.",
        "- **per-GPU compute share (target\\_utilization)** in shared-l4, batch-t4: "
        "time-slicing gives every pod on a GPU equal time slices, unbounded."]


def _pool(name: str, sharing: str) -> Pool:
    return Pool.model_validate({"name": name, "gpu_type": "l4", "gpus_per_node": 1,
                                "max_nodes": 1, "price_per_node_hour": 1.0,
                                "class": "shared", "instance_type": "g6.xlarge",
                                "sharing": sharing})


def _policy(*scopes: str) -> Policy:
    return Policy.model_validate({"conflicts": [
        {"name": f"r-{scope}", "scope": scope, "separate_teams": {"team": ["a"]}}
        for scope in scopes], "priorities": {}, "admission": []})


@pytest.mark.parametrize(("sharing", "unenforced"), [
    ("time-slicing", {"GPU-scope conflicts (r-gpu)", "per-GPU memory packing",
                      "per-GPU compute share (target_utilization)"}),
    ("mps", {"GPU-scope conflicts (r-gpu)"}),
    ("mig", {"GPU-scope conflicts (r-gpu)"}),
    ("exclusive", set()),
])
def test_each_sharing_mode(sharing, unenforced):
    rules = enforcement(_policy("gpu", "node"), [_pool("p", sharing)])
    assert {e.rule for e in rules if not e.enforced} == unenforced
    assert {"spread cap (max_node_share)", "node-scope conflicts (r-node)"} <= \
        {e.rule for e in rules if e.enforced}


def test_nothing_unenforced_without_gpu_rules_on_exclusive_pools():
    assert [e.rule for e in enforcement(_policy(), [_pool("p", "exclusive")])] == [
        "spread cap (max_node_share)"]
