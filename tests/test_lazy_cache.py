"""The lazy cache: sized for the models active at once; stated with its cost against warm, or
with `lazy_cache.reserve` packed like a model and paid for by its members; left out where it
would cost more than loading them warm."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from planner.cli import app
from planner.ledger import ledger
from planner.planfile import load_plan
from planner.registry.locate import write_demo
from planner.rules.loading import active_at_once, active_probability
from planner.schemas import Traffic
from planner.traffic import PEAK_HOUR, hourly_rps
from tests.conftest import edit_yaml


@pytest.fixture(scope="module")
def reserved_out(tmp_path_factory) -> Path:
    """The demo planned by the greedy solver with its lazy caches reserved."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("reserved")
    registry = root / "registry"
    write_demo(registry)
    edit_yaml(registry / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": True}))
    result = CliRunner().invoke(app, ["plan", "--registry", str(registry), "--solver", "greedy",
                                      "--out", str(root / "out")])
    assert result.exit_code == 0, result.stderr
    return root / "out"


@pytest.mark.parametrize(("probabilities", "overflow", "slots"), [
    # two models, each active half the time: both at once a quarter of the time
    ([0.5, 0.5], 0.3, 1),
    ([0.5, 0.5], 0.2, 2),
    # two always active, one a tenth of the time: three at once 10% of the time
    ([1.0, 1.0, 0.1], 0.1, 2),
    ([1.0, 1.0, 0.1], 0.05, 3),
    ([], 0.01, 0),
])
def test_slots_from_the_poisson_binomial_tail(probabilities, overflow, slots):
    assert active_at_once(probabilities, overflow) == slots


def test_active_probability_is_a_request_within_the_window():
    assert active_probability(0.01, 100) == pytest.approx(1 - math.exp(-1))
    assert active_probability(0, 300) == 0


def test_diurnal_curve_keeps_the_mean_and_peaks_in_the_afternoon():
    rates = hourly_rps(Traffic(peak_rps=15, mean_rps=10))  # amplitude 0.5
    assert sum(rates) / 24 == pytest.approx(10)
    assert max(rates) == pytest.approx(10 * (1 + 0.5 * math.cos(math.pi / 24)))
    assert rates.index(max(rates)) in (PEAK_HOUR - 1, PEAK_HOUR)
    # a peak above twice the mean: the night reaches zero, never below
    steep = hourly_rps(Traffic(peak_rps=100, mean_rps=1))
    assert min(steep) >= 0 and sum(steep) / 24 == pytest.approx(1)
    assert hourly_rps(Traffic(peak_rps=7)) == (7,) * 24


def test_demo_cache_is_reserved_for_its_modelmesh_runtime(greedy_demo_out: Path):
    # every member runs on Triton and names its model repository in object storage: KServe
    # ModelMesh holds the cache, reserved by default (`test_modelmesh`)
    plan = load_plan(greedy_demo_out / "plan.yaml")
    [cache] = [c for p in plan.pools for c in p.caches]
    assert (cache.name, cache.slots, cache.reserved, cache.placed, cache.server,
            cache.unserved) == ("shared-l4/lazy-cache", 4, True, True, "modelmesh", "")
    assert (cache.image, cache.priority, cache.workload) == (
        "nvcr.io/nvidia/tritonserver:25.10-py3", "internal", "shared-l4-lazy-cache")
    ticket = plan.model("ticket-router")
    assert ticket is not None and ticket.cache == cache.name and ticket.loading == "lazy"


def test_a_member_without_a_repository_keeps_the_cache_a_statement(cli, registry: Path,
                                                                    tmp_path: Path):
    edit_yaml(registry / "models" / "ticket-router.yaml",
              lambda d: d["serving"].pop("model_repository"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    [cache] = [c for p in plan.pools for c in p.caches]
    assert (cache.reserved, cache.placed, cache.server) == (False, False, None)
    assert cache.unserved == ("ticket-router names no serving.model_repository for a Triton "
                              "server to load from")
    assert cache.cost_per_hour < cache.all_warm_cost_per_hour
    # the members keep their replicas and pay for them; no server is on a GPU
    slots = {r.model for p in plan.pools for n in p.nodes for g in n.gpus for r in g.replicas}
    assert set(cache.members) <= slots
    assert not [c for p in plan.pools for n in p.nodes for g in n.gpus for c in g.caches]
    ticket = plan.model("ticket-router")
    assert ticket is not None and ticket.cache is None and ticket.loading == "lazy"
    assert any(r.startswith("lazy: its replicas are its own, as the manifests start them; a "
                            "cache shared-l4/lazy-cache which holds 4 of its 5 models at once")
               and r.endswith("(not reserved: ticket-router names no serving.model_repository "
                              "for a Triton server to load from)") for r in ticket.reasons)
    assert not (tmp_path / "out" / "manifests" / "caches").exists()
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert ("| not reserved: members keep their pods (ticket-router names no "
            "serving.model_repository for a Triton server to load from) |") in summary


def test_reserve_false_reserves_no_cache(cli, registry: Path, tmp_path: Path):
    edit_yaml(registry / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": False}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    [cache] = [c for p in plan.pools for c in p.caches]
    assert (cache.reserved, cache.placed, cache.server) == (False, False, "modelmesh")
    assert all(m.cache is None for m in plan.models)


def test_demo_cache_holds_the_models_active_at_once(reserved_out: Path):
    plan = load_plan(reserved_out / "plan.yaml")
    [pool] = [p for p in plan.pools if p.caches]
    [cache] = pool.caches
    assert (pool.name, cache.name) == ("shared-l4", "shared-l4/lazy-cache")
    assert cache.members == ["doc-layout-parser", "nsfw-detector", "sentiment-analyzer",
                             "spell-corrector", "ticket-router"]
    # doc-layout-parser and ticket-router see a few requests a day: the cache holds 4 of 5
    assert (cache.slots, cache.servers, cache.placed, cache.reserved) == (4, 1, True, True)
    members = [plan.model(name) for name in cache.members]
    assert all(m is not None and m.cache == cache.name and m.loading == "lazy"
               for m in members)
    footprints = sorted((m.replicas * m.memory_mib for m in members if m), reverse=True)
    assert cache.memory_mib == sum(footprints[:4])
    # the server sits on a GPU of the pool, and the members have no replicas of their own
    servers = [c for n in pool.nodes for g in n.gpus for c in g.caches]
    assert [(c.cache, c.memory_mib) for c in servers] == [(cache.name, cache.memory_mib)]
    slots = {r.model for n in pool.nodes for g in n.gpus for r in g.replicas}
    assert not slots & set(cache.members)
    # the members pay what the server pays, less than their replicas would warm
    paid = sum(m.cost_per_hour for m in members if m)
    assert paid == pytest.approx(cache.cost_per_hour, abs=1e-5)
    assert cache.cost_per_hour < cache.all_warm_cost_per_hour
    costs = ledger(plan)
    assert costs.total == plan.summary.cost_per_month


def test_a_lone_lazy_model_keeps_its_replicas(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    churn = plan.model("user-churn-scorer")
    assert churn is not None and churn.loading == "lazy" and churn.cache is None
    assert ("lazy, without a cache: no other lazy model of batch-t4 runs on its engine "
            "(kserve) without a conflict, so a cache would hold it alone; its replicas are its "
            "own, reserved as if warm" in churn.reasons)
    slots = {r.model for p in plan.pools for n in p.nodes for g in n.gpus for r in g.replicas}
    assert "user-churn-scorer" in slots


def test_no_cache_where_it_costs_more_than_warm(cli, registry: Path, tmp_path: Path):
    # both lazy models of batch-t4 on one engine: their compute together exceeds one GPU's
    # 800 milli (800 + 152), so a cache needs two servers, each sized for the larger model
    # (experiment-tiny-llm: 1,228 MiB, 800 milli)
    edit_yaml(registry / "models" / "user-churn-scorer.yaml",
              lambda d: d["serving"].update(engine="vllm"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    assert not [c for p in plan.pools if p.name == "batch-t4" for c in p.caches]
    for name in ("user-churn-scorer", "experiment-tiny-llm"):
        model = plan.model(name)
        assert model is not None and model.loading == "lazy" and model.cache is None
        assert ("lazy, without a cache: a cache in batch-t4 for experiment-tiny-llm, "
                "user-churn-scorer would take 2 servers of 1228 MiB and 800 milli-GPU, 1.6 "
                "GPUs' worth against 0.952 for their own replicas; its replicas are its own, "
                "reserved as if warm" in model.reasons)


def test_busy_models_fill_every_slot(cli, registry: Path, tmp_path: Path):
    # every lazy model of shared-l4 busy all day: the cache holds them all
    for name in ("doc-layout-parser", "ticket-router"):
        edit_yaml(registry / "models" / f"{name}.yaml",
                  lambda d: d.update(traffic={"peak_rps": 20, "mean_rps": 5}))
    edit_yaml(registry / "policy.yaml", lambda d: d.update(lazy_cache={"reserve": True}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    [cache] = [c for p in plan.pools for c in p.caches]
    assert (cache.slots, cache.expected_active) == (5, 5.0)
    assert cache.cost_per_hour == pytest.approx(cache.all_warm_cost_per_hour)


def test_auto_stays_warm_where_lazy_saves_nothing(cli, registry: Path, tmp_path: Path):
    # user-churn-scorer on auto and idle: lazy by its traffic, but alone in batch-t4 it would
    # keep replicas of its own, so auto keeps it warm
    edit_yaml(registry / "models" / "user-churn-scorer.yaml",
              lambda d: d.update(loading={"policy": "auto"},
                                 traffic={"peak_rps": 1, "mean_rps": 0.01}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    churn = load_plan(tmp_path / "out" / "plan.yaml").model("user-churn-scorer")
    assert churn is not None and (churn.loading, churn.cache) == ("warm", None)
    assert ("loading auto: warm, lazy would save nothing: no other lazy model of batch-t4 runs "
            "on its engine (kserve) without a conflict, so a cache would hold it alone"
            in churn.reasons)
    assert not [r for r in churn.reasons if r.startswith("lazy")]


def test_no_cache_under_dra(cli, registry: Path, tmp_path: Path):
    edit_yaml(registry / "planner.yaml", lambda d: d.update(kubernetes_version="1.34"))
    edit_yaml(registry / "cluster.yaml", lambda d: d.update(sharing_backend="dra"))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver",
                 "greedy")
    assert result.exit_code == 0, result.stderr
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    assert not [c for p in plan.pools for c in p.caches]
    ticket = plan.model("ticket-router")
    assert ticket is not None and ticket.loading == "lazy" and ticket.cache is None
    assert ("lazy, without a cache: under DRA each replica holds the GPU its claim names, so no "
            "cache server can lend it memory; its replicas are its own, reserved as if warm"
            in ticket.reasons)
