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
    assert len(plan.rule_prices) == 16  # the budget: 12 policy rules, then 4 models' spread
    assert {p: p.read_bytes() for p in registry.rglob("*") if p.is_file()} == before


def test_with_rule_prices_keeps_the_plan(registry: Path):
    fleet = load_registry(registry)
    plan = make_plan(fleet, SolverSettings(method="greedy"))
    priced = with_rule_prices(plan, fleet, SolverSettings(method="greedy"))
    assert priced.model_copy(update={"rule_prices": []}) == plan
    assert priced.rule_prices and all(r.status == "greedy" for r in priced.rule_prices)
