"""Money: Decimal amounts rounded once to the currency's minor unit, the same in every document.

The expectations are derived from the plan's ledger, never hard-coded totals: summary.md,
cost.csv, `planner report` and the pod annotations must show the ledger's amounts, on the demo
(USD, two digits) and on the demo priced in yen (no minor unit).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from planner import money
from planner.ledger import ledger
from planner.planfile import load_plan
from reports.format import money as format_money


def test_minor_units_come_from_iso_4217():
    assert [money.minor_unit(c) for c in ("USD", "EUR", "JPY", "BHD")] == [2, 2, 0, 3]
    with pytest.raises(ValueError, match="'XYZ' is not an ISO 4217 currency code; write"):
        money.minor_unit("XYZ")
    with pytest.raises(ValueError, match="'XAU' has no minor unit"):
        money.minor_unit("XAU")


def test_rounding_is_half_away_from_zero_at_the_minor_unit():
    assert money.rounded(Decimal("70510.525"), "USD") == Decimal("70510.53")
    assert money.rounded(Decimal("67.5"), "JPY") == Decimal("68")
    assert money.rounded(0.1 + 0.2, "USD") == Decimal("0.30")
    assert format_money(Decimal("1234.5"), "JPY") == "1,235 JPY"
    assert format_money(Decimal("-3.1"), "USD", sign=True) == "-3.10 USD"


@given(st.lists(st.decimals(min_value=0, max_value=10**7, places=6), min_size=1,
                max_size=60),
       st.sampled_from(["USD", "JPY", "BHD"]))
def test_apportioned_parts_add_up_and_stay_within_one_unit(amounts, currency):
    parts = money.apportion(amounts, currency)
    unit = money.quantum(currency)
    assert sum(parts) == money.total(amounts, currency)
    assert all(p == p.quantize(unit) for p in parts)
    assert all(abs(p - a) < unit for p, a in zip(parts, amounts, strict=True))


def test_an_unknown_currency_in_planner_yaml_exits_2(cli, registry: Path):
    (registry / "planner.yaml").write_text("currency: XYZ\n")
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {registry}/planner.yaml:1: currency: 'XYZ' is not an "
                             "ISO 4217 currency code; write one such as USD, EUR or JPY\n")


@pytest.fixture(scope="module", params=["demo", "jpy"])
def out(request, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from planner.cli import app
    from planner.registry.locate import write_demo
    from tests.conftest import write_jpy_demo

    registry = tmp_path_factory.mktemp(request.param) / "registry"
    (write_jpy_demo if request.param == "jpy" else write_demo)(registry)
    folder = registry.parent / "out"
    result = CliRunner().invoke(app, ["plan", "--registry", str(registry), "--seed", "0",
                                      "--time-limit", "2", "--out", str(folder)])
    assert result.exit_code == 0, result.stderr
    return folder


def _table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the table under `## heading` (header and separator dropped)."""
    block = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_summary_csv_and_report_agree_to_the_minor_unit(out: Path, cli):
    plan = load_plan(out / "plan.yaml")
    cur = plan.summary.currency
    costs = ledger(plan)
    rows = list(csv.DictReader((out / "cost.csv").open()))
    summary = (out / "summary.md").read_text()

    csv_by = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        amount = Decimal(row["EffectiveCost"])
        csv_by["team"][row["x_Team"] or "(idle capacity)"] += amount
        csv_by["pool"][row["x_Pool"]] += amount
        if row["x_Model"]:
            csv_by["model"][row["x_Model"]] += amount
        else:
            csv_by["idle"][row["x_Pool"]] += amount
    assert sum(csv_by["pool"].values()) == costs.total == plan.summary.cost_per_month
    assert f"**Cost:** {format_money(costs.total, cur)} per month" in summary

    teams = {r[0]: r[3] for r in _table(summary, "Cost by team")}
    assert teams == {t: format_money(a, cur) for t, a in csv_by["team"].items()}
    pools = {r[0]: (r[7], r[8]) for r in _table(summary, "Pools") if r[3] != "0"}
    assert pools == {p: (format_money(a, cur), format_money(csv_by["idle"][p], cur))
                     for p, a in csv_by["pool"].items()}
    models = {r[0]: r[7] for r in _table(summary, "Models")}
    assert models == {m: format_money(a, cur) for m, a in csv_by["model"].items()}

    for group in ("team", "pool", "model"):
        result = cli("report", "--plan", out / "plan.yaml", "--group-by", group,
                     "--format", "csv")
        assert result.exit_code == 0, result.stderr
        reported = {r[group]: Decimal(r["cost_per_month"])
                    for r in csv.DictReader(io.StringIO(result.stdout))}
        expected = dict(csv_by[group])
        if group == "team":
            expected.pop("(idle capacity)")
            expected.update({f"(idle) {p}": a for p, a in csv_by["idle"].items()})
        elif group == "model":
            expected.update({f"(idle) {p}": a for p, a in csv_by["idle"].items()})
        assert reported == expected
    as_json = json.loads(cli("report", "--plan", out / "plan.yaml", "--format", "json").stdout)
    assert as_json["currency"] == cur


