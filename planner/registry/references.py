"""Rules that span files: names, references between files, profiles, admission, limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.errors import Problem
from planner.registry.kubernetes import batch_name_problems
from planner.registry.messages import suggestion
from planner.registry.yamlsource import YamlDocument, format_loc
from planner.rules.admission import admits_production_into_low_priority, admitting_pools
from planner.rules.autoscaling import autoscaler_problems
from planner.rules.batch import batch_problems
from planner.rules.conflicts import both_sides
from planner.rules.fit import (
    host_memory_misfit,
    kind_misfit,
    least_memory_mib,
    misfit,
    node_misfit,
)
from planner.rules.llm import gpu_spec, llm_misfit
from planner.rules.loading import fastest_load_s, lazy_problem
from planner.rules.mig import slice_gpu_types
from planner.rules.slo import fastest_on_pool, meets_slo
from planner.schemas import LLM_ENGINES, PRIORITIES, Cluster, ModelSpec, Policy, Pool
from profiles.schema import CPU_DEVICE, Profile


@dataclass(frozen=True)
class Parsed:
    """The files of a registry that passed their own schema, with their line tables."""

    root: Path
    models: dict[str, ModelSpec]
    documents: dict[str, YamlDocument]
    model_stems: set[str]
    profiles: dict[tuple[str, str], Profile]
    profile_docs: dict[tuple[str, str], YamlDocument]
    cluster: Cluster
    cluster_doc: YamlDocument
    policy: Policy
    policy_doc: YamlDocument


def _at(doc: YamlDocument, loc: tuple, message: str, *, policy: bool = False) -> Problem:
    return Problem(doc.path, doc.line_of(loc), format_loc(loc) or None, message, policy)


def _listed(names: list[str], limit: int = 5) -> str:
    """`a, b, c` or `a, b, c, d, e and 7 more`."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _pools_using(p: Parsed, gpu_type: str) -> list[int]:
    return [i for i, pool in enumerate(p.cluster.pools) if pool.gpu_type == gpu_type]


def _cluster_problems(p: Parsed, stranded: dict[str, list[str]]) -> list[Problem]:
    """The cluster's own rules; one problem per unknown GPU type, however many pools use it,
    with the models it leaves without a profile to plan from (`stranded`)."""
    problems = []
    seen: set[str] = set()
    reported: set[str] = set()
    for i, pool in enumerate(p.cluster.pools):
        if pool.instance_type and pool.instance_type not in p.cluster.instance_types:
            problems.append(_at(p.cluster_doc, ("pools", i, "instance_type"),
                                f"instance type '{pool.instance_type}' is not described"
                                f"{suggestion(pool.instance_type, list(p.cluster.instance_types))}"
                                "; add it under instance_types with its cpu_milli, memory_mib "
                                "and reserved, so that pods are packed by CPU and host memory"))
        shapes_seen = {pool.instance_type}
        if pool.other_shapes and pool.sharing == "mig":
            problems.append(_at(p.cluster_doc, ("pools", i, "other_shapes"),
                                "a MIG pool has one node shape (its NodePools follow the MIG "
                                "layouts of its nodes); make each shape a pool of its own"))
        spot_offers: list[tuple[str | int, ...]] = [("pools", i, "spot")] if pool.spot else []
        spot_offers += [("pools", i, "other_shapes", k, "spot")
                        for k, shape in enumerate(pool.other_shapes) if shape.spot]
        if spot_offers and pool.sharing == "mig":
            problems.append(_at(p.cluster_doc, spot_offers[0],
                                "a MIG pool has one node shape (its NodePools follow the MIG "
                                "layouts of its nodes); make its spot capacity a pool of its "
                                "own"))
        for k, shape in enumerate(pool.other_shapes):
            where = ("pools", i, "other_shapes", k, "instance_type")
            if shape.instance_type in shapes_seen:
                problems.append(_at(p.cluster_doc, where,
                                    f"instance type '{shape.instance_type}' is already a shape "
                                    f"of pool '{pool.name}'; list each instance type once (a "
                                    "`spot` offer buys it as spot capacity too)"))
            elif shape.instance_type not in p.cluster.instance_types:
                known = list(p.cluster.instance_types)
                problems.append(_at(p.cluster_doc, where,
                                    f"instance type '{shape.instance_type}' is not described"
                                    f"{suggestion(shape.instance_type, known)}"
                                    "; add it under instance_types with its cpu_milli, "
                                    "memory_mib and reserved"))
            shapes_seen.add(shape.instance_type)
        if pool.name in seen:
            problems.append(_at(p.cluster_doc, ("pools", i, "name"),
                                f"duplicate pool '{pool.name}'; pool names must be unique"))
        seen.add(pool.name)
        if pool.gpu_type is None:
            continue  # a CPU pool
        gpu = p.cluster.gpu_types.get(pool.gpu_type)
        if gpu is None and pool.gpu_type not in reported:
            reported.add(pool.gpu_type)
            users = [p.cluster.pools[j].name for j in _pools_using(p, pool.gpu_type)]
            more = f"; used by pools {_listed(users)}" if len(users) > 1 else ""
            models = stranded.get(pool.gpu_type, [])
            left = (f"; {len(models)} model(s) admitted only there have no profile to plan "
                    f"from until it is fixed: {_listed(models)}") if models else ""
            problems.append(_at(p.cluster_doc, ("pools", i, "gpu_type"),
                                f"unknown GPU type '{pool.gpu_type}'"
                                f"{suggestion(pool.gpu_type, list(p.cluster.gpu_types))}; "
                                f"define it under gpu_types{more}{left}"))
        elif gpu is not None and pool.sharing == "mig" and not gpu.mig_layouts:
            problems.append(_at(p.cluster_doc, ("pools", i, "sharing"),
                                f"pool uses MIG but GPU type '{pool.gpu_type}' lists no "
                                "mig_layouts; add them or choose another sharing mode"))
    return problems


