"""What-if scenarios: the registry as loaded, changed in memory, to be planned next to it.

A scenario is a list of changes, written on the command line as `knob=value` items separated
by commas (`traffic=2x`, `traffic[search]=1.5x,remove-pool=batch-t4`) or in a scenario file
(`planner whatif --file`, YAML, one entry per scenario, the same knobs as keys):

- `traffic=K` (or `Kx`): every model's peak and mean request rate times K; `traffic[NAME]`
  only the model NAME, or else the models of team NAME;
- `remove-pool=POOL`, `remove-gpu=TYPE` (every pool of that GPU type);
- `price=K`x (every pool's node prices times K), `price[POOL]=P` (its own node price P per
  hour) or `price[POOL]=Kx`;
- `headroom=F`, `target-utilization=F`, `max-models-per-gpu=N`, `spread=F` (the policy's
  memory headroom, target utilisation, replicas per GPU and `spread.max_node_share`);
- in a file only: `add_pools` (pools as in cluster.yaml), `add_gpu_types`, `add_instance_types`.

The registry's files are never touched: a scenario is a changed copy of the loaded Fleet.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field

from planner.errors import InputError
from planner.errors import Problem as InputProblem
from planner.registry.fleet import Fleet
from planner.schemas import MAX_MODELS_PER_GPU, GpuType, InstanceType, Name, Pool, SpotOffer
from profiles.schema import MAX_RPS, Strict

MAX_TRAFFIC_FACTOR = 1000.0
MAX_SCENARIOS = 20  # scenarios per whatif, each one more plan to solve
KNOBS = ("traffic", "remove-pool", "remove-gpu", "price", "headroom", "target-utilization",
         "max-models-per-gpu", "spread")

Factor = Annotated[float, Field(gt=0, le=MAX_TRAFFIC_FACTOR)]


class TrafficChange(Strict):
    factor: Factor
    """Peak and mean request rates times this."""
    only: str | None = None
    """A model's name, or else a team's: only its models change; absent: every model."""


class PriceChange(Strict):
    pool: str | None = None
    """The pool whose node prices change; absent: every pool."""
    factor: Factor | None = None
    """Node prices times this."""
    price_per_node_hour: Annotated[float, Field(gt=0)] | None = None
    """The pool's own node price per hour (its other shapes scale alike)."""


class Scenario(Strict):
    """One scenario's changes; every field may be left out."""

    name: str = ""
    """How the side-by-side table heads the scenario; absent: its changes as written."""
    traffic: list[TrafficChange] = []
    remove_pools: list[str] = []
    remove_gpu_types: list[str] = []
    prices: list[PriceChange] = []
    memory_headroom: Annotated[float, Field(ge=0, le=0.9)] | None = None
    target_utilization: Annotated[float, Field(ge=0.01, le=1)] | None = None
    max_models_per_gpu: Annotated[int, Field(ge=1, le=MAX_MODELS_PER_GPU)] | None = None
    max_node_share: Annotated[float, Field(ge=0.01, le=1)] | None = None
    add_gpu_types: dict[Name, GpuType] = {}
    add_instance_types: dict[str, InstanceType] = {}
    add_pools: list[Pool] = []

    @property
    def traffic_factor(self) -> float:
        """The factor of a scenario that scales every model alike (1 otherwise)."""
        factor = 1.0
        for change in self.traffic:
            if change.only is None:
                factor *= change.factor
        return factor

    @property
    def label(self) -> str:
        return self.name or "scenario"


class ScenarioFile(Strict):
    scenarios: Annotated[list[Scenario], Field(min_length=1, max_length=MAX_SCENARIOS)]
    """The scenarios, each planned next to the registry as it is."""


_ITEM = re.compile(r"^\s*([a-z-]+)\s*(?:\[\s*([^\]]+?)\s*\])?\s*=\s*(.+?)\s*$")


def _factor(value: str, knob: str) -> float:
    try:
        factor = float(value.removesuffix("x"))
    except ValueError:
        raise ValueError(f"'{value}' is not a factor; write it as {knob}=2x") from None
    if not 0 < factor <= MAX_TRAFFIC_FACTOR:
        raise ValueError(f"{knob} factor {factor:g} is out of range; it must be above 0 and at "
                         f"most {MAX_TRAFFIC_FACTOR:g}")
    return factor


