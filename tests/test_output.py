"""Output folders: never over what the planner did not write, never over its input, atomic
under SIGKILL, serialised between writers, and no file outside --out."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from planner.errors import InputError
from planner.output import MARKER, write_folder

ROOT = Path(__file__).resolve().parent.parent


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(target: Path, reason: str) -> str:
    return f"error: {target}: cannot write the output folder: {reason}; choose another --out\n"


def test_out_dot_in_a_registry_leaves_it_byte_identical(cli, registry: Path, monkeypatch):
    before = fingerprint(registry)
    monkeypatch.chdir(registry)
    result = cli("plan", "--out", ".", "--solver", "greedy")
    assert result.exit_code == 2
    assert result.stderr == refused(registry, f"it would replace {registry}, which the "
                                    "planner reads")
    assert fingerprint(registry) == before


@pytest.mark.parametrize("where", ["models", "profiles/intent-classifier", ".."])
def test_registry_subfolders_and_parents_refused(cli, registry: Path, where: str):
    before = fingerprint(registry.parent)
    target = registry / where
    result = cli("plan", "--registry", registry, "--out", target, "--solver", "greedy")
    assert result.exit_code == 2
    if where == "..":
        reason = f"it would replace {registry}, which the planner reads"
        shown = registry.parent
    else:
        reason = f"it would replace a folder inside {registry}, which the planner reads"
        shown = target
    assert result.stderr == refused(shown, reason)
    assert fingerprint(registry.parent) == before


def test_folder_with_foreign_files_refused_and_kept(cli, registry: Path, tmp_path: Path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli("plan", "--registry", registry, "--out", out, "--solver", "greedy")
    assert result.exit_code == 2
    assert result.stderr == refused(out, f"it holds files the planner did not write (no "
                                    f"{MARKER} marker); give a new or empty folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_earlier_output_is_replaced_but_not_with_a_file_added(cli, registry: Path,
                                                              tmp_path: Path):
    out = tmp_path / "out"
    for _ in range(2):
        result = cli("plan", "--registry", registry, "--out", out, "--solver", "greedy")
        assert result.exit_code == 0, result.stderr
    listed = (out / MARKER).read_text().splitlines()[1:]
    assert sorted(fingerprint(out)) == sorted([*listed, MARKER])
    assert "plan.yaml" in listed and "manifests/models/spam-filter.yaml" in listed
    (out / "manifests" / "extra.yaml").write_text("kind: ConfigMap\n")
    result = cli("plan", "--registry", registry, "--out", out, "--solver", "greedy")
    assert result.exit_code == 2
    assert result.stderr == refused(out, "it holds files the planner did not write "
                                    "(manifests/extra.yaml); move them away or give another "
                                    "folder")
    assert (out / "manifests" / "extra.yaml").exists()


def test_symlinked_out_refused(cli, registry: Path, tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(real)
    result = cli("plan", "--registry", registry, "--out", link, "--solver", "greedy")
    assert result.exit_code == 2
    assert result.stderr == refused(link, "it is a symbolic link; give the folder itself")
    assert [p.name for p in real.iterdir()] == ["keep.txt"]


def test_report_over_its_own_plan_refused(cli, registry: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert cli("plan", "--registry", registry, "--out", out, "--solver", "greedy").exit_code == 0
    result = cli("report", "--plan", out / "plan.yaml", "--out", out)
    assert result.exit_code == 2
    assert result.stderr == refused(out, f"it would replace {out / 'plan.yaml'}, which the "
                                    "planner reads")
    assert (out / "plan.yaml").exists()


def test_plan_names_cannot_leave_out(cli, registry: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert cli("plan", "--registry", registry, "--out", out, "--solver", "greedy").exit_code == 0
    data = yaml.safe_load((out / "plan.yaml").read_text())
    data["models"][0]["name"] = "../../../escaped"
    forged = tmp_path / "forged.yaml"
    forged.write_text(yaml.safe_dump(data))
    result = cli("report", "--plan", forged, "--out", tmp_path / "deep" / "er" / "r")
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(forged.read_text().splitlines(), 1)
                if text.endswith("name: ../../../escaped"))
    assert result.stderr == (f"error: {forged}:{line}: models[0].name: '../../../escaped' is "
                             "not a DNS-1123 label: lower-case letters, digits and '-', "
                             "starting and ending with a letter or digit, at most 63 "
                             "characters\n")
    assert not list(tmp_path.rglob("escaped*"))
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize("name", ["../escaped.yaml", "/tmp/escaped.yaml", "a/./b.yaml",
                                  MARKER, "a\\..\\b"])
def test_writer_keeps_every_file_under_out(tmp_path: Path, name: str):
    with pytest.raises(InputError) as caught:
        write_folder(tmp_path / "out", {name: "x"})
    assert str(caught.value) == (f"output file name {name!r} would leave the output folder; a "
                                 "name in the plan is not a valid file name")
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_folders_cleaned(cli, registry: Path, tmp_path: Path):
    stale = tmp_path / ".out.staging-dead1234"
    stale.mkdir()
    (stale / MARKER).write_text("# written by the placement planner; these files are replaced "
                                "on the next write\nplan.yaml\n")
    (tmp_path / ".out.staging-empty").mkdir()
    cut_short = tmp_path / ".out.staging-killedwhilemarking"  # killed between open and write
    cut_short.mkdir()
    (cut_short / MARKER).write_text("")
    mine = tmp_path / ".out.staging-notours"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    result = cli("plan", "--registry", registry, "--out", tmp_path / "out", "--solver", "greedy")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.staging-notours", "out",
                                                          "registry"]


def test_writers_of_one_folder_wait_for_the_lock(tmp_path: Path):
    target = tmp_path / "out"
    holder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    writer = threading.Thread(target=write_folder, args=(target, {"a.txt": "a"}))
    writer.start()
    writer.join(timeout=1.0)
    assert writer.is_alive() and not target.exists()
    os.close(holder)
    writer.join()
    assert (target / "a.txt").read_text() == "a"


def test_exchange_without_renameat2(tmp_path: Path, monkeypatch):
    import ctypes

    target = tmp_path / "out"
    write_folder(target, {"a.txt": "old"})
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: object())
    write_folder(target, {"b.txt": "new"})
    assert fingerprint(target).keys() == {"b.txt", MARKER}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_non_folder_target_refused(tmp_path: Path):
    target = tmp_path / "file"
    target.write_text("mine")
    with pytest.raises(InputError, match="it exists and is not a folder"):
        write_folder(target, {"a.txt": "a"})
    assert target.read_text() == "mine"


WRITER = """
import sys
from planner.output import write_folder
target, count = sys.argv[1], int(sys.argv[2])
version = 0
print("ready", flush=True)
while True:
    version += 1
    write_folder(__import__("pathlib").Path(target),
                 {f"m/{i}.yaml": f"version {version}\\n" * 50 for i in range(count)})