def unknown_pools(p: Parsed) -> dict[str, list[tuple[int, int]]]:
    """Pool names the admission rules use that cluster.yaml does not define, with every
    (rule, position) that uses each."""
    pools = {pool.name for pool in p.cluster.pools}
    unknown: dict[str, list[tuple[int, int]]] = {}
    for i, rule in enumerate(p.policy.admission):
        for j, name in enumerate(rule.pools):
            if name not in pools:
                unknown.setdefault(name, []).append((i, j))
    return unknown


def _policy_problems(p: Parsed, stranded: dict[str, list[str]]) -> list[Problem]:
    """The policy's own rules; one problem per unknown pool name, wherever it is used, with
    the models it leaves without a pool (`stranded`)."""
    problems = []
    pools = {pool.name: pool for pool in p.cluster.pools}
    for name, uses in unknown_pools(p).items():
        i, j = uses[0]
        rules = [f"{p.policy.admission[r].name} (line "
                 f"{p.policy_doc.line_of(('admission', r, 'pools', k))})" for r, k in uses]
        used = f"; used by admission rules {', '.join(rules)}" if len(uses) > 1 else ""
        models = stranded.get(name, [])
        left = (f"; {len(models)} model(s) no other pool admits: {_listed(models)}"
                if models else "")
        problems.append(_at(p.policy_doc, ("admission", i, "pools", j),
                            f"unknown pool '{name}'{suggestion(name, list(pools))}; cluster.yaml "
                            f"defines {', '.join(pools) or 'no pools'}{used}{left}"))
    missing = [name for name in PRIORITIES if name not in p.policy.priorities]
    if missing:
        problems.append(_at(p.policy_doc, ("priorities",),
                            f"no priority class for {', '.join(missing)}; define one per priority"))
    for i, rule in enumerate(p.policy.admission):
        for name in rule.pools:
            pool = pools.get(name)
            if pool is not None and admits_production_into_low_priority(rule, pool):
                problems.append(_at(p.policy_doc, ("admission", i, "match", "priority"),
                                    f"rule admits production models into low-priority pool "
                                    f"'{name}'; list the priorities it admits without production"))
    return problems


