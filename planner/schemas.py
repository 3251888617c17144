"""The registry's file formats: `planner.yaml`, `models/*.yaml`, `cluster.yaml`, `policy.yaml`.

Every schema forbids unknown keys, so a misspelt key is an error with a suggestion rather than
a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from planner import k8s_names
from planner.money import minor_unit
from profiles.schema import Source, Strict

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ServingProfile = Literal["online", "bursty", "batch", "large"]
Priority = Literal["production", "internal", "batch", "experimental"]
ModelTier = Literal["small", "medium", "large"]
LatencyClass = Literal["interactive", "bursty", "batch"]
GpuSharing = Literal["allowed", "forbidden"]
TenantScope = Literal["shared", "dedicated"]
SharingMode = Literal["exclusive", "time-slicing", "mps", "mig"]
PoolClass = Literal["shared", "dedicated", "low-priority"]
Name = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]



def _kubernetes(rule: Callable[[str], str | None]) -> AfterValidator:
    """A string checked by one of Kubernetes' name rules when the file is read."""

    def check(value: str) -> str:
        reason = rule(value)
        if reason:
            raise ValueError(f"'{value}' is {reason}")
        return value

    return AfterValidator(check)


Subdomain = Annotated[str, _kubernetes(k8s_names.dns1123_subdomain_problem)]
LabelKey = Annotated[str, _kubernetes(k8s_names.label_key_problem)]
TaintKey = Annotated[str, _kubernetes(k8s_names.qualified_name_problem)]
LabelValue = Annotated[str, _kubernetes(k8s_names.label_value_problem)]
KindName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63)]

PRIORITIES: tuple[str, ...] = ("production", "internal", "batch", "experimental")
MIG_COMPUTE_SLICES = 7  # an A100/H100 GPU in MIG mode splits into seven compute slices


# --- planner.yaml -----------------------------------------------------------------------------


class Paths(Strict):
    models: str = "models"
    profiles: str = "profiles"
    cluster: str = "cluster.yaml"
    policy: str = "policy.yaml"


class Billing(Strict):
    """Who bills whom in the FOCUS cost report: the platform that runs the GPUs, by default.

    The report allocates the platform's GPU cost to teams (showback); it is a forecast, so
    nothing in it is invoiced.
    """

    account_id: Annotated[str, Field(min_length=1)] = "gpu-platform"
    account_name: Annotated[str, Field(min_length=1)] = "GPU platform"
    provider: Annotated[str, Field(min_length=1)] = "GPU platform"
    publisher: Annotated[str, Field(min_length=1)] = "GPU platform"
    invoice_issuer: Annotated[str, Field(min_length=1)] = "GPU platform"


class PlannerConfig(Strict):
    """Registry-wide settings; every key has a default, so the file is optional."""

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d+$")] = "1.33"
    hours_per_month: Annotated[float, Field(gt=0, le=744)] = 730.0
    namespace_prefix: Annotated[str, Field(pattern=r"^([a-z0-9][-a-z0-9]*)?$", max_length=62)] = ""
    label_domain: Subdomain = Field(
        "planner.example.com",
        description="the prefix of every label, annotation and taint key the planner writes")
    paths: Paths = Paths()
    billing: Billing = Billing()

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, code: str) -> str:
        """Amounts are rounded to the currency's minor unit, so it must have one."""
        minor_unit(code)
        return code

    @model_validator(mode="after")
    def _domain_not_reserved(self) -> PlannerConfig:
        domain = k8s_names.reserved_domain(f"{self.label_domain}/x")
        if domain:
            raise ValueError(f"label_domain '{self.label_domain}' lies in the reserved domain "
                             f"{domain}; use a domain your organisation owns")
        return self


# --- models/<name>.yaml -----------------------------------------------------------------------


