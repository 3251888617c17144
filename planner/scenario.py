"""What-if scenarios: the registry as loaded, changed in memory, to be planned next to it.

`traffic=2x` multiplies every model's peak (and mean) request rate by 2. The registry's files
are never touched: a scenario is a changed copy of the loaded Fleet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from planner.registry.fleet import Fleet
from profiles.schema import MAX_RPS

MAX_TRAFFIC_FACTOR = 1000.0


@dataclass(frozen=True)
class Scenario:
    traffic_factor: float  # every model's peak and mean rps times this

    @property
    def label(self) -> str:
        return f"traffic={self.traffic_factor:g}x"


def parse_scenario(text: str) -> Scenario:
    """`traffic=2x` (or `traffic=2`) to a Scenario; ValueError says what is wrong."""
    knob, _, value = text.partition("=")
    if knob.strip() != "traffic":
        raise ValueError(f"unknown knob '{knob.strip()}' in '{text}'; the knob is traffic, "
                         "for example traffic=2x")
    try:
        factor = float(value.strip().removesuffix("x"))
    except ValueError:
        raise ValueError(f"'{value.strip()}' is not a factor; write it as traffic=2x") from None
    if not 0 < factor <= MAX_TRAFFIC_FACTOR:
        raise ValueError(f"traffic factor {factor:g} is out of range; it must be above 0 and "
                         f"at most {MAX_TRAFFIC_FACTOR:g}")
    return Scenario(traffic_factor=factor)


def apply_scenario(fleet: Fleet, scenario: Scenario) -> Fleet:
    """A copy of `fleet` with the scenario's changes; ValueError when a rate leaves its bounds."""
    models = {}
    for name, model in fleet.models.items():
        peak = model.traffic.peak_rps * scenario.traffic_factor
        if peak > MAX_RPS:
            raise ValueError(f"{scenario.label} takes {name}'s peak to {peak:g} rps, above "
                             f"the {MAX_RPS:g} rps a model may have")
        mean = model.traffic.mean_rps
        traffic = model.traffic.model_copy(update={
            "peak_rps": peak, "mean_rps": None if mean is None else mean * scenario.traffic_factor})
        models[name] = model.model_copy(update={"traffic": traffic})
    return dataclasses.replace(fleet, models=models)
