"""The registry's file formats: `planner.yaml`, `models/*.yaml`, `cluster.yaml`, `policy.yaml`.

Every schema forbids unknown keys, so a misspelt key is an error with a suggestion rather than
a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from planner import cron, k8s_names
from planner.money import minor_unit
from profiles.llm import Architecture, Precision
from profiles.schema import (
    MAX_COUNT,
    MAX_MIB,
    MAX_MS,
    MAX_RPS,
    Count,
    Millis,
    Source,
    Strict,
    Throughput,
)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ServingProfile = Literal["online", "bursty", "batch", "large"]
Priority = Literal["production", "internal", "batch", "experimental"]
ModelTier = Literal["small", "medium", "large"]
LatencyClass = Literal["interactive", "bursty", "batch"]
GpuSharing = Literal["allowed", "forbidden"]
TenantScope = Literal["shared", "dedicated"]
SharingMode = Literal["exclusive", "time-slicing", "mps", "mig"]
SharingBackend = Literal["device-plugin", "dra"]
PoolClass = Literal["shared", "dedicated", "low-priority"]
ServingEngine = Literal["triton", "vllm", "kserve", "sglang", "tgi"]
LLM_ENGINES = ("vllm", "sglang", "tgi")
SERVED_NAME_ENGINES = frozenset({"vllm", "sglang"})
"""The engines that answer only to the model name they serve under (by default the path they
load), unless `--served-model-name` names it: the registry's name is what clients, the load
generator and the per-model metrics use. TGI serves one model and answers to any name."""
TensorParallel = Literal[1, 2, 4, 8, 16]
Name = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
MAX_ZONES = 26
# A Triton model repository: an absolute folder, or object storage Triton reads itself.
ModelRepository = Annotated[str, Field(pattern=r"^(/|s3://|gs://|as://)[^\s,]+$",
                                       max_length=1024)]


def _kubernetes(rule: Callable[[str], str | None]) -> AfterValidator:
    """A string checked by one of Kubernetes' name rules when the file is read."""

    def check(value: str) -> str:
        reason = rule(value)
        if reason:
            raise ValueError(f"'{value}' is {reason}")
        return value

    return AfterValidator(check)


def _editor_rule(words: str, pattern: str, max_length: int) -> Any:
    """The JSON Schema an editor checks a Kubernetes name with, and the words the registry
    reference gives for it; reading the registry applies the rule itself, with its reasons."""
    return Field(json_schema_extra={"pattern": pattern, "maxLength": max_length,
                                    "x-rule": words})


_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_PART = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"

Subdomain = Annotated[str, _kubernetes(k8s_names.dns1123_subdomain_problem), _editor_rule(
    "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each dot-separated part "
    "starting and ending with a letter or digit, at most 253 characters",
    f"^{_SUBDOMAIN}$", k8s_names.DNS1123_SUBDOMAIN_MAX)]
LabelKey = Annotated[str, _kubernetes(k8s_names.label_key_problem), _editor_rule(
    "a label key, `[prefix/]name`: an optional DNS subdomain and '/', then at most 63 letters, "
    "digits, '-', '_' and '.', starting and ending with a letter or digit; not under "
    "kubernetes.io, k8s.io or karpenter.sh", f"^({_SUBDOMAIN}/)?{_NAME_PART}$", 317)]
TaintKey = Annotated[str, _kubernetes(k8s_names.qualified_name_problem), _editor_rule(
    "a qualified name, `[prefix/]name`: an optional DNS subdomain and '/', then at most 63 "
    "letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    f"^({_SUBDOMAIN}/)?{_NAME_PART}$", 317)]
LabelValue = Annotated[str, _kubernetes(k8s_names.label_value_problem), _editor_rule(
    "a label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit", f"^({_NAME_PART})?$", k8s_names.LABEL_VALUE_MAX)]


def _mig_profile_problem(profile: str) -> str | None:
    """A MIG profile names the extended resource `nvidia.com/mig-<profile>`."""
    if k8s_names.qualified_name_problem(f"nvidia.com/mig-{profile}"):
        return ("not usable in the resource name nvidia.com/mig-<profile>: letters, digits, "
                "'-', '_' and '.', ending with a letter or digit")
    return None


MigProfileName = Annotated[str, _kubernetes(_mig_profile_problem), _editor_rule(
    "a MIG profile name, usable in the resource name nvidia.com/mig-<profile>: at most 59 "
    "letters, digits, '-', '_' and '.', ending with a letter or digit",
    r"^[-A-Za-z0-9_.]*[A-Za-z0-9]$", k8s_names.QUALIFIED_NAME_MAX - len("mig-"))]
KindName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63)]

PRIORITIES: tuple[str, ...] = ("production", "internal", "batch", "experimental")
MAX_REPLICAS = 10_000  # of one model; the planner packs fleets, not one model's swarm
MAX_NODES = 10_000  # in one pool
MAX_MODELS_PER_GPU = 1_000
MAX_CPU_MILLI = 10_000_000  # ten thousand cores
MAX_PRICE_PER_HOUR = 1_000_000.0  # of one node
MIG_COMPUTE_SLICES = 7  # an A100/H100 GPU in MIG mode splits into seven compute slices


