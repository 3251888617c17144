"""MPS as the device plugin runs it: each of a GPU's `replicas` clients is pinned to an equal
share of its memory, so the plan packs every replica of an MPS pool under that share."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.planfile import Plan, load_plan
from planner.registry.locate import write_demo
from planner.rules.capacity import client_memory_mib
from planner.rules.fit import misfit
from planner.schemas import Cluster, Policy
from tests.conftest import edit_yaml


def _plan(root: Path, sharing: str) -> Plan:
    write_demo(root / "registry")
    edit_yaml(root / "registry" / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "batch-t4").update(sharing=sharing))
    result = CliRunner().invoke(app, ["plan", "--registry", str(root / "registry"),
                                      "--solver", "greedy", "--out", str(root / "out")])
    assert result.exit_code == 0, result.stderr
    return load_plan(root / "out" / "plan.yaml")


@pytest.fixture(scope="module")
def mps(tmp_path_factory) -> tuple[Plan, Path]:
    root = tmp_path_factory.mktemp("mps")
    return _plan(root, "mps"), root


def test_no_mps_client_exceeds_its_share(mps):
    plan, root = mps
    pool = next(p for p in plan.pools if p.name == "batch-t4")
    assert pool.sharing == "mps" and pool.replicas_per_gpu == 8
    share_mib = int(pool.gpu_memory_mib * 0.9) // pool.replicas_per_gpu
    assert share_mib == 1728  # a T4's 15,360 MiB after the 10% headroom, over 8 clients
    slots = [r for n in pool.nodes for g in n.gpus for r in g.replicas]
    assert slots and all(r.memory_mib <= share_mib for r in slots)
    assert all(len(g.replicas) <= pool.replicas_per_gpu for n in pool.nodes for g in n.gpus)
    feed = plan.model("feed-ranker-batch")
    assert feed.pool == "batch-t4" and feed.memory_mib <= share_mib
    [config] = [d for d in yaml.safe_load_all(
        (root / "out" / "manifests" / "gpu-operator" / "configmaps.yaml").read_text())
        if d["metadata"]["name"] == "placement-planner-device-plugin"]
    mps_entry = yaml.safe_load(config["data"]["batch-t4"])["sharing"]["mps"]
    assert mps_entry["resources"] == [{"name": "nvidia.com/gpu", "replicas": 8}]


def test_time_slicing_packs_the_larger_operating_point(tmp_path, mps):
    """Under time-slicing no share binds a replica: feed-ranker-batch runs at a concurrency
    whose memory is more than an MPS client's share."""
    plan = _plan(tmp_path, "time-slicing")
    feed = plan.model("feed-ranker-batch")
    assert feed.memory_mib == 4592 > 1728
    assert mps[0].model("feed-ranker-batch").concurrency < feed.concurrency


def _cluster_policy(sharing: str, max_models: int) -> tuple[Cluster, Policy]:
    root = Path(__file__).resolve().parent.parent / "planner" / "demo" / "registry"
    data = yaml.safe_load((root / "cluster.yaml").read_text())
    next(p for p in data["pools"] if p["name"] == "batch-t4").update(
        sharing=sharing, max_models_per_gpu=max_models)
    cluster = Cluster.model_validate(data)
    return cluster, Policy.model_validate(yaml.safe_load((root / "policy.yaml").read_text()))


def test_a_replica_larger_than_its_share_never_fits():
    cluster, policy = _cluster_policy("mps", 7)
    pool = next(p for p in cluster.pools if p.name == "batch-t4")
    assert client_memory_mib(15360, pool, policy) == 13824 // 7 == 1974
    assert misfit(4592, 1, cluster, pool, policy) == (
        "4592 MiB per GPU, an MPS client of batch-t4 (t4) holds 1974 MiB: 1/7 of the GPU "
        "after the 10% headroom; at most 3 clients per GPU (the pool's max_models_per_gpu) "
        "would hold it")
    assert misfit(1974, 1, cluster, pool, policy) is None
    cluster, policy = _cluster_policy("time-slicing", 7)
    pool = next(p for p in cluster.pools if p.name == "batch-t4")
    assert misfit(4592, 1, cluster, pool, policy) is None
