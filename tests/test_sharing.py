"""The share of a shared GPU at the load each replica gets, latency under sharing, open-loop
results, unstable points, and the concurrency told to the server (`planner.demand.sharing`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from planner.demand.derive import Demand, Rejection, pool_demand
from planner.demand.sharing import Sharing, interpolate, load_concurrency, replica_load
from planner.registry.loader import load_registry
from profiles.schema import Point
from tests.conftest import edit_yaml

PII = ("pii-detector", "l4")


def _demand(registry: Path, model: str = "pii-detector", pool: str = "shared-l4"):
    fleet = load_registry(registry)
    return pool_demand(fleet, fleet.models[model], fleet.pool(pool), "shared-small")


def _points(*rows: tuple[int, float, float]) -> list[Point]:
    return [Point(concurrency=c, throughput_rps=x, p50_ms=p, p95_ms=p, p99_ms=p,
                  peak_memory_mib=100) for c, x, p in rows]


def test_interpolation_between_measured_levels():
    points = _points((1, 100, 10), (4, 250, 16))
    assert interpolate(points, 2, "throughput_rps") == pytest.approx(150)
    assert interpolate(points, 0.5, "p99_ms") == 10 and interpolate(points, 8, "p99_ms") == 16
    assert load_concurrency(points, 80) == 1
    assert load_concurrency(points, 200) == pytest.approx(3)
    assert load_concurrency(points, 300) is None


def test_share_is_taken_at_the_batch_the_load_forms():
    points = _points((1, 100, 10), (4, 250, 16))
    time_sliced = Sharing("time-slicing", 0.8, 6)
    # 60 rps a replica: batches of one carry it within 80%, so 60% of the GPU's time.
    low = replica_load(points, 120, 2, time_sliced)
    assert (low.concurrency, low.share) == (1, pytest.approx(0.6))
    # 160 rps: batches of about 2.33 (throughput 200 rps, 80% used).
    high = replica_load(points, 160, 1, time_sliced)
    assert high.concurrency == pytest.approx(1 + 3 * (200 - 100) / 150)
    assert high.share == pytest.approx(0.8)
    # Time-slicing stretches the operating point's p99 by the others' part of 80%.
    assert low.p99_ms == pytest.approx(16 / (1 - (0.8 - 0.6)))
    assert high.p99_ms == pytest.approx(16)
    # MPS: a client gets 1/6 of the SMs, so six times the latency and a sixth of the speed.
    assert replica_load(points, 10, 1, Sharing("mps", 0.8, 6)).p99_ms == pytest.approx(96)
    assert replica_load(points, 10, 1, Sharing("exclusive", 0.8, 1)).p99_ms == 16


def test_pii_detector_shared_l4_share_at_its_load(registry: Path):
    # 100 rps per replica at 583 rps for batches of one: 172 milli-GPU, not 200/(2*5277) = 19.
    demand = _demand(registry)
    assert isinstance(demand, Demand)
    assert (demand.replicas, demand.concurrency, demand.load_concurrency) == (2, 32, 1)
    assert demand.compute_milli == math.ceil(1000 * 100 / 583.42) == 172
    assert demand.p99_ms == round(9.1 / (1 - (0.8 - 100 / 583.42)), 2) == 24.5
    assert "100 rps per replica forms batches of about 1: 17.1% of a GPU's time" in demand.notes


def test_tight_slo_packs_and_tells_the_server_the_same_concurrency(cli, registry: Path,
                                                                    tmp_path: Path):
    # At a 10 ms SLO the time-sliced p99 (x2.69 at 80% co-located load) allows concurrency 4;
    # the plan packs 478 MiB for it and tells the server MAX_CONCURRENCY=4, not the limit 32.
    edit_yaml(registry / "models" / "pii-detector.yaml", lambda d: d["slo"].update(p99_ms=10))
    demand = _demand(registry)
    assert isinstance(demand, Demand)
    assert (demand.concurrency, demand.memory_mib) == (4, 478)
    result = cli("plan", "--registry", registry, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.stderr
    documents = list(yaml.safe_load_all(
        (tmp_path / "o" / "manifests" / "models" / "pii-detector.yaml").read_text()))
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    env = {e["name"]: e["value"]
           for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MAX_CONCURRENCY"] == "4"


def test_slo_missed_only_when_shared_rejects_the_pool(registry: Path):
    # p99 2.57 ms alone at concurrency 1 meets 6 ms, but not when time-sliced (6.92 ms).
    edit_yaml(registry / "models" / "pii-detector.yaml", lambda d: d["slo"].update(p99_ms=6))
    rejection = _demand(registry)
    assert rejection == Rejection(
        "pii-detector", "shared-l4", "p99 2.57 ms at concurrency 1 on l4, 6.92 ms time-sliced "
        "with co-located load up to 80% misses the SLO of 6 ms")


def test_unstable_points_are_never_chosen(registry: Path):
    edit_yaml(registry / "profiles" / "pii-detector" / "l4.yaml",
              lambda d: d["points"][-1].update(stable=False))
    demand = _demand(registry)
    assert isinstance(demand, Demand) and demand.concurrency == 16
    assert "unstable measurements not used (concurrency 32)" in demand.notes


def test_open_loop_rate_caps_a_replica(registry: Path):
    search = {"slo_p99_ms": 50, "rate_rps": 50, "p99_ms": 48}
    edit_yaml(registry / "profiles" / "pii-detector" / "l4.yaml",
              lambda d: d.update(rate_search=search))
    demand = _demand(registry)
    assert isinstance(demand, Demand)
    assert demand.replicas == math.ceil(200 / (50 * 0.8)) == 5
    assert "open-loop rate 50 rps per replica within the SLO (rate search) caps its load" \
        in demand.notes
    # A search at a looser SLO than the model's 80 ms says nothing about it.
    edit_yaml(registry / "profiles" / "pii-detector" / "l4.yaml",
              lambda d: d["rate_search"].update(slo_p99_ms=200))
    demand = _demand(registry)
    assert isinstance(demand, Demand) and demand.replicas == 2
    assert "open-loop rate search at p99 200 ms ignored: looser than the SLO of 80 ms" \
        in demand.notes


def test_mig_slices_are_planned_from_their_own_profiles(registry: Path):
    # The whole A100 gives search-reranker a p99 of 22.43 ms at concurrency 32; its 1g.10gb
    # slice (1/7 of the SMs, 1/8 of the bandwidth) 143.49 ms, past the 80 ms SLO, so the slice
    # runs at 16 (72.87 ms) and the server is told 16.
    fleet = load_registry(registry)
    slice_profile = fleet.profiles[("search-reranker", "a100-80gb-1g.10gb")]
    assert slice_profile.points[-1].p99_ms == 143.49
    demand = pool_demand(fleet, fleet.models["search-reranker"], fleet.pool("mig-a100"),
                         "mig-interactive")
    assert isinstance(demand, Demand)
    assert (demand.mig_slice, demand.concurrency, demand.p99_ms) == ("1g.10gb", 16, 72.87)
    rate = fleet.models["search-reranker"].traffic.peak_rps / demand.replicas
    first = slice_profile.points[0]
    assert rate * 1.25 <= first.throughput_rps  # batches of one carry the load
    assert demand.compute_milli == math.ceil(1000 * rate / first.throughput_rps / 7)


def test_slice_reference_profile_is_the_roofline_at_the_slice_specs(registry: Path):
    # A 1g.10gb slice has 1/7 of the A100's SMs and 1/8 of its memory bandwidth; the demo's
    # slice profile of search-reranker is the roofline estimate at those specs.
    from profiles.reference import GPU_SPECS, reference_profile
    from scripts.make_reference_profiles import _basis, _workload

    whole, one = GPU_SPECS["a100-80gb"], GPU_SPECS["a100-80gb-1g.10gb"]
    assert one.tflops_16bit == pytest.approx(whole.tflops_16bit / 7)
    assert one.bandwidth_gb_s == pytest.approx(whole.bandwidth_gb_s / 8)
    fleet = load_registry(registry)
    spec = fleet.models["search-reranker"]
    committed = fleet.profiles[("search-reranker", "a100-80gb-1g.10gb")]
    estimate = reference_profile(spec.name, "a100-80gb-1g.10gb", _workload(spec),
                                 [p.concurrency for p in committed.points], _basis(spec))
    assert estimate.points == committed.points
    assert committed.points[-1].p99_ms == 143.49
    assert fleet.profiles[("search-reranker", "a100-80gb")].points[-1].p99_ms == 22.43


def test_mig_without_slice_profiles_says_what_it_assumed(registry: Path):
    for path in (registry / "profiles" / "search-reranker").glob("a100-80gb-*.yaml"):
        path.unlink()
    fleet = load_registry(registry)
    demand = pool_demand(fleet, fleet.models["search-reranker"], fleet.pool("mig-a100"),
                         "mig-interactive")
    assert isinstance(demand, Demand) and demand.concurrency == 32
    assert any(note.startswith("MIG slice speed taken from the whole a100-80gb's profile")
               for note in demand.notes)


def test_profile_for_an_unknown_slice_is_exit_2(cli, registry: Path):
    folder = registry / "profiles" / "search-reranker"
    (folder / "a100-80gb-5g.50gb.yaml").write_text(
        (folder / "a100-80gb-1g.10gb.yaml").read_text().replace("gpu_type: a100-80gb-1g.10gb",
                                                                "gpu_type: a100-80gb-5g.50gb"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "profile for unknown GPU type 'a100-80gb-5g.50gb'" in result.stderr