# --- planner.yaml -----------------------------------------------------------------------------


def _inside_registry(value: str) -> str:
    """A path in planner.yaml stays inside the registry: relative, without `..`."""
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "~")) or ":" in value or ".." in parts:
        raise ValueError(f"'{value}' leaves the registry; give a path relative to the registry "
                         "folder, without '..'")
    return value


RegistryPath = Annotated[str, AfterValidator(_inside_registry)]


class Paths(Strict):
    models: RegistryPath = "models"
    """Folder of the model files, relative to the registry."""
    profiles: RegistryPath = "profiles"
    """Folder of the profile files (`<model>/<gpu-type>.yaml`), relative to the registry."""
    cluster: RegistryPath = "cluster.yaml"
    """The cluster file, relative to the registry."""
    policy: RegistryPath = "policy.yaml"
    """The policy file, relative to the registry."""


class Billing(Strict):
    """Who bills whom in the FOCUS cost report: the platform that runs the GPUs, by default.

    The report allocates the platform's GPU cost to teams (showback); it is a forecast, so
    nothing in it is invoiced.
    """

    account_id: Annotated[str, Field(min_length=1)] = "gpu-platform"
    """The billing account's id (FOCUS BillingAccountId)."""
    account_name: Annotated[str, Field(min_length=1)] = "GPU platform"
    """The billing account's name (FOCUS BillingAccountName)."""
    provider: Annotated[str, Field(min_length=1)] = "GPU platform"
    """Who provides the GPUs (FOCUS ProviderName)."""
    publisher: Annotated[str, Field(min_length=1)] = "GPU platform"
    """Who publishes the service (FOCUS PublisherName)."""
    invoice_issuer: Annotated[str, Field(min_length=1)] = "GPU platform"
    """Who would invoice it (FOCUS InvoiceIssuerName)."""


class PlannerConfig(Strict):
    """Registry-wide settings; every key has a default, so the file is optional."""

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    """ISO 4217 code of every price and cost, three capital letters."""
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d+$")] = "1.33"
    """The Kubernetes minor version the manifests are written and checked for, as a string
    (`"1.33"`, quoted: unquoted YAML reads 1.30 as the number 1.3).
    """
    hours_per_month: Annotated[float, Field(ge=1, le=744)] = 730.0
    """Hours of the planning month: cost per month = cost per hour x this. `--period YYYY-MM`
    charges the hours that calendar month has (672 to 744) instead."""
    namespace_prefix: Annotated[str, Field(pattern=r"^([a-z0-9][-a-z0-9]*)?$", max_length=62)] = ""
    """Prefix of each team's Namespace name (`<prefix><team>`); empty: the team name alone."""
    label_domain: Subdomain = Field(
        "planner.example.com",
        description="the prefix of every label and annotation key the planner writes (the "
                    "default is a documentation domain: set one your organisation owns)")
    gpu_operator_namespace: Name = "gpu-operator"
    """The namespace the NVIDIA GPU Operator runs in, where its device-plugin and MIG-manager
    ConfigMaps must be."""
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = \
        "http://prometheus-operated.monitoring.svc:9090"
    """The Prometheus that KEDA's triggers query (`autoscaler: keda`): by default the Service
    the Prometheus Operator creates for a Prometheus in the `monitoring` namespace."""
    paths: Paths = Paths()
    """Where the registry's files are, when not in the default places."""
    billing: Billing = Billing()
    """Who bills whom in the cost report (FOCUS billing account, provider, publisher)."""

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
    """The model's size class; admission rules select pools by it."""
    latency_class: LatencyClass = Field(alias="latency-class")
    """How latency-sensitive the traffic is; conflict rules keep classes apart."""
    gpu_sharing: GpuSharing = Field(alias="gpu-sharing")
    """`forbidden`: every replica takes whole GPUs of its own."""
    tenant_scope: TenantScope = Field(alias="tenant-scope")
    """`dedicated`: conflict rules can keep this team's replicas off other teams' GPUs."""

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class Traffic(Strict):
    peak_rps: Annotated[float, Field(gt=0, le=MAX_RPS)]
    """The highest request rate the model must serve; replicas are sized for it."""
    mean_rps: Annotated[float, Field(ge=0, le=MAX_RPS)] | None = None
    """The average request rate (informational)."""


class Slo(Strict):
    p99_ms: Millis
    """The 99th percentile latency a replica must meet; it picks the operating point on the profile.
    """


class Limits(Strict):
    max_concurrency: Count
    """Requests one replica serves at once; the operating point never exceeds it."""
    queue_limit: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    """Requests a replica queues beyond those it serves, passed to the server."""
    timeout_ms: Annotated[int, Field(ge=1, le=int(MAX_MS))]
    """Request timeout passed to the server."""


