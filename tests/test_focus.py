"""cost.csv against the FOCUS 1.2 column requirements (tests/data/focus, from the FinOps
Foundation's validator): presence, types, formats, allowed values, nullability, and the
price x quantity = cost identities, on the demo and on a registry priced in yen.

`scripts/focus_validate.sh` runs the validator itself; this test needs neither it nor a network.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import iso4217
import pytest

from planner.ledger import ledger
from planner.planfile import load_plan
from reports.focus import FOCUS_COLUMNS, FOCUS_CRITERIA, render_cost_csv, tag_prefix

REQUIREMENTS = json.loads((Path(__file__).parent / "data" / "focus" /
                           "focus-1.2-cost-and-usage.json").read_text())["columns"]
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
#: what the validator tolerates between a unit price x quantity and its cost
RELATIVE_TOLERANCE = Decimal("1e-9")


@pytest.fixture(scope="module", params=["demo", "jpy", "discounted", "cpu", "spot-offer"])
def plan(request, tmp_path_factory):
    from typer.testing import CliRunner

    from planner.cli import app
    from planner.registry.locate import write_demo
    from tests.conftest import add_cpu_pool, write_jpy_demo
    from tests.test_pricing import write_discounted_demo, write_spot_offer_demo

    registry = tmp_path_factory.mktemp(request.param) / "registry"
    {"jpy": write_jpy_demo, "discounted": write_discounted_demo,
     "spot-offer": write_spot_offer_demo}.get(request.param, write_demo)(registry)
    if request.param == "cpu":  # a CPU pool's rows are priced in node-hours
        add_cpu_pool(registry)
    out = registry.parent / "out"
    result = CliRunner().invoke(app, ["plan", "--registry", str(registry), "--seed", "0",
                                      "--period", "2026-12", "--time-limit", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return load_plan(out / "plan.yaml")


@pytest.fixture(scope="module")
def rows(plan) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render_cost_csv(plan, "2026-12"))))


def _required(spec: dict) -> bool:
    return spec["presence"] == "mandatory" or (
        spec["presence"] == "conditional" and set(spec["when"]) <= set(FOCUS_CRITERIA))


def test_every_required_and_recommended_column_is_there(rows):
    header = list(rows[0])
    missing = [name for name, spec in REQUIREMENTS.items()
               if (_required(spec) or spec["presence"] == "recommended") and name not in header]
    assert missing == []
    assert header[:len(FOCUS_COLUMNS)] == FOCUS_COLUMNS
    unknown = [c for c in header if c not in REQUIREMENTS and not c.startswith("x_")]
    assert unknown == []


def _check(kind: str, value: str) -> bool:
    if kind == "Decimal" or kind == "Numeric":
        try:  # plain notation, and a decimal point so that a CSV reader takes it for one
            return Decimal(value).is_finite() and "e" not in value.lower() and (
                kind == "Numeric" or "." in value)
        except InvalidOperation:
            return False
    if kind == "DateTime":
        return bool(DATETIME.match(value))
    if kind == "KeyValue":
        return isinstance(json.loads(value), dict)
    if kind == "Currency":
        return value in iso4217.raw_table
    return True  # String


def test_values_have_their_types_formats_and_allowed_values(rows):
    problems = []
    for number, row in enumerate(rows, start=2):
        for name, value in row.items():
            spec = REQUIREMENTS.get(name)
            if spec is None:
                continue
            if value == "":
                if spec.get("not_null"):
                    problems.append(f"line {number}: {name} is empty")
                continue
            for kind in (spec.get("type"), spec.get("format")):
                if kind and not _check(kind, value):
                    problems.append(f"line {number}: {name}={value!r} is not {kind}")
            if "allowed" in spec and value not in spec["allowed"]:
                problems.append(f"line {number}: {name}={value!r} is not allowed")
    assert problems == []


def test_unit_price_times_quantity_is_the_cost(rows):
    for row in rows:
        quantity = Decimal(row["PricingQuantity"])
        for price, cost in (("ListUnitPrice", "ListCost"),
                            ("ContractedUnitPrice", "ContractedCost")):
            product, amount = Decimal(row[price]) * quantity, Decimal(row[cost])
            assert abs(product - amount) <= RELATIVE_TOLERANCE * max(abs(amount), 1)


def test_a_forecast_is_not_invoiced(rows, plan):
    assert {row["BilledCost"] for row in rows} == {f"{Decimal(0):.{max(_digits(plan), 1)}f}"}
    assert {row["InvoiceId"] for row in rows} == {""}
    assert {row["ChargeClass"] for row in rows} == {""}  # no corrections


def _digits(plan) -> int:
    return iso4217.Currency(plan.summary.currency).exponent


def test_amounts_are_in_minor_units_and_add_up(rows, plan):
    digits = _digits(plan)
    for row in rows:
        for column in ("ListCost", "ContractedCost", "EffectiveCost", "BilledCost"):
            # a decimal point always (Decimal type); JPY amounts are whole yen: 68.0
            assert re.fullmatch(rf"\d+\.\d{{{digits}}}" if digits else r"\d+\.0", row[column])
    assert sum(Decimal(row["EffectiveCost"]) for row in rows) == ledger(plan).total \
        == plan.summary.cost_per_month


def test_tags_the_planner_defines_carry_its_prefix(rows, plan):
    user_keys = {"team", "priority"} | {k for m in plan.models for k in m.labels}
    prefix = tag_prefix(plan)
    assert prefix == f"{plan.metadata.label_domain}/"
    for row in rows:
        tags = json.loads(row["Tags"])
        assert all(key in user_keys or key.startswith(prefix) for key in tags)
        assert all(not key.startswith(prefix) for key in tags if key in user_keys)
        if row["ResourceId"].endswith("/idle"):
            assert tags[f"{prefix}idle"] is True


def test_billing_settings_come_from_planner_yaml(registry, cli, tmp_path):
    from tests.conftest import edit_yaml

    edit_yaml(registry / "planner.yaml", lambda d: d.update(billing={
        "account_id": "acct-42", "account_name": "Research", "provider": "Example Cloud",
        "publisher": "Example Cloud", "invoice_issuer": "Example Cloud"}))
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--time-limit", "2")
    assert result.exit_code == 0, result.stderr
    [row, *_] = csv.DictReader((tmp_path / "out" / "cost.csv").open())
    assert (row["BillingAccountId"], row["BillingAccountName"], row["ProviderName"],
            row["PublisherName"], row["InvoiceIssuerName"]) == (
        "acct-42", "Research", "Example Cloud", "Example Cloud", "Example Cloud")
