"""The lazy cache: lazily loaded models of a time-sliced pool share reserved GPU memory.

A lazily loaded model holds no GPU memory while idle; it is loaded on its first request and
evicted (least recently used first) when another needs the room. So instead of its own
replicas, each lazy model of a time-sliced pool joins that pool's cache: multi-model server
replicas (the cache's servers) that reserve room for the models active at once in the busiest
hour (`planner.rules.loading.active_at_once`), the largest of them by memory and compute. A
reserved cache is packed like any model and its members are placed where it is, with no pods
of their own; one not reserved leaves the members their replicas and is what they would need,
with its cost against theirs. By default (`lazy_cache.reserve` absent) a cache is reserved
where a multi-model server holds it: its members run on Triton and name their model
repositories, so the manifests run the cache's servers as a KServe ModelMesh ServingRuntime
that loads each member on its first request (`reports.modelmesh`; repositories in object
storage), or as Triton with explicit model control (`reports.cache_server`; a repository
folder in the image, loaded by whatever routes the requests). A ModelMesh runtime pod is
packed with the containers its controller adds. `reserve: true` reserves every cache (for a
server deployed beside the manifests), `false` none.

A lazy model stays out of every cache, its replicas reserved like a warm model's, where no
pool that admits it time-slices its GPUs (an exclusive, MIG or MPS pool gives each pod a device
or a fixed share of its own, so a shared server cannot lend its memory), where the cluster
hands GPUs out by DRA claims (each replica's claim names its GPU), or where its replicas
together exceed one GPU. A server runs one serving engine and never holds both sides of a
conflict rule, so models of different engines, or in conflict, get caches of their own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Literal

from planner import k8s_names
from planner.demand.derive import Demand
from planner.registry.fleet import Fleet
from planner.registry.kubernetes import kserve_name_problem
from planner.rules import modelmesh
from planner.rules.capacity import gpu_capacity
from planner.rules.conflicts import conflict_classes
from planner.rules.loading import active_at_once, active_probability, auto_loading
from planner.schemas import GpuType
from planner.traffic import hourly_rps
from profiles.schema import CPU_DEVICE

CACHE_SUFFIX = "lazy-cache"


@dataclass(frozen=True)
class Cache:
    """One pool's cache of lazily loaded models: `servers` replicas of `memory_mib` and
    `compute_milli` each, holding `slots` of its members at once."""

    name: str
    pool: str
    members: tuple[Demand, ...]
    slots: int
    expected_active: float  # models active on average in the busiest hour
    busiest_hour: int  # UTC
    servers: int
    memory_mib: int  # per server
    compute_milli: int  # per server
    cpu_milli: int  # per server pod
    host_memory_mib: int  # per server pod
    classes: frozenset[str]
    priority: int
    server: Literal["modelmesh", "triton"] | None = None  # the manifests' multi-model server
    unserved: str = ""  # why no multi-model server holds it
    reserved: bool = False  # packed in place of its members' replicas


@dataclass(frozen=True)
class CachePlan:
    """Demands left to pack one by one, the caches, and why a lazy model has no cache."""

    demands: dict[str, list[Demand]]
    caches: tuple[Cache, ...]
    uncached: dict[str, str]

    @property
    def reserved(self) -> tuple[Cache, ...]:
        """The caches packed in place of their members' replicas."""
        return tuple(c for c in self.caches if c.reserved)

    def loading(self, fleet: Fleet, demand: Demand) -> tuple[str, str | None]:
        """The model's loading in its pool, and why for `auto`: lazy only where it joins a
        cache, since lazy with replicas of its own costs what warm does and adds cold starts."""
        policy, why = loading_choice(fleet, demand.model, demand.pool)
        if policy == "lazy" and demand.model in self.uncached and \
                fleet.models[demand.model].loading.policy == "auto":
            return "warm", (f"loading auto: warm, lazy would save nothing: "
                            f"{self.uncached[demand.model]}")
        return policy, why


def loading_choice(fleet: Fleet, model_name: str, pool_name: str) -> tuple[str, str | None]:
    """The model's loading in `pool_name` (`auto` decided on its GPU type), and for `auto`
    why."""
    model = fleet.models[model_name]
    if model.loading.policy != "auto":
        return model.loading.policy, None
    profile = fleet.profiles.get((model.name, fleet.pool(pool_name).gpu_type or CPU_DEVICE))
    policy, why = auto_loading(model, None if profile is None else profile.load_time_s)
    return policy, f"loading auto: {policy}, {why}"


def warm_share(gpu: GpuType, demand: Demand) -> float:
    """The GPUs' worth a lazy model's own replicas pay for when warm: on a shared GPU, each
    replica the larger of its memory and compute share (the cost rule)."""
    return demand.replicas * max(demand.memory_mib / gpu.memory_mib,
                                 demand.compute_milli / 1000)