class Replicas(Strict):
    min: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1
    """The fewest replicas, whatever the traffic."""
    max: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] | None = None
    """The most replicas; absent: no upper limit."""


class Loading(Strict):
    policy: Literal["warm", "lazy", "auto"] = "warm"
    """`warm`: always loaded; `lazy`: loaded on first request, refused when the profile's
    load_time_s plus slo.p99_ms exceeds limits.timeout_ms; `auto`: lazy when that cold start
    fits the timeout, fewer than one request arrives (at mean_rps) per load and the model joins
    a lazy cache, else warm. In a time-sliced pool lazy models share a cache sized for those
    active at once (policy.yaml `lazy_cache`); elsewhere a lazy model's replicas are reserved
    as if warm."""


class Serving(Strict):
    image: Annotated[str, Field(min_length=1)]
    """The container image that serves the model."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """The port the server listens on."""
    cpu_milli: Annotated[int, Field(ge=1, le=MAX_CPU_MILLI)] = 2000
    """CPU a replica requests, in thousandths of a core (2000 = 2 cores)."""
    host_memory_mib: Annotated[int, Field(ge=1, le=MAX_MIB)] = 4096
    """Host (not GPU) memory a replica requests."""
    engine: ServingEngine | None = None
    """The inference server in the image (`triton`, `vllm`, `kserve` (the KServe Python model
    server), `sglang` or `tgi`): it names the metrics the model's alerts and dashboards query,
    and for an `llm` model the flags the manifests pass it. Absent: only the GPU metrics of the
    DCGM exporter are watched."""
    model_repository: ModelRepository | None = None
    """Where a multi-model server finds the model: a Triton model repository (a folder in the
    server's image, or `s3://`, `gs://` or `as://` storage) holding a directory named after
    the model. A lazily loaded `triton` model that names one is loaded on demand into its
    pool's cache server (policy.yaml `lazy_cache`) instead of running pods of its own: KServe
    ModelMesh where its cache's repositories are all in storage, Triton with explicit model
    control where one is a folder in the image."""


class Resources(Strict):
    """Hand-stated demand for a model that has not been profiled; the plan marks it estimated."""

    memory_mib: Annotated[int, Field(ge=1, le=MAX_MIB)]
    """GPU memory one replica needs, CUDA context included; for a CPU-only model
    (`gpus_per_replica: 0`) the host memory it needs, within `serving.host_memory_mib`."""
    throughput_rps: Throughput
    """Requests per second one replica serves within the SLO with a whole GPU to itself. A
    replica's compute share of a shared GPU is its load over this rate (peak_rps / replicas /
    throughput_rps), so a figure near the peak leaves little to share."""


class TokenCounts(Strict):
    """Tokens per request: the mean sizes throughput, the 95th percentile latency and memory."""

    mean: Count
    """The mean tokens per request."""
    p95: Count
    """The 95th percentile of tokens per request."""

    @model_validator(mode="after")
    def _ordered(self) -> TokenCounts:
        if self.mean > self.p95:
            raise ValueError(f"mean ({self.mean}) exceeds p95 ({self.p95})")
        return self


class LlmSlo(Strict):
    """Latency objectives of a generating model; `slo.p99_ms` bounds the whole request."""

    ttft_p99_ms: Millis
    """Time to first token, 99th percentile: queueing for the running step and the prompt's
    prefill."""
    tpot_p99_ms: Millis
    """Time per output token (inter-token latency), 99th percentile: one decode step of the
    replica's batch."""


class Llm(Strict):
    """A generating decoder served by an LLM engine (vLLM, SGLang, TGI): sized in tokens, with
    its KV cache, context length and a tensor-parallel degree the planner chooses."""

    architecture: Architecture | None = None
    """The decoder's shape (layers, hidden, heads, kv_heads, ...); or give `config_json`."""
    config_json: RegistryPath | None = None
    """A Hugging Face `config.json` to read the architecture from, relative to the registry."""
    precisions: Annotated[list[Precision], Field(min_length=1)] = ["bf16"]
    """Weight precisions the model may be served at (`bf16`, `fp8`, `int4`); the planner
    takes the cheapest that meets the SLOs. The KV cache stays 16-bit."""
    tensor_parallel: Annotated[list[TensorParallel], Field(min_length=1)] = [1, 2, 4, 8]
    """Tensor-parallel degrees (GPUs per replica) the planner may choose from; it takes the
    cheapest that fits and meets the SLOs."""
    max_context_tokens: Count
    """The longest sequence (prompt and output) a request may have; passed to the engine
    (`--max-model-len`) and reserved in the KV cache for every concurrent sequence."""
    input_tokens: TokenCounts
    """Prompt tokens per request."""
    output_tokens: TokenCounts
    """Generated tokens per request."""
    slo: LlmSlo
    """Time to first token and time per output token at the 99th percentile."""

    @model_validator(mode="after")
    def _consistent(self) -> Llm:
        if (self.architecture is None) == (self.config_json is None):
            raise ValueError("give exactly one of `architecture` or `config_json`")
        longest = self.input_tokens.p95 + self.output_tokens.p95
        if longest > self.max_context_tokens:
            raise ValueError(f"input_tokens.p95 + output_tokens.p95 ({longest}) exceeds "
                             f"max_context_tokens ({self.max_context_tokens}); raise it or "
                             "shorten the requests")
        for name in ("precisions", "tensor_parallel"):
            values = getattr(self, name)
            if len(set(values)) < len(values):
                raise ValueError(f"{name} lists a value twice")
        return self


