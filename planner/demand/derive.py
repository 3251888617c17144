"""From profile to demand: operating point, replicas and per-replica resources per pool.

For a model on a pool whose GPU type it was profiled on, the operating point is the highest
stable measured concurrency within `max_concurrency` whose memory fits the pool's GPU and whose
p99, stretched by the pool's sharing at the load its replicas get, meets the SLO; replicas
cover the peak at the policy's target utilisation (capped by an open-loop rate when measured);
each replica needs the process's peak memory at the operating point and the fraction of a
GPU's time its share of the peak takes at the batch that load forms (`planner.demand.sharing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from planner.demand.llm import Candidate, LlmConfig, candidates
from planner.demand.sharing import (
    Load,
    Sharing,
    open_loop_rate,
    replica_load,
    replicas_for,
    stretch,
)
from planner.registry.fleet import Fleet
from planner.rules.capacity import replicas_per_gpu, usable_memory_mib
from planner.rules.fit import (
    host_memory_misfit,
    kind_misfit,
    least_memory_mib,
    memory_limit_mib,
    memory_per_gpu_mib,
    misfit,
    node_misfit,
)
from planner.rules.llm import llm_misfit
from planner.rules.mig import slice_capacity, slice_fraction, slice_gpu_type, smallest_slice
from planner.rules.spot import spot_only_reason, usable_shapes
from planner.rules.spread import max_per_node
from planner.schemas import MAX_REPLICAS, ModelSpec, Pool
from profiles.llm import PRECISION_BYTES, STEP_TOKENS
from profiles.schema import CPU_DEVICE, Point, Profile

MAX_MIB_PER_GPU = 2**40  # no memory limit: every configuration's curve


@dataclass(frozen=True)
class Demand:
    """What one model needs in one pool."""

    model: str
    pool: str
    rule: str
    replicas: int
    gpus_per_replica: int
    whole_gpus: bool
    memory_mib: int  # per GPU of a replica
    compute_milli: int  # thousandths of one GPU's time, per replica
    cpu_milli: int  # the pod's CPU request, drawn from its node
    host_memory_mib: int  # the pod's memory request, drawn from its node
    mig_slice: str | None  # in a MIG pool: the slice type every replica uses
    max_per_node: int | None  # the spread rule
    concurrency: int | None
    throughput_rps: float
    p99_ms: float | None  # at the operating concurrency, stretched by sharing
    estimated: bool
    method: str  # measured, reference or stated
    load_concurrency: float | None = None  # the batch a replica's load forms
    notes: tuple[str, ...] = ()  # what the plan says about load, latency and measurements
    llm: LlmConfig | None = None  # an LLM's configuration: TP degree, precision, engine limits


@dataclass(frozen=True)
class Rejection:
    """Why a model cannot use a pool that admits it."""

    model: str
    pool: str
    reason: str


def operating_point(model: ModelSpec, profile, memory_limit_mib: float | None = None):
    """The highest stable measured concurrency that meets the SLO (measured alone) and the
    concurrency limit and whose memory per GPU stays within `memory_limit_mib` (when given)."""
    usable = [p for p in _candidates(model, profile, memory_limit_mib)
              if p.p99_ms <= model.slo.p99_ms]
    return usable[-1] if usable else None


def _candidates(model: ModelSpec, profile: Profile, memory_limit_mib: float | None):
    """Stable points within the concurrency limit whose memory fits, lowest first."""
    return [p for p in profile.points
            if p.stable and p.concurrency <= model.limits.max_concurrency
            and (memory_limit_mib is None or memory_per_gpu_mib(
                p.peak_memory_mib, model.gpus_per_replica) <= memory_limit_mib)]


@dataclass(frozen=True)
class _Choice:
    point: Point
    replicas: int
    load: Load
    notes: tuple[str, ...]


# What else an operating point must meet at the load its replicas get (an LLM's TTFT and
# TPOT under sharing): None, or why it misses.
Check = Callable[[Point, Load], str | None]


def _choose(model: ModelSpec, profile: Profile, pool: Pool, sharing: Sharing,
            limit_mib: int, check: Check | None = None) -> _Choice | str:
    """The highest usable concurrency whose p99, stretched by sharing at the load its replicas
    get, meets the SLO (and `check`, when given); or why none does."""
    device = pool.gpu_type or CPU_DEVICE
    candidates = _candidates(model, profile, limit_mib)
    if not candidates:
        if not any(p.stable for p in profile.points):
            return f"no stable measurement on {device}; measure it again"
        if not _candidates(model, profile, None):
            return (f"no stable measurement within max_concurrency "
                    f"{model.limits.max_concurrency} on {device}")
        return (f"every concurrency on {device} needs more than the {limit_mib} MiB "
                "per GPU the pool allows")
    notes: list[str] = []
    open_rate = open_loop_rate(profile, model.slo.p99_ms)
    if profile.rate_search is not None and open_rate is None:
        notes.append(f"open-loop rate search at p99 {profile.rate_search.slo_p99_ms:g} ms "
                     f"ignored: looser than the SLO of {model.slo.p99_ms:g} ms")
    if open_rate == 0:
        return f"no open-loop arrival rate met the SLO on {device} (rate search)"
    clients = sharing.clients if sharing.mode == "mps" else 1
    too_many = checked = None
    for point in reversed(candidates):
        curve = [p for p in candidates if p.concurrency <= point.concurrency]
        cap = point.throughput_rps
        if open_rate is not None and open_rate < cap:
            cap = open_rate
        too_many = too_many or _too_many(model, device, cap / clients, sharing.utilization)
        if too_many:
            continue
        replicas = replicas_for(model.traffic.peak_rps, cap / clients, sharing.utilization,
                                model.replicas.min)
        load = replica_load(curve, model.traffic.peak_rps, replicas, sharing)
        checked = check(point, load) if check is not None and \
            load.p99_ms <= model.slo.p99_ms else None
        if load.p99_ms <= model.slo.p99_ms and checked is None:
            if open_rate is not None and cap == open_rate:
                notes.append(f"open-loop rate {open_rate:g} rps per replica within the SLO "
                             "(rate search) caps its load")
            unstable = [p.concurrency for p in profile.points if not p.stable
                        and point.concurrency < p.concurrency <= model.limits.max_concurrency
                        and p.p99_ms <= model.slo.p99_ms]
            if unstable:
                notes.append("unstable measurements not used (concurrency "
                             f"{', '.join(map(str, unstable))})")
            return _Choice(point, replicas, load, tuple(notes))
    if too_many:
        return too_many
    if checked is not None:  # the lowest level met the p99 but not the check
        return checked
    lowest, load = candidates[0], replica_load(candidates[:1], model.traffic.peak_rps,
                                               model.replicas.min, sharing)
    shared = "" if load.p99_ms == lowest.p99_ms else \
        f", {load.p99_ms:.3g} ms {_how(sharing)}"
    return (f"p99 {lowest.p99_ms:g} ms at concurrency {lowest.concurrency} on "
            f"{device}{shared} misses the SLO of {model.slo.p99_ms:g} ms")


def _too_many(model: ModelSpec, device: str, rate_cap_rps: float,
              utilization: float) -> str | None:
    """Why a model would need an absurd number of replicas (a unit slip in traffic or
    profile, most likely), or None."""
    if model.traffic.peak_rps / (rate_cap_rps * utilization) <= MAX_REPLICAS:
        return None
    return (f"needs more than {MAX_REPLICAS:,} replicas on {device} for the peak of "
            f"{model.traffic.peak_rps:g} rps at {rate_cap_rps:g} rps each; check the traffic "
            "and the profile's units")


def _how(sharing: Sharing) -> str:
    if sharing.mode == "mps":
        return f"with an MPS share of 1/{sharing.clients} of the SMs"
    return f"time-sliced with co-located load up to {sharing.utilization:.0%}"


def pool_demand(fleet: Fleet, model: ModelSpec, pool: Pool, rule: str) -> Demand | Rejection:
    """The model's demand in `pool` under the sharing model of `planner.demand.sharing`."""
    policy = fleet.policy
    wrong_kind = kind_misfit(model, pool)
    if wrong_kind is not None:
        return Rejection(model.name, pool.name, wrong_kind)
    if pool.gpu_type is None:
        return _cpu_demand(fleet, model, pool, rule)
    whole = not model.shares_gpu or pool.sharing == "exclusive"
    if whole and pool.sharing != "exclusive":
        return Rejection(model.name, pool.name,
                         f"needs whole GPUs, and the pool shares them ({pool.sharing})")
    profile = fleet.profiles.get((model.name, pool.gpu_type))
    never = _never_fits(fleet, model, pool, profile)
    if never is not None:
        return Rejection(model.name, pool.name, never)
    sharing = Sharing(mode="exclusive" if whole else str(pool.sharing),
                      utilization=policy.target_utilization,
                      clients=replicas_per_gpu(pool, policy))
    if model.llm is not None:
        op = _llm_operating(fleet, model, pool, sharing)
    elif model.resources is not None:
        op = _stated_operating(fleet, model, pool, sharing)
    else:
        assert profile is not None  # _never_fits found a profile
        op = _profiled_operating(fleet, model, pool, sharing, profile)
    if isinstance(op, str):
        return Rejection(model.name, pool.name, op)
    if model.replicas.max is not None and op.replicas > model.replicas.max:
        return Rejection(model.name, pool.name,
                         f"needs {op.replicas} replicas on {pool.gpu_type} for the peak of "
                         f"{model.traffic.peak_rps:g} rps, replicas.max is {model.replicas.max}")
    memory_mib = memory_per_gpu_mib(op.memory_mib, op.gpus)
    on_device = _on_device(fleet, pool, op, memory_mib)
    if isinstance(on_device, str):
        return Rejection(model.name, pool.name, on_device)
    mig_slice, compute_milli = on_device
    llm = op.llm
    if llm is not None:
        llm, memory_mib = _engine_share(fleet, pool, mig_slice, llm, memory_mib)
    return Demand(model=model.name, pool=pool.name, rule=rule, replicas=op.replicas,
                  gpus_per_replica=op.gpus, whole_gpus=whole,
                  memory_mib=memory_mib, compute_milli=compute_milli,
                  cpu_milli=model.serving.cpu_milli,
                  host_memory_mib=model.serving.host_memory_mib, mig_slice=mig_slice,
                  max_per_node=max_per_node(policy, op.replicas),
                  concurrency=op.concurrency, throughput_rps=op.throughput_rps,
                  p99_ms=op.p99_ms, estimated=op.method != "measured", method=op.method,
                  load_concurrency=op.load_concurrency, notes=op.notes, llm=llm)


