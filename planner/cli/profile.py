"""`planner profile run|jobs|import`: measuring models here, or as Jobs on the cluster's GPUs.

Only `run` needs torch; `jobs` and `import` work on the core install, as in CI.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from planner.cli.app import RegistryOption, app, guarded, load_fleet
from planner.errors import InputError

if TYPE_CHECKING:
    from typer._click import Context  # the click that typer bundles

    from planner.registry.fleet import Fleet
    from planner.schemas import ModelSpec
    from profiles.schema import Profile

COMMANDS_HELP = ("Measure models: here (run), as cluster Jobs (jobs), from Jobs' logs (import), "
                 "or through a running server (endpoint).")


class _LegacySpelling(TyperGroup):
    """Routes the spelling from before the sub-commands, `planner profile MODEL...` (with
    `--emit-jobs` for Jobs), to `run` or `jobs`, with a notice on stderr."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and not any(a in self.commands for a in args) and args[0] not in ("--help",
                                                                                "-h"):
            command = "jobs" if "--emit-jobs" in args else "run"
            args = [command, *(a for a in args if a != "--emit-jobs")]
            from planner.cli.console import err

            err.print(f"note: `planner profile MODEL...` is deprecated; use `planner profile "
                      f"{command} MODEL...`", markup=False)
        return super().parse_args(ctx, args)