def server_share(gpu: GpuType, cache: Cache) -> float:
    """The share of one GPU a cache's server pays for, by the same rule."""
    return max(cache.memory_mib / gpu.memory_mib, cache.compute_milli / 1000)


def _warm_share(fleet: Fleet, demand: Demand) -> float:
    return warm_share(fleet.cluster.gpu_types[str(fleet.pool(demand.pool).gpu_type)], demand)


def _cacheable(fleet: Fleet, options: list[Demand]) -> Demand | str:
    """The demand in the pool whose cache the lazy model joins (the cheapest time-sliced
    one), or why none can hold it."""
    if fleet.cluster.sharing_backend == "dra":
        return ("under DRA each replica holds the GPU its claim names, so no cache server "
                "can lend it memory")
    shared = [d for d in options if fleet.pool(d.pool).sharing == "time-slicing"
              and not d.whole_gpus]
    if not shared:
        return "no time-sliced pool admits it, so no cache can lend it memory"
    fitting = []
    for d in shared:
        pool = fleet.pool(d.pool)
        memory_cap, compute_cap, _ = gpu_capacity(
            fleet.cluster.gpu_types[str(pool.gpu_type)].memory_mib, pool, fleet.policy)
        if d.replicas * d.memory_mib <= memory_cap and d.replicas * d.compute_milli <= compute_cap:
            fitting.append(d)
    if not fitting:
        return "its replicas together exceed one GPU, more than one cache server holds"
    return min(fitting, key=lambda d: (_warm_share(fleet, d) * fleet.pool(d.pool)
                                       .price_per_node_hour / fleet.pool(d.pool).gpus_per_node,
                                       d.pool))


def _largest(values: list[int], count: int) -> int:
    return sum(sorted(values, reverse=True)[:count])


def _size(fleet: Fleet, name: str, pool_name: str, members: list[Demand],
          classes: frozenset[str]) -> Cache:
    """The cache of `members` in `pool_name`, sized for the busiest hour."""
    policy = fleet.policy
    settings = policy.lazy_cache
    rates = {d.model: hourly_rps(fleet.models[d.model].traffic) for d in members}
    by_hour = [[active_probability(rates[d.model][hour], settings.active_window_s)
                for d in members] for hour in range(len(next(iter(rates.values()))))]
    busiest = max(range(len(by_hour)), key=lambda hour: (sum(r[hour] for r in rates.values()),
                                                          -hour))
    slots = max(active_at_once(p, settings.overflow_probability) for p in by_hour)
    pool = fleet.pool(pool_name)
    memory_cap, compute_cap, _ = gpu_capacity(
        fleet.cluster.gpu_types[str(pool.gpu_type)].memory_mib, pool, policy)
    memory = [d.replicas * d.memory_mib for d in members]
    compute = [d.replicas * d.compute_milli for d in members]
    memory_total, compute_total = _largest(memory, slots), _largest(compute, slots)
    servers = max(1, math.ceil(memory_total / memory_cap), math.ceil(compute_total / compute_cap))
    return Cache(
        name=name, pool=pool_name, members=tuple(members), slots=slots,
        expected_active=round(sum(by_hour[busiest]), 3), busiest_hour=busiest, servers=servers,
        memory_mib=max(math.ceil(memory_total / servers), max(memory)),
        compute_milli=min(compute_cap, max(math.ceil(compute_total / servers), max(compute))),
        cpu_milli=max(d.cpu_milli for d in members),
        host_memory_mib=math.ceil(_largest([d.host_memory_mib for d in members], slots)
                                  / servers),
        classes=classes,
        priority=max(policy.priorities[fleet.models[d.model].priority].value for d in members))


def _engine(fleet: Fleet, demand: Demand) -> str:
    return fleet.models[demand.model].serving.engine or ""


def multi_model_server(fleet: Fleet, name: str, members: list[Demand]
                       ) -> tuple[Literal["modelmesh", "triton"] | None, str]:
    """The multi-model server the manifests run for the cache `name` of `members` (one
    engine), or None and why none. Members on Triton that name their
    `serving.model_repository` in object storage are served by KServe ModelMesh
    (`modelmesh`), which loads a model into a pod on its first request and evicts the least
    recently used; with a repository folder in the server's image, which ModelMesh cannot pull
    from (or a member named as no InferenceService may be), by Triton with explicit model
    control (`triton`), into which whatever routes the requests must load each model. The
    other engines serve the one model their pod starts with. The servers take the cache's
    name with a dash for its slash, which must be a Service's name and no model's."""
    workload = k8s_names.slashes_as_dashes(name)
    problem = k8s_names.dns1035_label_problem(workload)
    if problem is not None or workload in fleet.models:
        return None, (f"its servers' name '{workload}' is "
                      f"{problem or 'a model name'}, which a Service cannot take")
    engine = _engine(fleet, members[0])
    if engine != "triton":
        return None, (f"its models run on {engine or 'no named engine'}, and only Triton "
                      "(through KServe ModelMesh, or with explicit model control) loads "
                      "models into a shared server here")
    repositories = {d.model: fleet.models[d.model].serving.model_repository for d in members}
    missing = [model for model, repository in repositories.items() if repository is None]
    if missing:
        return None, (f"{', '.join(missing)} name{'s' if len(missing) == 1 else ''} no "
                      "serving.model_repository for a Triton server to load from")
    return ("triton" if not_modelmesh(fleet, members) else "modelmesh"), ""


