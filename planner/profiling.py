"""`planner profile` without the CLI: which models, on which device, written where.

Each model is measured in its own fresh process (profiles.runner), and its profile is written
as soon as it is measured, by atomic rename: a failure on the fifth model keeps the first four
and leaves no partial file. Only measuring needs torch; Jobs and importing logs do not.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import InputError, Problem
from planner.registry.fleet import Fleet
from planner.registry.messages import suggestion
from planner.schemas import ModelSpec

if TYPE_CHECKING:
    from profiles.schema import Profile
    from profiles.worker import Request

CPU_GPU_TYPE = "cpu"


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
    cpu_threads: int = field(default_factory=lambda: os.cpu_count() or 1)


def pick_models(fleet: Fleet, names: list[str]) -> list[ModelSpec]:
    problems = []
    for name in names:
        if name not in fleet.models:
            problems.append(Problem(None, None, None, f"unknown model '{name}'"
                                    f"{suggestion(name, list(fleet.models))}; see models/ in "
                                    f"{fleet.root}"))
        elif fleet.models[name].source is None:
            problems.append(Problem(fleet.documents[name].path, 1, "source",
                                    "no source to load the model from; add source.factory or "
                                    "source.torchscript"))
    if problems:
        raise InputError(problems)
    return [fleet.models[n] for n in names]


def gpu_type_for(fleet: Fleet, device_name: str, explicit: str | None) -> str:
    """The registry's GPU type of the device: --gpu-type, or matched by product name."""
    if explicit is not None:
        if explicit not in fleet.cluster.gpu_types:
            raise InputError(f"--gpu-type {explicit}: unknown GPU type"
                             f"{suggestion(explicit, list(fleet.cluster.gpu_types))}")
        return explicit
    wanted = device_name.replace(" ", "-").lower()
    for name, gpu in fleet.cluster.gpu_types.items():
        if gpu.product.lower() == wanted or gpu.product.lower() in wanted:
            return name
    raise InputError(f"the device '{device_name}' matches no GPU type's product in "
                     "cluster.yaml; pass --gpu-type")


def request_for(model: ModelSpec, fleet: Fleet, settings: ProfileSettings) -> Request:
    from profiles.worker import Request

    assert model.source is not None  # pick_models refuses models without a source
    levels = tuple(c for c in settings.concurrency if c <= model.limits.max_concurrency) or (1,)
    return Request(model=model.name, source=model.source, registry=fleet.root,
                   device=settings.device, concurrency=levels, window_s=settings.window_s,
                   max_windows=settings.max_windows, tolerance=settings.tolerance,
                   allow_shared_device=settings.allow_shared_device, started_at=0.0,
                   slo_p99_ms=model.slo.p99_ms if settings.rate_search else None,
                   max_batch=model.limits.max_concurrency,
                   rate_duration_s=settings.rate_duration_s, cpu_threads=settings.cpu_threads)


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
        kind = CPU_GPU_TYPE if device.type == "cpu" else gpu_type_for(
            fleet, raw["environment"].get("device_name", ""), gpu_type)
        yield to_profile(model.name, kind, request, raw)


def check_imported(fleet: Fleet, profiles: list[Profile]) -> None:
    """Imported profiles must be of this registry's models and GPU types."""
    for item in profiles:
        if item.model not in fleet.models or (item.gpu_type not in fleet.cluster.gpu_types
                                              and item.gpu_type != CPU_GPU_TYPE):
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
