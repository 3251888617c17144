"""Generated fleets for benchmarks: many models, six pools, every rule type in use.

The demo registry's cluster and policy are the template; models are drawn from a seeded random
generator with hand-stated resources, so a fleet of any size plans without profile files.
"""

from __future__ import annotations

import random
from pathlib import Path

from planner.demo import demo_registry_path
from planner.registry.fleet import Fleet
from planner.schemas import Cluster, ModelSpec, PlannerConfig, Policy

EXTRA_POOLS = [
    {"name": "shared-l4-east", "gpu_type": "l4", "class": "shared", "sharing": "mps",
     "instance_type": "g6.12xlarge", "gpus_per_node": 4, "price_per_node_hour": 4.6016,
     "max_nodes": 400, "max_models_per_gpu": 6},
    {"name": "batch-t4-spot", "gpu_type": "t4", "class": "low-priority",
     "sharing": "time-slicing", "instance_type": "g4dn.12xlarge", "gpus_per_node": 4,
     "price_per_node_hour": 1.9, "max_nodes": 100, "max_models_per_gpu": 8},
]
TIERS = [("small", 0.55), ("medium", 0.3), ("large", 0.15)]


def _model(rng: random.Random, index: int, teams: list[str]) -> dict:
    tier = rng.choices([t for t, _ in TIERS], [w for _, w in TIERS])[0]
    team = rng.choice(teams)
    if tier == "large":
        profile, priority, latency = "large", rng.choice(["production", "internal"]), \
            "interactive"
        memory, throughput = rng.randint(16_000, 70_000), rng.uniform(1, 8)
        gpus = rng.choice([1, 1, 1, 2, 4])
        sharing, peak = "forbidden", rng.uniform(1, 20)
    else:
        profile = rng.choice(["online", "online", "bursty", "batch"])
        priority = {"online": "production", "bursty": "internal"}.get(
            profile, rng.choice(["batch", "experimental"]))
        latency = {"online": "interactive", "bursty": "bursty", "batch": "batch"}[profile]
        memory = rng.randint(400, 3_000) if tier == "small" else rng.randint(2_000, 12_000)
        throughput = rng.uniform(200, 3_000) if tier == "small" else rng.uniform(20, 400)
        gpus, sharing = 1, "forbidden" if rng.random() < 0.05 else "allowed"
        peak = throughput * rng.uniform(0.05, 3)
    tenant = "dedicated" if rng.random() < 0.03 else "shared"
    return {
        "name": f"model-{index:05d}", "team": team, "serving_profile": profile,
        "priority": priority,
        "labels": {"model-tier": tier, "latency-class": latency, "gpu-sharing": sharing,
                   "tenant-scope": tenant},
        "traffic": {"peak_rps": round(peak, 2)}, "slo": {"p99_ms": 500},
        "limits": {"max_concurrency": 8, "queue_limit": 32, "timeout_ms": 5000},
        "replicas": {"min": rng.choice([1, 2, 2, 3])}, "gpus_per_replica": gpus,
        "serving": {"image": f"registry.example.com/{team}/model-{index:05d}:1"},
        "resources": {"memory_mib": memory, "throughput_rps": round(throughput, 2)},
    }


def _fleet_data(models: int, seed: int) -> tuple[dict, dict, list[dict]]:
    """The cluster, the policy and the models of a generated fleet, as registry file data."""
    import yaml

    rng = random.Random(seed)
    root = demo_registry_path()
    cluster_data = yaml.safe_load((root / "cluster.yaml").read_text())
    for pool in cluster_data["pools"]:
        pool["max_nodes"] = max(pool["max_nodes"], models // 2)
    cluster_data["pools"] += EXTRA_POOLS
    policy_data = yaml.safe_load((root / "policy.yaml").read_text())
    for rule in policy_data["admission"]:
        if "shared-l4" in rule["pools"]:
            rule["pools"].append("shared-l4-east")
        if "batch-t4" in rule["pools"]:
            rule["pools"].append("batch-t4-spot")
    teams = [f"team-{i:02d}" for i in range(max(4, models // 50))]
    return cluster_data, policy_data, [_model(rng, i, teams) for i in range(models)]


def generate_fleet(models: int, seed: int = 0) -> Fleet:
    """A fleet of `models` models over the demo's pools plus two more, scaled to fit."""
    cluster_data, policy_data, model_data = _fleet_data(models, seed)
    specs = [ModelSpec.model_validate(m) for m in model_data]
    return Fleet(root=Path(f"<generated fleet of {models}>"), config=PlannerConfig(),
                 models={m.name: m for m in specs}, documents={}, profiles={},
                 cluster=Cluster.model_validate(cluster_data),
                 policy=Policy.model_validate(policy_data))


def write_fleet(models: int, seed: int, target: Path) -> None:
    """The same fleet as a registry folder (planner.yaml, cluster.yaml, policy.yaml, one file
    per model), for timing `planner plan` end to end on it."""
    import yaml

    cluster_data, policy_data, model_data = _fleet_data(models, seed)
    (target / "models").mkdir(parents=True)
    (target / "planner.yaml").write_text((demo_registry_path() / "planner.yaml").read_text())
    (target / "cluster.yaml").write_text(yaml.safe_dump(cluster_data, sort_keys=False))
    (target / "policy.yaml").write_text(yaml.safe_dump(policy_data, sort_keys=False))
    for model in model_data:
        (target / "models" / f"{model['name']}.yaml").write_text(
            yaml.safe_dump(model, sort_keys=False))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write a generated fleet as a registry folder.")
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="a folder that does not exist")
    args = parser.parse_args()
    write_fleet(args.models, args.seed, args.out)