class BatchRun(Strict):
    """Work done in runs instead of served all the time (a model whose `serving_profile` is
    `batch`): a Kubernetes CronJob that starts a run on `schedule`, or without one a Job that
    runs once. A run's pods are the planned replicas, placed as a Deployment's would be; a run
    processes `requests_per_run` at `traffic.peak_rps` (the rate the replicas are sized for),
    so it lasts requests_per_run / peak_rps seconds, and the model pays for the hours its runs
    take in the month."""

    schedule: str | None = None
    """When runs start, in a CronJob's cron syntax: five fields (minute, hour, day of month,
    month, day of week) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`; absent: one
    run, as a Job. A run must end before the next starts."""
    time_zone: str | None = None
    """The IANA time zone the schedule is read in (`Europe/Berlin`); absent: UTC."""
    requests_per_run: Annotated[int, Field(ge=1, le=10**12)]
    """The requests (items) one run processes."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := cron.schedule_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and (problem := cron.time_zone_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _zone_needs_schedule(self) -> BatchRun:
        if self.time_zone is not None and self.schedule is None:
            raise ValueError("time_zone without a schedule; a one-off Job starts when applied")
        return self


class ModelSpec(Strict):
    name: Name
    """The model's name, the same as the file's stem."""
    team: Name
    """The owning team; costs roll up by it and it names the Namespace. Teams are not declared
    anywhere else: every team a model names exists."""
    description: str = ""
    """What the model does, for people."""
    serving_profile: ServingProfile
    """The traffic's shape; admission rules select pools by it."""
    priority: Priority
    """One of policy.yaml's priorities; when capacity runs out, lower priorities stay out first."""
    labels: Labels
    """The four placement labels admission and conflict rules match on; all four are required."""
    traffic: Traffic
    """The request rates to serve."""
    slo: Slo
    """The latency objective."""
    limits: Limits
    """Per-replica serving limits."""
    replicas: Replicas = Replicas()
    """Bounds on the replica count; between them, traffic decides."""
    gpus_per_replica: Annotated[int, Field(ge=0, le=16)] = 1
    """Whole GPUs on one node per replica; above 1, the replica never shares its GPUs. 0: a
    CPU-only model, placed only in CPU pools (pools without `gpu_type`) and packed by its pod's
    `serving.cpu_milli` and `serving.host_memory_mib` alone; it plans from its CPU profile
    (`profiles/<model>/cpu.yaml`, what `planner profile run` writes on a machine without a GPU)
    or from `resources`."""
    loading: Loading = Loading()
    """When the model is loaded."""
    serving: Serving
    """The container that serves the model."""
    source: Source | None = None
    """What `planner profile` loads to measure the model."""
    resources: Resources | None = None
    """Demand stated by hand for a model without a profile; the plan marks it estimated."""
    llm: Llm | None = None
    """A generating LLM: sized in tokens with its KV cache, its tensor-parallel degree chosen
    by the planner (instead of `gpus_per_replica`), flags passed to its engine."""
    batch: BatchRun | None = None
    """Runs instead of a service (only for `serving_profile: batch`): a CronJob on a schedule
    or a one-off Job, paid for the hours its runs take."""
    autoscaler: Literal["hpa", "keda"] = "hpa"
    """What scales the model between its mean's and its peak's replicas (where `traffic.mean_rps`
    needs fewer): `hpa`, a HorizontalPodAutoscaler on the custom metrics API's per-pod request
    rate; `keda`, a KEDA ScaledObject whose Prometheus trigger queries the request rate the
    serving engine exposes (planner.yaml `prometheus_url`)."""

    @property
    def shares_gpu(self) -> bool:
        """Whether replicas may share a GPU with others: single-GPU and sharing allowed."""
        return self.gpus_per_replica == 1 and self.labels.gpu_sharing == "allowed"

    @property
    def cpu_only(self) -> bool:
        """Whether the model runs without a GPU (`gpus_per_replica: 0`)."""
        return self.gpus_per_replica == 0


# --- cluster.yaml -----------------------------------------------------------------------------


class MigProfile(Strict):
    memory_mib: Annotated[int, Field(ge=1, le=MAX_MIB)]
    """GPU memory of one slice of this profile."""
    compute_slices: Annotated[int, Field(ge=1, le=MIG_COMPUTE_SLICES)]
    """Compute slices (of 7) one slice of this profile takes."""


