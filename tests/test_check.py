"""`planner diff` and `planner check` on a temporary git repository holding the registry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from planner.registry.locate import write_demo
from reports.pr_comment import MARKER
from tests.conftest import edit_yaml

GIT = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A git repository whose `registry/` folder is the demo, committed on `main`."""
    write_demo(tmp_path / "registry")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "base"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_tenfold_traffic_shows_replicas_and_fails_percentage_gate(cli, repo: Path):
    # ten times the traffic takes more H100s than the two nodes' idle ones: a third node
    edit_yaml(repo / "registry" / "models" / "llm-rag-answerer.yaml",
              lambda d: d["traffic"].update(peak_rps=d["traffic"]["peak_rps"] * 10))
    passed = cli("check", "--registry", "registry", "--base", "main", "--format", "json")
    assert passed.exit_code == 0, passed.stderr
    body = json.loads(passed.stdout)
    [change] = [m for m in body["models"] if m["name"] == "llm-rag-answerer"]
    assert "resized" in change["kinds"]
    assert change["replicas_after"] > change["replicas_before"]
    assert body["total"]["change"] > 0 and body["changed"] is True

    failed = cli("check", "--registry", "registry", "--base", "main", "--max-increase-pct", "5")
    assert failed.exit_code == 1
    assert failed.stdout.startswith(MARKER + "\n❌ **Placement check failed**: 1 of 3 gates")
    assert "- **max-increase-pct**: monthly cost changes by +" in failed.stdout
    assert "| llm-rag-answerer | support | resized |" in failed.stdout
    # Under Capacity, the new plan's node loss (each node lost in turn, the headroom's cost),
    # and the same figures in the JSON report.
    sentence = re.search(r"\nNode loss: losing one of (\d+) of the (\d+) nodes drops (\d+) "
                         r"models below their replicas\.min; the spare nodes that prevent it "
                         r"cost ([\d,.]+) USD per month \(summary\.md lists them\)\.\n",
                         failed.stdout)
    assert sentence
    loss = body["node_loss"]
    assert (str(len(loss["losses"])), str(loss["nodes"]),
            str(len({b["model"] for x in loss["losses"] for b in x["below_min"]})),
            f"{loss['cost_per_month']:,.2f}") == sentence.groups()
    assert loss["cost_per_month"] == pytest.approx(
        sum(h["cost_per_month"] for h in loss["headroom"]))
    assert loss["currency"] == "USD" and loss["limit"] == 200
    # Both sides solved on counted work, so the report is the same on any machine.
    assert re.search(r"\nSolver: cpsat, \w+, gap [\d.]+%, [\d.]+ deterministic s; ",
                     failed.stdout)
    assert len(failed.stdout) < 65_000