profile_app = typer.Typer(name="profile", cls=_LegacySpelling, help=COMMANDS_HELP,
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(profile_app)


class ProfileFormat(StrEnum):
    table = "table"
    json = "json"
    markers = "markers"


ModelsArgument = Annotated[list[str], typer.Argument(metavar="MODEL",
                                                     help="Models of the registry.",
                                                     show_default=False)]
ConcurrencyOption = Annotated[str, typer.Option(help="Concurrency levels to measure.")]
DurationOption = Annotated[float, typer.Option(min=0.05, help="Seconds per measurement window.")]
GpuTypeOption = Annotated[str | None, typer.Option(
    help="GPU type to file the profile under (run: default matched by device name).",
    show_default=False)]
OutOption = Annotated[Path | None, typer.Option(
    "--out", "-o", file_okay=False, show_default=False,
    help="Folder to write to (run/import: default the registry's profiles/; jobs: stdout).")]


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        levels = ()
    if not levels or levels[0] < 1:
        raise InputError(f"--concurrency {text}: expected positive integers, like 1,2,4,8")
    return levels


@profile_app.command()
@guarded
def run(
    models: ModelsArgument,
    registry: RegistryOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    concurrency: ConcurrencyOption = "1,2,4,8,16,32",
    duration: DurationOption = 1.0,
    max_windows: Annotated[int, typer.Option(min=3, help="Windows per level at most, until "
                                             "the last three agree within 10%.")] = 10,
    rate_search: Annotated[bool, typer.Option("--rate-search", help="Also find the highest "
                                              "Poisson arrival rate meeting the SLO.")] = False,
    max_time: Annotated[float | None, typer.Option(
        "--max-time", min=0.1, help="Seconds per model for all levels and the rate search, "
        "after loading; levels share it, windows shortened to fit, and points it ends before "
        "they are stable are marked cut short.", show_default=False)] = None,
    beyond_limit: Annotated[bool, typer.Option(
        "--beyond-limit", help="Also measure levels above the model's max_concurrency, marked "
        "as such (the planner does not plan from them).")] = False,
    gpu_type: GpuTypeOption = None,
    allow_shared_device: Annotated[bool, typer.Option(
        "--allow-shared-device", help="Measure even if other processes use the GPU; the "
        "profile records a warning.")] = False,
    cpu_threads: Annotated[int | None, typer.Option(
        min=1, help="CPU serving workers (default: one per core).", show_default=False)] = None,
    out: OutOption = None,
    format: Annotated[ProfileFormat, typer.Option("--format")] = ProfileFormat.table,
) -> None:
    """Measure peak memory, throughput and latency per concurrency level of MODELS, each in a
    fresh process, writing each profile as soon as it is measured (needs the profile extra)."""
    from planner.cli.console import err
    from planner.profiling import ProfileSettings, measure_models, write_profile
    from profiles.text import with_markers

    fleet = load_fleet(registry)
    folder = out or fleet.root / fleet.config.paths.profiles
    settings = ProfileSettings(device=device, concurrency=_levels(concurrency),
                               window_s=duration, max_windows=max_windows,
                               rate_search=rate_search, rate_duration_s=max(2 * duration, 0.5),
                               allow_shared_device=allow_shared_device,
                               max_time_s=max_time, beyond_limit=beyond_limit,
                               **({"cpu_threads": cpu_threads} if cpu_threads else {}))
    found = []
    status = err.status("profiling…") if err.is_terminal else nullcontext()
    with status as spinner:
        progress = spinner.update if spinner is not None else None
        for item in measure_models(fleet, models, settings, gpu_type, progress=progress):
            if format is ProfileFormat.markers:
                typer.echo(with_markers(item), nl=False)
                continue
            err.print(f"wrote {write_profile(item, folder)}", markup=False)
            found.append(item)
    if format is ProfileFormat.json:
        from planner.cli.console import out as stdout

        stdout.print_json(json.dumps([p.model_dump(mode="json", by_alias=True) for p in found]))
    elif format is ProfileFormat.table:
        _print_tables(found)


def _print_tables(found: list[Profile]) -> None:
    from rich.table import Table

    from planner.cli.console import out as stdout

    for item in found:
        unit = "MiB host" if item.memory.kind == "host" else "MiB"
        load = "" if item.load_time_s is None else f", load {item.load_time_s:.2f} s"
        table = Table(title=f"{item.model} on {item.gpu_type} "
                      f"({item.environment.device_name or item.environment.backend}){load}",
                      title_justify="left")
        for column in ("concurrency", "throughput rps", "p50 ms", "p95 ms", "p99 ms",
                       f"peak {unit}", "stable"):
            table.add_column(column, justify="right")
        for point in item.points:
            stable = "yes" if point.stable else "cut short" if point.cut_short else "no"
            table.add_row(f"{point.concurrency}{' (beyond limit)' if point.beyond_limit else ''}",
                          f"{point.throughput_rps:,.1f}",
                          f"{point.p50_ms:.2f}", f"{point.p95_ms:.2f}", f"{point.p99_ms:.2f}",
                          f"{point.peak_memory_mib:,.0f}", stable)
        stdout.print(table)
        if item.rate_search is not None:
            stdout.print(_rate_line(item), markup=False)


def _rate_line(item: Profile) -> str:
    search = item.rate_search
    assert search is not None
    cut = " (cut short by --max-time)" if search.cut_short else ""
    if search.rate_rps > 0:
        return (f"rate search: {search.rate_rps:g} rps of Poisson arrivals meet p99 <= "
                f"{search.slo_p99_ms:g} ms (p99 {search.p99_ms:g} ms){cut}")
    return f"rate search: no rate meets p99 <= {search.slo_p99_ms:g} ms{cut}: {search.reason}"


class JobVia(StrEnum):
    torch = "torch"
    endpoint = "endpoint"


@profile_app.command()
@guarded
def jobs(
    models: ModelsArgument,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="Pool to profile on (repeat for several); its nodes, taints and GPU "
        "resource.", show_default=False)] = None,
    gpu_type: Annotated[str | None, typer.Option(
        help="Profile on every pool of this GPU type instead of naming pools.",
        show_default=False)] = None,
    mig_profile: Annotated[list[str] | None, typer.Option(
        "--mig-profile", help="MIG pools: the slices to profile (default: every profile of "
        "the GPU type's layouts).", show_default=False)] = None,
    allow_shared: Annotated[bool, typer.Option(
        "--allow-shared", help="Profile on time-sliced or MPS pools too, on one shared GPU "
        "replica; the profile records that other pods' load may be in it.")] = False,
    host_pid: Annotated[bool, typer.Option(
        "--host-pid", help="Run the pods in the host's PID namespace, so NVML attributes the "
        "GPU memory of the profiler's own process even on a shared GPU.")] = False,
    parallelism: Annotated[int, typer.Option(
        min=1, help="Profiling pods running at once (the namespace's pod quota).")] = 2,
    namespace: Annotated[str, typer.Option(help="Namespace of the Jobs.")] = "planner-profiling",
    registry: RegistryOption = None,
    concurrency: ConcurrencyOption = "1,2,4,8,16,32",
    duration: DurationOption = 1.0,
    image: Annotated[str, typer.Option(help="Image of the profiling Jobs: the planner with "
                                       "the registry at /registry.")]
    = "placement-planner:latest",
    via: Annotated[JobVia, typer.Option(
        help="torch: the profiler loads the model's source in-process; endpoint: the pod runs "
        "the model's serving image and the profiler drives it over localhost (its protocol "
        "from serving.engine), reading its device memory from a privileged container.")]
    = JobVia.torch,
    out: OutOption = None,
) -> None:
    """Write a Kubernetes Job per model and GPU type (or MIG slice) that profiles it on a
    pool's nodes and logs the profile, with the namespace, pod quota and service account they
    run under; collect the logs with `planner profile import`."""
    import yaml

    from planner.k8s_names import dns1123_label_problem
    from planner.profiling import pick_models
    from profiles.jobs import namespace_objects

    fleet = load_fleet(registry)
    levels = _levels(concurrency)
    if dns1123_label_problem(namespace):
        raise InputError(f"--namespace {namespace}: {dns1123_label_problem(namespace)}")
    pools = _job_pools(fleet, pool, gpu_type, allow_shared)
    arguments = ["--concurrency", ",".join(map(str, levels)), "--duration", str(duration)]
    through_server = via is JobVia.endpoint
    documents = namespace_objects(parallelism, namespace=namespace,
                                  privileged=host_pid or through_server)
    chosen = pick_models(fleet, models, need_source=not through_server)
    documents += _profiling_jobs(fleet, chosen, pools, mig_profile or [], allow_shared,
                                 through_server=through_server, host_pid=host_pid,
                                 image=image, arguments=arguments, namespace=namespace)
    if out is None:
        typer.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)
    else:
        _write_jobs(out, documents)