@dataclass(frozen=True)
class _Operating:
    """How one replica runs in a pool: its replicas, memory (over all its GPUs), throughput
    and share of a GPU's time, at which concurrency and p99, found how."""

    replicas: int
    memory_mib: float
    throughput_rps: float
    share: float
    concurrency: int | None
    p99_ms: float | None  # stretched by sharing
    load_concurrency: float | None
    method: str  # measured, reference or stated
    gpus: int
    notes: tuple[str, ...] = ()
    llm: LlmConfig | None = None
    own_slice: str | None = None  # in a MIG pool: the slice the choice was made on


def _never_fits(fleet: Fleet, model: ModelSpec, pool: Pool, profile: Profile | None
                ) -> str | None:
    """Why no replica of the model could ever run in the pool (no profile there, or one
    replica larger than a GPU or a node), or None."""
    if model.llm is not None:
        too_large = llm_misfit(model, fleet.cluster, pool, fleet.policy) \
            or node_misfit(model, fleet.cluster, pool)
    else:
        least = least_memory_mib(model, profile)
        if least is None:
            return f"no profile on {pool.gpu_type}"
        too_large = misfit(least, model.gpus_per_replica, fleet.cluster, pool, fleet.policy) \
            or node_misfit(model, fleet.cluster, pool)
    return None if too_large is None else f"one replica never fits: {too_large}"