class GpuType(Strict):
    memory_mib: Annotated[int, Field(ge=1, le=MAX_MIB)]
    """The whole device's memory, as nvidia-smi reports it."""
    product: LabelValue = Field(
        description="the value of the node label nvidia.com/gpu.product")
    mig_profiles: dict[MigProfileName, MigProfile] = {}
    """MIG profiles by name (as `nvidia.com/mig-<name>` names them); only for MIG-capable types."""
    mig_layouts: list[list[str]] = []
    """The ways one GPU may be cut, each a list of profile names; a `mig` pool uses only these."""

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
    cpu_milli: Annotated[int, Field(ge=0, le=MAX_CPU_MILLI)]
    """CPU kept for the system."""
    memory_mib: Annotated[int, Field(ge=0, le=MAX_MIB)]
    """Host memory kept for the system."""


class InstanceType(Strict):
    """A node's CPU and host memory, and what the system keeps for itself (kubelet, OS,
    eviction threshold, daemons): pods get the difference, the node's allocatable."""

    cpu_milli: Annotated[int, Field(ge=1, le=MAX_CPU_MILLI)]
    """The node's CPU capacity (96 cores: 96000)."""
    memory_mib: Annotated[int, Field(ge=1, le=MAX_MIB)]
    """The node's host memory capacity."""
    reserved: NodeResources
    """What the system keeps for itself (kubelet, OS, eviction threshold, daemons)."""

    @model_validator(mode="after")
    def _reserve_below_capacity(self) -> InstanceType:
        if self.reserved.cpu_milli >= self.cpu_milli or \
                self.reserved.memory_mib >= self.memory_mib:
            raise ValueError("the reserve leaves nothing for pods; it must be below the "
                             "instance's cpu_milli and memory_mib")
        return self


class Taint(Strict):
    key: TaintKey
    """The taint's key, a qualified name (`[prefix/]name`)."""
    value: LabelValue = ""
    """The taint's value, a label value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    """What the taint does to pods that do not tolerate it."""


class NodeClassRef(Strict):
    """The Karpenter node class that provisions nodes; its group and kind name the provider."""

    group: Subdomain = "karpenter.k8s.aws"
    """API group of the node class; names the Karpenter provider."""
    kind: KindName = "EC2NodeClass"
    """Kind of the node class."""
    name: Subdomain = "gpu"
    """Name of the node class object."""


class PoolNodeClass(Strict):
    """A pool's own node class, within the cluster's provider: group and kind may only repeat
    the cluster's, since one Karpenter installation runs one cloud provider."""

    group: Subdomain | None = None
    """Only the cluster's own group (one provider per cluster)."""
    kind: KindName | None = None
    """Only the cluster's own kind."""
    name: Subdomain
    """The node class that provisions this pool's nodes."""


CapacityType = Literal["on-demand", "spot"]


class SpotOffer(Strict):
    """The same instance type also bought as spot capacity, at a lower price the cloud may
    take back: the plan chooses how many nodes of each capacity type to buy, spot only for
    the models of the policy's `spot_priorities`."""

    price_per_node_hour: Annotated[float, Field(gt=0, le=MAX_PRICE_PER_HOUR)]
    """What one spot node costs per hour, in planner.yaml's currency."""
    max_nodes: Annotated[int, Field(ge=1, le=MAX_NODES)] | None = None
    """The most spot nodes of this type; absent: as many as on-demand."""


class NodeShape(Strict):
    """A further instance type a pool's nodes may have: the planner chooses how many nodes of
    each shape to buy, and the pool's NodePool lets Karpenter launch every shape chosen."""

    instance_type: LabelValue
    """The cloud instance type, described under `instance_types`, of the pool's GPU type."""
    gpus_per_node: Annotated[int, Field(ge=0, le=16)]
    """GPUs in one node of this shape (0 in a CPU pool)."""
    price_per_node_hour: Annotated[float, Field(gt=0, le=MAX_PRICE_PER_HOUR)]
    """What one node of this shape costs per hour, in planner.yaml's currency."""
    max_nodes: Annotated[int, Field(ge=1, le=MAX_NODES)] | None = None
    """The most nodes of this shape; absent: the pool's `max_nodes`."""
    capacity_type: CapacityType = "on-demand"
    """`spot` nodes may be reclaimed by the cloud: only models of the policy's
    `spot_priorities` go there."""
    list_price_per_node_hour: Annotated[float, Field(gt=0, le=MAX_PRICE_PER_HOUR)] | None = None
    """The public on-demand price when `price_per_node_hour` is a lower rate (spot, a savings
    plan, a reservation); the cost report shows both (ListCost and EffectiveCost)."""
    spot: SpotOffer | None = None
    """This instance type also offered as spot capacity, at its own price: the plan may buy
    nodes of both capacity types (an on-demand shape only)."""

    @model_validator(mode="after")
    def _list_price_not_below(self) -> NodeShape:
        _check_prices(self.price_per_node_hour, self.list_price_per_node_hour,
                      self.capacity_type, self.spot)
        return self

    def spot_shape(self) -> NodeShape | None:
        """The shape's spot offer as a shape of its own, listed at the on-demand price."""
        if self.spot is None:
            return None
        return NodeShape(instance_type=self.instance_type, gpus_per_node=self.gpus_per_node,
                         price_per_node_hour=self.spot.price_per_node_hour,
                         max_nodes=self.spot.max_nodes or self.max_nodes, capacity_type="spot",
                         list_price_per_node_hour=self.list_price_per_node_hour
                         or self.price_per_node_hour)