def _limit_problems(doc: YamlDocument, m: ModelSpec) -> list[Problem]:
    problems = []
    if m.limits.max_concurrency > m.limits.queue_limit:
        problems.append(_at(doc, ("limits", "max_concurrency"),
                            f"max_concurrency ({m.limits.max_concurrency}) exceeds queue_limit "
                            f"({m.limits.queue_limit}); the queue must hold at least the requests "
                            "in flight, so raise queue_limit or lower max_concurrency"))
    if m.limits.timeout_ms < m.slo.p99_ms:
        problems.append(_at(doc, ("limits", "timeout_ms"),
                            f"timeout_ms ({m.limits.timeout_ms}) is below slo.p99_ms "
                            f"({m.slo.p99_ms:g}); requests would time out inside the SLO"))
    if m.traffic.mean_rps is not None and m.traffic.mean_rps > m.traffic.peak_rps:
        problems.append(_at(doc, ("traffic", "mean_rps"),
                            f"mean_rps ({m.traffic.mean_rps:g}) exceeds peak_rps "
                            f"({m.traffic.peak_rps:g})"))
    if m.replicas.max is not None and m.replicas.max < m.replicas.min:
        problems.append(_at(doc, ("replicas", "max"),
                            f"replicas.max ({m.replicas.max}) is below replicas.min "
                            f"({m.replicas.min})"))
    return problems


def _kind_problems(doc: YamlDocument, m: ModelSpec, admitting: list[Pool]) -> list[Problem]:
    """A CPU-only model admitted to GPU pools only, or a GPU model to CPU pools only."""
    if any(kind_misfit(m, pool) is None for pool in admitting):
        return []
    names = ", ".join(pool.name for pool in admitting)
    if m.cpu_only:
        message = (f"runs without a GPU (gpus_per_replica: 0), but the pools that admit it "
                   f"({names}) are GPU pools; admit it to a CPU pool (a pool without gpu_type) "
                   "in policy.yaml, or give it GPUs")
    else:
        message = (f"needs {m.gpus_per_replica} GPU(s) per replica, but the pools that admit "
                   f"it ({names}) are CPU pools (no gpu_type); admit it to a GPU pool in "
                   "policy.yaml, or set gpus_per_replica: 0 to run it on CPU")
    return [_at(doc, ("gpus_per_replica",), message)]


def _host_memory_problems(p: Parsed, doc: YamlDocument, m: ModelSpec) -> list[Problem]:
    """A CPU-only model whose least host memory (measured, or stated) exceeds its pod's
    memory request would be killed for it: an input error."""
    least = least_memory_mib(m, p.profiles.get((m.name, CPU_DEVICE)))
    over = None if least is None else host_memory_misfit(m, least)
    if over is None:
        return []
    what = "stated in resources.memory_mib" if m.resources is not None else \
        f"the least the CPU profile measured ({CPU_DEVICE}.yaml)"
    return [_at(doc, ("serving", "host_memory_mib"),
                f"a replica needs {over} ({what}); raise serving.host_memory_mib")]


def _fit_problems(p: Parsed, doc: YamlDocument, m: ModelSpec,
                  admitting: list[Pool]) -> list[Problem]:
    """A replica that fits no admitting pool (CPU or GPU pool, GPUs per node, CPU and host
    memory per node, memory per GPU) can never be placed: an input error, not an unplaced
    model."""
    kind = _kind_problems(doc, m, admitting)
    if kind:
        return kind
    admitting = [pool for pool in admitting if kind_misfit(m, pool) is None
                 and (pool.gpu_type is None or pool.gpu_type in p.cluster.gpu_types)]
    if not admitting:
        return []  # the unknown GPU type is reported on its own
    nodes = [pool for pool in admitting if m.gpus_per_replica <= pool.gpus_per_node]
    if not nodes:
        largest = max(pool.gpus_per_node for pool in admitting)
        names = ", ".join(pool.name for pool in admitting)
        return [_at(doc, ("gpus_per_replica",),
                    f"{m.gpus_per_replica} GPUs per replica, but the nodes of the pools that "
                    f"admit it ({names}) have at most {largest}; lower it or admit the model "
                    "to a pool with larger nodes")]
    hosts = [pool for pool in nodes if node_misfit(m, p.cluster, pool) is None]
    if not hosts:
        too_small = "; ".join(str(node_misfit(m, p.cluster, pool)) for pool in nodes)
        field = "cpu_milli" if "CPU" in too_small else "host_memory_mib"
        return [_at(doc, ("serving", field),
                    f"the pod fits no node of the pools that admit it: {too_small}; lower "
                    "serving.cpu_milli or serving.host_memory_mib, or admit the model to a pool "
                    "with larger nodes")]
    if m.cpu_only:
        return _host_memory_problems(p, doc, m)
    nodes = hosts
    if m.llm is not None:
        return _llm_fit_problems(p, doc, m, nodes)
    judged = [(pool, least) for pool in nodes
              if (least := least_memory_mib(m, p.profiles.get((m.name, str(pool.gpu_type)))))
              is not None]
    reasons = [why for pool, least in judged
               if (why := misfit(least, m.gpus_per_replica, p.cluster, pool, p.policy))]
    if not judged or len(reasons) < len(judged):
        return []
    if m.resources is not None:
        loc: tuple = ("resources", "memory_mib")
        what = f"stated memory of {m.resources.memory_mib} MiB"
    else:
        loc = ("gpus_per_replica",)
        what = "least memory any profile point measured"
    unprofiled = sorted({str(pool.gpu_type) for pool in nodes}
                        - {str(pool.gpu_type) for pool, _ in judged})
    other = f", or profile it on {' or '.join(unprofiled)}" if unprofiled else ""
    return [_at(doc, loc, f"one replica fits no pool that admits it: with the {what} over "
                f"{m.gpus_per_replica} GPU(s), {'; '.join(reasons)}; raise gpus_per_replica, "
                f"or admit the model to a pool with larger GPUs{other}")]