def _from_choice(choice: _Choice, sharing: Sharing, method: str, gpus: int, *,
                 notes: tuple[str, ...] = (), after: tuple[str, ...] = (),
                 llm: LlmConfig | None = None, own_slice: str | None = None) -> _Operating:
    """An operating point chosen on a curve, with its notes between `notes` and `after`."""
    point, load = choice.point, choice.load
    return _Operating(replicas=choice.replicas, memory_mib=point.peak_memory_mib,
                      throughput_rps=point.throughput_rps, share=load.share,
                      concurrency=point.concurrency, p99_ms=round(load.p99_ms, 2),
                      load_concurrency=load.concurrency, method=method, gpus=gpus,
                      notes=(*notes, *choice.notes, *_load_notes(point, load, sharing), *after),
                      llm=llm, own_slice=own_slice)


def _llm_operating(fleet: Fleet, model: ModelSpec, pool: Pool, sharing: Sharing
                   ) -> _Operating | str:
    """An LLM's cheapest configuration in the pool, its replicas on `tensor_parallel` GPUs."""
    picked = _llm_pick(fleet, model, pool, sharing)
    if isinstance(picked, str):
        return picked
    own_slice, (choice, llm, llm_notes, method) = picked
    return _from_choice(choice, sharing, method, llm.tensor_parallel, notes=llm_notes, llm=llm,
                        own_slice=own_slice)