def _check_prices(price: float, list_price: float | None, capacity_type: str,
                  spot: SpotOffer | None) -> None:
    """A list price is the undiscounted one; a spot offer is of on-demand capacity, below
    its list price."""
    if list_price is not None and list_price < price:
        raise ValueError("list_price_per_node_hour is below price_per_node_hour; the list "
                         "price is the undiscounted one")
    if spot is not None and capacity_type == "spot":
        raise ValueError("`spot` offers an on-demand shape as spot too; this shape is spot "
                         "already: remove `spot` or make capacity_type on-demand")
    if spot is not None and spot.price_per_node_hour > (list_price or price):
        raise ValueError("spot.price_per_node_hour is above the on-demand list price; spot "
                         "capacity is the discounted one")


class Pool(Strict):
    name: Name
    """The pool's name; admission rules name it."""
    gpu_type: str | None = None
    """A key of `gpu_types`. Absent: a CPU pool, whose nodes have no GPU; it holds CPU-only
    models (`gpus_per_replica: 0`), packed by CPU and host memory per node, and takes neither
    `sharing` nor `gpus_per_node`."""
    pool_class: PoolClass = Field(alias="class")
    """What the pool is for, as admission rules and the PR check read it: `shared` and
    `dedicated` name its intent (admission rules in policy.yaml decide which models go where),
    and `low-priority` pools never take production models."""
    sharing: SharingMode | None = None
    """How replicas share a GPU: `exclusive` one per GPU, `time-slicing` and `mps` several, `mig`
    hardware slices. Required in a GPU pool; a CPU pool has none.
    """
    gpus_per_node: Annotated[int, Field(ge=0, le=16)] = 0
    """GPUs in one node of this pool: 1 to 16 in a GPU pool; 0 (or absent) in a CPU pool."""
    price_per_node_hour: Annotated[float, Field(gt=0, le=MAX_PRICE_PER_HOUR)]
    """What one node costs per hour, in planner.yaml's currency."""
    max_nodes: Annotated[int, Field(ge=1, le=MAX_NODES)]
    """The most nodes the pool may grow to."""
    instance_type: LabelValue
    """The cloud instance type of the pool's nodes, described under `instance_types`: its
    NodePool pins them to it, and its NodeOverlay declares the GPU resources of that type."""
    node_class: PoolNodeClass | None = None
    """This pool's own node class; absent: the cluster's."""
    max_models_per_gpu: Annotated[int, Field(ge=1, le=MAX_MODELS_PER_GPU)] | None = None
    """Replicas per GPU at most in this pool; absent: the policy's."""
    labels: dict[LabelKey, LabelValue] = {}
    """Node labels selecting the pool's nodes, written to its NodePool."""
    taints: list[Taint] = []
    """Taints on the pool's nodes; its replicas get matching tolerations."""
    capacity_type: CapacityType = "on-demand"
    """`spot` nodes may be reclaimed by the cloud: only models of the policy's
    `spot_priorities` go there; the NodePool asks Karpenter for this capacity type."""
    list_price_per_node_hour: Annotated[float, Field(gt=0, le=MAX_PRICE_PER_HOUR)] | None = None
    """The public on-demand price when `price_per_node_hour` is a lower rate (spot, a savings
    plan, a reservation); the cost report shows both (ListCost and EffectiveCost)."""
    spot: SpotOffer | None = None
    """The pool's instance type also offered as spot capacity, at its own price: the plan may
    buy nodes of both capacity types, spot ones only for the policy's `spot_priorities`; each
    capacity type gets a NodePool of its own."""
    other_shapes: list[NodeShape] = []
    """Further node shapes (instance types of the same GPU type) the pool may buy besides
    `instance_type`; the plan chooses how many nodes of each its replicas need, and a model's
    replicas may span shapes (the spread and conflict rules count per node, whatever its
    shape)."""
    zones: Annotated[list[Name], Field(max_length=MAX_ZONES)] = []
    """The zones (`topology.kubernetes.io/zone` values) the pool's nodes may run in. Given,
    the plan puts each node in one of them, spreading each model's replicas over them as
    `spread.zone_max_skew` asks, and the pool gets a NodePool per zone it uses; absent: one
    NodePool, and Karpenter picks the zones."""

    @model_validator(mode="after")
    def _zones_once(self) -> Pool:
        repeated = sorted({z for z in self.zones if self.zones.count(z) > 1})
        if repeated:
            raise ValueError(f"zones lists {', '.join(repeated)} more than once")
        return self

    @model_validator(mode="after")
    def _own_list_price_not_below(self) -> Pool:
        _check_prices(self.price_per_node_hour, self.list_price_per_node_hour,
                      self.capacity_type, self.spot)
        return self

    def declared_shapes(self) -> list[NodeShape]:
        """The node shapes the pool lists, its own `instance_type` first, each with its
        `max_nodes` filled in."""
        own = NodeShape(instance_type=self.instance_type, gpus_per_node=self.gpus_per_node,
                        price_per_node_hour=self.price_per_node_hour, max_nodes=self.max_nodes,
                        capacity_type=self.capacity_type,
                        list_price_per_node_hour=self.list_price_per_node_hour, spot=self.spot)
        return [own, *(s if s.max_nodes is not None else
                       s.model_copy(update={"max_nodes": self.max_nodes})
                       for s in self.other_shapes)]

    def shapes(self) -> list[NodeShape]:
        """Every node shape of the pool, its own `instance_type` first, each spot offer as a
        shape of its own right after its on-demand one."""
        result = []
        for shape in self.declared_shapes():
            result.append(shape)
            spot = shape.spot_shape()
            if spot is not None:
                result.append(spot)
        return result

    @property
    def several_shapes(self) -> bool:
        """Whether the pool buys nodes of more than one shape (instance or capacity type)."""
        return bool(self.other_shapes) or self.spot is not None

    @property
    def cpu_only(self) -> bool:
        """Whether the pool's nodes have no GPU."""
        return self.gpu_type is None

    @model_validator(mode="after")
    def _gpu_or_cpu_pool(self) -> Pool:
        if self.gpu_type is None and (self.sharing is not None or self.gpus_per_node):
            raise ValueError("a pool without gpu_type is a CPU pool: remove `sharing` and "
                             "`gpus_per_node`, or name its gpu_type")
        if self.gpu_type is not None and self.sharing is None:
            raise ValueError(f"a GPU pool ({self.gpu_type}) needs `sharing`: exclusive, "
                             "time-slicing, mps or mig")
        if self.gpu_type is not None and not self.gpus_per_node:
            raise ValueError(f"a GPU pool ({self.gpu_type}) needs `gpus_per_node`, 1 to 16")
        return self


