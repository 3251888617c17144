"""Devices and memory: CUDA device choice, NVML process memory, host peak RSS.

The planner packs on the process's own device memory as NVML reports it (CUDA context
included); torch's allocator peaks are recorded beside it. On CPU the only honest figure is the
fresh process's peak resident set, labelled host memory.

NVML lists processes by their ids in the host's PID namespace, so inside a container (a pod
without `hostPID`) the profiler's own id never matches. Its NVML id is then found as the
process that appears on the device when the profiler creates its CUDA context, or, when the
context predates the first look, as the only process on the device. A process NVML cannot
attribute is never counted as 0 MiB: its figure is absent, and the profile records which
method gave its memory (`Memory.measured_by`).
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

from profiles.errors import ProfileError
from profiles.reference import MIB


def resolve_device(text: str):
    """`auto`, `cpu`, `cuda` or `cuda:N` to a torch device, checking that it exists."""
    import torch

    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = int(text.split(":")[1]) if ":" in text else 0
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise ProfileError(f"--device {text}: no such CUDA device ({count} visible); use "
                               "--device cpu or one of cuda:0..cuda:N-1")
        return torch.device("cuda", index)
    raise ProfileError(f"--device {text}: expected auto, cpu, cuda or cuda:N")


def host_peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM); ru_maxrss is KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


@dataclass
class DeviceProbe:
    """NVML's view of one CUDA device: used memory, and this and other processes on it.

    `process_mib` is None when NVML cannot say what the profiler's own process uses (not
    listed, or listed without a figure while others share the device); then `method` says so.
    """

    name: str = ""
    uuid: str = ""
    driver_version: str = ""
    used_mib: float | None = None
    process_mib: float | None = None
    others: list[int] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    method: str | None = None


def own_pids(pid: int | None = None) -> set[int]:
    """The ids of this process in every PID namespace its /proc shows (`NSpid`): more than one
    when /proc is mounted from an outer namespace than the process's own."""
    pid = pid or os.getpid()
    found = {pid}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                found.update(int(part) for part in line.split()[1:])
    except (OSError, ValueError):
        pass
    return found


def nvml_pid(before: DeviceProbe, after: DeviceProbe, pid: int | None = None) -> int | None:
    """The profiler's id as NVML lists it, from probes before and after it created its CUDA
    context: its own id (any namespace), else the one process that appeared, else the only
    process on the device (the context was there already); None when that is ambiguous."""
    mine = own_pids(pid) & set(after.pids)
    if len(mine) == 1:
        return mine.pop()
    appeared = set(after.pids) - set(before.pids)
    if len(appeared) == 1:
        return appeared.pop()
    if len(after.pids) == 1 and not appeared:
        return after.pids[0]
    return None


def peak_device_mib(probe: DeviceProbe, reserved_mib: float) -> tuple[float, str]:
    """The process's device memory and the method that gave it: NVML's figure when it has
    one, else torch's reserved peak, labelled as the fallback it is."""
    if probe.process_mib is not None and probe.method is not None:
        return probe.process_mib, probe.method
    return reserved_mib, "torch-reserved"


def _handle(pynvml, torch_index: int, uuid: str):
    """The NVML handle of the torch device, a MIG device's own handle when MIG is on."""
    count = pynvml.nvmlDeviceGetCount()
    for i in range(count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        try:
            current, _ = pynvml.nvmlDeviceGetMigMode(handle)
        except pynvml.NVMLError:
            current = 0
        if current:
            for m in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
                try:
                    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, m)
                except pynvml.NVMLError:
                    continue
                if uuid and uuid in str(pynvml.nvmlDeviceGetUUID(mig)):
                    return mig
        elif uuid and uuid in str(pynvml.nvmlDeviceGetUUID(handle)):
            return handle
    return pynvml.nvmlDeviceGetHandleByIndex(torch_index)


def probe_device(torch_index: int, uuid: str = "", pid: int | None = None,
                 nvml_id: int | None = None) -> DeviceProbe:
    """Read NVML for the device; an empty probe when NVML is not there. The profiler's own
    process is `nvml_id` (its id as NVML lists it, `nvml_pid`) or any of its own ids."""
    try:
        import pynvml
    except ImportError:
        return DeviceProbe()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return DeviceProbe()
    try:
        handle = _handle(pynvml, torch_index, uuid)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        processes = list(pynvml.nvmlDeviceGetComputeRunningProcesses(handle))
        mine = own_pids(pid) | ({nvml_id} if nvml_id is not None else set())
        own = [p for p in processes if p.pid in mine]
        others = [p.pid for p in processes if p.pid not in mine]
        process_mib, method = _attributed(own, others, memory.used / MIB)
        name = pynvml.nvmlDeviceGetName(handle)
        return DeviceProbe(name=name.decode() if isinstance(name, bytes) else str(name),
                           uuid=str(pynvml.nvmlDeviceGetUUID(handle)),
                           driver_version=str(pynvml.nvmlSystemGetDriverVersion()),
                           used_mib=memory.used / MIB, process_mib=process_mib, others=others,
                           pids=[p.pid for p in processes], method=method)
    finally:
        pynvml.nvmlShutdown()


def _attributed(own: list, others: list[int], used_mib: float) -> tuple[float | None, str | None]:
    """The own process's memory and how it was read. NVML leaves `usedGpuMemory` None where
    it cannot tell (some containers and MIG devices): then the device's used memory is the
    process's only when no other process is on it, and otherwise there is no figure."""
    if not own:
        return None, None
    figures = [p.usedGpuMemory for p in own]
    if all(f is not None for f in figures):
        return sum(figures) / MIB, "nvml-process"
    if not others:
        return used_mib, "nvml-device"
    return None, None