def _stated_operating(fleet: Fleet, model: ModelSpec, pool: Pool, sharing: Sharing
                      ) -> _Operating | str:
    """A model planned from its stated `resources`: its throughput split over the MPS
    clients, no operating concurrency."""
    assert model.resources is not None and pool.gpu_type is not None
    utilization = fleet.policy.target_utilization
    memory, throughput = model.resources.memory_mib, model.resources.throughput_rps
    clients = sharing.clients if sharing.mode == "mps" else 1
    too_many = _too_many(model, pool.gpu_type, throughput / clients, utilization)
    if too_many:
        return too_many
    replicas = replicas_for(model.traffic.peak_rps, throughput / clients, utilization,
                            model.replicas.min)
    return _Operating(replicas=replicas, memory_mib=memory, throughput_rps=throughput,
                      share=model.traffic.peak_rps / (replicas * throughput), concurrency=None,
                      p99_ms=None, load_concurrency=None, method="stated",
                      gpus=model.gpus_per_replica)


def _profiled_operating(fleet: Fleet, model: ModelSpec, pool: Pool, sharing: Sharing,
                        profile: Profile) -> _Operating | str:
    """A model's operating point on its profile of the pool's GPU type; in a MIG pool on the
    smallest slice with a profile of its own that serves it, else on the whole GPU's."""
    assert pool.gpu_type is not None
    on_slice = _slice_choice(fleet, model, pool) if pool.sharing == "mig" else None
    if isinstance(on_slice, str):
        return on_slice
    if on_slice is not None:
        own_slice, choice, slice_profile = on_slice
        return _from_choice(choice, sharing, slice_profile.method, model.gpus_per_replica,
                            own_slice=own_slice)
    whole_gpu = _choose(model, profile, pool, sharing,
                        memory_limit_mib(fleet.cluster, pool, fleet.policy))
    if isinstance(whole_gpu, str):
        return whole_gpu
    after: tuple[str, ...] = ()
    if pool.sharing == "mig":
        after = (f"MIG slice speed taken from the whole {pool.gpu_type}'s profile (its share "
                 "of compute only); profile the slice types as GPU types of their own "
                 f"({slice_gpu_type(pool.gpu_type, '<slice>')})",)
    return _from_choice(whole_gpu, sharing, profile.method, model.gpus_per_replica,
                        after=after)


def _on_device(fleet: Fleet, pool: Pool, op: _Operating, memory_mib: int
               ) -> tuple[str | None, int] | str:
    """(the MIG slice every replica uses, or None; its compute in thousandths of a GPU), or
    why no slice holds it."""
    assert pool.gpu_type is not None
    compute_milli = math.ceil(round(1000 * op.share, 6))  # rounding first drops float noise
    if op.own_slice is not None:
        # The slice is the replica's own device: its compute share in whole-GPU thousandths,
        # at most what the slice may be filled to.
        kind = fleet.cluster.gpu_types[pool.gpu_type].mig_profiles[op.own_slice]
        return op.own_slice, min(math.ceil(round(1000 * op.share * slice_fraction(kind), 6)),
                                 slice_capacity(kind, fleet.policy)[1])
    if pool.sharing != "mig":
        return None, compute_milli
    mig_slice = smallest_slice(fleet.cluster.gpu_types[pool.gpu_type], fleet.policy,
                               memory_mib, compute_milli)
    if mig_slice is None:
        return (f"no MIG profile of {pool.gpu_type} holds a replica ({memory_mib} MiB, "
                f"{compute_milli} milli-GPU)")
    return mig_slice, compute_milli


