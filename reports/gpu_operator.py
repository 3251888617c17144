"""What the NVIDIA GPU Operator needs to give each pool's nodes the GPUs the plan counts on.

The operator mounts one device-plugin ConfigMap and one MIG-manager ConfigMap, named in its
ClusterPolicy; a node picks its entry by label (`nvidia.com/device-plugin.config`,
`nvidia.com/mig.config`, both set by the node's NodePool). So the plan writes one ConfigMap
of each with an entry per pool (per MIG layout), and the ClusterPolicy fragment that points
the operator at them.

What a node then advertises follows from these entries, and Karpenter's NodeOverlays declare
the same counts (`advertised`), so the two views of a node cannot drift apart.
"""

from __future__ import annotations

from collections import Counter

import yaml

from planner.planfile import ModelPlan, NodePlan, Plan, PoolPlan
from planner.registry.kubernetes import mig_layout_name, zone_node_pool_name

CLUSTER_POLICY = "cluster-policy"  # the name the operator's Helm chart gives its ClusterPolicy
DEVICE_PLUGIN_CONFIG = "placement-planner-device-plugin"
MIG_PARTED_CONFIG = "placement-planner-mig-parted"
DEFAULT_KEY = "default"
MIG_DISABLED = "all-disabled"  # the MIG manager's default for nodes without a mig.config label
WHOLE_GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"  # what renameByDefault calls a shared replica of a GPU


def mig_strategy(plan: Plan) -> str | None:
    """`mixed` (one resource per MIG profile) when a pool uses MIG; otherwise left as it is."""
    return "mixed" if any(p.sharing == "mig" and p.nodes for p in plan.pools) else None


def mig_resource(profile: str) -> str:
    return f"nvidia.com/mig-{profile}"


def gpu_resource(model: ModelPlan, pool: PoolPlan) -> tuple[str, int] | None:
    """The extended resource a replica of `model` requests on `pool`, and how many; None for
    a CPU-only model, which requests no GPU."""
    if model.gpus_per_replica == 0:
        return None
    if model.whole_gpus:
        return WHOLE_GPU, model.gpus_per_replica
    if pool.sharing == "mig" and model.mig_slice:
        return mig_resource(model.mig_slice), 1
    return SHARED_GPU, 1


def _node_layout(node: NodePlan) -> list[dict]:
    """A node's MIG layout (`NodePlan.mig_layout`) as mig-parted device entries (GPUs left
    out keep MIG off)."""
    return [{"devices": [index], "mig-enabled": True, "mig-devices": dict(slices)}
            for index, slices in node.mig_layout]


def mig_node_layouts(pool: PoolPlan) -> dict[str, tuple[list[dict], int]]:
    """The pool's distinct node layouts by config name, each with its planned node count."""
    return {mig_layout_name(pool.name, i): (_node_layout(nodes[0]), len(nodes))
            for i, nodes in enumerate(pool.nodes_by_mig_layout.values())}


def splits_capacity(pool: PoolPlan) -> bool:
    """Whether the plan buys both spot and on-demand nodes of the pool: each capacity type
    then has a NodePool of its own (`SPOT_NODE_POOL_SUFFIX` for the spot one)."""
    return len({s.capacity_type for s in pool.chosen_shapes}) > 1


SPOT_NODE_POOL_SUFFIX = "-spot"


def mig_config_of(pool: PoolPlan, node: NodePlan) -> str:
    """The MIG manager config of a planned node of a MIG pool: its node layout's name."""
    return mig_layout_name(pool.name, pool.mig_layout_numbers[node.name])


def node_pool_of(pool: PoolPlan, node: NodePlan) -> str:
    """The NodePool that provisions a planned node: the pool's (its spot one for a spot node
    of a pool that buys both capacity types), or its MIG layout's; in a pool that lists
    zones, that one's NodePool in the node's zone."""
    if pool.sharing == "mig":
        base = mig_config_of(pool, node)
    elif splits_capacity(pool) and pool.shape(node).capacity_type == "spot":
        base = pool.name + SPOT_NODE_POOL_SUFFIX
    else:
        base = pool.name
    return zone_node_pool_name(base, node.zone) if node.zone else base