class Labels(Strict):
    model_tier: ModelTier = Field(alias="model-tier")
    latency_class: LatencyClass = Field(alias="latency-class")
    gpu_sharing: GpuSharing = Field(alias="gpu-sharing")
    tenant_scope: TenantScope = Field(alias="tenant-scope")

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class Traffic(Strict):
    peak_rps: Annotated[float, Field(gt=0)]
    mean_rps: Annotated[float, Field(ge=0)] | None = None


class Slo(Strict):
    p99_ms: Annotated[float, Field(gt=0)]


class Limits(Strict):
    max_concurrency: Annotated[int, Field(ge=1)]
    queue_limit: Annotated[int, Field(ge=0)]
    timeout_ms: Annotated[int, Field(ge=1)]


class Replicas(Strict):
    min: Annotated[int, Field(ge=1)] = 1
    max: Annotated[int, Field(ge=1)] | None = None


class Loading(Strict):
    policy: Literal["warm", "lazy", "auto"] = "warm"


class Serving(Strict):
    image: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    cpu_milli: Annotated[int, Field(ge=1)] = 2000
    host_memory_mib: Annotated[int, Field(ge=1)] = 4096


class Resources(Strict):
    """Hand-stated demand for a model that has not been profiled; the plan marks it estimated."""

    memory_mib: Annotated[int, Field(ge=1)]
    throughput_rps: Annotated[float, Field(gt=0)]


class ModelSpec(Strict):
    name: Name
    team: Name
    description: str = ""
    serving_profile: ServingProfile
    priority: Priority
    labels: Labels
    traffic: Traffic
    slo: Slo
    limits: Limits
    replicas: Replicas = Replicas()
    gpus_per_replica: Annotated[int, Field(ge=1, le=16)] = 1
    loading: Loading = Loading()
    serving: Serving
    source: Source | None = None
    resources: Resources | None = None

    @property
    def shares_gpu(self) -> bool:
        """Whether replicas may share a GPU with others: single-GPU and sharing allowed."""
        return self.gpus_per_replica == 1 and self.labels.gpu_sharing == "allowed"


# --- cluster.yaml -----------------------------------------------------------------------------


class MigProfile(Strict):
    memory_mib: Annotated[int, Field(ge=1)]
    compute_slices: Annotated[int, Field(ge=1, le=MIG_COMPUTE_SLICES)]


class GpuType(Strict):
    memory_mib: Annotated[int, Field(ge=1)]
    product: LabelValue = Field(
        description="the value of the node label nvidia.com/gpu.product")
    mig_profiles: dict[str, MigProfile] = {}
    mig_layouts: list[list[str]] = []

    @model_validator(mode="after")
    def _layouts_use_known_profiles(self) -> GpuType:
        for layout in self.mig_layouts:
            unknown = [p for p in layout if p not in self.mig_profiles]
            if unknown:
                raise ValueError(f"MIG layout {layout} uses unknown profiles {unknown}; "
                                 f"known: {sorted(self.mig_profiles)}")
            if sum(self.mig_profiles[p].compute_slices for p in layout) > MIG_COMPUTE_SLICES:
                raise ValueError(f"MIG layout {layout} uses more than {MIG_COMPUTE_SLICES} "
                                 "compute slices")
        return self


class NodeResources(Strict):
    cpu_milli: Annotated[int, Field(ge=0)]
    memory_mib: Annotated[int, Field(ge=0)]


class InstanceType(Strict):
    """A node's CPU and host memory, and what the system keeps for itself (kubelet, OS,
    eviction threshold, daemons): pods get the difference, the node's allocatable."""

    cpu_milli: Annotated[int, Field(ge=1)]
    memory_mib: Annotated[int, Field(ge=1)]
    reserved: NodeResources

    @model_validator(mode="after")
    def _reserve_below_capacity(self) -> InstanceType:
        if self.reserved.cpu_milli >= self.cpu_milli or \
                self.reserved.memory_mib >= self.memory_mib:
            raise ValueError("the reserve leaves nothing for pods; it must be below the "
                             "instance's cpu_milli and memory_mib")
        return self


