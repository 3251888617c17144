"""What each rule costs: the plan re-solved with one rule relaxed, against the same relaxation
made by hand in the registry's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.demand.to_engine import COST_UNITS_PER_CURRENCY
from planner.pipeline import SolverSettings, make_plan
from planner.planfile import RulePrice, load_plan
from planner.registry.loader import load_registry
from planner.rule_prices import (
    policy_relaxations,
    price_rules,
    shape_catalog,
    shape_relaxations,
    spread_relaxation,
    with_rule_prices,
)
from reports.summary import render_summary
from tests.conftest import edit_yaml

SETTINGS = SolverSettings(seed=0, workers=1)


def _cost(plan) -> int:
    return round(plan.summary.cost_per_hour * COST_UNITS_PER_CURRENCY)


def test_the_reported_saving_is_the_plan_without_the_rule(registry: Path):
    fleet = load_registry(registry)
    plan = make_plan(fleet, SETTINGS)
    spread = next(r for r in policy_relaxations(fleet) if r.rule.startswith("spread"))
    assert spread.rule == "spread (max_node_share 0.5)"
    [priced] = price_rules(fleet, SETTINGS, _cost(plan), [spread])

    edit_yaml(registry / "policy.yaml", lambda d: d["spread"].update(max_node_share=1.0))
    by_hand = make_plan(load_registry(registry), SETTINGS)
    assert (priced.status, by_hand.solver.status) == ("optimal", "optimal")
    assert priced.cost == _cost(by_hand)
    # The demo's MIG models keep two replicas each on one p4de.24xlarge instead of two.
    assert _cost(plan) - priced.cost == 409657


def test_a_conflict_rule_removed_by_hand_costs_what_it_is_priced(registry: Path):
    fleet = load_registry(registry)
    plan = make_plan(fleet, SETTINGS)
    relaxations = [r for r in policy_relaxations(fleet)
                   if r.rule == "conflict interactive-vs-batch"]
    [priced] = price_rules(fleet, SETTINGS, _cost(plan), relaxations)
    edit_yaml(registry / "policy.yaml", lambda d: d.update(conflicts=[
        c for c in d["conflicts"] if c["name"] != "interactive-vs-batch"]))
    assert priced.cost == _cost(make_plan(load_registry(registry), SETTINGS))


def test_one_models_spread_lifted_in_the_engine_matches_a_plan_without_it(registry: Path):
    """Lifting the spread of one model alone: the MIG pool still needs two nodes for the
    other three models, so nothing is saved."""
    fleet = load_registry(registry)
    plan = make_plan(fleet, SETTINGS)
    [priced] = price_rules(fleet, SETTINGS, _cost(plan), [spread_relaxation("query-rewriter")])
    assert (priced.rule, priced.cost, priced.unplaced) == ("spread of query-rewriter",
                                                           _cost(plan), 0)


def test_summary_lists_binding_rules_largest_first(demo_plan_with_prices):
    plan = demo_plan_with_prices
    savings = [r.saves_per_hour for r in plan.rule_prices]
    assert savings == sorted(savings, reverse=True)
    text = render_summary(plan)
    section = text[text.index("## What the rules cost"):]
    binding = [line for line in section.splitlines() if line.startswith("- Relaxing")]
    assert binding[0] == ("- Relaxing **rule a** (lifted) saves 7,300.00 USD per month and "
                          "places 1 more model.")
    assert binding[1] == ("- Relaxing **rule b** (lifted) saves 730.00 USD per month "
                          "(feasible: the saving is at least this).")
    assert "Relaxing these saves nothing: rule c." in section


def test_summary_says_when_a_relaxed_plan_places_fewer_models(demo_plan_with_prices):
    # Relaxing target utilisation can leave a time-sliced model out (its stretch at 100%
    # misses the SLO): the saving then comes with a model fewer, and the line says so.
    price = RulePrice(rule="rule d", relaxed="lifted", saves_per_hour=1.0, placed_more=-1,
                      status="optimal")
    plan = demo_plan_with_prices.model_copy(update={"rule_prices": [price]})
    section = render_summary(plan)
    assert ("- Relaxing **rule d** (lifted) saves 730.00 USD per month and places 1 fewer "
            "model.") in section


@pytest.fixture
def demo_plan_with_prices(greedy_demo_out: Path):
    plan = load_plan(greedy_demo_out / "plan.yaml")
    prices = [RulePrice(rule="rule a", relaxed="lifted", saves_per_hour=10.0, placed_more=1,
                        status="optimal"),
              RulePrice(rule="rule b", relaxed="lifted", saves_per_hour=1.0, status="feasible"),
              RulePrice(rule="rule c", relaxed="lifted", saves_per_hour=0.0, status="optimal")]
    return plan.model_copy(update={"rule_prices": prices})


def test_plan_price_rules_writes_the_section_and_leaves_the_registry(registry: Path, cli,
                                                                      tmp_path: Path):
    before = {p: p.read_bytes() for p in registry.rglob("*") if p.is_file()}
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--price-rules",
                 "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## What the rules cost" in summary
    plan = load_plan(tmp_path / "out" / "plan.yaml")
    # The budget: 14 policy rules (2 of them node shapes), then 2 models' spread.
    assert len(plan.rule_prices) == 16
    assert {p: p.read_bytes() for p in registry.rglob("*") if p.is_file()} == before


def test_with_rule_prices_keeps_the_plan(registry: Path):
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    priced = with_rule_prices(plan, fleet, SolverSettings(method="greedy"))
    assert priced.model_copy(update={"rule_prices": []}) == plan
    assert priced.rule_prices and all(r.status == "greedy" for r in priced.rule_prices)


def test_a_pools_node_shapes_priced_as_the_shape_added_by_hand(registry: Path):
    """The shared L4 pool may also buy the 1-GPU g6.xlarge the exclusive L4 pool lists: the
    reported saving is the plan with that shape written into cluster.yaml."""
    fleet = load_registry(registry)
    relaxations = shape_relaxations(fleet)
    assert [(r.rule, r.relaxed) for r in relaxations] == [
        ("node shapes of shared-l4", "may also buy 1-GPU g6.xlarge nodes"),
        ("node shapes of exclusive-l4", "may also buy 4-GPU g6.12xlarge nodes")]
    plan = make_plan(fleet, SETTINGS)
    [priced] = price_rules(fleet, SETTINGS, _cost(plan), relaxations[:1])

    edit_yaml(registry / "cluster.yaml", lambda d: next(
        p for p in d["pools"] if p["name"] == "shared-l4").update(other_shapes=[
            {"instance_type": "g6.xlarge", "gpus_per_node": 1, "price_per_node_hour": 0.8048}]))
    by_hand = make_plan(load_registry(registry), SETTINGS)
    assert priced.cost == _cost(by_hand) < _cost(plan)
    assert priced.unplaced == by_hand.summary.unplaced == plan.summary.unplaced
    assert {s.instance_type for s in next(
        p for p in by_hand.pools if p.name == "shared-l4").chosen_shapes} >= {"g6.xlarge"}


def test_mig_and_lone_gpu_types_have_no_shape_relaxation(registry: Path):
    """The A100 pool is MIG (one layout per node) and the H100 and T4 pools are the only pools
    of their GPU types: nothing to offer them."""
    fleet = load_registry(registry)
    for name in ("mig-a100", "dedicated-h100", "batch-t4"):
        assert shape_catalog(fleet, fleet.pool(name)) == []


def test_a_relaxation_that_places_a_model_ranks_before_a_larger_saving(registry: Path,
                                                                        monkeypatch):
    """A relaxation that places a model left out comes first, whatever the others save; one
    that leaves a model out comes after every pure saving."""
    import planner.rule_prices as rule_prices
    from planner.rule_prices import RuleCost

    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    base = _cost(plan)
    unplaced = plan.summary.unplaced
    costs = [RuleCost("saves much", "lifted", base - 50_000, unplaced, "optimal"),
             RuleCost("places one", "lifted", base - 10, unplaced - 1, "optimal"),
             RuleCost("saves most, leaves one out", "lifted", base - 90_000, unplaced + 1,
                      "optimal"),
             RuleCost("saves little", "lifted", base - 100, unplaced, "optimal")]
    monkeypatch.setattr(rule_prices, "price_rules", lambda *args, **kwargs: costs)
    priced = with_rule_prices(plan, fleet, SolverSettings(method="greedy"))
    order = ["places one", "saves much", "saves little", "saves most, leaves one out"]
    assert [r.rule for r in priced.rule_prices] == order

    shuffled = priced.model_copy(update={"rule_prices": priced.rule_prices[::-1]})
    section = render_summary(shuffled)
    lines = [line for line in section[section.index("## What the rules cost"):].splitlines()
             if line.startswith("- Relaxing")]
    assert [line.split("**")[1] for line in lines] == order
    assert lines[0].endswith("places 1 more model.")

    from rich.console import Console

    from reports.tables import plan_tables

    console = Console(record=True, width=200)
    for table in plan_tables(shuffled):
        console.print(table)
    text = console.export_text()
    table = text[text.index("What the rules cost"):]
    assert [table.index(rule) for rule in order] == sorted(table.index(rule) for rule in order)
    row = next(line for line in table.splitlines() if "places one" in line)
    assert "+1" in row and "optimal" in row