class Cluster(Strict):
    node_class: NodeClassRef = Field(
        NodeClassRef(), description="the provider and default node class of every pool")
    gpu_types: dict[Name, GpuType]
    """GPU types by name (the name profile files are filed under)."""
    instance_types: dict[str, InstanceType] = {}
    """Instance types by name: CPU and host memory per node. Every pool's `instance_type`
    must be described here."""
    pools: list[Pool]
    """The node pools models are placed on."""
    sharing_backend: SharingBackend = "device-plugin"
    """What hands the pools' GPUs to pods. `device-plugin`: the GPU Operator's device plugin
    advertises GPUs, time-sliced or MPS replicas of them and MIG slices as extended resources,
    and picks which one a pod gets, so the plan's choice of GPU is not enforced. `dra`:
    Kubernetes Dynamic Resource Allocation with NVIDIA's DRA driver for GPUs (`gpu.nvidia.com`):
    each planned node of a pool that shares GPUs (time-slicing, MPS, MIG) is one ResourceClaim
    holding all of its GPUs, a request per GPU or MIG slice, which only the replicas planned on
    it use, so each replica runs on its planned GPU and node; exclusive pools get whole GPUs
    from ResourceClaimTemplates. Needs `kubernetes_version` 1.34 or later
    (`resource.k8s.io/v1`).
    A pod may use only claims of its own namespace, so under `dra` the models of a pool that
    shares GPUs run in the pool's namespace (`namespace_prefix` + pool), each a Deployment per
    planned GPU, and `--target kserve` is refused. The driver needs its `TimeSlicingSettings`
    and `MPSSupport` feature gates on; Karpenter does not yet provision nodes for pods with
    resource claims, so the pools' nodes must exist.
    """

    def node_class_of(self, pool: Pool) -> NodeClassRef:
        """The node class that provisions `pool`'s nodes: its own name, the cluster's provider."""
        if pool.node_class is None:
            return self.node_class
        return self.node_class.model_copy(update={"name": pool.node_class.name})


# --- policy.yaml ------------------------------------------------------------------------------


class Selector(Strict):
    """Matches models by label, priority, serving profile or team; an absent key matches all."""

    model_tier: list[ModelTier] | None = Field(None, alias="model-tier")
    """Matches these `labels.model-tier` values."""
    latency_class: list[LatencyClass] | None = Field(None, alias="latency-class")
    """Matches these `labels.latency-class` values."""
    gpu_sharing: list[GpuSharing] | None = Field(None, alias="gpu-sharing")
    """Matches these `labels.gpu-sharing` values."""
    tenant_scope: list[TenantScope] | None = Field(None, alias="tenant-scope")
    """Matches these `labels.tenant-scope` values."""
    priority: list[Priority] | None = None
    """Matches these priorities."""
    serving_profile: list[ServingProfile] | None = None
    """Matches these serving profiles."""
    team: list[str] | None = None
    """Matches these teams."""

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
    """The rule's name, quoted in the plan's reasons."""
    pools: list[str]
    """Names of the pools (in cluster.yaml) this rule admits matching models to."""
    match: Selector = Selector()
    """Which models the rule admits; absent: all."""


