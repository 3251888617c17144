"""What-if scenarios: `planner plan --scenario traffic=2x` against the registry as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.planfile import load_plan
from planner.registry.loader import load_registry
from planner.scenario import Scenario, TrafficChange, apply_scenario, parse_scenario
from tests.conftest import edit_yaml


@pytest.mark.parametrize(("text", "factor"), [("traffic=2x", 2.0), ("traffic=0.5", 0.5),
                                              (" traffic = 1.5x ", 1.5)])
def test_parse(text, factor):
    scenario = parse_scenario(text)
    assert scenario.traffic_factor == factor
    assert scenario == Scenario(name=text.strip(), traffic=[TrafficChange(factor=factor)])


@pytest.mark.parametrize(("text", "message"), [
    ("load=2x", "unknown knob 'load' in 'load=2x'; the knobs are traffic, remove-pool, "
                "remove-gpu, price, headroom, target-utilization, max-models-per-gpu, spread, "
                "for example traffic=2x"),
    ("traffic=double", "'double' is not a factor; write it as traffic=2x"),
    ("traffic=0x", "traffic factor 0 is out of range; it must be above 0 and at most 1000"),
    ("traffic=1001", "traffic factor 1001 is out of range; it must be above 0 and at most 1000"),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as caught:
        parse_scenario(text)
    assert str(caught.value) == message


def test_apply_scales_peak_and_mean_and_leaves_the_fleet(registry: Path):
    fleet = load_registry(registry)
    changed = apply_scenario(fleet, parse_scenario("traffic=2x"))
    before, after = fleet.models["llm-chat-70b"].traffic, changed.models["llm-chat-70b"].traffic
    assert (before.peak_rps, before.mean_rps) == (2, 0.5)
    assert (after.peak_rps, after.mean_rps) == (4, 1.0)
    assert changed.models.keys() == fleet.models.keys()
    assert all(changed.models[n].traffic.peak_rps == 2 * m.traffic.peak_rps
               for n, m in fleet.models.items())


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_scenario_diff_equals_plan_and_diff_by_hand(cli, registry: Path, tmp_path: Path):
    """One command gives what copying the registry, editing it, planning twice and `planner
    diff` give, and the registry stays as it was."""
    files = _files(registry)
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--scenario",
                 "traffic=4x", "--format", "json", "--out", tmp_path / "whatif")
    assert _files(registry) == files
    # the demo's llm-chat-70b does not fit the H100 pool at four times its traffic
    assert result.exit_code == 1
    assert "unplaced: llm-chat-70b (internal)" in result.stderr
    whatif = json.loads(result.stdout)

    quadrupled = tmp_path / "quadrupled"
    quadrupled.mkdir()
    for path, content in files.items():
        (quadrupled / path).parent.mkdir(parents=True, exist_ok=True)
        (quadrupled / path).write_bytes(content)
    for model in (quadrupled / "models").glob("*.yaml"):
        edit_yaml(model, lambda data: data["traffic"].update(
            {k: 4 * v for k, v in data["traffic"].items()}))
    assert cli("plan", "--registry", registry, "--solver", "greedy", "--out",
               tmp_path / "before").exit_code == 0
    assert cli("plan", "--registry", quadrupled, "--solver", "greedy", "--out",
               tmp_path / "after").exit_code == 1
    by_hand = cli("diff", tmp_path / "before" / "plan.yaml", tmp_path / "after" / "plan.yaml",
                  "--format", "json")
    assert by_hand.exit_code == 0
    assert whatif == json.loads(by_hand.stdout)
    assert whatif["total"]["after"] > whatif["total"]["before"]
    chat = next(m for m in whatif["models"] if m["name"] == "llm-chat-70b")
    assert chat["kinds"] == ["unplaced"]
    # --out holds the changed plan
    exclude = {"metadata": {"registry"}, "solver": {"seconds"}}
    assert load_plan(tmp_path / "whatif" / "plan.yaml").model_dump(exclude=exclude) == \
        load_plan(tmp_path / "after" / "plan.yaml").model_dump(exclude=exclude)


def test_bad_scenario_is_exit_2(cli, registry: Path):
    result = cli("plan", "--registry", registry, "--scenario", "traffic=x2")
    assert result.exit_code == 2
    assert "--scenario: 'x2' is not a factor; write it as traffic=2x" in result.stderr
