"""The device memory of a model server the profiler drives over its protocol, read from NVML.

The server is another process, often in another container of the same pod, so the profiler's
own process tells nothing. What the server's processes use is known in three ways, best first:

- `nvml-process`: NVML's per-process figures of the server's processes, named by their ids as
  NVML lists them (`server_pids`: host ids, which a pod with `hostPID` sees);
- the same on a device that is the server's alone (a whole GPU or MIG slice of its pod, the
  profiler using none): every process on it is the server's, so their figures add up, or, where
  NVML gives none (some containers, MIG devices), the device's used memory (`nvml-device`);
- `stated`: a figure given by hand where no device is readable, labelled as such in the profile.

Where none applies there is no figure: an error that says which to give, never 0 MiB. The
device is named by index or UUID; `server_processes` finds the server container's own device
and processes through the process table its pod shares. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from profiles.devices import _handle
from profiles.errors import ProfileError
from profiles.reference import MIB

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
"""The variable the NVIDIA device plugin sets in a container to the UUIDs of its GPUs or MIG
devices, read by the container toolkit."""


@dataclass(frozen=True)
class Reading:
    mib: float
    method: str  # a profiles.schema.MemoryMethod


@dataclass(frozen=True)
class DeviceInfo:
    name: str = ""
    uuid: str = ""
    driver_version: str = ""


@dataclass(frozen=True)
class ServerMemory:
    """How to read the server's memory: its device (an NVML index, or a GPU-/MIG- UUID), the
    ids NVML lists its processes under, whether the device is the server's alone, and a stated
    fallback figure for when no device is readable."""

    device: str = "0"
    server_pids: frozenset[int] = field(default_factory=frozenset)
    exclusive: bool = False
    stated_mib: float | None = None

    def read(self) -> tuple[Reading, DeviceInfo | None]:
        """The server's memory now and the device it was read on (None when stated)."""
        try:
            import pynvml
        except ImportError:
            pynvml = None
        if pynvml is None:
            return self._stated("NVML is not installed (pip install nvidia-ml-py)")
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            return self._stated(f"NVML cannot start here ({exc}): no GPU is visible to this "
                                "container")
        try:
            handle = self._handle(pynvml)
            used_mib = pynvml.nvmlDeviceGetMemoryInfo(handle).used / MIB
            processes = list(pynvml.nvmlDeviceGetComputeRunningProcesses(handle))
            name = pynvml.nvmlDeviceGetName(handle)
            info = DeviceInfo(name.decode() if isinstance(name, bytes) else str(name),
                              str(pynvml.nvmlDeviceGetUUID(handle)),
                              str(pynvml.nvmlSystemGetDriverVersion()))
        except pynvml.NVMLError as exc:
            return self._stated(f"NVML cannot read device {self.device} ({exc})")
        finally:
            pynvml.nvmlShutdown()
        return self._attributed(processes, used_mib, info), info

    def _handle(self, pynvml):
        if self.device.isdigit():
            index = int(self.device)
            if index >= pynvml.nvmlDeviceGetCount():
                raise ProfileError(f"--device {self.device}: NVML sees "
                                   f"{pynvml.nvmlDeviceGetCount()} devices")
            return _handle(pynvml, index, "")
        handle = _handle(pynvml, -1, self.device)
        if self.device not in str(pynvml.nvmlDeviceGetUUID(handle)):
            raise ProfileError(f"--device {self.device}: no GPU or MIG device with this UUID "
                               "is visible to NVML here")
        return handle

    def _attributed(self, processes: list, used_mib: float, info: DeviceInfo) -> Reading:
        where = f"device {info.uuid or self.device}"
        if self.server_pids:
            own = [p for p in processes if p.pid in self.server_pids]
            others = [p.pid for p in processes if p.pid not in self.server_pids]
            if not own:
                listed = ", ".join(str(p.pid) for p in processes) or "none"
                raise ProfileError(f"none of the server's processes ({_ids(self.server_pids)}) "
                                   f"is on {where}; NVML lists {listed}. NVML gives host "
                                   "process ids: run the profiler with hostPID, or name the "
                                   "server's device with --device")
        elif self.exclusive:
            own, others = processes, []
        else:
            raise ProfileError(f"which of the processes on {where} are the server's is not "
                               "known: name them with --server-pid (their ids as NVML lists "
                               "them), or pass --exclusive-device when the device is the "
                               "server's alone")
        figures = [p.usedGpuMemory for p in own]
        if figures and all(f is not None for f in figures) and sum(figures) > 0:
            return Reading(sum(figures) / MIB, "nvml-process")
        if not others and used_mib > 0:
            return Reading(used_mib, "nvml-device")
        raise ProfileError(f"NVML gives no memory figure for the server's processes on {where}, "
                           f"and other processes ({_ids(others)}) share it: the server's "
                           "memory cannot be told apart; profile on a device of its own")

    def _stated(self, why: str) -> tuple[Reading, None]:
        if self.stated_mib is None:
            raise ProfileError(f"no device memory to read: {why}; run the profiler where the "
                               "server's GPU is visible, or state the server's memory with "
                               "--memory-mib (recorded as `stated`, not measured)")
        return Reading(self.stated_mib, "stated"), None


def _ids(pids) -> str:
    return ", ".join(str(p) for p in sorted(pids))


@dataclass(frozen=True)
class ServerProcesses:
    """The server's processes as this process's /proc shows them, and its device."""

    device: str
    pids: frozenset[int]


def server_processes(marker: str | None = None, proc: Path = Path("/proc"),
                     own_pid: int | None = None) -> ServerProcesses:
    """The server's processes and the GPU or MIG device the NVIDIA device plugin gave them
    (the UUID in their `NVIDIA_VISIBLE_DEVICES`), found in the process table the pod shares
    (`shareProcessNamespace: true`: the pod's own ids; `hostPID`: the host's, which NVML
    lists). The server's processes are those whose environment holds `marker` (`NAME=VALUE`,
    set on the server's container), or without one every process naming a device; the
    profiler's own process is left out. One device, or an error naming what was found."""
    own = own_pid or os.getpid()
    wanted = marker.encode() if marker else None
    devices: set[str] = set()
    pids: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted is not None and wanted not in environment:
            continue
        named = [item.split(b"=", 1)[1].decode(errors="replace") for item in environment
                 if item.startswith(VISIBLE_DEVICES.encode() + b"=")]
        found = {v for value in named for v in value.split(",") if v.startswith(("GPU-", "MIG-"))}
        if found or wanted is not None:
            devices |= found
            pids.add(int(entry.name))
    if len(devices) != 1:
        what = ", ".join(sorted(devices)) or "none"
        whose = f"the processes with {marker}" if marker else "the pod's other processes"
        raise ProfileError(f"--device server: {whose} name {what} in {VISIBLE_DEVICES}; "
                           "expected one GPU or MIG device (is the process table shared "
                           "(shareProcessNamespace or hostPID), and the server started?)")
    return ServerProcesses(devices.pop(), frozenset(pids))