def test_comment_only_change_changes_nothing(cli, repo: Path):
    path = repo / "registry" / "models" / "spam-filter.yaml"
    path.write_text("# reviewed by trust-safety\n" + path.read_text())
    result = cli("check", "--registry", "registry", "--base", "main", "--format", "json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body["changed"] is False and body["models"] == []
    assert body["total"]["change"] == 0
    markdown = cli("check", "--registry", "registry", "--base", "main")
    assert "No change to cost or placement." in markdown.stdout.splitlines()[1]


def test_new_model_no_pool_admits_fails_with_annotation(cli, repo: Path, monkeypatch,
                                                        tmp_path: Path):
    source = repo / "registry" / "models" / "spam-filter.yaml"
    target = repo / "registry" / "models" / "giant-experiment.yaml"
    target.write_text(source.read_text().replace("spam-filter", "giant-experiment")
                      .replace("model-tier: small", "model-tier: large"))
    (repo / "registry" / "profiles" / "giant-experiment").mkdir()
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli("check", "--registry", "registry", "--base", "main", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error file=registry/models/giant-experiment.yaml,line=6,"
                               "title=policy::no pool admits this model (team trust-safety")
    assert "- **policy**: 1 model(s) break a placement rule." in result.stdout
    assert summary.read_text().startswith(MARKER)


def test_broken_yaml_on_new_side_exit_2(cli, repo: Path):
    (repo / "registry" / "models" / "spam-filter.yaml").write_text("name: [\n")
    result = cli("check", "--registry", "registry", "--base", "main")
    assert result.exit_code == 2
    assert "spam-filter.yaml:2: YAML syntax error" in result.stderr


def test_unknown_base_ref_exit_2(cli, repo: Path):
    result = cli("check", "--registry", "registry", "--base", "origin/nope")
    assert result.exit_code == 2
    assert result.stderr == ("error: --base origin/nope: no such git ref; fetch it (for "
                             "example `git fetch origin main`) or pass --base-plan PLAN\n")


def test_check_against_plan_file_and_diff(cli, repo: Path, tmp_path: Path):
    assert cli("plan", "--registry", "registry", "--out", tmp_path / "base").exit_code == 0
    edit_yaml(repo / "registry" / "models" / "code-assistant.yaml",
              lambda d: d["replicas"].update(min=4))
    result = cli("check", "--registry", "registry", "--base-plan",
                 tmp_path / "base" / "plan.yaml", "--budget", "1", "--out-file",
                 tmp_path / "report.md")
    assert result.exit_code == 1
    assert "- **budget**: monthly cost" in (tmp_path / "report.md").read_text()
    assert cli("plan", "--registry", "registry", "--out", tmp_path / "new").exit_code == 0
    diff = cli("diff", tmp_path / "base" / "plan.yaml", tmp_path / "new" / "plan.yaml",
               "--format", "json")
    body = json.loads(diff.stdout)
    [change] = [m for m in body["models"] if m["name"] == "code-assistant"]
    assert (change["replicas_before"], change["replicas_after"]) == (2, 4)
    assert body["schema_version"] == 3 and body["changed"] is True


def test_working_tree_untouched(cli, repo: Path):
    path = repo / "registry" / "models" / "spam-filter.yaml"
    path.write_text(path.read_text() + "# local edit\n")
    before = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                            text=True).stdout
    cli("check", "--registry", "registry", "--base", "main")
    after = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                           text=True).stdout
    assert before == after == " M registry/models/spam-filter.yaml\n"


def test_check_runs_without_torch(repo: Path, tmp_path: Path):
    blocker = tmp_path / "no-torch"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch" / "__init__.py").write_text("raise ImportError('torch is not here')\n")
    (blocker / "pynvml.py").write_text("raise ImportError('nvidia-ml-py is not here')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "planner", "check", "--registry", "registry",
                             "--base", "main", "--format", "json"], cwd=repo, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert probe.returncode != 0


def _amount(cell: str) -> Decimal:
    """`+1,234.56 USD` (or `**+1,234.56 USD** (+3.1%)`) as a Decimal."""
    return Decimal(re.search(r"[-+]?[\d,]+(?:\.\d+)?", cell).group().replace(",", ""))


def test_check_cost_table_has_idle_and_adds_up(cli, repo: Path, tmp_path: Path):
    edit_yaml(repo / "registry" / "models" / "llm-rag-answerer.yaml",
              lambda d: d["traffic"].update(peak_rps=d["traffic"]["peak_rps"] * 10))
    edit_yaml(repo / "registry" / "models" / "spam-filter.yaml",
              lambda d: d["replicas"].update(min=6))
    result = cli("check", "--registry", "registry", "--base", "main", "--out-file",
                 tmp_path / "check.md")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split("### Cost\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines[0] == "| cost per month | before | after | change |"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    total = _amount(cells[0][3])
    teams = [c for c in cells if c[0].startswith("team ")]
    idle = [c for c in cells if c[0] == "idle capacity"]
    pools = [c for c in cells if c[0].startswith("pool ")]
    assert teams and idle and pools  # the change moves team, idle and pool costs
    assert sum(_amount(c[3]) for c in teams + idle) == total
    assert sum(_amount(c[3]) for c in pools) == total
    body = json.loads(cli("check", "--registry", "registry", "--base", "main",
                          "--format", "json").stdout)
    after = {t["name"]: Decimal(str(t["after"])) for t in body["teams"]}
    assert sum(after.values()) + Decimal(str(body["idle"]["after"])) \
        == Decimal(str(body["total"]["after"]))