class Taint(Strict):
    key: TaintKey
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodeClassRef(Strict):
    """The Karpenter node class that provisions nodes; its group and kind name the provider."""

    group: Subdomain = "karpenter.k8s.aws"
    kind: KindName = "EC2NodeClass"
    name: Subdomain = "gpu"


class PoolNodeClass(Strict):
    """A pool's own node class, within the cluster's provider: group and kind may only repeat
    the cluster's, since one Karpenter installation runs one cloud provider."""

    group: Subdomain | None = None
    kind: KindName | None = None
    name: Subdomain


class Pool(Strict):
    name: Name
    gpu_type: str
    pool_class: PoolClass = Field(alias="class")
    sharing: SharingMode
    gpus_per_node: Annotated[int, Field(ge=1, le=16)]
    price_per_node_hour: Annotated[float, Field(gt=0)]
    max_nodes: Annotated[int, Field(ge=1)]
    instance_type: LabelValue = ""
    node_class: PoolNodeClass | None = None
    max_models_per_gpu: Annotated[int, Field(ge=1)] | None = None
    labels: dict[LabelKey, LabelValue] = {}
    taints: list[Taint] = []


class Cluster(Strict):
    node_class: NodeClassRef = Field(
        NodeClassRef(), description="the provider and default node class of every pool")
    gpu_types: dict[Name, GpuType]
    instance_types: dict[str, InstanceType] = {}
    pools: list[Pool]

    def node_class_of(self, pool: Pool) -> NodeClassRef:
        """The node class that provisions `pool`'s nodes: its own name, the cluster's provider."""
        if pool.node_class is None:
            return self.node_class
        return self.node_class.model_copy(update={"name": pool.node_class.name})


# --- policy.yaml ------------------------------------------------------------------------------


class Selector(Strict):
    """Matches models by label, priority, serving profile or team; an absent key matches all."""

    model_tier: list[ModelTier] | None = Field(None, alias="model-tier")
    latency_class: list[LatencyClass] | None = Field(None, alias="latency-class")
    gpu_sharing: list[GpuSharing] | None = Field(None, alias="gpu-sharing")
    tenant_scope: list[TenantScope] | None = Field(None, alias="tenant-scope")
    priority: list[Priority] | None = None
    serving_profile: list[ServingProfile] | None = None
    team: list[str] | None = None

    def matches(self, model: ModelSpec) -> bool:
        values = {
            "model_tier": model.labels.model_tier,
            "latency_class": model.labels.latency_class,
            "gpu_sharing": model.labels.gpu_sharing,
            "tenant_scope": model.labels.tenant_scope,
            "priority": model.priority,
            "serving_profile": model.serving_profile,
            "team": model.team,
        }
        return all(getattr(self, key) is None or value in getattr(self, key)
                   for key, value in values.items())


class AdmissionRule(Strict):
    name: Name
    pools: list[str]
    match: Selector = Selector()


class ConflictRule(Strict):
    """Keeps models apart on one GPU or one node.

    `between: [A, B]` keeps models matching A away from models matching B;
    `separate_teams: S` keeps models matching S away from models of any other team.
    """

    name: Name
    scope: Literal["gpu", "node"]
    between: tuple[Selector, Selector] | None = None
    separate_teams: Selector | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ConflictRule:
        if (self.between is None) == (self.separate_teams is None):
            raise ValueError("give exactly one of `between` or `separate_teams`")
        return self


class PriorityClass(Strict):
    value: Annotated[int, Field(ge=0, le=1_000_000_000)]
    preemption: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"
    description: str = ""


class Spread(Strict):
    max_node_share: Annotated[float, Field(gt=0, le=1)] = 0.5


class Policy(Strict):
    memory_headroom: Annotated[float, Field(ge=0, lt=1)] = 0.1
    target_utilization: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_models_per_gpu: Annotated[int, Field(ge=1)] = 8
    spread: Spread = Spread()
    priorities: dict[Priority, PriorityClass]
    admission: list[AdmissionRule]
    conflicts: list[ConflictRule] = []