class ConflictRule(Strict):
    """Keeps models apart on one GPU or one node.

    `between: [A, B]` keeps models matching A away from models matching B;
    `separate_teams: S` keeps models matching S away from models of any other team.
    """

    name: Name
    """The rule's name, quoted in explanations."""
    scope: Literal["gpu", "node"]
    """Where the models are kept apart: on one GPU or on one node."""
    between: tuple[Selector, Selector] | None = None
    """Two selectors: models matching the first never share with models matching the second."""
    separate_teams: Selector | None = None
    """Models matching this never share with another team's models."""

    @model_validator(mode="after")
    def _one_kind(self) -> ConflictRule:
        if (self.between is None) == (self.separate_teams is None):
            raise ValueError("give exactly one of `between` or `separate_teams`")
        return self


class PriorityClass(Strict):
    value: Annotated[int, Field(ge=0, le=1_000_000_000)]
    """The Kubernetes PriorityClass value; higher is more important."""
    preemption: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"
    """Whether pods of this priority preempt lower ones."""
    description: str = ""
    """Written into the PriorityClass."""


class Spread(Strict):
    max_node_share: Annotated[float, Field(ge=0.01, le=1)] = 0.5
    """The largest fraction of one model's replicas one node may hold, rounded down and at
    least one (5 replicas x 0.5: 2 per node); a model with one replica is not spread. With 0.5,
    a model of 2 replicas needs 2 nodes: on pools of large nodes that can leave most of a node
    idle (summary.md prices the idle capacity per pool)."""
    zone_max_skew: Annotated[int, Field(ge=1)] | None = None
    """When set, a model's replicas spread over zones (`topology.kubernetes.io/zone`): the
    scheduler places a pod only where its zone then holds at most this many more of the
    model's replicas than the emptiest zone (DoNotSchedule). In pools that list their
    `zones`, the plan puts each node in a zone so that every model's replicas hold this skew;
    elsewhere Karpenter launches nodes in the zones this needs, and the plan's node count
    assumes they fit."""


class LazyCache(Strict):
    """How a pool's cache of lazily loaded models is sized: it holds the models active at once
    in the busiest hour of the day, but for a small chance of more."""

    active_window_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    """A lazily loaded model counts as active for this long after each of its requests, so
    a model with a request every few minutes stays loaded."""
    overflow_probability: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """The chance, in the busiest hour, that more models are active than the cache holds
    (then the least recently used one is evicted)."""
    reserve: bool | None = None
    """Absent: reserve each cache a multi-model server serves (its members run on Triton,
    `serving.engine: triton`, and each names its `serving.model_repository`): the manifests run
    its servers, packed in place of the members' own pods, as a KServe ModelMesh
    ServingRuntime that loads each member on its first request (every repository in
    storage), else as Triton servers with explicit model control. `true`: reserve every
    cache, those without such a server for a serving stack deployed beside the planner's
    manifests. `false`: reserve none; the members keep their own replicas, and the plan
    states what each cache would hold and cost."""
    triton_image: Annotated[str, Field(min_length=1, max_length=512)] = \
        "nvcr.io/nvidia/tritonserver:25.10-py3"
    """The image of the Triton servers that hold the reserved caches (under KServe ModelMesh
    too)."""


class Policy(Strict):
    memory_headroom: Annotated[float, Field(ge=0, le=0.9)] = 0.1
    """Fraction of every GPU's memory kept free."""
    target_utilization: Annotated[float, Field(ge=0.01, le=1)] = 0.8
    """Fraction of a GPU's compute time planned at most; replicas are sized for it."""
    max_models_per_gpu: Annotated[int, Field(ge=1, le=MAX_MODELS_PER_GPU)] = 8
    """Replicas per GPU at most, unless a pool sets its own."""
    spread: Spread = Spread()
    """How a model's replicas spread over nodes."""
    lazy_cache: LazyCache = LazyCache()
    """How the cache that lazily loaded models share in a time-sliced pool is sized."""
    priorities: dict[Priority, PriorityClass]
    """The PriorityClass of each priority; all four (production, internal, batch, experimental) are
    required.
    """
    admission: list[AdmissionRule]
    """Which models each pool admits; a model no rule admits is an error."""
    conflicts: list[ConflictRule] = []
    """Classes of models kept apart on a GPU or node."""
    spot_priorities: list[Priority] = ["batch", "experimental"]
    """The priorities whose models may run on spot nodes (`capacity_type: spot`), which the
    cloud may reclaim at short notice; the others only on on-demand nodes."""
