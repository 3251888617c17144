"""Benchmark instance files: the readers refuse what is not an instance, the benchmark script
skips such a file and goes on, and generated zero-slack instances have the optimum they claim."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.instances import InstanceError, _single_pool, read_bpp, read_vbp
from scripts import bench_solver
from scripts.zero_slack import cut_bin, instance
from solvers.bounds import martello_toth_l2
from solvers.engine import solve
from solvers.greedy import greedy
from solvers.verify import violations
from tests.conftest import ROOT


@pytest.mark.parametrize("text, message", [
    ("3\n10\n4\n-2\n5\n", ":4: weight of item 2: -2 is below 1; give at least 1"),
    ("3\n10\n4\n2.5\n5\n", ":4: weight of item 2: '2.5' is not an integer"),
    ("3\n10\n4\n12\n5\n", ":4: weight of item 2: 12 exceeds the capacity 10"),
    ("3\n10\n4\n2\n", ":4: weight of item 3: missing, the file ends early"),
    ("2\n10\n4\n2\n5\n", ":5: unexpected '5' after the last item"),
    ("2\n-10\n4\n2\n", ":2: capacity: -10 is below 1"),
    ("3\n10\n4\n1_0\n5\n", ":4: weight of item 2: '1_0' is not an integer"),
    ("3\n10\n4\n\u0664\n5\n", ":4: byte 0xd9 is not text; an instance file holds ASCII"),
    ("3\n10\r\n4\r\n\r\n0x5\n5\n", ":5: weight of item 2: '0x5' is not an integer"),
    ("", ": item count: missing, the file ends early"),
])
def test_bpp_reader_refuses_what_is_not_an_instance(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InstanceError) as caught:
        read_bpp(path)
    assert str(caught.value) == f"{path}{message}" or str(caught.value).startswith(
        f"{path}{message}")


@pytest.mark.parametrize("text, message", [
    ("2\n10 10\n2\n3 -4 1\n5 5 2\n", ":4: item type 1, weight 2: -4 is below 0; sizes cannot "
     "be negative"),
    ("2\n10 10\n2\n3 4 1\n5 5 0\n", ":5: item type 2, demand: 0 is below 1"),
    ("2\n10 10\n2\n3 4 1\n0 0 2\n", ":5: item type 2: every weight is 0"),
    ("2\n10 10\n2\n3 11 1\n5 5 2\n", ":4: item type 1, weight 2: 11 exceeds the capacity 10"),
    ("2\n10 x\n", ":2: capacity 2: 'x' is not an integer"),
])
def test_vbp_reader_refuses_what_is_not_an_instance(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.vbp"
    path.write_text(text)
    with pytest.raises(InstanceError) as caught:
        read_vbp(path)
    assert str(caught.value).startswith(f"{path}{message}")


def test_vbp_reader_reads_a_valid_instance(tmp_path: Path):
    path = tmp_path / "ok.vbp"
    path.write_text("2\r\n10 10\r\n2\r\n3 0 1\r\n5 5 2\r\n")
    problem = read_vbp(path)
    assert problem.pools[0].capacity == (10, 10)
    assert sorted((g.options[0].size, g.options[0].count) for g in problem.groups) == [
        ((3, 0), 1), ((5, 5), 2)]


def test_bench_script_reports_a_bad_instance_and_goes_on(tmp_path: Path):
    bad, good = tmp_path / "a_bad.txt", tmp_path / "b_good.txt"
    bad.write_text("2\n10\n4\n-1\n")
    good.write_text("4\n10\n5\n5\n6\n4\n")
    (tmp_path / "optima.tsv").write_text("instance\tlower_bound\toptimum\nb_good\t2\t2\n")
    result = subprocess.run([sys.executable, "-m", "scripts.bench_solver", "--bpp", str(bad),
                             str(good), "--time-limit", "5", "--workers", "1"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("instance,n,greedy_bins,bins,lower_bound,status,seconds,solver_seconds,"
                        "cpu_seconds")
    assert [line.split(",")[:6] for line in lines[1:]] == [
        ["b_good", "4", "2", "2", "2", "optimal"]]
    assert f"skipped {bad}: {bad}:4: weight of item 2: -1 is below 1" in result.stderr
    assert "bpp: 1 instances, optimum known for 1; engine reaches it on 1" in result.stderr
    assert "bpp: 1 instance(s) skipped" in result.stderr


def _bench(monkeypatch, capsys, *argv: str) -> tuple[int, list[str], str]:
    """scripts.bench_solver's main in this process: exit status, CSV rows, stderr."""
    monkeypatch.setattr(sys, "argv", ["bench_solver", *argv])
    try:
        bench_solver.main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out.splitlines()[1:], err


