"""Text from the registry or a plan is data: never a GitHub workflow command, never markup or a
mention in the pull-request comment, never a control character in a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.demo import demo_registry_path
from planner.pipeline import SolverSettings, make_plan
from planner.registry.loader import load_registry
from planner.review.check import CheckResult
from planner.review.diff import CapacityChange, CostChange, ModelChange, PlanDiff
from planner.review.gates import Annotation, Gate
from reports.pr_comment import inert, render_annotations, render_check_markdown

HOSTILE = "x\n::error::forged 100% <img src=x onerror=alert(1)> </details> @octocat [a](b) |"


@pytest.fixture(scope="module")
def hostile_result() -> CheckResult:
    plan = make_plan(load_registry(demo_registry_path()), SolverSettings(method="greedy"))
    change = ModelChange(name=HOSTILE, team=HOSTILE, kinds=["moved"], pool_before=HOSTILE,
                         pool_after="b", note=HOSTILE)
    diff = PlanDiff(currency="USD", total=CostChange(name="total", before=1.0, after=2.0),
                    teams=[CostChange(name=HOSTILE, before=1.0, after=2.0)], pools=[],
                    idle=CostChange(name="idle", before=0.0, after=0.0),
                    capacity=[CapacityChange(pool=HOSTILE, nodes_before=1, nodes_after=2,
                                             gpus_before=1, gpus_after=2)],
                    models=[change])
    gate = Gate("policy", False, HOSTILE, fix=HOSTILE,
                annotations=(Annotation(Path("/repo/a,b:c.yaml"), 3, HOSTILE),))
    return CheckResult(plan, plan, diff, [gate])


def test_text_is_inert_markdown():
    assert inert(HOSTILE) == (
        "x\\\\n::error::forged 100% &lt;img src=x onerror=alert(1)&gt; &lt;/details&gt; "
        "@&#8203;octocat \\[a\\](b) \\|")


def test_comment_carries_no_markup_from_the_registry(hostile_result):
    comment = render_check_markdown(hostile_result)
    assert comment.count("</details>") == 1 and comment.rstrip().endswith("</details>")
    assert "<img" not in comment and "@octocat" not in comment and "[a](b)" not in comment
    assert not [line for line in comment.splitlines() if line.startswith("::")]
    assert inert(HOSTILE) in comment
    row = next(line for line in comment.splitlines() if "forged" in line and "moved" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 8  # seven cells, none added by the data


def test_annotations_escape_data_and_properties(hostile_result):
    [line] = render_annotations(hostile_result, Path("/repo"))
    assert line == ("::error file=a%2Cb%3Ac.yaml,line=3,title=policy::x%0A::error::forged 100%25 "
                    "<img src=x onerror=alert(1)> </details> @octocat [a](b) |")


def test_github_format_stops_commands_around_the_report(cli, registry: Path, monkeypatch):
    import subprocess

    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=registry, check=True)
    subprocess.run([*git, "add", "-A"], cwd=registry, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=registry, check=True)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = cli("check", "--registry", registry, "--base", "main", "--format", "github")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[0])
    assert start is not None
    assert lines[-1] == f"::{start.group(1)}::"
    assert lines[1].startswith("<!-- placement-planner-check -->")


def test_unknown_key_with_a_newline_stays_one_line(cli, registry: Path):
    path = registry / "cluster.yaml"
    path.write_text(path.read_text() + '"bad\\n::error::forged": 1\n')
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    [line] = [line for line in result.stderr.splitlines() if "forged" in line]
    assert line.startswith(f"error: {path}:")
    assert "bad\\n::error::forged" in line
    assert not [line for line in result.stderr.splitlines() if line.startswith("::")]


def test_gpu_type_name_with_a_newline_is_refused(cli, registry: Path):
    path = registry / "cluster.yaml"
    source = path.read_text()
    path.write_text(source.replace("  l4:\n", '  "l4\\n::error::forged":\n', 1))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert not [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert "l4\\n::error::forged" in result.stderr


def test_control_characters_escaped_in_every_message(cli, registry: Path):
    path = registry / "models" / "spam-filter.yaml"
    path.write_text(path.read_text() + '"a\\x1b[31mred\\x07": 1\n')
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "a\\x1b[31mred\\x07" in result.stderr


def test_out_file_symlink_refused(cli, registry: Path, tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    link = tmp_path / "report.md"
    link.symlink_to(victim)
    result = cli("check", "--registry", registry, "--base-plan", registry / "x.yaml",
                 "--out-file", link)
    assert result.exit_code == 2
    assert result.stderr == f"error: --out-file {link}: a symbolic link; give the file itself\n"
    assert victim.read_text() == "mine"
