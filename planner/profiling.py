"""`planner profile` without the CLI: which models, on which device, written where.

Each model is measured in its own fresh process (profiles.runner), and its profile is written
as soon as it is measured, by atomic rename: a failure on the fifth model keeps the first four
and leaves no partial file. Only measuring needs torch; Jobs and importing logs do not.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import InputError, Problem
from planner.registry.fleet import Fleet
from planner.registry.kubernetes import pool_label, tolerations
from planner.registry.messages import suggestion
from planner.rules.mig import slice_gpu_type, slice_gpu_types
from planner.schemas import LLM_ENGINES, SERVED_NAME_ENGINES, ModelSpec, Pool
from profiles.schema import CPU_DEVICE

if TYPE_CHECKING:
    from profiles.endpoint import Protocol
    from profiles.jobs import Server, Target
    from profiles.schema import Profile
    from profiles.worker import Request

WHOLE_GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"  # a time-sliced or MPS replica, as the device plugin names it
MIG_DEVICE_NAME = re.compile(r"\bMIG\s+(\d+g\.\d+gb)\b")  # "NVIDIA A100-SXM4-80GB MIG 1g.10gb"


@dataclass(frozen=True)
class ProfileSettings:
    device: str = "auto"
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    window_s: float = 1.0
    max_windows: int = 10
    tolerance: float = 0.10
    rate_search: bool = False
    rate_duration_s: float = 2.0
    allow_shared_device: bool = False
    max_time_s: float | None = None  # per model, after loading
    beyond_limit: bool = False  # measure levels above the model's max_concurrency too
    cpu_threads: int = field(default_factory=lambda: os.cpu_count() or 1)


def pick_models(fleet: Fleet, names: list[str], *, need_source: bool = True,
                option: str | None = None) -> list[ModelSpec]:
    """The registry's models by name, every unknown name at once (`option` names the option
    that gave it). Measuring in-process loads a model's `source`, so it must have one;
    measuring through a server does not (`need_source=False`)."""
    problems = []
    for name in names:
        if name not in fleet.models:
            problems.append(Problem(None, None, option, f"unknown model '{name}'"
                                    f"{suggestion(name, list(fleet.models))}; see models/ in "
                                    f"{fleet.root}"))
        elif need_source and fleet.models[name].source is None:
            problems.append(Problem(fleet.documents[name].path, 1, "source",
                                    "no source to load the model from; add source.factory or "
                                    "source.torchscript"))
    if problems:
        raise InputError(problems)
    return [fleet.models[n] for n in names]


def gpu_type_for(fleet: Fleet, device_name: str, explicit: str | None) -> str:
    """The registry's GPU type of the device: --gpu-type, or matched by product name; a MIG
    device (torch names it `<product> MIG <profile>`) is the slice's own type,
    `<gpu-type>-<profile>`, as its memory and SMs are the slice's, not the whole GPU's."""
    known = sorted({*fleet.cluster.gpu_types, *slice_gpu_types(fleet.cluster)})
    if explicit is not None:
        if explicit not in known:
            raise InputError(f"--gpu-type {explicit}: unknown GPU type"
                             f"{suggestion(explicit, known)}; one of {', '.join(known)}")
        return explicit
    mig = MIG_DEVICE_NAME.search(device_name)
    product_part = device_name[:mig.start()] if mig else device_name
    wanted = product_part.strip().replace(" ", "-").lower()
    for name, gpu in fleet.cluster.gpu_types.items():
        if gpu.product.lower() == wanted or gpu.product.lower() in wanted:
            if mig is None:
                return name
            if mig.group(1) in gpu.mig_profiles:
                return slice_gpu_type(name, mig.group(1))
            raise InputError(f"the device '{device_name}' is a MIG slice {mig.group(1)}, not a "
                             f"MIG profile of GPU type {name} in cluster.yaml; add it under "
                             f"{name}.mig_profiles or pass --gpu-type")
    raise InputError(f"the device '{device_name}' matches no GPU type's product in "
                     "cluster.yaml; pass --gpu-type")


def _pool_problem(pool: Pool, model: ModelSpec, what: str) -> Problem:
    return Problem(None, None, None, f"{model.name} on pool {pool.name} ({pool.sharing or 'CPU'}): "
                   f"{what}")


def job_targets(fleet: Fleet, model: ModelSpec, pools: list[str], mig_profiles: list[str],
                allow_shared: bool) -> list[Target]:
    """Where profiling Jobs of `model` run on `pools`: per pool, the pool's node selector and
    taints and the resource its nodes advertise; one target per GPU type or MIG slice (the
    first pool giving it wins, whole GPUs before shared ones).

    Exclusive pools give `gpus_per_replica` whole GPUs; MIG pools one slice of each profile in
    `mig_profiles` (default: every profile the GPU type's layouts cut); time-slicing and MPS
    pools one shared replica of a GPU, only with `allow_shared`, since the other pods' load is
    then in the numbers."""
    from profiles.jobs import Target

    known = [p.name for p in fleet.cluster.pools]
    problems: list[Problem] = []
    found: dict[str, Target] = {}
    for name in pools:
        if name not in known:
            problems.append(Problem(None, None, None, f"--pool {name}: not a pool of "
                                    f"cluster.yaml{suggestion(name, known)}; one of "
                                    + ", ".join(known)))
            continue
        pool = fleet.pool(name)
        if pool.gpu_type is None:
            problems.append(_pool_problem(pool, model, "a CPU pool has no GPU to profile on; "
                                          "measure a CPU-only model with `planner profile run "
                                          "--device cpu`"))
            continue
        gpu = fleet.cluster.gpu_types[pool.gpu_type]
        place = partial(Target, pool=pool.name,
                        node_selector={**pool.labels,
                                       pool_label(fleet.config.label_domain): pool.name},
                        tolerations=tolerations(pool.taints))
        if pool.sharing != "exclusive" and model.gpus_per_replica > 1:
            problems.append(_pool_problem(pool, model, f"a replica needs "
                                          f"{model.gpus_per_replica} whole GPUs; name an "
                                          "exclusive pool"))
            continue
        if model.gpus_per_replica > pool.gpus_per_node:
            problems.append(_pool_problem(pool, model, f"a replica needs "
                                          f"{model.gpus_per_replica} GPUs, a node has "
                                          f"{pool.gpus_per_node}"))
            continue
        if pool.sharing == "exclusive":
            targets = [place(gpu_type=pool.gpu_type, resource=WHOLE_GPU,
                             count=model.gpus_per_replica)]
        elif pool.sharing == "mig":
            cut = sorted({p for layout in gpu.mig_layouts for p in layout},
                         key=lambda p: (gpu.mig_profiles[p].compute_slices, p))
            wanted = mig_profiles or cut
            unknown = [p for p in wanted if p not in cut]
            if unknown:
                problems.append(_pool_problem(pool, model, f"--mig-profile "
                                              f"{', '.join(unknown)}: not in a MIG layout of "
                                              f"{pool.gpu_type}; one of {', '.join(cut)}"))
                continue
            targets = [place(gpu_type=slice_gpu_type(pool.gpu_type, p),
                             resource=f"nvidia.com/mig-{p}", count=1) for p in wanted]
        elif allow_shared:
            targets = [place(gpu_type=pool.gpu_type, resource=SHARED_GPU, count=1, shared=True)]
        else:
            problems.append(_pool_problem(pool, model, "its GPUs are shared, so other pods' "
                                          "load would be in the measurement; pass "
                                          "--allow-shared, or name an exclusive or MIG pool"))
            continue
        for target in targets:
            if target.gpu_type not in found or (found[target.gpu_type].shared
                                                and not target.shared):
                found[target.gpu_type] = target
    if problems:
        raise InputError(problems)
    return list(found.values())


PROTOCOLS: dict[str, Protocol] = {"triton": "kserve-v2", "kserve": "kserve-v2",
                                  **dict.fromkeys(LLM_ENGINES, "openai")}
"""The protocol each serving engine speaks over HTTP, as `planner profile endpoint` sends it:
the LLM engines serve OpenAI's completions."""
DATATYPES = {"int64": "INT64", "int32": "INT32", "float32": "FP32", "float16": "FP16",
             "bfloat16": "BF16"}


def endpoint_server(model: ModelSpec, targets: list[Target], host_pid: bool) -> Server:
    """The model's serving container for a Job that profiles it through its endpoint: its
    image, port and resources, the protocol its engine speaks and one request's shape. A
    shared GPU needs the host's process table (`--host-pid`) to tell the server's memory from
    other pods'."""
    from profiles.endpoint import Endpoint, ready_path
    from profiles.jobs import Server

    serving = model.serving
    if serving.engine is None:
        raise InputError(Problem(None, None, None, f"{model.name}: no serving.engine, so the "
                                 "protocol of its server is unknown; name the engine, or "
                                 "profile it with --via torch"))
    shared = [t.pool for t in targets if t.shared]
    if shared and not host_pid:
        raise InputError(Problem(None, None, None, f"{model.name} on pool {shared[0]}: on a "
                                 "shared GPU the server's memory is told apart from other "
                                 "pods' only by its host process ids; pass --host-pid"))
    protocol = PROTOCOLS[serving.engine]
    request: list[str] = []
    if protocol == "openai" and model.llm is not None:
        request = ["--max-tokens", str(model.llm.output_tokens.mean)]
    elif protocol == "kserve-v2" and model.source is not None:
        spec = model.source.input
        request = ["--shape", ",".join(map(str, spec.shape)),
                   "--datatype", DATATYPES[spec.dtype]]
    return Server(image=serving.image, port=serving.port, cpu_milli=serving.cpu_milli,
                  memory_mib=serving.host_memory_mib, protocol=protocol,
                  ready_path=ready_path(Endpoint("", model.name, protocol)),
                  request=request, args=(["--served-model-name", model.name]
                        if serving.engine in SERVED_NAME_ENGINES else []))


def request_for(model: ModelSpec, fleet: Fleet, settings: ProfileSettings) -> Request:
    from profiles.worker import Request

    assert model.source is not None  # pick_models refuses models without a source
    levels = settings.concurrency if settings.beyond_limit else tuple(
        c for c in settings.concurrency if c <= model.limits.max_concurrency) or (1,)
    return Request(model=model.name, source=model.source, registry=fleet.root,
                   device=settings.device, concurrency=levels, window_s=settings.window_s,
                   max_windows=settings.max_windows, tolerance=settings.tolerance,
                   allow_shared_device=settings.allow_shared_device, started_at=0.0,
                   slo_p99_ms=model.slo.p99_ms if settings.rate_search else None,
                   max_batch=model.limits.max_concurrency,
                   rate_duration_s=settings.rate_duration_s, cpu_threads=settings.cpu_threads,
                   max_time_s=settings.max_time_s,
                   generation=None if model.llm is None else (
                       model.llm.input_tokens.mean, model.llm.output_tokens.mean))


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError("measuring models needs torch: pip install 'placement-planner[profile]'"
                         " (or measure on the cluster with `planner profile jobs`)") from None


def measure_models(fleet: Fleet, names: list[str], settings: ProfileSettings,
                   gpu_type: str | None = None,
                   progress: Callable[[str], object] | None = None) -> Iterator[Profile]:
    """Measure each model in a fresh process, yielding each profile as soon as it is measured."""
    models = pick_models(fleet, names)
    _require_torch()
    from profiles.devices import resolve_device
    from profiles.errors import ProfileError
    from profiles.runner import run_isolated, to_profile

    try:
        device = resolve_device(settings.device)
    except ProfileError as exc:
        raise InputError(str(exc)) from None
    for index, model in enumerate(models):
        if progress:
            progress(f"profiling {model.name} ({index + 1} of {len(models)}) on {device}")
        request = request_for(model, fleet, settings)
        try:
            raw = run_isolated(request)
        except ProfileError as exc:
            raise InputError(Problem(fleet.documents[model.name].path, None, None,
                                     f"{model.name}: {exc}")) from None
        kind = CPU_DEVICE if device.type == "cpu" else gpu_type_for(
            fleet, raw["environment"].get("device_name", ""), gpu_type)
        yield to_profile(model.name, kind, request, raw)


def check_imported(fleet: Fleet, profiles: list[Profile]) -> None:
    """Imported profiles must be of this registry's models and GPU types."""
    for item in profiles:
        known = {*fleet.cluster.gpu_types, *slice_gpu_types(fleet.cluster), CPU_DEVICE}
        if item.model not in fleet.models or item.gpu_type not in known:
            raise InputError(f"imported profile of {item.model} on {item.gpu_type}: not a "
                             "model and GPU type of this registry")


def write_profile(profile: Profile, folder: Path) -> Path:
    """`folder/<model>/<gpu-type>.yaml`, by atomic rename."""
    from profiles.text import dump_profile

    target = folder / profile.model / f"{profile.gpu_type}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(dump_profile(profile))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