def advertised(pool: PoolPlan, layout: list[dict] | None = None,
               gpus_per_node: int | None = None) -> dict[str, int]:
    """The extended resources one node of the pool (of `gpus_per_node` GPUs, by default the
    pool's own shape's) advertises beyond its whole GPUs."""
    if pool.sharing in ("time-slicing", "mps"):
        return {SHARED_GPU: (gpus_per_node or pool.gpus_per_node) * pool.replicas_per_gpu}
    slices: Counter[str] = Counter()
    for entry in layout or []:
        for profile, count in entry["mig-devices"].items():
            slices[mig_resource(profile)] += count
    return dict(sorted(slices.items()))


def _plugin_entry(pool: PoolPlan | None, strategy: str | None) -> dict:
    """One entry of the device plugin's config file (api/config/v1 of k8s-device-plugin)."""
    body: dict = {"version": "v1"}
    if strategy:
        body["flags"] = {"migStrategy": strategy}
    if pool is not None and pool.sharing in ("time-slicing", "mps"):
        sharing = {"renameByDefault": True, "failRequestsGreaterThanOne": True,
                   "resources": [{"name": WHOLE_GPU, "replicas": pool.replicas_per_gpu}]}
        body["sharing"] = {"timeSlicing" if pool.sharing == "time-slicing" else "mps": sharing}
    return body


def _config_map(plan: Plan, name: str, data: dict[str, str], labels: dict[str, str]) -> dict:
    """A ConfigMap in the operator's namespace, the only one its ClusterPolicy reads from."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": plan.metadata.gpu_operator_namespace,
                         "labels": dict(labels)},
            "data": data}


def device_plugin_config(plan: Plan, labels: dict[str, str]) -> dict:
    """One ConfigMap: an entry per GPU pool (exclusive pools too) and `default` for other
    nodes; CPU pools run no device plugin."""
    strategy = mig_strategy(plan)
    data = {DEFAULT_KEY: yaml.safe_dump(_plugin_entry(None, strategy), sort_keys=False)}
    for pool in plan.pools:
        if pool.nodes and pool.gpu_type is not None:
            data[pool.name] = yaml.safe_dump(_plugin_entry(pool, strategy), sort_keys=False)
    return _config_map(plan, DEVICE_PLUGIN_CONFIG, data, labels)


def mig_parted_config(plan: Plan, labels: dict[str, str]) -> dict | None:
    """One ConfigMap of mig-parted configs: every MIG node layout, and MIG off for the rest."""
    configs: dict[str, list[dict]] = {MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for pool in plan.pools:
        if pool.sharing == "mig":
            configs.update({name: layout for name, (layout, _) in mig_node_layouts(pool).items()})
    if len(configs) == 1:
        return None
    body = {"version": "v1", "mig-configs": configs}
    return _config_map(plan, MIG_PARTED_CONFIG,
                       {"config.yaml": yaml.safe_dump(body, sort_keys=False)}, labels)


def cluster_policy_patch(plan: Plan) -> dict:
    """The ClusterPolicy fields that point the operator at the ConfigMaps; a merge patch."""
    if plan.metadata.sharing_backend == "dra":
        # NVIDIA's DRA driver hands out the GPUs; the device plugin would advertise them too
        spec: dict = {"devicePlugin": {"enabled": False}}
    else:
        spec = {"devicePlugin": {"config": {"name": DEVICE_PLUGIN_CONFIG, "default": DEFAULT_KEY}}}
    strategy = mig_strategy(plan)
    if strategy:
        spec["mig"] = {"strategy": strategy}
        spec["migManager"] = {"enabled": True, "config": {"name": MIG_PARTED_CONFIG,
                                                          "default": MIG_DISABLED}}
    return {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy",
            "metadata": {"name": CLUSTER_POLICY}, "spec": spec}