def _llm_pick(fleet: Fleet, model: ModelSpec, pool: Pool, sharing: Sharing
              ) -> tuple[str | None, tuple[_Choice, LlmConfig, tuple[str, ...], str]] | str:
    """An LLM's configuration in `pool`; in a MIG pool on the smallest slice that serves it
    (estimated on the slice's own figures), with that slice's name."""
    assert pool.gpu_type is not None  # a CPU pool never takes a model with GPUs
    if pool.sharing != "mig":
        limit = memory_limit_mib(fleet.cluster, pool, fleet.policy)
        found = _llm_choice(model, pool, sharing, limit, pool.gpu_type,
                            _measured(fleet, model, pool.gpu_type))
        return found if isinstance(found, str) else (None, found)
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    kinds = sorted(gpu.mig_profiles.items(), key=lambda kv: (kv[1].compute_slices,
                                                             kv[1].memory_mib, kv[0]))
    misses: list[str] = []
    for name, kind in kinds:
        slice_type = slice_gpu_type(pool.gpu_type, name)
        found = _llm_choice(model, pool, Sharing("mig", fleet.policy.target_utilization, 1),
                            usable_memory_mib(kind.memory_mib, fleet.policy), slice_type,
                            _measured(fleet, model, slice_type))
        if not isinstance(found, str):
            choice, config, notes, method = found
            if misses:
                notes += ("smaller MIG slices fail: " + "; ".join(misses),)
            return name, (choice, config, notes, method)
        misses.append(f"{name}: {found}")
    return "no MIG slice serves it: " + "; ".join(misses)


def llm_curve(fleet: Fleet, model: ModelSpec, pool: Pool, mig_slice: str | None,
              tensor_parallel: int, precision: str) -> Profile | None:
    """The curve an LLM's planned configuration was chosen on (for plan.html's plots)."""
    assert pool.gpu_type is not None  # a CPU pool never takes a model with GPUs
    gpu_type = slice_gpu_type(pool.gpu_type, mig_slice) if mig_slice else pool.gpu_type
    found = [c.profile for c in candidates(model, pool, MAX_MIB_PER_GPU, gpu_type,
                                           _measured(fleet, model, gpu_type))
             if (c.tensor_parallel, c.precision) == (tensor_parallel, precision)]
    return found[0] if found else None


def _measured(fleet: Fleet, model: ModelSpec, gpu_type: str) -> Profile | None:
    """The model's measured generation profile on `gpu_type`, if there is one."""
    found = fleet.profiles.get((model.name, gpu_type))
    if found is None or found.method != "measured" or not found.generation:
        return None
    return found


