"""The check's base is the git ref it names: never a file that looks like the ref, never a
filter or link that the repository's files bring along, never an odd ref echoed back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from planner.registry.locate import write_demo
from tests.conftest import edit_yaml

GIT = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]


def git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A repository whose `registry/` is the demo, committed on `main` and as `origin/main`."""
    write_demo(tmp_path / "registry")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "update-ref", "refs/remotes/origin/main", "HEAD")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_planted_file_named_like_the_ref_does_not_replace_the_base(cli, repo: Path,
                                                                   tmp_path: Path):
    edit_yaml(repo / "registry" / "models" / "code-assistant.yaml",
              lambda d: d["replicas"].update(min=10))
    honest = cli("check", "--registry", "registry", "--base", "origin/main",
                 "--max-increase", "100", "--format", "json")
    assert honest.exit_code == 1
    increase = json.loads(honest.stdout)["total"]["change"]
    assert increase > 100
    # the change also adds a plan of its own choice at the path `origin/main`
    assert cli("plan", "--registry", "registry", "--out", tmp_path / "forged").exit_code == 0
    (repo / "origin").mkdir()
    (repo / "origin" / "main").write_text((tmp_path / "forged" / "plan.yaml").read_text())
    planted = cli("check", "--registry", "registry", "--base", "origin/main",
                  "--max-increase", "100", "--format", "json")
    assert planted.exit_code == 1
    assert json.loads(planted.stdout)["total"]["change"] == increase


def test_base_and_base_plan_are_exclusive(cli, repo: Path):
    for args in ([], ["--base", "main", "--base-plan", "plan.yaml"]):
        result = cli("check", "--registry", "registry", *args)
        assert result.exit_code == 2
        assert result.stderr == ("error: give exactly one of --base REF (a git ref such as "
                                 "origin/main) or --base-plan PLAN (a plan.yaml)\n")


def test_base_plan_that_is_not_a_plan(cli, repo: Path):
    result = cli("check", "--registry", "registry", "--base-plan",
                 "registry/models/spam-filter.yaml")
    assert result.exit_code == 2
    assert result.stderr == ("error: registry/models/spam-filter.yaml:1: this is a registry "
                             "file (models/<name>.yaml: one model per file), not a plan file; "
                             "pass the plan.yaml that `planner plan --out DIR` wrote\n")


@pytest.mark.parametrize(("ref", "message"), [
    ("a" * 256, "--base " + "a" * 60 + "…: longer than 255 characters; give a git ref such as "
     "origin/main"),
    ("main\n::error::forged", "--base main\\n::error::forged: not a git ref (spaces, control "
     "characters or a leading '-'); give a git ref such as origin/main"),
    ("--output=/tmp/x", "--base --output=/tmp/x: not a git ref (spaces, control characters or a "
     "leading '-'); give a git ref such as origin/main"),
    ("", "--base: empty; give a git ref such as origin/main"),
])
def test_odd_refs_are_usage_errors(cli, repo: Path, ref: str, message: str):
    result = cli("check", "--registry", "registry", "--base", ref)
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"


def test_filters_from_the_repository_config_do_not_run(cli, repo: Path, tmp_path: Path):
    (repo / ".gitattributes").write_text("*.yaml filter=planted\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    marker = tmp_path / "filter-ran"
    git(repo, "config", "filter.planted.smudge", f"touch {marker}; cat")
    git(repo, "config", "filter.planted.required", "true")
    result = cli("check", "--registry", "registry", "--base", "main")
    assert result.exit_code == 0, result.stderr
    assert not marker.exists()


def test_base_symlink_leaving_the_registry_is_named(cli, repo: Path):
    link = repo / "registry" / "models" / "zeros.yaml"
    os.symlink("/dev/zero", link)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    link.unlink()
    result = cli("check", "--registry", "registry", "--base", "main")
    assert result.exit_code == 2
    assert result.stderr == ("error: main:models/zeros.yaml: symbolic link to /dev/zero leaves "
                             "the registry; commit the file itself\n")


def test_base_symlink_inside_the_registry_is_followed(cli, repo: Path):
    registry = repo / "registry"
    (registry / "shared").mkdir()
    (registry / "cluster.yaml").rename(registry / "shared" / "cluster.yaml")
    os.symlink("shared/cluster.yaml", registry / "cluster.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "cluster moved")
    result = cli("check", "--registry", "registry", "--base", "HEAD~1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["changed"] is False