def _number(value: str, knob: str, low: float, high: float, kind=float) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a number for {knob}") from None
    if not low <= number <= high:
        raise ValueError(f"{knob}={value} is out of range; it must be from {low:g} to {high:g}")
    return number


def parse_scenario(text: str) -> Scenario:
    """`traffic=2x,remove-pool=batch-t4` to a Scenario; ValueError says what is wrong."""
    changes: dict = {"name": text.strip(), "traffic": [], "remove_pools": [],
                     "remove_gpu_types": [], "prices": []}
    for item in text.split(","):
        match = _ITEM.match(item)
        knob = match.group(1) if match else item.partition("=")[0].strip()
        if match is None or knob not in KNOBS:
            raise ValueError(f"unknown knob '{knob}' in '{text.strip()}'; the knobs are "
                             f"{', '.join(KNOBS)}, for example traffic=2x")
        _, target, value = match.groups()
        if target is not None and knob not in ("traffic", "price"):
            raise ValueError(f"{knob} takes no [NAME]; write {knob}={value}")
        if knob == "traffic":
            changes["traffic"].append(TrafficChange(factor=_factor(value, knob), only=target))
        elif knob == "remove-pool":
            changes["remove_pools"].append(value)
        elif knob == "remove-gpu":
            changes["remove_gpu_types"].append(value)
        elif knob == "price" and value.endswith("x") or target is None and knob == "price":
            changes["prices"].append(PriceChange(pool=target, factor=_factor(value, knob)))
        elif knob == "price":
            changes["prices"].append(PriceChange(pool=target, price_per_node_hour=_number(
                value, f"price[{target}]", 1e-9, 1e6)))
        elif knob == "headroom":
            changes["memory_headroom"] = _number(value, knob, 0, 0.9)
        elif knob == "target-utilization":
            changes["target_utilization"] = _number(value, knob, 0.01, 1)
        elif knob == "max-models-per-gpu":
            changes["max_models_per_gpu"] = int(_number(value, knob, 1, MAX_MODELS_PER_GPU, int))
        else:
            changes["max_node_share"] = _number(value, knob, 0.01, 1)
    return Scenario(**changes)


def load_scenarios(path: Path) -> list[Scenario]:
    """The scenarios of a scenario file; problems as an InputError naming file and line."""
    from planner.registry.messages import validate_document
    from planner.registry.yamlsource import read_yaml

    doc = read_yaml(path)
    parsed, problems = validate_document(doc, ScenarioFile)
    if problems:
        raise InputError(problems)
    if parsed is None:
        raise InputError(InputProblem(path, None, None, "not a scenario file"))
    return [s if s.name else s.model_copy(update={"name": f"scenario {i + 1}"})
            for i, s in enumerate(parsed.scenarios)]


def apply_scenario(fleet: Fleet, scenario: Scenario) -> Fleet:
    """A copy of `fleet` with the scenario's changes; ValueError names what does not exist or
    leaves its bounds."""
    fleet = _traffic(fleet, scenario)
    fleet = _pools(fleet, scenario)
    fleet = _prices(fleet, scenario)
    updates: dict[str, object] = {k: v for k, v in (("memory_headroom", scenario.memory_headroom),
                                 ("target_utilization", scenario.target_utilization),
                                 ("max_models_per_gpu", scenario.max_models_per_gpu))
               if v is not None}
    if scenario.max_node_share is not None:
        updates["spread"] = fleet.policy.spread.model_copy(
            update={"max_node_share": scenario.max_node_share})
    if scenario.max_models_per_gpu is not None:
        # The scenario's figure holds in every pool, as the policy's would without overrides.
        pools = [p.model_copy(update={"max_models_per_gpu": None}) for p in fleet.cluster.pools]
        fleet = dataclasses.replace(fleet, cluster=fleet.cluster.model_copy(
            update={"pools": pools}))
    if updates:
        fleet = dataclasses.replace(fleet, policy=fleet.policy.model_copy(update=updates))
    return fleet