def test_amounts_are_written_to_the_currency_minor_unit(out: Path):
    plan = load_plan(out / "plan.yaml")
    digits = money.minor_unit(plan.summary.currency)
    amount = re.compile(rf"[\d,]+\.\d{{{digits}}} " if digits else r"[\d,]+ ")
    summary = (out / "summary.md").read_text()
    written = re.findall(r"([\d,]+(?:\.\d+)?) " + plan.summary.currency + r" per month", summary)
    assert written and all(amount.fullmatch(w + " ") for w in written)
    for row in csv.DictReader((out / "cost.csv").open()):
        assert money.rounded(Decimal(row["EffectiveCost"]), plan.summary.currency) \
            == Decimal(row["EffectiveCost"])


def test_pod_annotation_is_one_pods_share(out: Path):
    plan = load_plan(out / "plan.yaml")
    # a lazy cache's servers pay what its members are charged, in one Deployment
    workloads = [(f"models/{m.name}", m.replicas, m.cost_per_hour) for m in plan.models
                 if m.cache is None]
    workloads += [(f"caches/{c.workload}", c.servers, c.cost_per_hour) for p in plan.pools
                  for c in p.caches if c.reserved and c.placed and c.server is not None]
    assert len(workloads) > len([m for m in plan.models if m.cache is None])
    for path, pods, cost_per_hour in workloads:
        deployment = next(yaml.safe_load_all((out / "manifests" / f"{path}.yaml").read_text()))
        per_pod = Decimal(deployment["metadata"]["annotations"]
                          [next(k for k in deployment["metadata"]["annotations"]
                                if k.endswith("/cost-per-hour"))])
        assert abs(per_pod * pods - money.decimal(cost_per_hour)) <= Decimal("0.00005") * pods


def test_diff_and_check_tables_show_the_same_amounts(out: Path, cli):
    """`diff` (and so `check`, which renders the same diff) against the plan itself: every
    team's, pool's and idle amount is the one cost.csv adds up to, in JSON and in markdown."""
    plan = load_plan(out / "plan.yaml")
    cur = plan.summary.currency
    rows = list(csv.DictReader((out / "cost.csv").open()))
    teams, pools = defaultdict(Decimal), defaultdict(Decimal)
    idle = Decimal(0)
    for row in rows:
        amount = Decimal(row["EffectiveCost"])
        pools[row["x_Pool"]] += amount
        if row["x_Team"]:
            teams[row["x_Team"]] += amount
        else:
            idle += amount
    result = cli("diff", out / "plan.yaml", out / "plan.yaml", "--format", "json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert {t["name"]: Decimal(str(t["after"])) for t in body["teams"]} == teams
    assert {p["name"]: Decimal(str(p["after"])) for p in body["pools"]} == pools
    assert Decimal(str(body["idle"]["after"])) == idle
    assert Decimal(str(body["total"]["after"])) == sum(teams.values()) + idle
    markdown = cli("diff", out / "plan.yaml", out / "plan.yaml", "--format", "markdown").stdout
    assert (f"| **total** | {format_money(plan.summary.cost_per_month, cur)} | "
            f"{format_money(plan.summary.cost_per_month, cur)} |") in markdown
