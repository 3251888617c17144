"""Devices and memory: CUDA device choice, NVML process memory, host peak RSS.

The planner packs on the process's own device memory as NVML reports it (CUDA context
included); torch's allocator peaks are recorded beside it. On CPU the only honest figure is the
fresh process's peak resident set, labelled host memory.
"""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass, field

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
    """NVML's view of one CUDA device: used memory, and this and other processes on it."""

    name: str = ""
    uuid: str = ""
    driver_version: str = ""
    used_mib: float | None = None
    process_mib: float | None = None
    others: list[int] = field(default_factory=list)


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


def probe_device(torch_index: int, uuid: str = "", pid: int | None = None) -> DeviceProbe:
    """Read NVML for the device; an empty probe when NVML is not there."""
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
        pid = pid or os.getpid()
        own, others = None, []
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == pid:
                own = (process.usedGpuMemory or 0) / MIB
            else:
                others.append(process.pid)
        name = pynvml.nvmlDeviceGetName(handle)
        return DeviceProbe(name=name.decode() if isinstance(name, bytes) else str(name),
                           uuid=str(pynvml.nvmlDeviceGetUUID(handle)),
                           driver_version=str(pynvml.nvmlSystemGetDriverVersion()),
                           used_mib=memory.used / MIB, process_mib=own, others=others)
    finally:
        pynvml.nvmlShutdown()