def _llm_choice(model: ModelSpec, pool: Pool, sharing: Sharing, limit_mib: int,
                gpu_type: str, measured: Profile | None
                ) -> tuple[_Choice, LlmConfig, tuple[str, ...], str] | str:
    """The LLM configuration in `pool` that needs the fewest GPUs (ties: fewer GPUs per
    replica, then more bytes per weight), with what the cheaper ones failed; or why none
    serves."""
    assert model.llm is not None
    options: list[tuple[Candidate, _Choice]] = []
    failed: list[tuple[Candidate, str]] = []
    for candidate in candidates(model, pool, limit_mib, gpu_type, measured):
        if candidate.profile is None:
            failed.append((candidate, candidate.failure or "no estimate"))
            continue
        choice = _choose(candidate.spec, candidate.profile, pool, sharing, limit_mib,
                         _token_check(model, candidate, sharing, gpu_type))
        if isinstance(choice, str):
            failed.append((candidate, choice))
        else:
            options.append((candidate, choice))
    if not options:
        return "no configuration serves it: " + "; ".join(
            f"{c.label}: {why}" for c, why in failed)
    best, choice = min(options, key=lambda o: (o[1].replicas * o[0].tensor_parallel,
                                               o[0].tensor_parallel,
                                               -PRECISION_BYTES[o[0].precision]))
    assert best.profile is not None  # every option has its curve
    gen = best.generation[choice.point.concurrency]
    factor = stretch(sharing, choice.load.share)
    ttft, tpot = gen.ttft_p99_ms * factor, gen.tpot_p99_ms * factor
    config = LlmConfig(tensor_parallel=best.tensor_parallel, precision=best.precision,
                       max_num_seqs=choice.point.concurrency,
                       max_model_len=model.llm.max_context_tokens, step_tokens=STEP_TOKENS,
                       ttft_p99_ms=round(ttft, 2), tpot_p99_ms=round(tpot, 2))
    unit = "GPU(s)" if gpu_type == pool.gpu_type else "MIG slice(s)"
    alone = "" if factor == 1 else \
        f" ({gen.ttft_p99_ms:.4g} ms and {gen.tpot_p99_ms:.3g} ms alone, {_how(sharing)})"
    notes = [f"{best.label}, at most {config.max_num_seqs} sequences of "
             f"{config.max_model_len} tokens: {choice.replicas * best.tensor_parallel} {unit}; "
             f"TTFT p99 {ttft:.4g} ms (SLO {model.llm.slo.ttft_p99_ms:g}), TPOT p99 "
             f"{tpot:.3g} ms (SLO {model.llm.slo.tpot_p99_ms:g}){alone}; "
             f"{best.profile.basis}"]
    too_big = [p for p in best.profile.points if p.concurrency > choice.point.concurrency
               and memory_per_gpu_mib(p.peak_memory_mib, best.tensor_parallel) > limit_mib]
    if too_big:
        notes.append(f"at most {choice.point.concurrency} sequences: {too_big[0].concurrency} of "
                     f"{config.max_model_len} tokens need "
                     f"{memory_per_gpu_mib(too_big[0].peak_memory_mib, best.tensor_parallel):,} "
                     f"MiB per GPU, {limit_mib:,} allowed")
    cheaper = [(c, why) for c, why in failed if _footprint(c) < _footprint(best)]
    if cheaper:
        notes.append("cheaper configurations fail: "
                     + "; ".join(f"{c.label}: {why}" for c, why in reversed(cheaper)))
    costlier = [(c, ch) for c, ch in options if c is not best
                and c.tensor_parallel * ch.replicas > best.tensor_parallel * choice.replicas]
    if costlier:
        c, ch = min(costlier, key=lambda o: o[0].tensor_parallel * o[1].replicas)
        notes.append(f"not {c.label}: {c.tensor_parallel * ch.replicas} {unit}: "
                     + _sizing(model, c, ch, sharing, limit_mib))
    return choice, config, tuple(notes), best.profile.method


def _token_check(model: ModelSpec, candidate: Candidate, sharing: Sharing,
                 device: str) -> Check:
    """TTFT and TPOT at an operating point against the SLO, as sharing stretches them: prefill
    and decode run at the share of the GPU the replica gets (time-slicing: what the co-located
    load leaves it; MPS: 1/clients of the SMs), so both take 1/share as long."""
    assert model.llm is not None
    slo = model.llm.slo

    def check(point: Point, load: Load) -> str | None:
        gen = candidate.generation[point.concurrency]
        factor = stretch(sharing, load.share)
        # rounded first, so that float noise never misses an SLO the figures meet
        ttft, tpot = round(gen.ttft_p99_ms * factor, 6), round(gen.tpot_p99_ms * factor, 6)
        if ttft <= slo.ttft_p99_ms and tpot <= slo.tpot_p99_ms:
            return None
        return (f"TTFT p99 {ttft:.4g} ms and TPOT p99 {tpot:.3g} ms at concurrency "
                f"{point.concurrency} on {device} {_how(sharing)} ({gen.ttft_p99_ms:.4g} ms "
                f"and {gen.tpot_p99_ms:.3g} ms alone; SLO {slo.ttft_p99_ms:g} ms and "
                f"{slo.tpot_p99_ms:g} ms)")

    return check