def _job_pools(fleet: Fleet, pools: list[str] | None, gpu_type: str | None,
               allow_shared: bool) -> list[str]:
    """The pools named with --pool, or those of --gpu-type (exclusive and MIG ones, shared
    ones too with --allow-shared); one of the two options, not both."""
    if bool(pools) == (gpu_type is not None):
        raise InputError("name the pools to profile on with --pool POOL, or a GPU type with "
                         "--gpu-type TYPE (one of the two)")
    if gpu_type is None:
        return pools or []
    if gpu_type not in fleet.cluster.gpu_types:
        raise InputError(f"--gpu-type {gpu_type}: not a GPU type of cluster.yaml; one of "
                         + ", ".join(fleet.cluster.gpu_types))
    found = [p.name for p in fleet.cluster.pools if p.gpu_type == gpu_type
             and (allow_shared or p.sharing in ("exclusive", "mig"))]
    if not found:
        raise InputError(f"--gpu-type {gpu_type}: no exclusive or MIG pool of that type; "
                         "pass --allow-shared to profile on a shared one")
    return found


def _profiling_jobs(fleet: Fleet, chosen: list[ModelSpec], pools: list[str],
                    mig_profiles: list[str],
                    allow_shared: bool, *, through_server: bool, host_pid: bool, image: str,
                    arguments: list[str], namespace: str) -> list[dict]:
    """A Job per model and target: the profiler loading the model, or beside its server;
    every model's problems at once."""
    from planner.profiling import endpoint_server, job_targets
    from profiles.jobs import endpoint_job, job

    documents = []
    problems = []
    domain = fleet.config.label_domain
    for model in chosen:
        try:
            targets = job_targets(fleet, model, pools, mig_profiles, allow_shared)
            server = endpoint_server(model, targets, host_pid) if through_server else None
        except InputError as exc:
            problems += exc.problems
            continue
        for target in targets:
            if server is not None:
                documents.append(endpoint_job(model.name, target, server, image, arguments,
                                              domain=domain, namespace=namespace,
                                              host_pid=host_pid))
            else:
                documents.append(job(model.name, target, image, arguments,
                                     cpu_milli=model.serving.cpu_milli,
                                     memory_mib=model.serving.host_memory_mib,
                                     domain=domain, namespace=namespace, host_pid=host_pid))
    if problems:
        raise InputError(problems)
    return documents


