"""The plan file, `plan.yaml`: versioned, typed, and the only thing reports read."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Final, Literal

import yaml
from pydantic import Field

from planner import k8s_names
from planner.errors import InputError, Problem
from planner.money import Money
from planner.registry.messages import validate_document
from planner.registry.yamlsource import read_yaml
from planner.schemas import Billing, LabelKey, LabelValue, Name, SharingBackend, TaintKey
from profiles.schema import CPU_DEVICE, Strict

API_VERSION: Final = "planner/v1"
MAX_PLAN_BYTES = 64 * 1024 * 1024  # a plan of thousands of models is a few MB


class ReplicaSlot(Strict):
    model: Name
    replica: int
    memory_mib: int
    compute_milli: int
    gpu_fraction: float
    slice: str | None = None


class CacheSlot(Strict):
    """One server of a lazy cache on a GPU: the memory and compute it reserves."""

    cache: str
    server: int
    memory_mib: int
    compute_milli: int
    gpu_fraction: float


class GpuPlan(Strict):
    index: int
    whole: bool = False
    mig_layout: list[str] | None = None
    replicas: list[ReplicaSlot]
    caches: list[CacheSlot] = []


class NodePlan(Strict):
    name: str
    index: int
    instance_type: str = Field("", exclude_if=lambda instance_type: not instance_type)
    """The node's shape in a pool of several; empty (and left out of the file): the pool's
    `instance_type`."""
    capacity_type: str = Field("", exclude_if=lambda capacity_type: not capacity_type)
    """`spot` or `on-demand` where the pool offers the node's instance type as both; empty
    (and left out of the file): its shape's only one."""
    gpus: list[GpuPlan]
    pods: list[ReplicaSlot] = Field([], exclude_if=lambda pods: not pods)
    """The replicas that use no GPU: a CPU pool's pods (left out of the file when none)."""
    zone: str = Field("", exclude_if=lambda zone: not zone)
    """The zone the node runs in, one of its pool's `zones`; empty (and left out of the
    file): the pool lists none, so Karpenter picks it."""

    @property
    def mig_layout(self) -> tuple[tuple[int, tuple[tuple[str, int], ...]], ...]:
        """The node's MIG layout, comparable between nodes: each MIG-enabled GPU's index and
        its slices by profile (the GPUs left out keep MIG off)."""
        return tuple((gpu.index, tuple(sorted(Counter(gpu.mig_layout).items())))
                     for gpu in self.gpus if gpu.mig_layout)

    def replicas(self) -> set[tuple[str, int]]:
        """Every replica on the node, (model, replica), once however many GPUs it spans."""
        return {(r.model, r.replica) for g in self.gpus for r in g.replicas} | \
            {(r.model, r.replica) for r in self.pods}


class ShapePlan(Strict):
    """One node shape a pool may buy, and how many nodes of it the plan buys."""

    instance_type: str
    gpus_per_node: int
    price_per_node_hour: float
    max_nodes: int
    nodes: int
    capacity_type: str = "on-demand"
    list_price_per_node_hour: float | None = None
    """The undiscounted price where `price_per_node_hour` is a lower rate."""
    node_cpu_milli: int | None = None
    """CPU one node of the shape offers its pods (allocatable); None: not limited."""
    node_memory_mib: int | None = None
    """Host memory one node of the shape offers its pods (allocatable)."""

    @property
    def label(self) -> str:
        """The instance type, and `spot` for spot capacity: `g6.12xlarge spot`."""
        return f"{self.instance_type} spot" if self.capacity_type == "spot" \
            else self.instance_type


