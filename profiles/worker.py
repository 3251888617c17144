"""What runs inside the fresh process that measures one model.

A spawned process starts clean, so one model's memory cannot leak into the next and the
kernel's and CUDA's high-water marks belong to this model alone. The result comes back as a
plain dict; a ProfileError comes back as itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from profiles.measure import Budget
from profiles.reference import MIB
from profiles.schema import Source

if TYPE_CHECKING:
    import torch

    from profiles.devices import DeviceProbe
    from profiles.measure import RateResult


@dataclass(frozen=True)
class Request:
    model: str
    source: Source
    registry: Path
    device: str
    concurrency: tuple[int, ...]
    window_s: float
    max_windows: int
    tolerance: float
    allow_shared_device: bool
    started_at: float  # wall clock in the parent just before the process was started
    slo_p99_ms: float | None = None  # with rate search
    max_batch: int = 1  # the model's max_concurrency: the open loop's largest batch
    rate_duration_s: float = 2.0
    cpu_threads: int = 1  # CPU serving workers, each running its share of a batch on one core
    max_time_s: float | None = None  # budget of all levels and the rate search, after loading
    generation: tuple[int, int] | None = None  # a generating model: prompt and output tokens
    rounds: int = 3  # generation: measured rounds per level


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def shared_device_warnings(probe, allow_shared_device: bool) -> list[str]:
    """Refuse a device other processes use, or with permission record why the numbers may be
    off."""
    from profiles.errors import ProfileError

    if not probe.others:
        return []
    message = (f"other processes use the device (pids {probe.others}); their load skews "
               "latency and memory")
    if not allow_shared_device:
        raise ProfileError(message + "; stop them or pass --allow-shared-device")
    return [message]


def _cpu_name() -> str:
    """The CPU model as the kernel reports it, for the profile's environment."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class _Device:
    """The device a model is measured on; on CUDA, NVML's view of it before the model loaded."""

    torch_device: torch.device
    pool: ThreadPoolExecutor | None = None  # CPU serving workers; None on CUDA
    uuid: str = ""
    before: DeviceProbe | None = None
    context_mib: float | None = None
    nvml_id: int | None = None  # the profiler's process id as NVML lists it
    memory_methods: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.torch_device.type == "cuda"


def _open_device(request: Request) -> _Device:
    """Resolve the device; on CUDA record the context's memory before the model loads."""
    import torch

    from profiles.devices import nvml_pid, probe_device, resolve_device

    device = _Device(resolve_device(request.device))
    if not device.cuda:
        # A CPU server runs one worker per core, each on one thread; a batch is split among
        # them, so concurrency buys parallelism up to the core count, as it would in service.
        torch.set_num_threads(1)
        device.pool = ThreadPoolExecutor(request.cpu_threads)
        return device
    index = device.torch_device.index
    torch.cuda.init()
    device.uuid = str(getattr(torch.cuda.get_device_properties(device.torch_device), "uuid", ""))
    device.before = probe_device(index, device.uuid)
    torch.empty(1, device=device.torch_device)
    device.nvml_id = nvml_pid(device.before, probe_device(index, device.uuid))
    opened = probe_device(index, device.uuid, nvml_id=device.nvml_id)
    device.warnings += shared_device_warnings(opened, request.allow_shared_device)
    device.context_mib = opened.process_mib
    return device


def _server(request: Request, model: torch.nn.Module, device: _Device,
            dtype: torch.dtype) -> Callable[[int], None]:
    """serve(n): one batch of n requests through the model, as a batching server runs it."""
    import torch

    from profiles.loading import make_input

    batches: dict[int, list[torch.Tensor]] = {}

    def run(batch: torch.Tensor) -> None:
        with torch.inference_mode():
            model(batch)

    def serve(n: int) -> None:
        if n not in batches:
            whole = make_input(request.source.input, n, device.torch_device, dtype, seed=n)
            parts = min(n, request.cpu_threads) if device.pool else 1
            batches[n] = list(torch.tensor_split(whole, parts))
        if device.pool is None:
            run(batches[n][0])
            _synchronize(device.torch_device)
        else:
            list(device.pool.map(run, batches[n]))

    return serve


def _peak_mib(device: _Device) -> float:
    """The process's device memory from NVML (context included), else torch's reserved peak,
    noting the method; on CPU the process's peak resident set."""
    import torch

    from profiles.devices import host_peak_rss_mib, peak_device_mib, probe_device

    if not device.cuda:
        device.memory_methods.add("host-rss")
        return host_peak_rss_mib()
    probe = probe_device(device.torch_device.index, device.uuid, nvml_id=device.nvml_id)
    mib, method = peak_device_mib(probe,
                                  torch.cuda.max_memory_reserved(device.torch_device) / MIB)
    device.memory_methods.add(method)
    return mib


def _points(request: Request, serve: Callable[[int], None], device: _Device,
            budget: Budget) -> list[dict]:
    """One closed-loop measurement per concurrency level, with the peak memory after it."""
    from profiles.measure import closed_loop_levels

    points = []
    for result in closed_loop_levels(serve, request.concurrency, window_s=request.window_s,
                                     max_windows=request.max_windows,
                                     tolerance=request.tolerance, budget=budget,
                                     parts_after=1 if request.slo_p99_ms is not None else 0):
        window = {key: round(value, 3) for key, value in asdict(result.window).items()
                  if key != "requests"}
        points.append({"concurrency": result.concurrency, **window,
                       "peak_memory_mib": round(_peak_mib(device), 1), "stable": result.stable,
                       "cut_short": result.cut_short,
                       "beyond_limit": result.concurrency > request.max_batch,
                       "windows": result.windows})
    return points