def _write_jobs(out: Path, documents: list[dict]) -> None:
    """A file per Job, and namespace.yaml with what they run under, in the folder `out`."""
    import yaml

    from planner.cli.console import err
    from planner.output import write_folder

    jobs_written = [d for d in documents if d["kind"] == "Job"]
    files = {f"{d['metadata']['name']}.yaml": yaml.safe_dump(d, sort_keys=False)
             for d in jobs_written}
    files["namespace.yaml"] = yaml.safe_dump_all(documents[:len(documents) - len(jobs_written)],
                                                 sort_keys=False)
    write_folder(out, files)
    err.print(f"wrote {len(jobs_written)} Jobs and their namespace to {out}", markup=False)


class EndpointProtocol(StrEnum):
    kserve_v2 = "kserve-v2"
    kserve_v2_grpc = "kserve-v2-grpc"
    openai = "openai"


@profile_app.command()
@guarded
def endpoint(
    url: Annotated[str, typer.Argument(help="The server, like http://127.0.0.1:8000 (gRPC: "
                                       "grpc://127.0.0.1:8001).", show_default=False)],
    model: Annotated[str, typer.Option(help="The model's name on the server.",
                                       show_default=False)],
    protocol: Annotated[EndpointProtocol, typer.Option(
        help="kserve-v2: POST /v2/models/MODEL/infer (Triton, KServe); kserve-v2-grpc: "
        "ModelInfer of inference.GRPCInferenceService; openai: streamed POST /v1/completions "
        "(vLLM, SGLang, TGI).")] = EndpointProtocol.kserve_v2,
    concurrency: ConcurrencyOption = "1,2,4,8",
    duration: DurationOption = 2.0,
    rate: Annotated[list[float] | None, typer.Option(
        "--rate", min=0.001, help="Also send Poisson arrivals at this rate (rps; repeat for "
        "several).", show_default=False)] = None,
    shape: Annotated[str, typer.Option(help="kserve-v2: one request's input shape.")] = "1",
    datatype: Annotated[str, typer.Option(help="kserve-v2: the input's datatype.")] = "FP32",
    max_tokens: Annotated[int, typer.Option(min=1, help="openai: tokens to generate.")] = 16,
    wait_ready: Annotated[float, typer.Option(
        "--wait-ready", min=0, help="Seconds to wait for the server to say it is ready "
        "before measuring (0: do not ask).")] = 0,
    save: Annotated[str | None, typer.Option(
        "--save", help="Save the numbers as this registry model's profile (windows per level "
        "until three agree, the server's device memory after each level).",
        show_default=False)] = None,
    gpu_type: GpuTypeOption = None,
    max_windows: Annotated[int, typer.Option(min=3, help="--save: windows per level at most, "
                                             "until the last three agree within 10%.")] = 5,
    beyond_limit: Annotated[bool, typer.Option(
        "--beyond-limit", help="--save: also measure levels above the model's "
        "max_concurrency, marked as such.")] = False,
    device: Annotated[str, typer.Option(
        help="--save: the server's device, an NVML index or GPU-/MIG- UUID, or `server`: the "
        "device another container of this pod was given.")] = "0",
    server_env: Annotated[str | None, typer.Option(
        "--server-env", help="--save: NAME=VALUE in the environment of the server's "
        "processes: with --device server they give the device and, on a device not the "
        "server's alone, their ids (host ids under hostPID).", show_default=False)] = None,
    server_pid: Annotated[list[int] | None, typer.Option(
        "--server-pid", help="--save: the server's process ids as NVML lists them (host ids); "
        "repeat for several.", show_default=False)] = None,
    exclusive_device: Annotated[bool, typer.Option(
        "--exclusive-device", help="--save: the device is the server's alone, so every "
        "process on it is the server's.")] = False,
    memory_mib: Annotated[float | None, typer.Option(
        "--memory-mib", min=1, help="--save: the server's memory to record where no device "
        "is readable, labelled `stated` in the profile.", show_default=False)] = None,
    registry: RegistryOption = None,
    out: OutOption = None,
    format: Annotated[ProfileFormat, typer.Option("--format")] = ProfileFormat.table,
) -> None:
    """Measure a running server over its protocol, as its clients see it: closed loop per
    concurrency level and open loop at each --rate; latency, throughput and, streamed, time to
    first token, time per output token and tokens/s. With --save, the numbers and the server's
    device memory become the model's profile in the registry (markers: in the log instead)."""
    from profiles.endpoint import Endpoint

    target = Endpoint(url, model, protocol.value, shape=_shape(shape), datatype=datatype,
                      max_tokens=max_tokens)
    if wait_ready:
        _wait_ready(target, wait_ready)
    if save is not None:
        if rate:
            raise InputError("--rate: open-loop rates are not saved in a profile; measure them "
                             "in a run without --save")
        from profiles.server_memory import ServerMemory

        memory = ServerMemory(device=device, server_pids=frozenset(server_pid or ()),
                              exclusive=exclusive_device, stated_mib=memory_mib)
        if server_env is not None and "=" not in server_env:
            raise InputError(f"--server-env {server_env}: expected NAME=VALUE")
        _save_endpoint(target, save, memory, levels=_levels(concurrency), window_s=duration,
                       max_windows=max_windows, beyond_limit=beyond_limit, gpu_type=gpu_type,
                       server_env=server_env,
                       registry=registry, out=out, format=format)
        return
    if format is ProfileFormat.markers:
        raise InputError("--format markers: the endpoint's numbers are a profile only with "
                         "--save MODEL; use table or json")
    _print_endpoint(target, _levels(concurrency), rate or [], duration, format)


