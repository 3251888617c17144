"""Run the FinOps Foundation's FOCUS validator on the demo's cost.csv and a yen-priced demo's.

    python scripts/focus_validate.py [--venv DIR] [--python PYTHON3.12]

Sets up `focus-validator` 2.2.1 in a virtual environment of its own (it needs Python 3.12 and
pyarrow below 20; `pyenv` provides the interpreter here), plans both registries, and validates
each CSV against FOCUS 1.2 twice: with no applicability criteria, and with the criteria the
report meets (`reports.focus.FOCUS_CRITERIA`). Prints the validator's totals and every failed
rule, and exits 1 if any rule fails.

It also lists the rule pairs of the validator's model that no non-empty data can pass
together: a column that one rule requires null and another requires not null, both without a
condition. FOCUS 1.2 has one, `InvoiceId-C-004-C` ("MUST be null when the charge is not
associated with an invoice") and `InvoiceId-C-005-C` ("MUST NOT be null when it is"): the
model drops both conditions, so every row fails one of them, whichever value InvoiceId holds
(leaving the column out fails seven rules instead). The report is a forecast with no invoice,
so by the spec's text InvoiceId is null, and `InvoiceId-C-005-C` fails.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.focus import FOCUS_CRITERIA  # noqa: E402

VALIDATOR = ["focus-validator==2.2.1", "pyarrow<20"]


def _python312(given: str | None) -> str:
    if given:
        return given
    found = shutil.which("python3.12")
    if found:
        return found
    try:
        return subprocess.run(["pyenv", "which", "python3.12"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("focus-validator needs Python 3.12: pass --python PATH")


def setup(venv: Path, python: str) -> Path:
    """The validator's executable, installed into `venv` unless it is there already."""
    executable = venv / "bin" / "focus-validator"
    if not executable.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *VALIDATOR], check=True)
    return executable


def make_csvs(work: Path) -> dict[str, Path]:
    """cost.csv of the demo and of the demo priced in yen, planned with the project's CLI."""
    import yaml

    from planner.registry.locate import write_demo

    csvs = {}
    for name, currency, rate in (("demo (USD)", "USD", 1), ("demo in JPY", "JPY", 150)):
        registry = work / currency / "registry"
        write_demo(registry)
        if currency != "USD":
            config = registry / "planner.yaml"
            config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                              "currency": currency}))
            cluster_file = registry / "cluster.yaml"
            cluster = yaml.safe_load(cluster_file.read_text())
            for pool in cluster["pools"]:
                pool["price_per_node_hour"] = round(pool["price_per_node_hour"] * rate, 2)
            cluster_file.write_text(yaml.safe_dump(cluster, sort_keys=False))
        out = work / currency / "out"
        subprocess.run([sys.executable, "-m", "planner", "plan", "--registry", str(registry),
                        "--seed", "0", "--period", "2026-12", "--out", str(out)], check=True,
                       capture_output=True)
        csvs[name] = out / "cost.csv"
    return csvs


def contradictory_rules(executable: Path) -> list[tuple[str, str]]:
    """Pairs of the validator's FOCUS 1.2 rules that no non-empty data passes together: one
    requires a column null on every row, the other not null, neither has a condition."""
    model_file = next((executable.parent.parent / "lib").glob(
        "python3*/site-packages/focus_validator/rules/model-1.2*.json"))
    nullability: dict[tuple[str, str], str] = {}
    for rule_id, rule in json.loads(model_file.read_text())["ModelRules"].items():
        criteria = rule["ValidationCriteria"]
        requirement = criteria.get("Requirement") or {}
        if (rule["Status"] == "Active" and not rule["ApplicabilityCriteria"]
                and not criteria.get("Condition")
                and requirement.get("CheckFunction") in ("CheckValue", "CheckNotValue")
                and "Value" in requirement and requirement["Value"] is None):
            nullability[(requirement["ColumnName"], requirement["CheckFunction"])] = rule_id
    return sorted((rule_id, nullability[(column, "CheckNotValue")])
                  for (column, check), rule_id in nullability.items()
                  if check == "CheckValue" and (column, "CheckNotValue") in nullability)


def validate(executable: Path, data: Path, criteria: tuple[str, ...]) -> tuple[str, set[str]]:
    """The validator's totals line and the ids of the rules that failed."""
    package = next((executable.parent.parent / "lib").glob("python3*/site-packages/"
                                                           "focus_validator"))
    with tempfile.TemporaryDirectory() as cwd:
        # the validator reads its currency list from this path relative to the working folder
        rules = Path(cwd) / "focus_validator" / "rules"
        rules.mkdir(parents=True)
        shutil.copy(package / "rules" / "currency_codes.csv", rules)
        command = [str(executable), "--data-file", str(data), "--validate-version", "1.2",
                   "--block-download"]
        if criteria:
            command += ["--applicability-criteria", ",".join(criteria)]
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"focus-validator failed on {data}:\n{result.stdout}{result.stderr}")
    totals = re.search(r"Total: \d+ \| Pass: \d+ \| Fail: \d+ \| Skipped: \d+", result.stdout)
    failed = set(re.findall(r"^❌ (\S+): FAIL", result.stdout, re.MULTILINE))
    return totals.group() if totals else "no totals", failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".focus-venv")
    parser.add_argument("--python", help="a Python 3.12 interpreter")
    args = parser.parse_args()
    executable = setup(args.venv, _python312(args.python))
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for name, data in make_csvs(Path(work)).items():
            for label, criteria in (("no criteria", ()), ("report's criteria", FOCUS_CRITERIA)):
                totals, failed = validate(executable, data, criteria)
                failures += len(failed)
                print(f"{name}, {label}: {totals}; failed: {', '.join(sorted(failed)) or '-'}")
    for null, not_null in contradictory_rules(executable):
        print(f"{null} (null) and {not_null} (not null) have no condition in the validator's "
              "model: every row fails one of them")
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main()
