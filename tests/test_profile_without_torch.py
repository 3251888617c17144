"""`planner profile jobs` and `planner profile import` on the core install: torch is made
unimportable in a fresh process, as in a CI runner without the `profile` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from planner.registry.loader import load_registry
from profiles.text import with_markers

WITHOUT_TORCH = ("import sys; sys.modules['torch'] = None; sys.argv[0] = 'planner'; "
                 "from planner.cli import main; main()")


def planner_without_torch(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_jobs_in_the_old_spelling_write_jobs_with_a_notice(registry: Path, tmp_path: Path):
    out = tmp_path / "jobs"
    result = planner_without_torch("profile", "intent-classifier", "--emit-jobs", "--gpu-type",
                                   "l4", "--out", out, "--registry", registry)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("note: `planner profile MODEL...` is deprecated; "
                                             "use `planner profile jobs MODEL...`")
    assert sorted(p.name for p in out.glob("*.yaml")) == ["namespace.yaml",
                                                          "profile-intent-classifier-l4.yaml"]
    job = yaml.safe_load((out / "profile-intent-classifier-l4.yaml").read_text())
    assert job["kind"] == "Job"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][:4] == [
        "planner", "profile", "run", "intent-classifier"]


def test_import_of_a_profilers_log_writes_the_profile(registry: Path, tmp_path: Path):
    reference = load_registry(registry).profiles[("spam-filter", "l4")]
    log = tmp_path / "job.log"
    log.write_text("pulling image\n" + with_markers(reference.model_copy(
        update={"method": "measured", "basis": ""})) + "exit 0\n")
    result = planner_without_torch("profile", "import", log, "--registry", registry)
    assert result.returncode == 0, result.stderr
    target = registry / "profiles" / "spam-filter" / "l4.yaml"
    assert result.stderr == f"wrote {target}\n"
    assert load_registry(registry).profiles[("spam-filter", "l4")].method == "measured"


def test_missing_log_exit_2(registry: Path, tmp_path: Path):
    result = planner_without_torch("profile", "import", tmp_path / "gone.log", "--registry",
                                   registry)
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path / 'gone.log'}: cannot read: No such file or "
                             "directory; pass the log file of a profiling Job (kubectl logs "
                             "job/NAME > FILE)\n")


def test_log_without_markers_exit_2(registry: Path, tmp_path: Path):
    log = tmp_path / "job.log"
    log.write_text("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    result = planner_without_torch("profile", "import", log, "--registry", registry)
    assert result.returncode == 2
    assert result.stderr == (f"error: no profile between '=== planner profile begin ...' and "
                             f"'=== planner profile end ===' markers in {log}; pass the logs of "
                             "Jobs written by `planner profile jobs`\n")
    assert not list((registry / "profiles").rglob("*.tmp"))


def test_import_of_a_profile_of_another_registry_exit_2(registry: Path, tmp_path: Path):
    reference = load_registry(registry).profiles[("spam-filter", "l4")]
    log = tmp_path / "job.log"
    log.write_text(with_markers(reference.model_copy(update={"model": "not-here"})))
    result = planner_without_torch("profile", "import", log, "--registry", registry)
    assert result.returncode == 2
    assert result.stderr == ("error: imported profile of not-here on l4: not a model and GPU "
                             "type of this registry\n")


def test_measuring_without_torch_says_what_to_install(registry: Path):
    result = planner_without_torch("profile", "run", "spam-filter", "--registry", registry,
                                   "--device", "cpu")
    assert result.returncode == 2
    assert result.stderr == ("error: measuring models needs torch: pip install "
                             "'placement-planner[profile]' (or measure on the cluster with "
                             "`planner profile jobs`)\n")