def test_bench_script_reports_an_engine_failure_and_goes_on(tmp_path: Path, monkeypatch,
                                                             capsys):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("2\n10\n6\n6\n")
    second.write_text("2\n10\n5\n5\n")
    real_solve = bench_solver.solve

    def failing_on_sixes(problem, **options):
        if problem.groups[0].options[0].size == (6,):
            raise AssertionError("engine produced an invalid solution: bin 0 over capacity")
        return real_solve(problem, **options)

    monkeypatch.setattr(bench_solver, "solve", failing_on_sixes)
    status, rows, err = _bench(monkeypatch, capsys, "--bpp", str(first), str(second),
                               "--deterministic", "--time-limit", "1", "--workers", "1")
    assert status == 1
    assert [row.split(",")[:6] for row in rows] == [["b", "2", "1", "1", "1", "optimal"]]
    assert f"engine failed on {first}:" in err
    assert "AssertionError: engine produced an invalid solution: bin 0 over capacity" in err
    assert err.rstrip().endswith("the engine failed on 1 instance(s), see above")


def test_bench_summary_counts_open_instances_against_the_best_known(tmp_path: Path,
                                                                    monkeypatch, capsys):
    """Where the optimum is open, `best_known` is what the engine is measured against; a row
    of optima.tsv that is not whole numbers is named and left out."""
    for name, weights in (("known", "6 6 4 4"), ("open", "6 4 6 4"), ("odd", "5 5")):
        (tmp_path / f"{name}.txt").write_text(f"{len(weights.split())}\n10\n{weights}\n")
    (tmp_path / "optima.tsv").write_text(
        "instance\tlower_bound\toptimum\tbest_known\nknown\t2\t2\t2\nopen\t1\t0\t2\n"
        "odd\t1\tone\t1\n")
    status, rows, err = _bench(monkeypatch, capsys, "--bpp", *(str(tmp_path / f"{n}.txt")
                                                              for n in ("known", "open", "odd")),
                               "--deterministic", "--time-limit", "1", "--workers", "1")
    assert status == 0
    assert [row.split(",")[3] for row in rows] == ["2", "2", "1"]
    assert f"{tmp_path / 'optima.tsv'}:4: optimum and best_known must be whole numbers" in err
    assert "bpp: 3 instances, optimum known for 1; engine reaches it on 1 (100.0%)" in err
    assert "bpp: optimum open for 1; engine reaches the best known packing on 1, mean gap " \
        "to it 0.00%" in err


def test_bench_reads_bpplibs_bounds_table(tmp_path: Path, monkeypatch, capsys):
    """`--bounds`: BPPLIB's `instance lower upper` lines (CRLF as published); where the two
    differ the optimum is open and the upper bound is the best known."""
    for name, weights in (("closed", "6 6 4 4"), ("open", "6 4 6 4")):
        (tmp_path / f"{name}.txt").write_text(f"4\n10\n{weights}\n")
    table = tmp_path / "Bounds.txt"
    table.write_text("closed\t2\t2\r\nopen\t1\t3\r\n")
    status, rows, err = _bench(monkeypatch, capsys, "--bpp", str(tmp_path / "closed.txt"),
                               str(tmp_path / "open.txt"), "--bounds", str(table),
                               "--deterministic", "--time-limit", "1", "--workers", "1")
    assert status == 0 and len(rows) == 2
    assert "bpp: 2 instances, optimum known for 1; engine reaches it on 1 (100.0%)" in err
    assert "optimum open for 1; engine reaches the best known packing on 1, mean gap to it " \
        "-33.33%" in err
    table.write_text("closed 2 2\nopen 1 three\n")
    status, rows, _ = _bench(monkeypatch, capsys, "--bpp", str(tmp_path / "open.txt"),
                             "--bounds", str(table))
    assert status == (f"{table}:2: expected `instance lower upper` with whole numbers, got "
                      "'open 1 three'")
    assert rows == []  # refused before any instance runs


