"""`planner whatif`: scenarios as flags or a file, planned side by side, the registry untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.pipeline import SolverSettings, make_plan
from planner.planfile import load_plan
from planner.registry.loader import load_registry
from planner.scenario import (
    PriceChange,
    TrafficChange,
    apply_scenario,
    load_scenarios,
    parse_scenario,
)
from tests.test_scenario import _files


def test_parse_every_knob():
    scenario = parse_scenario("traffic[search]=1.5x, price[shared-l4]=3.5,price=0.9x,"
                              "remove-pool=batch-t4,remove-gpu=t4,headroom=0.2,"
                              "target-utilization=0.9,max-models-per-gpu=4,spread=1")
    assert scenario.traffic == [TrafficChange(factor=1.5, only="search")]
    assert scenario.prices == [PriceChange(pool="shared-l4", price_per_node_hour=3.5),
                               PriceChange(factor=0.9)]
    assert (scenario.remove_pools, scenario.remove_gpu_types) == (["batch-t4"], ["t4"])
    assert (scenario.memory_headroom, scenario.target_utilization, scenario.max_models_per_gpu,
            scenario.max_node_share) == (0.2, 0.9, 4, 1.0)


@pytest.mark.parametrize(("text", "message"), [
    ("headroom=2", "headroom=2 is out of range; it must be from 0 to 0.9"),
    ("spread=half", "'half' is not a number for spread"),
    ("remove-pool[x]=y", "remove-pool takes no [NAME]; write remove-pool=y"),
    ("price=-1x", "price factor -1 is out of range; it must be above 0 and at most 1000"),
])
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as caught:
        parse_scenario(text)
    assert str(caught.value) == message


def test_apply_scales_one_team_one_model_and_prices(registry: Path):
    fleet = load_registry(registry)
    changed = apply_scenario(fleet, parse_scenario(
        "traffic[search]=2x,traffic[llm-chat-70b]=3x,price[shared-l4]=9.2032,price=0.5x"))
    for name, model in fleet.models.items():
        factor = (2 if model.team == "search" else 1) * (3 if name == "llm-chat-70b" else 1)
        assert changed.models[name].traffic.peak_rps == model.traffic.peak_rps * factor
    prices = {p.name: p.price_per_node_hour for p in changed.cluster.pools}
    assert prices["shared-l4"] == pytest.approx(9.2032 * 0.5)  # its own price, then halved
    assert prices["batch-t4"] == pytest.approx(3.912 * 0.5)
    assert fleet.pool("shared-l4").price_per_node_hour == 4.6016  # the loaded fleet as it was


def test_apply_removes_pools_and_their_admission(registry: Path):
    fleet = load_registry(registry)
    changed = apply_scenario(fleet, parse_scenario("remove-gpu=t4,remove-pool=exclusive-l4"))
    assert {p.name for p in changed.cluster.pools} == {"shared-l4", "mig-a100",
                                                       "dedicated-h100"}
    assert all(set(r.pools) <= {"shared-l4", "mig-a100", "dedicated-h100"}
               for r in changed.policy.admission)


@pytest.mark.parametrize(("text", "message"), [
    ("remove-pool=nope", "remove-pool=nope: no such pool; the pools are batch-t4, "
                         "dedicated-h100, exclusive-l4, mig-a100, shared-l4"),
    ("traffic[nobody]=2x", "traffic[nobody]: no model or team of that name"),
    ("price[nope]=2", "price[nope]: no such pool"),
])
def test_apply_errors_name_what_does_not_exist(registry: Path, text, message):
    with pytest.raises(ValueError) as caught:
        apply_scenario(load_registry(registry), parse_scenario(text))
    assert str(caught.value) == message


def test_traffic_x2_side_by_side_in_one_command(registry: Path, cli, tmp_path: Path):
    """The done-when of the what-if: one command, one table, the registry untouched."""
    files = _files(registry)
    result = cli("whatif", "--registry", registry, "--solver", "greedy", "-s", "traffic=2x",
                 "--format", "json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert _files(registry) == files
    rows = json.loads(result.stdout)
    assert [r["scenario"] for r in rows] == ["as is", "traffic=2x"]
    fleet = load_registry(registry)
    settings = SolverSettings(method="greedy")
    as_is = make_plan(fleet, settings)
    doubled = make_plan(apply_scenario(fleet, parse_scenario("traffic=2x")), settings)
    assert rows[0]["cost_per_month"] == str(as_is.summary.cost_per_month)
    assert rows[1]["cost_per_month"] == str(doubled.summary.cost_per_month)
    assert rows[1]["change_per_month"] == str(doubled.summary.cost_per_month
                                              - as_is.summary.cost_per_month)
    # At twice the traffic every model still has room (the LLMs, sized in tokens, leave
    # H100s free), so none is unplaced.
    assert (rows[1]["gpus"], rows[1]["unplaced"]) == (doubled.summary.gpus, 0)
    assert doubled.unplaced == []
    assert "llm-chat-70b" in rows[1]["changed_models"]
    assert rows[0]["changed_models"] == []
    written = load_plan(tmp_path / "out" / "traffic-2x" / "plan.yaml")
    assert written.summary.cost_per_month == doubled.summary.cost_per_month
    assert (tmp_path / "out" / "as-is" / "summary.md").is_file()

    table = cli("whatif", "--registry", registry, "--solver", "greedy", "-s",
                "traffic[search]=2x")
    assert table.exit_code == 0
    assert "traffic[search]=2x" in table.stdout  # registry text is not console markup
    assert _files(registry) == files


def test_scenario_file(registry: Path, cli, tmp_path: Path):
    path = tmp_path / "scenarios.yaml"
    path.write_text("scenarios:\n"
                    "  - name: bigger L4 pool\n"
                    "    add_instance_types:\n"
                    "      g6.4xlarge: {cpu_milli: 16000, memory_mib: 65536,\n"
                    "                   reserved: {cpu_milli: 360, memory_mib: 6993}}\n"
                    "    add_pools:\n"
                    "      - {name: small-l4, gpu_type: l4, class: shared, sharing: exclusive,\n"
                    "         instance_type: g6.4xlarge, gpus_per_node: 1,\n"
                    "         price_per_node_hour: 1.3232, max_nodes: 4}\n"
                    "  - traffic: [{factor: 0.5}]\n")
    [bigger, halved] = load_scenarios(path)
    assert (bigger.label, halved.label, halved.traffic_factor) == ("bigger L4 pool",
                                                                   "scenario 2", 0.5)
    changed = apply_scenario(load_registry(registry), bigger)
    assert changed.pool("small-l4").instance_type == "g6.4xlarge"
    result = cli("whatif", "--registry", registry, "--solver", "greedy", "--file", path,
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["scenario"] for r in json.loads(result.stdout)] == ["as is", "bigger L4 pool",
                                                                  "scenario 2"]


@pytest.mark.parametrize(("content", "message"), [
    ("scenarios:\n  - traffic: [{factor: 0}]\n",
     "scenarios.yaml:2: scenarios[0].traffic[0].factor"),
    ("scenarios:\n  - name: x\n    remove_pool: [a]\n",
     "scenarios.yaml:3: scenarios[0].remove_pool"),
])
def test_bad_scenario_file_is_exit_2_at_its_line(registry: Path, cli, tmp_path: Path, content,
                                                 message):
    path = tmp_path / "scenarios.yaml"
    path.write_text(content)
    result = cli("whatif", "--registry", registry, "--file", path)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    ([], "no scenario: give --scenario KNOB=VALUE (for example traffic=2x) or --file "
         "SCENARIOS.yaml"),
    (["-s", "traffic=x2"], "--scenario: 'x2' is not a factor; write it as traffic=2x"),
    (["-s", "remove-pool=nope"], "scenario 'remove-pool=nope': remove-pool=nope: no such pool"),
])
def test_bad_scenario_flags_are_exit_2(registry: Path, cli, args, message):
    result = cli("whatif", "--registry", registry, *args)
    assert result.exit_code == 2
    assert message in result.stderr