def _slo_problems(p: Parsed, doc: YamlDocument, m: ModelSpec,
                  admitting: list[Pool]) -> list[Problem]:
    """An SLO below the fastest p99 that every profiled pool admitting the model could give
    (`planner.rules.slo`) can never be met: an input error. When some pool could meet it, the
    plan says why the others cannot (and why that pool did not take it, if it is full)."""
    known = [pool for pool in admitting if kind_misfit(m, pool) is None
             and (pool.gpu_type is None or pool.gpu_type in p.cluster.gpu_types)]
    fastest = [f for pool in known
               for f in fastest_on_pool(m, pool, p.cluster, p.policy, p.profiles)]
    if not fastest or any(meets_slo(f, m) for f in fastest) \
            or all(f.point is None for f in fastest):
        return []
    judged = {f.pool for f in fastest}
    unprofiled = sorted({pool.gpu_type or CPU_DEVICE for pool in known
                         if pool.name not in judged})
    other = f", or profile it on {' or '.join(unprofiled)}" if unprofiled else ""
    return [_at(doc, ("slo", "p99_ms"),
                f"no pool that admits the model can meet the SLO of {m.slo.p99_ms:g} ms: the "
                "lowest p99 of a stable point within max_concurrency whose memory fits is "
                f"{'; '.join(f.describe() for f in fastest)}; raise slo.p99_ms, or admit the "
                f"model to a pool with faster {'nodes' if m.cpu_only else 'GPUs'}{other}")]


def _llm_fit_problems(p: Parsed, doc: YamlDocument, m: ModelSpec,
                      nodes: list[Pool]) -> list[Problem]:
    """An LLM whose longest context fits no configuration of any admitting pool, even as one
    sequence at the largest TP degree and the smallest precision allowed, can never run."""
    assert m.llm is not None
    if m.llm.architecture is None:
        return []  # its config.json is reported on its own
    reasons = [why for pool in nodes if (why := llm_misfit(m, p.cluster, pool, p.policy))]
    if len(reasons) < len(nodes):
        return []
    return [_at(doc, ("llm", "max_context_tokens"),
                f"no configuration fits a pool that admits it: {'; '.join(reasons)}; lower "
                "max_context_tokens, allow more llm.tensor_parallel degrees or a smaller "
                "precision (fp8, int4), or admit the model to a pool with larger GPUs")]