class Taint(Strict):
    key: TaintKey
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class LazyCachePlan(Strict):
    """A pool's cache of lazily loaded models and what it costs against loading them warm.

    `all_warm_cost_per_hour` is what the members' own replicas would pay by the larger of
    their memory and compute shares of a GPU; `cost_per_hour` is what the cache's servers pay
    by the same rule. Both are GPU shares: the nodes bought may not change.
    """

    name: str
    members: list[Name]
    slots: int
    expected_active: float
    busiest_hour: int
    servers: int
    memory_mib: int
    compute_milli: int
    reserved: bool
    """Packed in place of the members' replicas (policy lazy_cache.reserve); otherwise the
    members keep their replicas and the cache's cost is what its servers would pay."""
    placed: bool
    cost_per_hour: float
    all_warm_cost_per_hour: float
    server: Literal["modelmesh", "triton"] | None = None
    """The multi-model server the manifests run as the cache's servers: `modelmesh`, a KServe
    ModelMesh ServingRuntime (Triton through ModelMesh's adapter) that loads a member on its
    first request and evicts the least recently used; `triton`, Triton with explicit model
    control, into which whatever routes the members' requests loads them. None: none, and
    `unserved` says why."""
    unserved: str = ""
    image: str = ""
    """The Triton image (policy.yaml `lazy_cache.triton_image`) where `server` is set."""
    cpu_milli: int = 0
    """CPU a server pod requests: its most demanding member's, and under ModelMesh the
    containers its controller adds."""
    host_memory_mib: int = 0
    """Host memory a server pod requests: that of the members it holds at once (under
    ModelMesh at least the cache's memory and the runtime's buffer, since ModelMesh's capacity
    is the server container's memory request), and under ModelMesh the containers its
    controller adds."""
    priority: str = ""
    """The highest priority of its members: its servers' PriorityClass."""
    apart_on_node: list[Name] = []
    """Placed models its servers never share a node with (its members' node-scope
    conflicts)."""

    @property
    def workload(self) -> str:
        """The name of the cache's server Deployment and of its pods' `app.kubernetes.io/name`
        (the cache's name with its slash, which keeps it apart from every model's, as a dash)."""
        return k8s_names.slashes_as_dashes(self.name)

    @property
    def held_by(self) -> Literal["modelmesh", "triton"] | None:
        """The server whose pods the manifests run for the cache: `server` where the cache is
        reserved (its members have no pods of their own) and placed; None where no manifest
        holds it (capacity only, not placed, or not reserved: members keep their pods)."""
        return self.server if self.reserved and self.placed else None


class PoolPlan(Strict):
    name: Name
    gpu_type: str | None = None
    """None: a CPU pool (its nodes have no GPU, its replicas are `pods` of its nodes)."""
    gpu_product: str
    gpu_memory_mib: int
    max_nodes: int
    node_class: dict[str, str]
    labels: dict[LabelKey, LabelValue] = {}
    taints: list[Taint] = []
    pool_class: str = Field(alias="class")
    sharing: str
    gpus_per_node: int
    replicas_per_gpu: int
    price_per_node_hour: float
    instance_type: str = ""
    node_cpu_milli: int | None = None
    """CPU one node offers its pods (allocatable); None when the pool names no instance type."""
    node_memory_mib: int | None = None
    """Host memory one node offers its pods (allocatable); None as node_cpu_milli."""
    cost_per_hour: float
    idle_cost_per_hour: float
    memory_used_mib: int
    memory_capacity_mib: int
    compute_used_milli: int
    compute_capacity_milli: int
    capacity_type: str = "on-demand"
    """Of the pool's own shape: `spot` or `on-demand`."""
    list_price_per_node_hour: float | None = None
    """Of the pool's own shape, where `price_per_node_hour` is a lower rate."""
    list_cost_per_hour: float | None = None
    """The nodes bought at their list prices, where any is discounted; else the cost."""
    shapes: list[ShapePlan] = Field([], exclude_if=lambda shapes: not shapes)
    """Every node shape of a pool that has several (its own first); empty (and left out of the
    file): only its own."""
    zones: list[str] = Field([], exclude_if=lambda zones: not zones)
    """The zones the pool's nodes may run in (cluster.yaml); empty (and left out of the
    file): Karpenter picks them."""
    nodes: list[NodePlan]
    caches: list[LazyCachePlan] = []

    def held_caches(self, server: str | None = None) -> list[LazyCachePlan]:
        """The pool's caches whose servers the manifests run (`LazyCachePlan.held_by`), only
        those of `server` where one is named."""
        return [c for c in self.caches
                if c.held_by is not None and server in (None, c.held_by)]

    def shape(self, node: NodePlan) -> ShapePlan:
        """The shape of one of the pool's nodes."""
        for shape in self.shapes:
            if shape.instance_type == (node.instance_type or self.instance_type) and \
                    node.capacity_type in ("", shape.capacity_type):
                return shape
        return ShapePlan(instance_type=self.instance_type, gpus_per_node=self.gpus_per_node,
                         price_per_node_hour=self.price_per_node_hour,
                         max_nodes=self.max_nodes, nodes=len(self.nodes),
                         capacity_type=self.capacity_type,
                         list_price_per_node_hour=self.list_price_per_node_hour)

    @cached_property
    def nodes_by_mig_layout(self) -> dict[tuple, list[NodePlan]]:
        """The pool's nodes grouped by MIG layout (`NodePlan.mig_layout`), the layouts in the
        order they first appear. Worked out once per pool (a plan does not change once made):
        the manifests ask for each node's layout for every node and every workload's spread
        rule, and a pool can hold thousands of nodes."""
        groups: dict[tuple, list[NodePlan]] = {}
        for node in self.nodes:
            groups.setdefault(node.mig_layout, []).append(node)
        return groups

    @cached_property
    def mig_layout_numbers(self) -> dict[str, int]:
        """Each node's MIG layout by node name, as its place in `nodes_by_mig_layout`."""
        return {node.name: number
                for number, nodes in enumerate(self.nodes_by_mig_layout.values())
                for node in nodes}

    @property
    def gpu_count(self) -> int:
        """GPUs on the nodes the plan buys, whatever their shapes."""
        return sum(self.shape(node).gpus_per_node for node in self.nodes)

    @property
    def chosen_shapes(self) -> list[ShapePlan]:
        """The shapes the plan buys nodes of; the pool's own when it buys none."""
        used = [s for s in self.shapes if s.nodes]
        return used or [self.shape(NodePlan(name="", index=0, gpus=[]))]

    def capacity_type_of(self, model: str) -> str | None:
        """The capacity type a model's pods (or a lazy cache's servers, by the cache's name)
        select: where the pool's NodePools offer spot and on-demand nodes, on-demand for a
        model the plan puts on on-demand nodes only (every model that may not be interrupted
        is one); None for the others, whom the spot NodePool's weight sends to spot first,
        and who may move to on-demand room when a spot node is taken back; None where the
        pool offers one capacity type."""
        if len({s.capacity_type for s in self.chosen_shapes}) < 2:
            return None
        used = {self.shape(node).capacity_type for node in self.nodes for gpu in node.gpus
                if any(slot.model == model for slot in gpu.replicas)
                or any(server.cache == model for server in gpu.caches)} | {
            self.shape(node).capacity_type for node in self.nodes for slot in node.pods
            if slot.model == model}
        return "on-demand" if used == {"on-demand"} else None

    @property
    def device(self) -> str:
        """The GPU type, or `cpu` for a CPU pool: what its models are profiled on."""
        return self.gpu_type or CPU_DEVICE