def _shape(shape: str) -> tuple[int, ...]:
    """`--shape 3,224,224` as a tuple of positive integers."""
    try:
        dims = tuple(int(part) for part in shape.split(","))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise InputError(f"--shape {shape}: expected positive integers, like 3,224,224")
    return dims


def _wait_ready(target, timeout_s: float) -> None:
    from planner.cli.console import err
    from profiles.endpoint import wait_ready
    from profiles.errors import ProfileError

    try:
        waited = wait_ready(target, timeout_s)
    except ProfileError as exc:
        raise InputError(str(exc)) from None
    err.print(f"{target.url}: ready after {waited:.1f} s", markup=False)


def _server_memory(memory, server_env: str | None):
    """`--device server` as the device of the server's processes, and with `--server-env` on
    a device not the server's alone, their ids as the server's."""
    from dataclasses import replace

    from profiles.server_memory import server_processes

    if memory.device != "server":
        return memory
    found = server_processes(server_env)
    pids = found.pids if server_env and not memory.exclusive else memory.server_pids
    return replace(memory, device=found.device, server_pids=pids)


def _save_endpoint(target, name: str, memory, *, levels: tuple[int, ...], window_s: float,
                   max_windows: int, beyond_limit: bool, gpu_type: str | None,
                   server_env: str | None,
                   registry: Path | None, out: Path | None, format: ProfileFormat) -> None:
    """Measure each level until stable, read the server's memory, and write the profile."""
    from planner.cli.console import err
    from planner.profiling import gpu_type_for, pick_models, write_profile
    from profiles.endpoint_profile import endpoint_profile, measure_level
    from profiles.errors import ProfileError
    from profiles.text import with_markers

    fleet = load_fleet(registry)
    [spec] = pick_models(fleet, [name], need_source=False, option="--save")
    limit = spec.limits.max_concurrency
    wanted = levels if beyond_limit else tuple(c for c in levels if c <= limit) or (1,)
    device_seen: list = []

    def read_memory():
        reading, info = memory.read()
        device_seen.append(info)
        return reading

    try:
        memory = _server_memory(memory, server_env)
        measured = [measure_level(target, level, window_s=window_s, max_windows=max_windows,
                                  tolerance=0.10, read_memory=read_memory) for level in wanted]
    except ProfileError as exc:
        raise InputError(f"{name}: {exc}") from None
    info = device_seen[-1]
    if info is None and gpu_type is None:
        raise InputError("--gpu-type: no device was read to tell the GPU type; name it")
    kind = gpu_type_for(fleet, "" if info is None else info.name, gpu_type)
    profile = endpoint_profile(name, kind, target, measured, device=info, window_s=window_s,
                               max_windows=max_windows, tolerance=0.10, max_concurrency=limit)
    if format is ProfileFormat.markers:
        typer.echo(with_markers(profile), nl=False)
        return
    err.print(f"wrote {write_profile(profile, out or fleet.root / fleet.config.paths.profiles)}",
              markup=False)
    if format is ProfileFormat.json:
        from planner.cli.console import out as stdout

        stdout.print_json(json.dumps(profile.model_dump(mode="json", by_alias=True)))
    else:
        _print_tables([profile])


