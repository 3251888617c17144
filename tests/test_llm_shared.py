"""An LLM on a shared GPU: prefill and decode run at the share of the GPU the replica gets, so
TTFT and TPOT stretch as its end-to-end latency does (time-slicing: by 1 / (1 - (U - s)), what
the co-located load leaves it; MPS: by the client count, 1/N of the SMs each), and the SLO
check and the plan's reasons use the stretched figures.

The case is worked by hand from a measured generation profile of experiment-tiny-llm on the
T4 (batch-t4, target utilisation U = 0.8), 2 rps at the peak, one replica:

    concurrency  throughput  TTFT p99  TPOT p99  end-to-end p99 (alone)
    1            10 rps       40 ms     10 ms     700 ms
    2            16 rps       60 ms     12 ms     900 ms
    4            24 rps      100 ms     16 ms    1300 ms

A replica at 2 rps needs 2 / 0.8 = 2.5 rps of capacity, which concurrency 1 gives: it runs
batches of one, s = 2 / 10 = 0.2 of the GPU's time.

- time-slicing: stretch 1 / (1 - (0.8 - 0.2)) = 2.5, so TPOT 40, 30 and 25 ms at 4, 2 and 1;
  with a TPOT SLO of 25 ms only concurrency 1 meets it (TTFT 100 ms, TPOT 25 ms).
- MPS with 2 clients per GPU: stretch 2, so TPOT 32, 24 and 20 ms: concurrency 2 (TTFT
  120 ms, TPOT 24 ms).
- exclusive figures would take concurrency 4 (TPOT 16 ms).
- a TPOT SLO of 20 ms under time-slicing: 25 ms at concurrency 1 misses, the pool is refused
  with both figures.
"""

from __future__ import annotations

from pathlib import Path

from planner.demand.derive import derive
from planner.profiling import write_profile
from planner.registry.loader import load_registry
from profiles.schema import Environment, GenerationPoint, Memory, Point, Profile, Settings
from tests.conftest import edit_yaml

LEVELS = [  # concurrency, requests/s, TTFT p99, TPOT p99, end-to-end p99
    (1, 10.0, 40.0, 10.0, 700.0),
    (2, 16.0, 60.0, 12.0, 900.0),
    (4, 24.0, 100.0, 16.0, 1300.0),
]


def _measured() -> Profile:
    return Profile(
        model="experiment-tiny-llm", gpu_type="t4", method="measured",
        environment=Environment(backend="cuda", device_name="Tesla T4"),
        settings=Settings(concurrency=[c for c, *_ in LEVELS]),
        memory=Memory(weights_mib=100),
        points=[Point(concurrency=c, throughput_rps=x, p50_ms=e2e / 2, p95_ms=e2e, p99_ms=e2e,
                      peak_memory_mib=400) for c, x, _, _, e2e in LEVELS],
        generation=[GenerationPoint(concurrency=c, ttft_p50_ms=ttft, ttft_p99_ms=ttft,
                                    tpot_p50_ms=tpot, tpot_p99_ms=tpot,
                                    prefill_tokens_per_s=1000.0, decode_tokens_per_s=100.0,
                                    peak_memory_mib=400)
                    for c, _, ttft, tpot, _ in LEVELS])


def _setup(registry: Path, sharing: str, tpot_slo_ms: float, clients: int = 8) -> Path:
    edit_yaml(registry / "models" / "experiment-tiny-llm.yaml", lambda d: (
        d.update(traffic={"peak_rps": 2, "mean_rps": 1}), d["slo"].update(p99_ms=10_000),
        d["limits"].update(max_concurrency=4),
        d["llm"]["slo"].update(ttft_p99_ms=300, tpot_p99_ms=tpot_slo_ms)))
    edit_yaml(registry / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "batch-t4").update(
            sharing=sharing, max_models_per_gpu=clients))
    write_profile(_measured(), registry / "profiles")
    return registry


def _plan(registry: Path):
    demands, rejections = derive(load_registry(registry))
    return demands["experiment-tiny-llm"], rejections["experiment-tiny-llm"]


def test_time_slicing_stretches_ttft_and_tpot(registry: Path):
    [demand], _ = _plan(_setup(registry, "time-slicing", tpot_slo_ms=25))
    assert demand.llm is not None and demand.method == "measured"
    assert (demand.concurrency, demand.replicas, demand.compute_milli) == (1, 1, 200)
    assert (demand.llm.ttft_p99_ms, demand.llm.tpot_p99_ms) == (100.0, 25.0)
    assert demand.notes[0].startswith(
        "TP 1 bf16 (measured), at most 1 sequences of 512 tokens: 1 GPU(s); TTFT p99 100 ms "
        "(SLO 300), TPOT p99 25 ms (SLO 25) (40 ms and 10 ms alone, time-sliced with "
        "co-located load up to 80%); measured on Tesla T4")


def test_mps_stretches_by_the_client_count(registry: Path):
    [demand], _ = _plan(_setup(registry, "mps", tpot_slo_ms=25, clients=2))
    assert demand.llm is not None
    assert demand.concurrency == 2
    assert (demand.llm.ttft_p99_ms, demand.llm.tpot_p99_ms) == (120.0, 24.0)
    assert "(60 ms and 12 ms alone, with an MPS share of 1/2 of the SMs)" in demand.notes[0]


def test_exclusive_figures_alone_would_take_the_highest_level(registry: Path):
    edit_yaml(registry / "models" / "experiment-tiny-llm.yaml",
              lambda d: d["labels"].update({"gpu-sharing": "forbidden"}))
    _setup(registry, "exclusive", tpot_slo_ms=25, clients=1)
    [demand], _ = _plan(registry)
    assert demand.concurrency == 4 and demand.llm is not None
    assert (demand.llm.ttft_p99_ms, demand.llm.tpot_p99_ms) == (100.0, 16.0)


def test_shared_tpot_over_the_slo_refuses_the_pool_with_both_figures(registry: Path):
    demands, [rejection] = _plan(_setup(registry, "time-slicing", tpot_slo_ms=20))
    assert demands == []
    assert rejection.reason == (
        "no configuration serves it: TP 1 bf16 (measured): TTFT p99 100 ms and TPOT p99 25 ms "
        "at concurrency 1 on t4 time-sliced with co-located load up to 80% (40 ms and 10 ms "
        "alone; SLO 300 ms and 20 ms)")


def test_other_configurations_stay_on_the_roofline(registry: Path):
    """The measured profile covers TP 1 at 16 bits only: with fp8 allowed and the measured
    bf16 missing the TPOT SLO shared (25 ms against 20), fp8 is planned on the roofline, and
    the plan says so."""
    _setup(registry, "time-slicing", tpot_slo_ms=20)
    edit_yaml(registry / "models" / "experiment-tiny-llm.yaml",
              lambda d: d["llm"].update(precisions=["bf16", "fp8"]))
    [demand], _ = _plan(registry)
    assert demand.llm is not None and demand.llm.precision == "fp8"
    assert demand.method == "reference"
    assert demand.notes[0].startswith("TP 1 fp8 (roofline), ")
    assert "roofline of NVIDIA T4" in demand.notes[0]