class Serving(Strict):
    image: str
    port: int
    cpu_milli: int
    host_memory_mib: int
    engine: str | None = None
    model_repository: str | None = Field(None, exclude_if=lambda repository: repository is None)
    """Where a multi-model server loads the model from (left out of the file when unset)."""


class Limits(Strict):
    max_concurrency: int
    queue_limit: int
    timeout_ms: int


class LlmPlan(Strict):
    """An LLM replica's configuration, passed to its engine as flags."""

    tensor_parallel: int
    """GPUs per replica the weights and KV cache are split over."""
    precision: str
    """Weight precision: bf16, fp8 or int4."""
    max_num_seqs: int
    """Sequences the engine runs at once (the operating concurrency)."""
    max_model_len: int
    """The longest sequence, prompt and output, in tokens."""
    step_tokens: int
    """Tokens one engine step batches at most, prompt chunks included."""
    gpu_memory_utilization: float
    """The fraction of its device (GPU or MIG slice) the engine preallocates."""
    ttft_p99_ms: float
    """Estimated time to first token, 99th percentile."""
    tpot_p99_ms: float
    """Estimated time per output token, 99th percentile."""


class Autoscaling(Strict):
    """Replicas between the expected mean traffic's and the peak's, by a HorizontalPodAutoscaler
    on the request rate per pod; the plan packs `max_replicas`, the peak's."""

    min_replicas: int
    max_replicas: int
    metric: str
    """The per-pod metric (custom metrics API) it scales on."""
    target_per_replica: float
    """The request rate per replica it keeps to: the peak's load per planned replica."""
    by: Literal["hpa", "keda"] = Field("hpa", exclude_if=lambda by: by == "hpa")
    """What scales the model: a HorizontalPodAutoscaler, or a KEDA ScaledObject."""
    prometheus_url: str | None = Field(None, exclude_if=lambda url: url is None)
    """The Prometheus a KEDA trigger queries for the request rate."""


class BatchPlan(Strict):
    """A batch model's runs (`planner.rules.batch`): a CronJob on `schedule`, or a one-off
    Job; its line of the month is its cost per hour over the hours its runs take."""

    schedule: str | None
    time_zone: str | None = None
    requests_per_run: int
    run_hours: float
    """How long one run lasts at the planned replicas' rate."""
    runs_per_month: float
    """Runs in a month of the plan's `hours_per_month` (a one-off Job: 1); a billing period
    counts its calendar month's starts instead."""


