"""Shared fixtures: a writable copy of the demo registry and a CLI runner; hypothesis's
settings for every property test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import settings
from typer.testing import CliRunner

from planner.cli import app
from planner.registry.locate import write_demo

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# No example fails for taking long: a test's outcome must not depend on the machine's speed
# or load. In CI the examples are drawn from a fixed seed, so a run on a clean clone is the
# same run every time; elsewhere they are drawn afresh, to keep finding new cases.
settings.register_profile("planner", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("planner")


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A fresh copy of the demo registry that a test may edit."""
    target = tmp_path / "registry"
    write_demo(target)
    return target


def edit_yaml(path: Path, change) -> None:
    """Load a YAML file, let `change` edit the data in place, write it back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def cli():
    """Run the CLI in-process; returns the click Result with stdout and stderr apart."""
    runner = CliRunner()

    def run(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return run


#: Yen per US dollar for the demo's prices in a JPY registry (any rate will do: JPY has no
#: minor unit, which is what such a registry tests).
YEN_PER_DOLLAR = 150


def write_jpy_demo(target: Path) -> Path:
    """The demo registry priced in Japanese yen, written to `target`."""
    write_demo(target)
    edit_yaml(target / "planner.yaml", lambda d: d.update(currency="JPY"))

    def to_yen(cluster: dict) -> None:
        for pool in cluster["pools"]:
            pool["price_per_node_hour"] = round(pool["price_per_node_hour"] * YEN_PER_DOLLAR, 2)

    edit_yaml(target / "cluster.yaml", to_yen)
    return target


#: A CPU node type for the CPU pool tests add to the demo: m7i.2xlarge, 8 vCPU and 32 GiB at
#: 0.4032 USD an hour (AWS us-east-1 on-demand); the reserve by the demo's own rule (kube-reserved
#: CPU and memory, eviction threshold, the VM's 7.5%, 250m and 512 MiB for DaemonSets).
CPU_INSTANCE = {"cpu_milli": 8000, "memory_mib": 32768,
                "reserved": {"cpu_milli": 340, "memory_mib": 4535}}


def add_cpu_pool(root: Path) -> Path:
    """The demo registry at `root` with a CPU pool, `cpu-general`, and one CPU-only model
    admitted there: `query-tokenizer`, which normalises and tokenizes search queries before
    the GPU models see them (700 rps at peak, 400 rps a replica as stated)."""
    def cluster(data: dict) -> None:
        data["instance_types"]["m7i.2xlarge"] = CPU_INSTANCE
        data["pools"].append({"name": "cpu-general", "class": "shared",
                              "instance_type": "m7i.2xlarge", "node_class": {"name": "general"},
                              "price_per_node_hour": 0.4032, "max_nodes": 4})

    edit_yaml(root / "cluster.yaml", cluster)
    edit_yaml(root / "policy.yaml", lambda d: d["admission"].append(
        {"name": "cpu-services", "pools": ["cpu-general"], "match": {"team": ["text-platform"]}}))
    (root / "models" / "query-tokenizer.yaml").write_text(yaml.safe_dump({
        "name": "query-tokenizer", "team": "text-platform",
        "description": "Normalises and tokenizes search queries on CPU.",
        "serving_profile": "online", "priority": "production",
        "labels": {"model-tier": "small", "latency-class": "interactive",
                   "gpu-sharing": "allowed", "tenant-scope": "shared"},
        "traffic": {"peak_rps": 700, "mean_rps": 300}, "slo": {"p99_ms": 40},
        "limits": {"max_concurrency": 64, "queue_limit": 256, "timeout_ms": 500},
        "replicas": {"min": 2}, "gpus_per_replica": 0,
        "serving": {"image": "registry.example.com/text-platform/query-tokenizer:1.0",
                    "cpu_milli": 2000, "host_memory_mib": 3072},
        "resources": {"memory_mib": 1500, "throughput_rps": 400}}, sort_keys=False))
    return root


@pytest.fixture
def cpu_registry(registry: Path) -> Path:
    """The demo registry with a CPU pool and a CPU-only model (`add_cpu_pool`)."""
    return add_cpu_pool(registry)


@pytest.fixture(scope="session")
def greedy_demo_out(tmp_path_factory) -> Path:
    """The demo planned by the greedy solver into an output folder, once per test run; tests
    only read it."""
    out = tmp_path_factory.mktemp("greedy-demo") / "out"
    result = CliRunner().invoke(app, ["plan", "--solver", "greedy", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out
