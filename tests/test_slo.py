"""An SLO no pool that admits a model could ever meet is an input error at load (exit 2, at
the SLO's line); an SLO that only a full pool could meet leaves the model unplaced, with the
reason for every pool."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import edit_yaml


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.lstrip().startswith(f"{key}:"))


def test_slo_below_the_fastest_point_of_every_admitting_pool_is_exit_2(cli, registry: Path):
    # pii-detector is admitted to shared-l4 only; its fastest point there is 2.57 ms at c=1.
    model = registry / "models" / "pii-detector.yaml"
    edit_yaml(model, lambda d: d["slo"].update(p99_ms=2))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {model}:{_line_of(model, 'p99_ms')}: slo.p99_ms: no pool that admits the model "
        "can meet the SLO of 2 ms: the lowest p99 of a stable point within max_concurrency "
        "whose memory fits is 2.57 ms at concurrency 1 on l4 (shared-l4); raise slo.p99_ms, "
        "or admit the model to a pool with faster GPUs\n")
    assert cli("plan", "--registry", registry).exit_code == 2


def test_slo_check_reads_every_slice_profile_of_a_mig_pool(cli, registry: Path):
    # doc-layout-parser may use shared-l4 or mig-a100, where each slice type has its profile.
    edit_yaml(registry / "models" / "doc-layout-parser.yaml",
              lambda d: d["slo"].update(p99_ms=2))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert ("can meet the SLO of 2 ms: the lowest p99 of a stable point within max_concurrency "
            "whose memory fits is 2.74 ms at concurrency 1 on l4 (shared-l4); 3.59 ms at "
            "concurrency 1 on a100-80gb-1g.10gb (mig-a100); 2.92 ms at concurrency 1 on "
            "a100-80gb-2g.20gb (mig-a100); 2.7 ms at concurrency 1 on a100-80gb-3g.40gb "
            "(mig-a100); 2.58 ms at concurrency 1 on a100-80gb-4g.40gb (mig-a100); 2.44 ms at "
            "concurrency 1 on a100-80gb-7g.80gb (mig-a100);") in result.stderr


def test_unstable_points_do_not_count_as_meeting_the_slo(cli, registry: Path):
    # The only point fast enough is marked unstable: it can never be an operating point.
    profile = registry / "profiles" / "pii-detector" / "l4.yaml"
    edit_yaml(profile, lambda d: d["points"][0].update(p50_ms=1.0, p95_ms=1.5, p99_ms=1.9,
                                                       stable=False))
    edit_yaml(registry / "models" / "pii-detector.yaml", lambda d: d["slo"].update(p99_ms=2))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "is 2.68 ms at concurrency 2 on l4 (shared-l4)" in result.stderr


def test_mps_clients_slow_every_replica_by_their_count(cli, registry: Path):
    # Under MPS with 6 clients a GPU gives each an equal sixth of its SMs: 2.57 ms alone is
    # 15.42 ms as a client, whatever the load, so an SLO of 10 ms can never be met there.
    def to_mps(cluster: dict) -> None:
        next(p for p in cluster["pools"] if p["name"] == "shared-l4")["sharing"] = "mps"

    edit_yaml(registry / "cluster.yaml", to_mps)
    edit_yaml(registry / "models" / "pii-detector.yaml", lambda d: d["slo"].update(p99_ms=10))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "pii-detector.yaml" in result.stderr
    assert "can meet the SLO of 10 ms: the lowest p99 of a stable point within " \
           "max_concurrency whose memory fits is 2.57 ms at concurrency 1 on l4 (shared-l4, " \
           "15.42 ms as an MPS client)" in result.stderr


def test_slo_met_only_on_a_full_pool_leaves_the_model_unplaced_with_reasons(cli,
                                                                             registry: Path):
    # At 2.5 ms only the 7g.80gb slice (2.44 ms) meets the SLO, L4s (2.74 ms) never do; with
    # mig-a100 cut to one node, the production models placed first leave room for fewer than
    # the 7 whole-GPU slices 3,000 rps need.
    edit_yaml(registry / "models" / "doc-layout-parser.yaml",
              lambda d: (d["slo"].update(p99_ms=2.5), d["traffic"].update(peak_rps=3000)))
    edit_yaml(registry / "policy.yaml", lambda d: d["spread"].update(max_node_share=1.0))

    def one_node(cluster: dict) -> None:
        next(p for p in cluster["pools"] if p["name"] == "mig-a100")["max_nodes"] = 1

    edit_yaml(registry / "cluster.yaml", one_node)
    assert cli("validate", "--registry", registry).exit_code == 0
    result = cli("plan", "--registry", registry, "--solver", "greedy")
    assert result.exit_code == 1
    assert "unplaced: doc-layout-parser (internal): shared-l4: p99 2.74 ms at concurrency 1 on " \
           "l4 misses the SLO of 2.5 ms; mig-a100: no room for 7 replicas within 1 nodes " \
           "after higher priorities" in result.stderr
