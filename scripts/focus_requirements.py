"""Extract the FOCUS 1.2 cost-and-usage column requirements the main test suite checks.

    python scripts/focus_requirements.py MODEL_JSON

MODEL_JSON is `focus_validator/rules/model-1.2.0.1.json` from the FinOps Foundation's
`focus-validator` 2.2.1 (`scripts/focus_validate.py` installs it). Writes
tests/data/focus/focus-1.2-cost-and-usage.json: per column, its presence rule (mandatory,
recommended, or conditional on the applicability criteria it names), its type, the values
it allows, and whether it must not be null (unconditionally).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "focus" / \
    "focus-1.2-cost-and-usage.json"
TYPES = {"TypeString": "String", "TypeDecimal": "Decimal", "TypeDateTime": "DateTime"}
FORMATS = {"FormatDateTime": "DateTime", "FormatKeyValue": "KeyValue",
           "FormatCurrency": "Currency", "FormatNumeric": "Numeric"}


def _column(rule: dict) -> str:
    return rule["Reference"]


def main(model_path: str) -> None:
    model = json.loads(Path(model_path).read_text())
    rules = model["ModelRules"]
    columns: dict[str, dict] = {}
    for rule_id, rule in sorted(rules.items()):
        criteria = rule["ValidationCriteria"]
        requirement = criteria.get("Requirement") or {}
        check = requirement.get("CheckFunction")
        if rule["Function"] == "Presence" and rule_id.startswith("CostAndUsage-D-"):
            name = requirement["ColumnName"]
            applies = rule["ApplicabilityCriteria"]
            presence = ("conditional" if applies else
                        "mandatory" if criteria["Keyword"] == "MUST" else "recommended")
            columns.setdefault(name, {}).update(presence=presence, when=applies,
                                                rule=rule_id)
            continue
        if rule["Status"] != "Active" or rule["EntityType"] != "Column":
            continue
        entry = columns.setdefault(_column(rule), {})
        if check in TYPES:
            entry["type"] = TYPES[check]
        elif check in FORMATS:
            entry["format"] = FORMATS[check]
        elif (check in ("CheckNotValue", "CheckValue") and requirement.get("Value") is None
              and not criteria.get("Condition") and rule["Function"] == "Nullability"
              and criteria["Keyword"] in ("MUST", "MUST NOT")):
            entry["not_null" if check == "CheckNotValue" else "null"] = True
        elif check == "OR" and "allowed values" in criteria["MustSatisfy"]:
            values = [item["Value"] for item in requirement["Items"]
                      if item.get("CheckFunction") == "CheckValue"]
            if values:
                entry["allowed"] = values
    for spec in columns.values():
        if spec.pop("null", False):
            # a pair of complementary rules whose conditions the model does not encode
            # (InvoiceId: null without an invoice, not null with one): neither holds alone
            spec.pop("not_null", None)
    present = {name: spec for name, spec in sorted(columns.items()) if "presence" in spec}
    body = {"source": "focus-validator 2.2.1, focus_validator/rules/model-1.2.0.1.json",
            "focus_version": model["Details"]["FOCUSVersion"], "columns": present}
    OUT.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {len(present)} columns")


if __name__ == "__main__":
    main(sys.argv[1])