class ModelPlan(Strict):
    name: Name
    team: Name
    labels: dict[LabelKey, LabelValue]
    serving: Serving
    limits: Limits
    loading: str
    cache: str | None = None
    """The reserved lazy cache the model is loaded into; None: its replicas are its own."""
    priority: str
    serving_profile: str
    pool: Name
    replicas: int
    replicas_min: int
    """The model's `replicas.min`: the fewest replicas it may run, a node lost or not."""
    gpus_per_replica: int
    whole_gpus: bool
    memory_mib: int
    compute_milli: int
    concurrency: int | None
    throughput_rps: float
    p99_ms: float | None
    slo_p99_ms: float | None = None
    mig_slice: str | None = None
    max_replicas_per_node: int | None = None
    zone_max_skew: int | None = None
    apart_on_node: list[Name] = []
    """Placed models this one never shares a node with (node-scope conflict rules)."""
    estimated: bool
    profile_method: str
    gpu_fraction: float
    cost_per_hour: float
    shares_with: list[str] = []
    """The models (and caches) whose pods share a GPU with this model's pods; for a member of
    a reserved cache, with its cache's server pods. The cache's other members are not listed:
    they are loaded into the same server, within the cache's share of the GPU."""
    llm: LlmPlan | None = None
    autoscaling: Autoscaling | None = None
    """Set where the expected mean traffic needs fewer replicas than the peak."""
    batch: BatchPlan | None = Field(None, exclude_if=lambda batch: batch is None)
    """Set for a model that works in runs (a CronJob or Job) instead of serving."""
    reasons: list[str]

    @property
    def own_pods(self) -> int:
        """The pods the model runs itself: none where a reserved cache holds it (its
        `replicas` are what it would run warm)."""
        return 0 if self.cache is not None else self.replicas


class UnplacedModel(Strict):
    name: Name
    team: Name
    priority: str
    reasons: list[str]


class SolverReport(Strict):
    name: str
    status: Literal["optimal", "feasible", "greedy"]
    objective: float
    lower_bound: float
    gap: float
    seconds: float
    seed: int
    workers: int
    time_limit_s: float
    moved_replicas: int = 0
    # True: solved on counted work (`planner plan --deterministic`, `planner check`), so
    # `seconds` and `time_limit_s` are CP-SAT deterministic seconds, and the same registry
    # and seed give this plan byte for byte on any machine.
    deterministic: bool = False


class Summary(Strict):
    models: int
    replicas: int
    gpus: int
    nodes: int
    cost_per_hour: float
    cost_per_month: Money
    currency: str
    baseline_cost_per_hour: float  # see planner.assembly.cost.baseline_cost_per_hour
    baseline_cost_per_month: Money
    savings_per_month: Money
    unplaced: int


class Metadata(Strict):
    registry: str
    planner_version: str
    hours_per_month: float  # the planning figure, or the hours of `period`
    period: str | None = None  # YYYY-MM: the billing period the monthly amounts cover
    kubernetes_version: str
    namespace_prefix: str = ""
    label_domain: str
    gpu_operator_namespace: str
    billing: Billing = Billing()
    sharing_backend: SharingBackend = "device-plugin"
    """What hands GPUs to pods (cluster.yaml `sharing_backend`): the manifests and the
    enforcement list follow it."""


class RuleEnforcement(Strict):
    """Whether the cluster enforces a rule in the listed pools, and how (or why not)."""

    rule: str
    enforced: bool
    pools: list[Name]
    how: str


class RulePrice(Strict):
    """What one rule costs: the plan re-solved with it relaxed (`planner.rule_prices`)."""

    rule: str
    relaxed: str
    saves_per_hour: float
    """The plan's cost less the relaxed plan's; the summary prices it over the month."""
    placed_more: int = 0
    """Models the relaxed plan places that this one leaves out (negative: fewer)."""
    status: str
    """The relaxed plan's solver status: `optimal` makes the saving exact."""

    def rank(self) -> tuple[int, float]:
        """Where the relaxation ranks among the others: one that places more of the models
        left out comes first (a model placed outweighs any saving), then the larger saving."""
        return (-self.placed_more, -self.saves_per_hour)


class PriorityClassPlan(Strict):
    value: int
    preemption: str
    description: str = ""


class BelowMinPlan(Strict):
    model: Name
    running: int
    """Replicas still running once the node is lost and its pods rescheduled; for a member
    of a served lazy cache, its cache's server pods."""
    replicas_min: int
    served_by: str = Field("", exclude_if=lambda served_by: not served_by)
    """The cache server workload whose pods serve the model (it has none of its own); empty
    (and left out of the file): its own pods."""