def _llm_kind_problems(doc: YamlDocument, m: ModelSpec) -> list[Problem]:
    """What an `llm` model may not say: the planner chooses its GPUs per replica (the TP
    degree) and sizes it from its architecture, and its engine takes the planned flags."""
    problems = []
    if "gpus_per_replica" in m.model_fields_set:
        problems.append(_at(doc, ("gpus_per_replica",), "an `llm` model's GPUs per replica are "
                            "its tensor-parallel degree, which the planner chooses: remove "
                            "gpus_per_replica and list the allowed degrees under "
                            "llm.tensor_parallel"))
    if m.serving.engine not in LLM_ENGINES:
        problems.append(_at(doc, ("serving", "engine") if m.serving.engine else ("serving",),
                            f"an `llm` model needs serving.engine {', '.join(LLM_ENGINES)}: "
                            "the manifests pass it the planned flags"))
    if m.resources is not None:
        problems.append(_at(doc, ("resources",), "an `llm` model is sized from its "
                            "architecture and tokens; remove `resources`"))
    return problems


def _llm_estimable(doc: YamlDocument, gpu_types: list[str]) -> list[Problem]:
    """An LLM is estimated from the roofline of its pools' GPU types, so at least one of them
    needs datasheet figures."""
    if any(gpu_spec(g) is not None for g in gpu_types):
        return []
    return [_at(doc, ("llm",), f"no datasheet figures to estimate an LLM on GPU type "
                f"{' or '.join(gpu_types)}; the planner has them for l4, t4, a100-80gb and "
                "h100-80gb (name the GPU type so in cluster.yaml), or admit the model to a "
                "pool of one of them")]


def _stated_and_measured(p: Parsed, doc: YamlDocument, m: ModelSpec) -> list[Problem]:
    """Stated resources next to a measured profile: which one is meant is unclear, so it is an
    error; next to a reference profile (an estimate), the stated figures win."""
    measured = sorted(gpu for (name, gpu), profile in p.profiles.items()
                      if name == m.name and profile.method == "measured")
    if m.resources is None or not measured:
        return []
    files = ", ".join(str(p.profile_docs[(m.name, gpu)].path.relative_to(p.root))
                      for gpu in measured)
    return [_at(doc, ("resources",), f"states resources, but {files} measured the model; "
                "remove `resources` to plan from the measurement, or remove the profile")]


def _model_problems(p: Parsed, stranded_pool: dict[str, list[str]],
                    stranded_gpu: dict[str, list[str]]) -> list[Problem]:
    """Each model's own problems. A model left without a pool by an unknown pool name, or
    without a profile by an unknown GPU type, is listed in that one problem instead
    (`stranded_pool`, `stranded_gpu`, filled here), so one typo is one error."""
    problems = []
    unknown = unknown_pools(p)
    for name, m in p.models.items():
        doc = p.documents[name]
        if name != doc.path.stem:
            problems.append(_at(doc, ("name",), f"name '{name}' differs from the file name "
                                f"'{doc.path.stem}'; make them the same"))
            continue
        problems.extend(_limit_problems(doc, m))
        problems.extend(_at(doc, loc, message) for loc, message in batch_problems(m))
        problems.extend(_at(doc, loc, message) for loc, message in autoscaler_problems(m))
        if m.llm is not None:
            kind = _llm_kind_problems(doc, m)
            problems.extend(kind)
            if kind:
                continue
        admitting = admitting_pools(m, p.cluster, p.policy)
        named = [pool for rule in p.policy.admission if rule.match.matches(m)
                 for pool in rule.pools if pool in unknown]
        if not admitting and named:
            stranded_pool.setdefault(named[0], []).append(name)
            continue
        if not admitting:
            problems.append(_at(doc, ("labels",),
                                f"no pool admits this model (team {m.team}, priority {m.priority}, "
                                f"serving_profile {m.serving_profile}, labels "
                                f"{m.labels.as_dict()}); change its labels or add an admission "
                                "rule in policy.yaml", policy=True))
            continue
        problems.extend(_at(doc, ("name",), reason) for reason in batch_name_problems(
            m, p.cluster, [pool for pool, _ in admitting]))
        for rule in p.policy.conflicts:
            if both_sides(rule, m):
                problems.append(_at(doc, ("labels",), f"matches both sides of conflict rule "
                                    f"{rule.name}; narrow one side in policy.yaml"))
        fit = _fit_problems(p, doc, m, [pool for pool, _ in admitting])
        problems.extend(fit)
        problems.extend(_stated_and_measured(p, doc, m))
        if m.loading.policy == "lazy":
            load_s = fastest_load_s([prof for (owner, _), prof in p.profiles.items()
                                     if owner == name])
            reason = lazy_problem(m, load_s)
            if reason:
                problems.append(_at(doc, ("loading", "policy"), reason))
        if m.resources is not None or fit:
            continue
        problems.extend(_slo_problems(p, doc, m, [pool for pool, _ in admitting]))
        if m.cpu_only:
            if (name, CPU_DEVICE) not in p.profiles:
                problems.append(_at(doc, ("name",), (
                    f"no CPU profile (profiles/{name}/{CPU_DEVICE}.yaml) and no "
                    f"`resources`; measure it with `planner profile run {name} --registry "
                    f"{p.root} --device cpu`, or state resources: {{memory_mib, "
                    "throughput_rps}")))
            continue
        gpu_types = sorted({pool.gpu_type for pool, _ in admitting
                            if pool.gpu_type in p.cluster.gpu_types})
        profiled = [g for g in gpu_types if (name, g) in p.profiles]
        if not gpu_types:
            unknown_type = next(str(pool.gpu_type) for pool, _ in admitting
                                if pool.gpu_type is not None)
            stranded_gpu.setdefault(unknown_type, []).append(name)
        elif m.llm is not None:
            problems.extend(_llm_estimable(doc, gpu_types))
        elif not profiled:
            ref = f"{name} --registry {p.root}"
            problems.append(_at(doc, ("name",),
                                f"no profile for GPU type {' or '.join(gpu_types)} and no "
                                f"`resources`; measure it with `planner profile run {ref}` on "
                                f"that GPU (or `planner profile jobs {ref} --gpu-type "
                                f"{gpu_types[0]}` for the cluster), or state resources: "
                                "{memory_mib, throughput_rps}"))
    return problems