def not_modelmesh(fleet: Fleet, members: list[Demand] | tuple[Demand, ...]) -> str | None:
    """Why KServe ModelMesh cannot hold a cache of Triton members that name their
    repositories, if it cannot: it pulls from storage only, and each member is an
    InferenceService, whose name KServe's webhook checks."""
    for demand in members:
        repository = str(fleet.models[demand.model].serving.model_repository)
        if modelmesh.storage_uri(repository, demand.model) is None:
            return (f"{demand.model}'s model repository {repository} is a folder in the "
                    "server's image, which ModelMesh cannot pull from")
        if (problem := kserve_name_problem(demand.model)) is not None:
            return f"{demand.model} {problem}, so it cannot be an InferenceService"
    return None


def _clash(classes: set[str], conflicts: list[tuple[str, str]]) -> bool:
    return any(a in classes and b in classes for a, b in conflicts)


def plan_caches(fleet: Fleet, demands: dict[str, list[Demand]]) -> CachePlan:
    """Take every cacheable lazy model out of `demands` into its pool's cache (a second one
    where its conflict classes clash with the first's members, and so on)."""
    classes, class_conflicts = conflict_classes(fleet.policy, fleet.models)
    conflicts = [(c.a, c.b) for c in class_conflicts]
    by_pool: dict[str, list[Demand]] = defaultdict(list)
    uncached: dict[str, str] = {}
    for name, options in demands.items():
        if not options:
            continue
        lazy = [d for d in options if loading_choice(fleet, name, d.pool)[0] == "lazy"]
        if not lazy:
            continue
        choice = _cacheable(fleet, lazy)
        if isinstance(choice, str):
            uncached[name] = choice
            continue
        by_pool[choice.pool].append(choice)
    caches = []
    for pool in fleet.cluster.pools:
        if pool.gpu_type is None:
            continue  # a CPU pool: caches share GPUs, and it has none
        # one server runs one engine and never both sides of a conflict
        groups: list[tuple[str, set[str], list[Demand]]] = []
        for demand in sorted(by_pool[pool.name], key=lambda d: (_engine(fleet, d), d.model)):
            engine, own = _engine(fleet, demand), set(classes[demand.model])
            group = next((g for g in groups
                          if g[0] == engine and not _clash(g[1] | own, conflicts)), None)
            if group is None:
                groups.append((engine, own, [demand]))
            else:
                group[1].update(own)
                group[2].append(demand)
        gpu = fleet.cluster.gpu_types[pool.gpu_type]
        kept = 0
        for engine, union, members in groups:
            if len(members) == 1:
                uncached[members[0].model] = (
                    f"no other lazy model of {pool.name} runs on its engine "
                    f"({engine or 'none named'}) without a conflict, so a cache would hold it "
                    "alone")
                continue
            # a slash keeps the name apart from every model's (DNS labels have none)
            name = f"{pool.name}/{CACHE_SUFFIX}" + (f"-{kept}" if kept else "")
            cache = _size(fleet, name, pool.name, members, frozenset(union))
            warm = sum(warm_share(gpu, d) for d in members)
            shared = cache.servers * server_share(gpu, cache)
            if shared <= warm:
                server, unserved = multi_model_server(fleet, name, members)
                if server == "modelmesh":  # the runtime pod's containers, as packed
                    cache = replace(cache, cpu_milli=modelmesh.pod_cpu_milli(cache.cpu_milli),
                                    host_memory_mib=modelmesh.pod_memory_mib(
                                        cache.memory_mib, cache.host_memory_mib))
                reserve = fleet.policy.lazy_cache.reserve
                caches.append(replace(cache, server=server, unserved=unserved,
                                      reserved=server is not None if reserve is None
                                      else reserve))
                kept += 1
                continue
            for d in members:
                uncached[d.model] = (
                    f"a cache in {pool.name} for {', '.join(m.model for m in members)} would "
                    f"take {cache.servers} servers of {cache.memory_mib} MiB and "
                    f"{cache.compute_milli} milli-GPU, {shared:.3g} GPUs' worth against "
                    f"{warm:.3g} for their own replicas")
    in_cache = {d.model for cache in caches if cache.reserved for d in cache.members}
    return CachePlan(demands={n: o for n, o in demands.items() if n not in in_cache},
                     caches=tuple(caches), uncached=uncached)