def _sizing(model: ModelSpec, candidate: Candidate, choice: _Choice, sharing: Sharing,
            limit_mib: int) -> str:
    """How a configuration comes to its GPUs, with the numbers: replicas for the peak, what
    one serves at its operating concurrency, and what stops the next level above it."""
    assert candidate.profile is not None
    point = choice.point
    text = (f"{choice.replicas} replica(s) for the peak of {model.traffic.peak_rps:g} rps at "
            f"{sharing.utilization:.0%} target utilisation, each at most {point.concurrency} "
            f"sequences serving {point.throughput_rps:.4g} rps at a p99 of "
            f"{choice.load.p99_ms:,.0f} ms")
    higher = next((p for p in candidate.profile.points if p.concurrency > point.concurrency),
                  None)
    if higher is None:
        return text
    why = []
    per_gpu = memory_per_gpu_mib(higher.peak_memory_mib, candidate.tensor_parallel)
    if per_gpu > limit_mib:
        why.append(f"{per_gpu:,} MiB per GPU, {limit_mib:,} allowed")
    if higher.p99_ms > model.slo.p99_ms:
        why.append(f"p99 {higher.p99_ms:,.0f} ms, SLO {model.slo.p99_ms:,.0f} ms")
    return text + (f" ({higher.concurrency} sequences: {'; '.join(why)})" if why else "")


def _footprint(candidate: Candidate) -> tuple[int, float]:
    """GPUs per replica, then bytes per weight: the order configurations get cheaper in."""
    return candidate.tensor_parallel, PRECISION_BYTES[candidate.precision]


def _engine_share(fleet: Fleet, pool: Pool, mig_slice: str | None, llm: LlmConfig,
                  memory_mib: int) -> tuple[LlmConfig, int]:
    """The engine's memory preallocation (`gpu_memory_utilization`, a fraction of its device:
    the GPU or its MIG slice) that holds the planned memory, rounded up to the hundredth the
    engines take; the replica is packed at what that fraction grabs, so co-located replicas
    never hold more than their shares."""
    assert pool.gpu_type is not None  # a CPU pool never takes a model with GPUs
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    device_mib = gpu.mig_profiles[mig_slice].memory_mib if mig_slice else gpu.memory_mib
    fraction = min(1.0, math.ceil(round(100 * memory_mib / device_mib, 6)) / 100)
    limit = usable_memory_mib(device_mib, fleet.policy) if mig_slice else \
        memory_limit_mib(fleet.cluster, pool, fleet.policy)
    packed = max(memory_mib, min(math.floor(fraction * device_mib), limit))
    return replace(llm, gpu_memory_utilization=fraction), packed


