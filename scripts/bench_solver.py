"""Solver benchmark: the greedy baseline and the engine on classic instances and fleets.

    python -m scripts.bench_solver --bpp ../shared/benchmarks/bpplib/*/*.txt --time-limit 10
    python -m scripts.bench_solver --vbp ../shared/benchmarks/vbp/panigrahy_d3/*.vbp
    python -m scripts.bench_solver --fleet 1000 --time-limit 60
    python -m scripts.bench_solver --demo
    python -m scripts.bench_solver --openb ../shared/traces/openb --time-limit 120

Prints CSV `instance,n,greedy_bins,bins,lower_bound,status,seconds,solver_seconds,cpu_seconds`
on stdout (bins are the cost for fleets, in currency per hour; for openb they are the GPUs
allocated, and the bound is an upper bound; `seconds` is the wall clock around the engine,
`solver_seconds` the engine's own clock, which `--deterministic` makes counted work that the
time limit bounds on any machine, and `cpu_seconds` the CPU the engine used (with the rival
search it forks on the wall clock, `solvers.race`), which on a loaded
machine says more than the wall clock whether a phase ran past the budget), then, on stderr, a
summary against `optima.tsv` when one lies beside the instance files or one folder up
(columns `instance`, `optimum`, 0 where none is known, and optionally `best_known`, the best
packing published where the optimum is open), or against `--bounds FILE`, BPPLIB's table of
`instance lower upper` per line (the optimum where the two meet, else the upper bound as the
best known).

A file that is not a valid instance is reported on stderr and skipped, and so is an instance
on which the engine fails (with its traceback): the rest still runs, and the exit status is 1
when an engine failed.
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.instances import InstanceError, read_bpp, read_vbp
from solvers.engine import InfeasibleError, solve
from solvers.greedy import greedy
from solvers.problem import Problem


@dataclass(frozen=True)
class Known:
    """What the literature knows of an instance: its optimum (0 if open) and the fewest bins
    any published packing uses (the optimum where it is known)."""

    optimum: int
    best_known: int


def _optima(path: Path) -> dict[str, Known]:
    """The `optima.tsv` beside `path` or one folder up; a row that is not whole numbers is
    reported and left out."""
    for folder in (path.parent, path.parent.parent):
        table = folder / "optima.tsv"
        if table.exists():
            known = {}
            with table.open(newline="") as handle:
                for line, row in enumerate(csv.DictReader(handle, delimiter="\t"), start=2):
                    try:
                        optimum = int(row["optimum"])
                        best = int(row.get("best_known") or optimum)
                    except (KeyError, TypeError, ValueError):
                        print(f"{table}:{line}: optimum and best_known must be whole numbers; "
                              "row left out", file=sys.stderr)
                        continue
                    known[row["instance"]] = Known(optimum, best)
            return known
    return {}


def _bounds(table: Path) -> dict[str, Known]:
    """BPPLIB's bounds table: `instance lower upper` per line, whitespace apart."""
    known = {}
    for line, text in enumerate(table.read_text().splitlines(), start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 3 or not all(f.isascii() and f.isdigit() for f in fields[1:]):
            raise SystemExit(f"{table}:{line}: expected `instance lower upper` with whole "
                             f"numbers, got {text.strip()!r}")
        lower, upper = int(fields[1]), int(fields[2])
        known[fields[0]] = Known(upper if lower == upper else 0, upper)
    return known


def _better_greedy(problem: Problem):
    first, best = greedy(problem, "first"), greedy(problem, "best")
    return min(first, best, key=lambda s: (len(s.unplaced), s.cost))


def _cpu_s() -> float:
    """CPU seconds of this process and of its children ended so far: on the wall clock a
    packing's search races a forked rival (`solvers.race`), whose CPU counts too."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _run(name: str, problem: Problem, args, scale: float = 1.0) -> dict:
    baseline = _better_greedy(problem)
    start, cpu = time.perf_counter(), _cpu_s()  # the engine's own; it runs greedy too
    solution = solve(problem, time_limit_s=args.time_limit, seed=args.seed,
                     workers=args.workers, deterministic=args.deterministic)
    seconds, cpu_seconds = time.perf_counter() - start, _cpu_s() - cpu
    row = {"instance": name, "n": sum(g.options[0].count for g in problem.groups),
           "greedy_bins": f"{baseline.cost / scale:g}", "bins": f"{solution.cost / scale:g}",
           "lower_bound": f"{solution.lower_bound / scale:g}", "status": solution.status,
           "seconds": f"{seconds:.2f}", "solver_seconds": f"{solution.seconds:.2f}",
           "cpu_seconds": f"{cpu_seconds:.2f}"}
    print(",".join(str(v) for v in row.values()), flush=True)
    return {**row, "cost": solution.cost, "greedy": baseline.cost, "bound": solution.lower_bound,
            "time": seconds, "solver_time": solution.seconds, "cpu": cpu_seconds,
            "unplaced": len(solution.unplaced)}


def _summary(label: str, rows: list[dict], known: dict[str, Known]) -> None:
    if not rows:
        return
    optima = {r["instance"]: known[r["instance"]].optimum for r in rows
              if known.get(r["instance"], Known(0, 0)).optimum > 0}
    proven = sum(r["status"] == "optimal" for r in rows)
    times = (f"proven optimal {proven}; max time {max(r['time'] for r in rows):.1f} s, "
             f"mean {statistics.mean(r['time'] for r in rows):.2f} s; solver's clock max "
             f"{max(r['solver_time'] for r in rows):.1f} s; CPU max "
             f"{max(r['cpu'] for r in rows):.1f} s")
    if optima:
        found = [r for r in rows if r["instance"] in optima]
        hits = sum(r["cost"] == optima[r["instance"]] for r in found)
        greedy_hits = sum(r["greedy"] == optima[r["instance"]] for r in found)
        gaps = [(r["cost"] - optima[r["instance"]]) / optima[r["instance"]] for r in found]
        greedy_gaps = [(r["greedy"] - optima[r["instance"]]) / optima[r["instance"]]
                       for r in found]
        print(f"{label}: {len(rows)} instances, optimum known for {len(found)}; engine reaches "
              f"it on {hits} ({hits / len(found):.1%}), mean gap {statistics.mean(gaps):.2%}; "
              f"greedy on {greedy_hits} ({greedy_hits / len(found):.1%}), mean gap "
              f"{statistics.mean(greedy_gaps):.2%}; {times}", file=sys.stderr)
    else:
        print(f"{label}: {len(rows)} instances, no optimum known; {times}", file=sys.stderr)
    open_rows = [r for r in rows if r["instance"] in known and r["instance"] not in optima
                 and known[r["instance"]].best_known > 0]
    if open_rows:
        best = {r["instance"]: known[r["instance"]].best_known for r in open_rows}
        hits = sum(r["cost"] <= best[r["instance"]] for r in open_rows)
        gaps = [(r["cost"] - best[r["instance"]]) / best[r["instance"]] for r in open_rows]
        print(f"{label}: optimum open for {len(open_rows)}; engine reaches the best known "
              f"packing on {hits}, mean gap to it {statistics.mean(gaps):.2%}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpp", nargs="*", type=Path, default=[])
    parser.add_argument("--vbp", nargs="*", type=Path, default=[])
    parser.add_argument("--fleet", nargs="*", type=int, default=[])
    parser.add_argument("--demo", action="store_true", help="the bundled demo registry")
    parser.add_argument("--openb", type=Path, help="folder of the openb trace's two CSV files")
    parser.add_argument("--bounds", type=Path,
                        help="BPPLIB's bounds table (instance, lower, upper per line) to "
                        "measure against instead of optima.tsv")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deterministic", action="store_true",
                        help="count work: --time-limit in CP-SAT deterministic seconds, one "
                        "worker; the same bins on any machine (seconds stay wall-clock)")
    args = parser.parse_args()
    bounds = _bounds(args.bounds) if args.bounds else {}
    print("instance,n,greedy_bins,bins,lower_bound,status,seconds,solver_seconds,cpu_seconds")
    failed = 0
    for label, files, reader in (("bpp", args.bpp, read_bpp), ("vbp", args.vbp, read_vbp)):
        rows, known, bad = [], dict(bounds), []
        for path in files:
            if not args.bounds:
                known.update(_optima(path))
            try:
                problem = reader(path)
            except (InstanceError, OSError) as exc:
                # One bad file is reported and skipped; the rest of the family still runs.
                print(f"skipped {path}: {exc}", file=sys.stderr, flush=True)
                bad.append(path)
                continue
            try:
                rows.append(_run(path.stem, problem, args))
            except InfeasibleError as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr, flush=True)
                bad.append(path)
            except Exception:  # noqa: BLE001 - an engine failure is reported, the run goes on
                print(f"engine failed on {path}:\n{traceback.format_exc()}", file=sys.stderr,
                      flush=True)
                failed += 1
        _summary(label, rows, known)
        if bad:
            print(f"{label}: {len(bad)} instance(s) skipped, see above", file=sys.stderr)
    fleets = [(f"fleet-{n}", _fleet_problem(n, args.seed)) for n in args.fleet]
    if args.demo:
        fleets.append(("demo", _demo_problem()))
    for name, problem in fleets:
        row = _run(name, problem, args, scale=10_000)
        print(f"{name}: gap {(row['cost'] - row['bound']) / row['cost']:.2%}, greedy "
              f"{row['greedy'] / 10_000:.2f}/h, engine {row['cost'] / 10_000:.2f}/h, "
              f"{row['unplaced']} unplaced, {row['time']:.1f} s", file=sys.stderr)
    if args.openb:
        _run_openb(args.openb, args)
    if failed:
        print(f"the engine failed on {failed} instance(s), see above", file=sys.stderr)
        sys.exit(1)


def _run_openb(folder: Path, args) -> None:
    """Place the trace's pods on its own nodes; report GPUs allocated against best fit."""
    from bench.cluster import fit, objective_key
    from bench.cluster_search import place
    from bench.instances import read_openb

    cluster = read_openb(folder)
    start = time.perf_counter()
    baseline = fit(cluster, "best")
    baseline_seconds = time.perf_counter() - start
    cpu = time.process_time()
    found = place(cluster, time_limit_s=args.time_limit, seed=args.seed, workers=args.workers)
    cpu_seconds = time.process_time() - cpu
    greedy_milli = baseline.allocated_milli()
    milli = found.allocated_milli(cluster)
    print(f"openb,{len(cluster.pods)},{greedy_milli / 1000:g},{milli / 1000:g},"
          f"{found.upper_bound_milli / 1000:g},{found.status},{found.seconds:.2f},"
          f"{found.seconds:.2f},{cpu_seconds:.2f}", flush=True)
    gpus = cluster.gpus
    demand = sum(p.gpu_demand_milli for p in cluster.pods) / 1000
    for label, allocated, assignment in (
            ("best-fit decreasing", greedy_milli / 1000, baseline.assignment),
            ("engine", milli / 1000, found.assignment)):
        unplaced = {level: sum(1 for p, a in zip(cluster.pods, assignment, strict=True)
                               if a is None and p.priority == level)
                    for level in sorted({p.priority for p in cluster.pods}, reverse=True)}
        print(f"openb {label}: {allocated:.2f} of {gpus} GPUs allocated "
              f"({allocated / gpus:.2%} of the cluster, {allocated / demand:.2%} of the "
              f"{demand:.2f} requested; {1 - allocated / gpus:.2%} unallocated); pods unplaced "
              f"by priority {unplaced}; placed weight by priority "
              f"{objective_key(cluster, assignment)}", file=sys.stderr)
    print(f"openb: upper bound {found.upper_bound_milli / 1000:.2f} GPUs "
          f"({found.upper_bound_milli / 1000 / gpus:.2%} of the cluster); engine within "
          f"{1 - milli / found.upper_bound_milli:.2%} of it; best fit took "
          f"{baseline_seconds:.1f} s, the engine {found.seconds:.1f} s", file=sys.stderr)


def _fleet_problem(models: int, seed: int) -> Problem:
    from bench.synthetic import generate_fleet
    from planner.demand.derive import derive
    from planner.demand.to_engine import build_problem

    fleet = generate_fleet(models, seed)
    return build_problem(fleet, derive(fleet)[0])


def _demo_problem() -> Problem:
    from planner.demand.derive import derive
    from planner.demand.to_engine import build_problem
    from planner.demo import demo_registry_path
    from planner.registry.loader import load_registry

    fleet = load_registry(demo_registry_path())
    return build_problem(fleet, derive(fleet)[0])


if __name__ == "__main__":
    main()
