"""The demo's LLMs before and after they became the `llm` kind: each one's pool, replicas,
GPUs and monthly cost, planned from the demo registry at a git ref (its LLMs sized from
profile files, GPUs per replica as stated) and from the demo as it is (sized in tokens, the
configuration chosen), both by this planner with the goldens' settings, so only the model
files differ.

    python scripts/llm_demo_table.py --base REF

prints a markdown table (docs/llm.md holds its output).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from decimal import Decimal
from io import BytesIO
from pathlib import Path

from planner.ledger import ledger
from planner.money import format_money
from planner.planfile import ModelPlan, Plan, load_plan

ROOT = Path(__file__).resolve().parent.parent
DEMO = Path("planner") / "demo" / "registry"
SETTINGS = ["--seed", "0", "--workers", "1", "--period", "2026-12"]


def _plan(registry: Path, out: Path) -> Plan:
    subprocess.run([sys.executable, "-m", "planner", "plan", "--registry", str(registry),
                    "--out", str(out), *SETTINGS], check=True, capture_output=True)
    return load_plan(out / "plan.yaml")


def _base_registry(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, str(DEMO)], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / DEMO


def _placement(m: ModelPlan) -> str:
    if m.mig_slice:
        return f"{m.replicas} x {m.mig_slice}"
    if m.whole_gpus:
        return f"{m.replicas} x {m.gpus_per_replica} GPU"
    return f"{m.replicas} x {m.gpu_fraction / m.replicas:.3g} GPU (shared)"


def table(before: Plan, after: Plan) -> str:
    """One row per LLM of `after`: pool, replicas x GPUs, GPUs in all and cost, then and now."""
    cost_before, cost_after = ledger(before).by_model(), ledger(after).by_model()
    currency = after.summary.currency
    rows = ["| model | pool | before | after | configuration | GPUs before | GPUs after "
            "| cost per month before | after | change |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    total = [Decimal(0), Decimal(0)]
    for m in sorted((m for m in after.models if m.llm is not None), key=lambda m: m.name):
        old = before.model(m.name)
        assert m.llm is not None and old is not None, m.name
        config = (f"TP {m.llm.tensor_parallel} {m.llm.precision}, "
                  f"{m.llm.max_num_seqs} sequences")
        was, now = cost_before[m.name], cost_after[m.name]
        total[0] += was
        total[1] += now
        pool = m.pool if old.pool == m.pool else f"{old.pool} -> {m.pool}"
        rows.append(f"| {m.name} | {pool} | {_placement(old)} | {_placement(m)} | {config} "
                    f"| {old.gpu_fraction:.3g} | {m.gpu_fraction:.3g} "
                    f"| {format_money(was, currency)} | {format_money(now, currency)} "
                    f"| {format_money(now - was, currency, sign=True)} |")
    rows.append(f"| **all** | | | | | | | {format_money(total[0], currency)} "
                f"| {format_money(total[1], currency)} "
                f"| {format_money(total[1] - total[0], currency, sign=True)} |")
    rows.append("")
    rows.append(f"Plan total per month: {format_money(before.summary.cost_per_month, currency)} "
                f"before, {format_money(after.summary.cost_per_month, currency)} after.")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git ref of the demo before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = _plan(_base_registry(args.base, Path(tmp) / "base"), Path(tmp) / "before")
        after = _plan(ROOT / DEMO, Path(tmp) / "after")
    print(table(before, after))


if __name__ == "__main__":
    main()