def _print_endpoint(target, levels: tuple[int, ...], rates: list[float], duration: float,
                    format: ProfileFormat) -> None:
    """One window per level and rate, printed as a table or JSON rows."""
    from dataclasses import asdict

    from profiles.endpoint import closed_loop, open_loop
    from profiles.errors import ProfileError

    rows = []
    try:
        for level in levels:
            rows.append({"load": f"c={level}", **asdict(closed_loop(target, level,
                                                                    duration_s=duration))})
        for rps in rates:
            rows.append({"load": f"{rps:g} rps", **asdict(open_loop(target, rps,
                                                                    duration_s=duration))})
    except ProfileError as exc:
        raise InputError(str(exc)) from None
    from planner.cli.console import out as stdout

    if format is not ProfileFormat.table:
        stdout.print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table(title=f"{target.model} at {target.url} ({target.protocol})",
                  title_justify="left")
    columns = ["load", "requests", "throughput_rps", "p50_ms", "p95_ms", "p99_ms"]
    if target.protocol == "openai":
        columns += ["ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tokens_per_s"]
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in rows:
        table.add_row(*(row[c] if isinstance(row[c], str) else "-" if row[c] is None
                        else f"{row[c]:,}" if isinstance(row[c], int) else f"{row[c]:,.1f}"
                        for c in columns))
    stdout.print(table)


@profile_app.command("import")
@guarded
def import_(
    logs: Annotated[list[Path], typer.Argument(metavar="LOG", help="Logs of profiling Jobs.",
                                               show_default=False)],
    registry: RegistryOption = None,
    out: OutOption = None,
) -> None:
    """Read the profiles that profiling Jobs logged and write them into the registry."""
    from planner.cli.console import err
    from planner.profiling import check_imported, write_profile
    from profiles.text import read_logs

    fleet = load_fleet(registry)
    found = read_logs(logs)
    check_imported(fleet, found)
    for item in found:
        err.print(f"wrote {write_profile(item, out or fleet.root / fleet.config.paths.profiles)}",
                  markup=False)
