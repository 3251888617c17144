"""What runs inside the fresh process that measures one model.

A spawned process starts clean, so one model's memory cannot leak into the next and the
kernel's and CUDA's high-water marks belong to this model alone. The result comes back as a
plain dict; a ProfileError comes back as itself.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from profiles.schema import Source


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
    max_batch: int = 1
    rate_duration_s: float = 2.0
    cpu_threads: int = 1  # CPU serving workers, each running its share of a batch on one core


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


def measure(request: Request) -> dict:
    """Load, check, warm up and measure one model; returns numbers, MiB and seconds."""
    import platform

    import torch

    from profiles.devices import MIB, host_peak_rss_mib, probe_device, resolve_device
    from profiles.loading import build_model, check_input, make_input
    from profiles.measure import closed_loop, rate_search

    device = resolve_device(request.device)
    cuda = device.type == "cuda"
    pool = None
    if not cuda:
        # A CPU server runs one worker per core, each on one thread; a batch is split among
        # them, so concurrency buys parallelism up to the core count, as it would in service.
        from concurrent.futures import ThreadPoolExecutor

        torch.set_num_threads(1)
        pool = ThreadPoolExecutor(request.cpu_threads)
    warnings, before = [], None
    if cuda:
        torch.cuda.init()
        uuid = str(getattr(torch.cuda.get_device_properties(device), "uuid", ""))
        before = probe_device(device.index, uuid)
        warnings += shared_device_warnings(before, request.allow_shared_device)
        torch.empty(1, device=device)
        context_mib = probe_device(device.index, uuid).process_mib
    model = build_model(request.source, request.registry, device)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    weights_mib = sum(p.numel() * p.element_size() for p in model.parameters()) / MIB
    check_input(model, request.source.input, device, dtype)
    _synchronize(device)
    load_time_s = time.time() - request.started_at
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    batches: dict[int, list[torch.Tensor]] = {}

    def run(batch: torch.Tensor) -> None:
        with torch.inference_mode():
            model(batch)

    def serve(n: int) -> None:
        if n not in batches:
            whole = make_input(request.source.input, n, device, dtype, seed=n)
            parts = min(n, request.cpu_threads) if pool else 1
            batches[n] = list(torch.tensor_split(whole, parts))
        if pool is None:
            run(batches[n][0])
            _synchronize(device)
        else:
            list(pool.map(run, batches[n]))

    points = []
    for level in request.concurrency:
        result = closed_loop(serve, level, window_s=request.window_s,
                             max_windows=request.max_windows, tolerance=request.tolerance)
        if cuda:
            process = probe_device(device.index, uuid).process_mib
            peak = process if process is not None else (
                torch.cuda.max_memory_reserved(device) / MIB)
        else:
            peak = host_peak_rss_mib()
        window = {key: round(value, 3) for key, value in asdict(result.window).items()}
        points.append({"concurrency": level, **window,
                       "peak_memory_mib": round(peak, 1), "stable": result.stable,
                       "windows": result.windows})
    rate = None
    if request.slo_p99_ms is not None:
        best = max(p["throughput_rps"] for p in points)
        found, window = rate_search(serve, request.slo_p99_ms, low_rps=max(best / 50, 0.5),
                                    high_rps=best * 1.5, duration_s=request.rate_duration_s,
                                    max_batch=request.max_batch)
        rate = {"rate_rps": round(found, 2), **(asdict(window) if window else {})}
    memory = {"kind": "device" if cuda else "host", "weights_mib": round(weights_mib, 1)}
    environment = {"backend": device.type, "torch_version": torch.__version__,
                   "host": platform.node(),
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if cuda:
        after = probe_device(device.index, uuid)
        memory.update(cuda_context_mib=context_mib,
                      peak_allocated_mib=round(torch.cuda.max_memory_allocated(device) / MIB, 1),
                      peak_reserved_mib=round(torch.cuda.max_memory_reserved(device) / MIB, 1),
                      process_mib=after.process_mib, device_used_before_mib=before.used_mib,
                      device_used_after_mib=after.used_mib)
        environment.update(device_name=after.name or torch.cuda.get_device_name(device),
                           device_uuid=after.uuid or uuid, driver_version=after.driver_version,
                           cuda_version=torch.version.cuda or "")
    else:
        environment["device_name"] = _cpu_name()
    return {"points": points, "memory": memory, "environment": environment,
            "load_time_s": round(load_time_s, 3), "warnings": warnings, "rate_search": rate}
