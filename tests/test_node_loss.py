"""Node loss in the plan: each node lost in turn (the replay of `planner simulate`), the
models that drop below `replicas.min` in summary.md, and the headroom as the cheapest mix of
spare nodes, against a hand-worked case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.simulation import filters
from planner.simulation.devices import Devices
from planner.simulation.manifests import Manifests
from planner.simulation.node_loss import cheapest_headroom, node_loss_report
from planner.simulation.nodes import Node
from planner.simulation.pods import Pod
from planner.simulation.replay import replay
from planner.simulation.scheduler import Cluster
from reports.karpenter import INSTANCE_TYPE_LABEL
from scripts.update_goldens import COMMAND


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Plan, Path]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, [*COMMAND, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return load_plan(out / "plan.yaml"), out


def test_the_plan_file_and_summary_name_the_models_and_the_headroom(demo):
    """plan.yaml keeps the losses that drop a model below its min, as `planner simulate`
    reports them, and summary.md names each with the headroom's cost."""
    plan, out = demo
    loss = plan.node_loss
    assert loss is not None and loss.nodes == sum(len(p.nodes) for p in plan.pools)
    report = node_loss_report(plan, replay(plan, Manifests.read(out / "manifests")))
    assert [(x.node, [(b.model, b.running, b.replicas_min) for b in x.below_min])
            for x in loss.losses] == \
        [(x.node, [(b.model, b.running, b.replicas_min) for b in x.below_min])
         for x in report.losses if x.below_min]
    assert loss.cost_per_month == report.cost_per_month
    assert loss.cost_per_month == sum(h.cost_per_month for h in loss.headroom)
    assert all(h.covers for h in loss.headroom)
    below = {b.model for x in loss.losses for b in x.below_min}
    # ab-test-ranker: the plan keeps it on the batch pool's on-demand node, so its pods
    # select on-demand, and the spot node cannot take it.
    assert below == {"ab-test-ranker", "image-moderation", "query-rewriter", "search-reranker",
                     "session-recommender", "support-summarizer", "translation-service",
                     "code-assistant", "llm-rag-answerer"}
    summary = (out / "summary.md").read_text()
    section = summary[summary.index("## Node loss"):]
    for x in loss.losses:
        for b in x.below_min:
            assert f"{b.model} ({b.running} of {b.replicas_min})" in section
    assert f"drops {len(below)} models below their replicas.min" in summary
    assert f"| total | | {loss.cost_per_month:,.2f} USD | | |" in section


def _node(name: str, kind: str, cpu_milli: int, price: float) -> Node:
    return Node(name, "p", "p", {filters.HOSTNAME: name, INSTANCE_TYPE_LABEL: kind}, (),
                {"cpu": cpu_milli, "pods": 110}, (), 0, price)


def test_the_cheapest_mix_of_spare_nodes(demo):
    """A pool of two node kinds: `big` (4 CPUs, 10/h) and `small` (1 CPU, 3/h). Models a and
    b, 2 replicas each and replicas.min 2, one CPU per pod: a-0 and b-0 on big-0, a-1 on
    small-0, b-1 on small-1. Losing a small node moves its pod to big-0 (two CPUs free);
    losing big-0 leaves two pods with no room. One spare small node (3/h) takes one of them;
    two (6/h) take both, cheaper than one big node (10/h): the headroom is 2 small nodes at
    6/h, 6 x 730 = 4,380 per month."""
    plan, _ = demo
    template = plan.models[0]
    models = [template.model_copy(update={"name": name, "pool": "p", "replicas": 2,
                                          "replicas_min": 2}) for name in ("a", "b")]
    pool = plan.pools[0].model_copy(update={"name": "p", "max_nodes": 10})
    hand = plan.model_copy(update={"models": models, "pools": [pool]})
    hand = hand.model_copy(update={"metadata": hand.metadata.model_copy(
        update={"hours_per_month": 730.0})})
    cluster = Cluster([_node("big-0", "big", 4000, 10.0), _node("small-0", "small", 1000, 3.0),
                       _node("small-1", "small", 1000, 3.0)], Devices())
    for model, replica, node in [("a", 0, "big-0"), ("b", 0, "big-0"), ("a", 1, "small-0"),
                                 ("b", 1, "small-1")]:
        cluster.bind(Pod("ns", {"app": model}, {}, name=f"{model}-{replica}", model=model,
                         replica=replica, requests={"cpu": 1000}), node)
    headroom = cheapest_headroom(hand, cluster, "p")
    assert [(s.instance_type, s.nodes) for s in headroom.spares] == [("small", 2)]
    assert headroom.cost_per_hour == Decimal(6)
    assert headroom.cost_per_month == Decimal("4380.00")
    assert headroom.covers and headroom.within_ceiling