def _profile_problems(p: Parsed) -> list[Problem]:
    problems = []
    unknown_gpu: dict[str, list[str]] = {}
    known = set(p.cluster.gpu_types) | slice_gpu_types(p.cluster)
    for (folder, gpu_type), profile in p.profiles.items():
        if gpu_type != CPU_DEVICE and gpu_type not in known:
            unknown_gpu.setdefault(gpu_type, []).append(folder)
        doc = p.profile_docs[(folder, gpu_type)]
        if folder not in p.model_stems:
            problems.append(_at(doc, (), f"profile for unknown model '{folder}'"
                                f"{suggestion(folder, sorted(p.model_stems))}; "
                                "remove it or rename its folder"))
        if gpu_type == CPU_DEVICE:
            if profile.memory.kind != "host":
                problems.append(_at(doc, ("memory", "kind"), "a CPU profile's memory is host "
                                    "memory; set kind: host"))
        elif gpu_type not in known and unknown_gpu[gpu_type] == [folder]:
            others = unknown_gpu_files(p, gpu_type)
            more = (f"; {len(others) - 1} more profile(s) are filed under it: "
                    f"{_listed(others[1:])}") if len(others) > 1 else ""
            problems.append(_at(doc, (), f"profile for unknown GPU type '{gpu_type}'"
                                f"{suggestion(gpu_type, list(p.cluster.gpu_types))}; "
                                f"define it under gpu_types in cluster.yaml{more}"))
        if profile.model != folder:
            problems.append(_at(doc, ("model",), f"says model '{profile.model}' but lies in the "
                                f"folder of '{folder}'"))
        if profile.gpu_type != gpu_type:
            problems.append(_at(doc, ("gpu_type",), f"says GPU type '{profile.gpu_type}' but the "
                                f"file is named for '{gpu_type}'"))
    return problems


def unknown_gpu_files(p: Parsed, gpu_type: str) -> list[str]:
    """The profile files filed under `gpu_type`, relative to the registry."""
    return [str(p.profile_docs[key].path.relative_to(p.root)) for key in p.profiles
            if key[1] == gpu_type]


def cross_check(p: Parsed) -> list[Problem]:
    """Every cross-file problem, in file order."""
    stranded_pool: dict[str, list[str]] = {}
    stranded_gpu: dict[str, list[str]] = {}
    models = _model_problems(p, stranded_pool, stranded_gpu)
    return [*_cluster_problems(p, stranded_gpu), *_policy_problems(p, stranded_pool), *models,
            *_profile_problems(p)]