class NodeLossPlan(Strict):
    """A node whose loss drops models below their `replicas.min`."""

    node: str
    pool: Name
    below_min: list[BelowMinPlan]


class SparePlan(Strict):
    """Spare nodes of one kind: of a NodePool, of an instance type."""

    node_pool: str
    instance_type: str
    nodes: int
    price_per_node_hour: float


class HeadroomPlan(Strict):
    """The cheapest spare nodes that keep every model of a pool at its `replicas.min`
    through the loss of any one of the pool's nodes."""

    pool: Name
    spares: list[SparePlan]
    cost_per_hour: float
    cost_per_month: Money
    within_ceiling: bool
    """The pool's `max_nodes` leaves room for them."""
    covers: bool
    """False: no mix of the spare nodes tried covers every loss; these are the cheapest."""


class NodeLossSummary(Strict):
    """Each planned node lost in turn, as `planner simulate` replays it on the plan's
    manifests: the losses that drop a model below its `replicas.min`, and the headroom that
    prevents them."""

    nodes: int
    """Nodes lost in turn (every planned node), or 0 where the plan has more than
    `limit` nodes and the replay was left to `planner simulate`."""
    limit: int
    losses: list[NodeLossPlan] = []
    headroom: list[HeadroomPlan] = []
    cost_per_month: Money = Decimal(0)


class Plan(Strict):
    api_version: Literal["planner/v1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["PlacementPlan"] = "PlacementPlan"
    metadata: Metadata
    summary: Summary
    solver: SolverReport
    priority_classes: dict[str, PriorityClassPlan]
    pools: list[PoolPlan]
    models: list[ModelPlan]
    unplaced: list[UnplacedModel] = []
    explanation: list[str] = []
    enforcement: list[RuleEnforcement] = []
    rule_prices: list[RulePrice] = Field([], exclude_if=lambda prices: not prices)
    """Each rule relaxed in turn, largest saving first (`planner plan --price-rules`); empty
    (and left out of the file) when not asked for."""
    node_loss: NodeLossSummary | None = Field(None, exclude_if=lambda loss: loss is None)
    """Each node lost in turn (`planner plan` replays its manifests); None (and left out of
    the file) where not replayed."""

    def model(self, name: str) -> ModelPlan | None:
        return self.models_by_name.get(name)

    @cached_property
    def models_by_name(self) -> dict[str, ModelPlan]:
        """The models by name, worked out once (a plan does not change once made): reports
        look a model up for every replica of every node."""
        return {m.name: m for m in reversed(self.models)}  # the first of a name, as a scan

    def cache(self, workload: str) -> LazyCachePlan | None:
        """The reserved cache whose servers run as `workload` (`LazyCachePlan.workload`)."""
        return next((c for p in self.pools for c in p.caches
                     if c.reserved and c.workload == workload), None)

    def served_by(self, model: ModelPlan) -> LazyCachePlan | None:
        """The cache whose server pods serve `model`, where the manifests run them: the
        model has no pods of its own, and it is up wherever one of those pods runs."""
        return next((c for c in self.held_caches() if c.name == model.cache), None)

    def held_caches(self, server: str | None = None) -> list[LazyCachePlan]:
        """Every pool's caches whose servers the manifests run (as `server` where named)."""
        return [c for p in self.pools for c in p.held_caches(server)]


def dump_plan(plan: Plan) -> str:
    # libyaml's emitter where PyYAML has it: the same text, ten times faster on large plans.
    return yaml.dump(plan.model_dump(mode="json", by_alias=True),
                     Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     width=100)


def load_plan(path: Path) -> Plan:
    """Read a plan file; any problem is an InputError naming the file and line."""
    doc = read_yaml(path, max_bytes=MAX_PLAN_BYTES)
    kind = doc.data.get("kind")
    if kind not in (None, "PlacementPlan") or (kind is None and "apiVersion" not in doc.data):
        from planner.registry.reference import guess_format

        fmt = guess_format(doc.data)
        what = (f"this is a registry file ({fmt.path}: {fmt.what}), not a plan file"
                if fmt else "not a plan file (no `kind: PlacementPlan`)")
        raise InputError(Problem(path, 1, None, f"{what}; pass the plan.yaml that "
                                 "`planner plan --out DIR` wrote"))
    plan, problems = validate_document(doc, Plan)
    if problems:
        raise InputError(problems)
    if plan is None:
        raise InputError(Problem(path, None, None, "not a plan file"))
    return plan
