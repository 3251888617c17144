"""SIGKILL `planner plan --out D` at random moments and check that `D` is always either the
old or the new complete output, and that the next run leaves no staging folder behind.

    python scripts/sigkill_output.py [--kills 50] [--seed 0]

Each round edits the demo registry (so old and new outputs differ), starts `planner plan
--solver greedy --out D` and kills it after a random delay drawn from the length of one
uninterrupted run. After every kill, `D` must hold exactly the files its marker lists, with a
plan.yaml of either the previous or the edited registry. Prints one CSV line per round and a
summary; exits 1 on the first broken invariant.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from planner.output import MARKER
from planner.registry.locate import write_demo


def plan_argv(registry: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "planner", "plan", "--registry", str(registry), "--out",
            str(out), "--solver", "greedy", "--format", "json"]


def state(out: Path) -> str | None:
    """The replica count of spam-filter in `out`'s plan, after checking `out` is whole."""
    if not out.exists():
        return None
    listed = (out / MARKER).read_text().splitlines()[1:]
    held = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    if held != {*listed, MARKER}:
        raise AssertionError(f"{out} is not one whole output: {sorted(held ^ {*listed, MARKER})}")
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    return str(next(m["replicas"] for m in plan["models"] if m["name"] == "spam-filter"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        registry, out = Path(tmp) / "registry", Path(tmp) / "out"
        write_demo(registry)
        model = registry / "models" / "spam-filter.yaml"
        start = time.perf_counter()
        subprocess.run(plan_argv(registry, out), check=True, capture_output=True)
        run_s = time.perf_counter() - start
        print("round,delay_s,killed,before,after")
        killed = 0
        for round_ in range(args.kills):
            before = state(out)
            data = yaml.safe_load(model.read_text())
            data["replicas"]["min"] = 2 + round_ % 5
            model.write_text(yaml.safe_dump(data, sort_keys=False))
            delay = rng.uniform(0, run_s * 1.2)
            process = subprocess.Popen(plan_argv(registry, out), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
            after = state(out)
            if after not in (before, str(data["replicas"]["min"])):
                print(f"round {round_}: {out} holds neither the old nor the new plan")
                return 1
            print(f"{round_},{delay:.3f},{process.returncode == -signal.SIGKILL},{before},"
                  f"{after}")
        subprocess.run(plan_argv(registry, out), check=True, capture_output=True)
        left = sorted(p.name for p in Path(tmp).iterdir() if p.name not in ("registry", "out"))
        print(f"summary: {args.kills} rounds, {killed} killed, one run {run_s:.2f} s, "
              f"left behind after the next run: {left or 'nothing'}")
        return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