def _traffic(fleet: Fleet, scenario: Scenario) -> Fleet:
    teams = {m.team for m in fleet.models.values()}
    for change in scenario.traffic:
        if change.only is not None and change.only not in fleet.models \
                and change.only not in teams:
            raise ValueError(f"traffic[{change.only}]: no model or team of that name")
    models = {}
    for name, model in fleet.models.items():
        factor = 1.0
        for change in scenario.traffic:
            if change.only in (None, name) or (change.only not in fleet.models
                                               and change.only == model.team):
                factor *= change.factor
        peak = model.traffic.peak_rps * factor
        if peak > MAX_RPS:
            raise ValueError(f"{scenario.label} takes {name}'s peak to {peak:g} rps, above "
                             f"the {MAX_RPS:g} rps a model may have")
        mean = model.traffic.mean_rps
        traffic = model.traffic.model_copy(update={
            "peak_rps": peak, "mean_rps": None if mean is None else mean * factor})
        models[name] = model.model_copy(update={"traffic": traffic})
    return dataclasses.replace(fleet, models=models)


def _pools(fleet: Fleet, scenario: Scenario) -> Fleet:
    cluster = fleet.cluster
    names = {p.name for p in cluster.pools}
    for name in scenario.remove_pools:
        if name not in names:
            raise ValueError(f"remove-pool={name}: no such pool; the pools are "
                             f"{', '.join(sorted(names))}")
    for gpu in scenario.remove_gpu_types:
        if gpu not in cluster.gpu_types:
            raise ValueError(f"remove-gpu={gpu}: no such GPU type; the types are "
                             f"{', '.join(sorted(cluster.gpu_types))}")
    gpu_types = {**cluster.gpu_types, **scenario.add_gpu_types}
    instance_types = {**cluster.instance_types, **scenario.add_instance_types}
    for pool in scenario.add_pools:
        if pool.name in names:
            raise ValueError(f"add_pools: pool '{pool.name}' exists already")
        if pool.gpu_type not in gpu_types:
            raise ValueError(f"add_pools: pool '{pool.name}' has GPU type '{pool.gpu_type}', "
                             "neither in cluster.yaml nor in add_gpu_types")
        for shape in pool.shapes():
            if shape.instance_type and shape.instance_type not in instance_types:
                raise ValueError(f"add_pools: pool '{pool.name}' has instance type "
                                 f"'{shape.instance_type}', neither in cluster.yaml nor in "
                                 "add_instance_types")
    pools = [p for p in [*cluster.pools, *scenario.add_pools]
             if p.name not in scenario.remove_pools
             and p.gpu_type not in scenario.remove_gpu_types]
    kept = {p.name for p in pools}
    admission = [rule.model_copy(update={"pools": [p for p in rule.pools if p in kept]})
                 for rule in fleet.policy.admission]
    cluster = cluster.model_copy(update={"pools": pools, "gpu_types": gpu_types,
                                         "instance_types": instance_types})
    return dataclasses.replace(fleet, cluster=cluster, policy=fleet.policy.model_copy(
        update={"admission": admission}))


def _scaled_spot(offer: SpotOffer | None, factor: float) -> SpotOffer | None:
    """A spot offer at `factor` times its price."""
    return None if offer is None else offer.model_copy(update={
        "price_per_node_hour": offer.price_per_node_hour * factor})


def _prices(fleet: Fleet, scenario: Scenario) -> Fleet:
    pools = {p.name: p for p in fleet.cluster.pools}
    for change in scenario.prices:
        if change.pool is not None and change.pool not in pools:
            raise ValueError(f"price[{change.pool}]: no such pool")
    changed = []
    for pool in fleet.cluster.pools:
        factor = 1.0
        for change in scenario.prices:
            if change.pool in (None, pool.name):
                factor *= change.factor if change.factor is not None else \
                    (change.price_per_node_hour or 0) / pool.price_per_node_hour
        if factor != 1.0:
            pool = pool.model_copy(update={
                "price_per_node_hour": pool.price_per_node_hour * factor,
                "spot": _scaled_spot(pool.spot, factor),
                "other_shapes": [s.model_copy(update={
                    "price_per_node_hour": s.price_per_node_hour * factor,
                    "spot": _scaled_spot(s.spot, factor)})
                    for s in pool.other_shapes]})
        changed.append(pool)
    return dataclasses.replace(fleet, cluster=fleet.cluster.model_copy(
        update={"pools": changed}))