def _rate(request: Request, serve: Callable[[int], None], points: list[dict],
          budget: Budget) -> dict | None:
    """The open-loop search for the highest rate meeting the SLO, when one was asked for."""
    from profiles.measure import rate_search

    if request.slo_p99_ms is None:
        return None
    within = [p for p in points if not p["beyond_limit"]] or points
    best = max(p["throughput_rps"] for p in within)
    found = rate_search(serve, request.slo_p99_ms, low_rps=max(best / 50, 0.5),
                        high_rps=best * 1.5, duration_s=request.rate_duration_s,
                        max_batch=request.max_batch, budget=budget)
    window = {key: round(value, 3) for key, value in asdict(found.window).items()
              if key != "requests"} if found.window else {}
    return {"rate_rps": round(found.rate_rps, 2), **window, "cut_short": found.cut_short,
            "reason": "" if found.rate_rps > 0 else zero_rate_reason(found, request.slo_p99_ms,
                                                                    points)}


def zero_rate_reason(found: RateResult, slo_p99_ms: float, points: list[dict]) -> str:
    """Why no arrival rate met the SLO, from the lowest rate's window and the closed loop's
    fastest point, so that a 0 in the profile is never a bare number."""
    if found.first is None:
        return "the time budget was spent before the rate search could run; raise --max-time"
    first = found.first
    reason = (f"the lowest rate tried, {found.first_rps:.2f} rps, missed the SLO: p99 "
              f"{first.p99_ms:.1f} ms > {slo_p99_ms:g} ms over {first.requests} requests")
    closed = min(points, key=lambda p: p["p99_ms"])
    if closed["p99_ms"] <= slo_p99_ms:
        reason += (f", while the closed loop met it (p99 {closed['p99_ms']:.1f} ms at "
                   f"concurrency {closed['concurrency']}): with so few requests the p99 is "
                   "the slowest one, a stall or the first batch of a new size; a longer "
                   "--duration or --max-time gives the search more requests")
    else:
        reason += (f", as did every closed-loop level (p99 at least {closed['p99_ms']:.1f} "
                   "ms): the model is slower than its SLO on this device")
    return reason


def _memory_and_environment(device: _Device, weights_mib: float) -> tuple[dict, dict]:
    """What the profile records of the memory and of the machine it was measured on."""
    import platform

    import torch

    from profiles.devices import probe_device
    from profiles.schema import MEMORY_METHODS

    memory: dict = {"kind": "device" if device.cuda else "host",
                    "weights_mib": round(weights_mib, 1)}
    if device.memory_methods:  # the weakest method any point's memory came from
        memory["measured_by"] = max(device.memory_methods, key=MEMORY_METHODS.index)
    environment: dict = {"backend": device.torch_device.type, "torch_version": torch.__version__,
                         "host": platform.node(),
                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not device.cuda:
        environment["device_name"] = _cpu_name()
        return memory, environment
    cuda = device.torch_device
    after = probe_device(cuda.index, device.uuid, nvml_id=device.nvml_id)
    assert device.before is not None  # probed when the device was opened
    memory.update(cuda_context_mib=device.context_mib,
                  peak_allocated_mib=round(torch.cuda.max_memory_allocated(cuda) / MIB, 1),
                  peak_reserved_mib=round(torch.cuda.max_memory_reserved(cuda) / MIB, 1),
                  process_mib=after.process_mib, device_used_before_mib=device.before.used_mib,
                  device_used_after_mib=after.used_mib)
    environment.update(device_name=after.name or torch.cuda.get_device_name(cuda),
                       device_uuid=after.uuid or device.uuid, driver_version=after.driver_version,
                       cuda_version=torch.version.cuda or "")
    return memory, environment


def measure(request: Request) -> dict:
    """Load, check, warm up and measure one model; returns numbers, MiB and seconds."""
    import torch

    from profiles.loading import build_model, check_input

    device = _open_device(request)
    model = build_model(request.source, request.registry, device.torch_device)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    weights_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / MIB
    check_input(model, request.source.input, device.torch_device, dtype)
    _synchronize(device.torch_device)
    load_time_s = time.time() - request.started_at
    if device.cuda:
        torch.cuda.reset_peak_memory_stats(device.torch_device)
    generation: list[dict] = []
    rate = None
    if request.generation is not None:
        generation, points = _generation(request, model, device)
    else:
        serve = _server(request, model, device, dtype)
        budget = Budget.of(request.max_time_s)
        points = _points(request, serve, device, budget)
        rate = _rate(request, serve, points, budget)
    memory, environment = _memory_and_environment(device, weights_mib)
    return {"points": points, "memory": memory, "environment": environment,
            "load_time_s": round(load_time_s, 3), "warnings": device.warnings,
            "rate_search": rate, "generation": generation}


GENERATION_KEYS = ("concurrency", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms",
                   "prefill_tokens_per_s", "decode_tokens_per_s", "peak_memory_mib")
POINT_KEYS = ("concurrency", "throughput_rps", "p50_ms", "p95_ms", "p99_ms", "peak_memory_mib")


def _generation(request: Request, model, device: _Device) -> tuple[list[dict], list[dict]]:
    """A generating model's decode loop per level: its tokens, and its requests as points."""
    from profiles.generate import measure_generation

    assert request.generation is not None
    input_tokens, output_tokens = request.generation
    vocab = request.source.input.high or 2
    levels = measure_generation(model, vocab=vocab, levels=request.concurrency,
                                input_tokens=input_tokens, output_tokens=output_tokens,
                                rounds=request.rounds, device=device.torch_device,
                                peak_mib=lambda: _peak_mib(device), clock=time.perf_counter)
    return ([{k: level[k] for k in GENERATION_KEYS} for level in levels],
            [{**{k: level[k] for k in POINT_KEYS}, "stable": True, "windows": request.rounds}
             for level in levels])