def test_a_lost_cache_server_takes_its_members_down(demo):
    """A pool of two nodes of one CPU each (3/h): model a (1 replica, min 1) on n-1, and the
    server of a lazy cache p/cache (members m1 and m2, min 1 each, no pods of their own) on
    n-0, one CPU per pod. Losing n-0 leaves the server no room: m1 and m2 run 0 of 1, served
    by p-cache; losing n-1 leaves a 0 of 1. One spare node (3/h) takes either pod back: the
    headroom is 1 node, 3 x 730 = 2,190 per month, and with it no loss drops a member."""
    plan, _ = demo
    template = plan.models[0]
    cache = next(c for p in plan.pools for c in p.caches if c.server is not None)
    cache = cache.model_copy(update={"name": "p/cache", "members": ["m1", "m2"],
                                     "servers": 1})
    models = [template.model_copy(update={"name": "a", "pool": "p", "replicas": 1,
                                          "replicas_min": 1, "cache": None})]
    models += [template.model_copy(update={"name": name, "pool": "p", "replicas": 1,
                                           "replicas_min": 1, "cache": "p/cache"})
               for name in ("m1", "m2")]
    pool = plan.pools[0].model_copy(update={"name": "p", "max_nodes": 10, "caches": [cache]})
    hand = plan.model_copy(update={"models": models, "pools": [pool]})
    hand = hand.model_copy(update={"metadata": hand.metadata.model_copy(
        update={"hours_per_month": 730.0})})
    assert cache.workload == "p-cache"
    cluster = Cluster([_node("n-0", "small", 1000, 3.0), _node("n-1", "small", 1000, 3.0)],
                      Devices())
    for model, node in [("p-cache", "n-0"), ("a", "n-1")]:
        cluster.bind(Pod("ns", {"app": model}, {}, name=f"{model}-0", model=model,
                         requests={"cpu": 1000}), node)
    from planner.simulation.node_loss import covers, lose

    assert [(b.model, b.running, b.replicas_min, b.served_by)
            for b in lose(hand, cluster, "n-0").below_min] == \
        [("m1", 0, 1, "p-cache"), ("m2", 0, 1, "p-cache")]
    assert [(b.model, b.running, b.served_by) for b in lose(hand, cluster, "n-1").below_min] \
        == [("a", 0, "")]
    headroom = cheapest_headroom(hand, cluster, "p")
    assert [(s.instance_type, s.nodes) for s in headroom.spares] == [("small", 1)]
    assert headroom.cost_per_month == Decimal("2190.00") and headroom.covers
    spare = _node("p-spare-0", "small", 1000, 3.0)
    assert covers(hand, cluster, "p", [spare])
    # whichever server runs the cache (Triton, or ModelMesh's runtime pods, both named by
    # the cache's workload); with none in the manifests, nothing runs the members here
    for server, members_down in (("triton", 2), ("modelmesh", 2), (None, 0)):
        other = hand.model_copy(update={"pools": [pool.model_copy(update={
            "caches": [cache.model_copy(update={"server": server})]})]})
        assert len(lose(other, cluster, "n-0").below_min) == members_down, server
    # plan.yaml keeps which server a member counts, and summary.md names it
    from planner.planfile import dump_plan
    from planner.simulation.node_loss import NodeLossReport, summary_of
    from reports.summary import render_summary

    report = NodeLossReport((lose(hand, cluster, "n-0"), lose(hand, cluster, "n-1")),
                            (headroom,), "USD")
    kept = hand.model_copy(update={"node_loss": summary_of(report, 2)})
    assert "served_by: p-cache" in dump_plan(kept)
    assert dump_plan(kept).count("served_by") == 2  # left out where a model's pods are its own
    section = render_summary(kept).split("## Node loss")[1]
    assert "| n-0 | p | m1 (0 of 1, served by `p-cache`), m2 (0 of 1, served by `p-cache`) |" \
        in section
    assert "| n-1 | p | a (0 of 1) |" in section
    assert "each counts the server pods of its cache (`p-cache`)" in section