def _cpu_demand(fleet: Fleet, model: ModelSpec, pool: Pool, rule: str) -> Demand | Rejection:
    """A CPU-only model in a CPU pool: its operating point from its CPU profile (the highest
    stable concurrency whose p99 meets the SLO and whose host memory fits the pod's request; a
    pod has its CPU to itself, so nothing stretches it) or from stated resources; replicas cover
    the peak at the target utilisation; each pod draws only its CPU and memory requests from
    its node."""
    utilization = fleet.policy.target_utilization
    too_large = node_misfit(model, fleet.cluster, pool)
    if too_large is not None:
        return Rejection(model.name, pool.name, f"one replica never fits: {too_large}")
    profile = fleet.profiles.get((model.name, CPU_DEVICE))
    concurrency: int | None = None
    p99: float | None = None
    load_concurrency: float | None = None
    notes: tuple[str, ...] = ()
    if model.resources is not None:
        if (over := host_memory_misfit(model, model.resources.memory_mib)) is not None:
            return Rejection(model.name, pool.name, f"one replica never fits: {over}")
        throughput, method = model.resources.throughput_rps, "stated"
        if (too_many := _too_many(model, CPU_DEVICE, throughput, utilization)) is not None:
            return Rejection(model.name, pool.name, too_many)
        replicas = replicas_for(model.traffic.peak_rps, throughput, utilization,
                                model.replicas.min)
    elif profile is not None:
        choice = _choose(model, profile, pool, Sharing("exclusive", utilization, 1),
                         model.serving.host_memory_mib)
        if isinstance(choice, str):
            return Rejection(model.name, pool.name, choice)
        point, replicas, load = choice.point, choice.replicas, choice.load
        throughput, method = point.throughput_rps, profile.method
        concurrency, p99, load_concurrency = point.concurrency, round(load.p99_ms, 2), \
            load.concurrency
        notes = (*choice.notes, f"{load.rate_rps:.4g} rps per replica on "
                 f"{model.serving.cpu_milli} CPU millicores of its own forms batches of about "
                 f"{load.concurrency:.2g}")
    else:
        return Rejection(model.name, pool.name, f"no profile on {CPU_DEVICE}")
    if model.replicas.max is not None and replicas > model.replicas.max:
        return Rejection(model.name, pool.name,
                         f"needs {replicas} replicas on {CPU_DEVICE} for the peak of "
                         f"{model.traffic.peak_rps:g} rps, replicas.max is {model.replicas.max}")
    return Demand(model=model.name, pool=pool.name, rule=rule, replicas=replicas,
                  gpus_per_replica=0, whole_gpus=False, memory_mib=0, compute_milli=0,
                  cpu_milli=model.serving.cpu_milli,
                  host_memory_mib=model.serving.host_memory_mib, mig_slice=None,
                  max_per_node=max_per_node(fleet.policy, replicas), concurrency=concurrency,
                  throughput_rps=throughput, p99_ms=p99, estimated=method != "measured",
                  method=method, load_concurrency=load_concurrency, notes=notes)


def _slice_choice(fleet: Fleet, model: ModelSpec, pool: Pool
                  ) -> tuple[str, _Choice, Profile] | str | None:
    """In a MIG pool: the smallest slice whose own profile (the slice as a GPU type) gives an
    operating point; why none does; or None when the model has no slice profile."""
    policy = fleet.policy
    assert pool.gpu_type is not None  # only MIG pools have slices
    gpu = fleet.cluster.gpu_types[pool.gpu_type]
    kinds = sorted(gpu.mig_profiles.items(), key=lambda kv: (kv[1].compute_slices,
                                                             kv[1].memory_mib, kv[0]))
    profiled = [(name, kind, found) for name, kind in kinds
                if (found := fleet.profiles.get((model.name,
                                                 slice_gpu_type(pool.gpu_type, name))))]
    if not profiled:
        return None
    sharing = Sharing("mig", policy.target_utilization, 1)
    misses = []
    for name, kind, slice_profile in profiled:
        choice = _choose(model, slice_profile, pool, sharing,
                         usable_memory_mib(kind.memory_mib, policy))
        if isinstance(choice, _Choice):
            return name, choice, slice_profile
        misses.append(f"{name}: {choice}")
    return "no MIG slice serves it: " + "; ".join(misses)


def _load_notes(point: Point, load: Load, sharing: Sharing) -> tuple[str, ...]:
    """What the plan says about a replica's load and latency."""
    notes = [f"{load.rate_rps:.4g} rps per replica forms batches of about "
             f"{load.concurrency:.2g}: {load.share:.1%} of a GPU's time"]
    if load.p99_ms != point.p99_ms:
        notes.append(f"p99 {point.p99_ms:g} ms alone, {load.p99_ms:.3g} ms {_how(sharing)}")
    return tuple(notes)


def derive(fleet: Fleet) -> tuple[dict[str, list[Demand]], dict[str, list[Rejection]]]:
    """Every model's demand in each pool that admits it, and why the other pools cannot."""
    demands: dict[str, list[Demand]] = {}
    rejections: dict[str, list[Rejection]] = {}
    for model in fleet.models.values():
        demands[model.name], rejections[model.name] = [], []
        for pool, rule in fleet.admitting_pools(model):
            if not usable_shapes(pool, model, fleet.policy):
                rejections[model.name].append(Rejection(model.name, pool.name,
                                                        spot_only_reason(model, fleet.policy)))
                continue
            found = pool_demand(fleet, model, pool, rule)
            if isinstance(found, Demand):
                demands[model.name].append(found)
            else:
                rejections[model.name].append(found)
    return demands, rejections