@pytest.mark.parametrize("capacity, pieces", [(150, 3), (100_000, 6), (7, 6)])
def test_a_cut_bin_fills_its_capacity_exactly(capacity: int, pieces: int):
    weights = cut_bin(random.Random(capacity), capacity, pieces)
    assert len(weights) == pieces and sum(weights) == capacity and min(weights) >= 1


def test_zero_slack_instance_needs_exactly_its_bins():
    weights = instance(random.Random(3), 1_000, 25, (3, 5))
    assert sum(weights) == 25 * 1_000
    # No packing beats the volume bound, which the instance meets with zero waste.
    assert martello_toth_l2(Counter(weights), 1_000) == 25


def test_zero_slack_files_are_named_by_seed_and_listed_with_their_optimum(tmp_path: Path):
    for seed in (1, 7):
        subprocess.run([sys.executable, "-m", "scripts.zero_slack", "--out",
                        str(tmp_path / str(seed)), "--instances", "2", "--seed", str(seed)],
                       cwd=ROOT, check=True)
    names = {seed: sorted(p.stem for p in (tmp_path / str(seed)).glob("*.txt"))
             for seed in (1, 7)}
    assert names[1] == ["zero_slack_s1_c1000_b20_001", "zero_slack_s1_c150_b20_000"]
    assert not set(names[1]) & set(names[7])
    optima = (tmp_path / "7" / "optima.tsv").read_text().splitlines()
    assert optima[1:] == ["zero_slack_s7_c150_b20_000\t20\t20",
                          "zero_slack_s7_c1000_b20_001\t20\t20"]
    count, capacity, *weights = map(int, (tmp_path / "7" / "zero_slack_s7_c150_b20_000.txt")
                                     .read_text().split())
    assert (count, capacity, sum(weights)) == (len(weights), 150, 20 * 150)


def _l2_by_definition(sizes: Counter, capacity: int) -> int:
    """Martello and Toth's L2, one threshold at a time, as they state it."""
    total = sum(s * n for s, n in sizes.items())
    best = -(-total // capacity)
    for alpha in [0, *(s for s in sizes if 2 * s <= capacity)]:
        big = sum(n for s, n in sizes.items() if s > capacity - alpha)
        medium = {s: n for s, n in sizes.items() if capacity - alpha >= s and 2 * s > capacity}
        small = sum(s * n for s, n in sizes.items() if 2 * s <= capacity and s >= alpha)
        room = sum((capacity - s) * n for s, n in medium.items())
        best = max(best, big + sum(medium.values()) + max(0, -(-(small - room) // capacity)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_l2_bound_matches_its_definition(seed: int):
    rng = random.Random(seed)
    capacity = rng.choice([2, 7, 100, 150, 10_000, 1_500_000])
    sizes = Counter({rng.randint(1, capacity): rng.randint(1, 5)
                     for _ in range(rng.randint(1, 30))})
    assert martello_toth_l2(sizes, capacity) == _l2_by_definition(sizes, capacity)


def test_deterministic_budget_holds_on_a_large_capacity():
    """Every phase checks its deadline: on 600 items of a capacity of a million (a large
    pricing table, long pattern lists) the work counted stays within the budget and the
    margin of one step."""
    rng = random.Random(11)
    capacity = 1_000_000
    weights = Counter((rng.randint(capacity // 10, capacity // 2),) for _ in range(600))
    problem = _single_pool((capacity,), weights, 600)
    solution = solve(problem, time_limit_s=1.0, seed=0, deterministic=True)
    assert solution.seconds <= 1.0 * 1.1
    assert violations(problem, solution) == []
    assert solution.lower_bound <= solution.cost <= greedy(problem, "first").cost