"""


def check_complete(target: Path) -> None:
    """`target` is absent or one whole output: every listed file there, all one version."""
    if not target.exists():
        return
    listed = (target / MARKER).read_text().splitlines()[1:]
    assert sorted(fingerprint(target)) == sorted([*listed, MARKER])
    assert len({(target / name).read_text() for name in listed}) == 1


def kill_writers(tmp_path: Path, kills: int, seed: int) -> None:
    """SIGKILL a looping writer `kills` times at random moments; check after every kill."""
    rng = random.Random(seed)
    target = tmp_path / "out"
    for _ in range(kills):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "200"],
                                   cwd=ROOT, stdout=subprocess.PIPE)
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        try:
            process.wait(timeout=rng.uniform(0.05, 0.6))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.wait()
        check_complete(target)
    write_folder(target, {"final.txt": "done"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert fingerprint(target).keys() == {"final.txt", MARKER}


def test_sigkill_leaves_old_or_new_output(tmp_path: Path):
    kill_writers(tmp_path, kills=5, seed=1)


def test_plan_taints_are_kubernetes_names(cli, registry: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert cli("plan", "--registry", registry, "--out", out, "--solver", "greedy").exit_code == 0
    data = yaml.safe_load((out / "plan.yaml").read_text())
    pool = next(p for p in data["pools"] if p["taints"])
    pool["taints"][0]["key"] = "bad key\nx"
    forged = tmp_path / "forged.yaml"
    forged.write_text(yaml.safe_dump(data, sort_keys=False))
    result = cli("report", "--plan", forged, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "taints[0].key" in result.stderr and "\\n" in result.stderr
    assert not (tmp_path / "r").exists()
