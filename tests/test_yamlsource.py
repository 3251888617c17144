from pathlib import Path

import pytest

from planner.errors import InputError
from planner.registry.yamlsource import format_loc, read_yaml


def test_lines_of_keys_and_list_items(tmp_path: Path):
    doc = read_yaml(tmp_path / "a.yaml", text="a: 1\nb:\n  c: 2\n  d:\n    - x\n    - {e: 3}\n")
    assert doc.data == {"a": 1, "b": {"c": 2, "d": ["x", {"e": 3}]}}
    assert doc.lines[("a",)] == 1
    assert doc.lines[("b", "c")] == 3
    assert doc.lines[("b", "d", 1)] == 6
    assert doc.lines[("b", "d", 1, "e")] == 6
    assert doc.line_of(("b", "c", "missing")) == 3
    assert doc.line_of(("nowhere",)) == 1


@pytest.mark.parametrize("text, line, message", [
    ("", 1, "file is empty; expected a YAML mapping"),
    ("- 1\n- 2\n", 1, "expected a mapping at the top, found list"),
    ("a: [1,\n", 2, "YAML syntax error: did not find expected node content"),
    ("a: 1\na: 2\n", 2, "duplicate key; keep one"),
])
def test_bad_files_are_one_located_problem(tmp_path: Path, text, line, message):
    with pytest.raises(InputError) as info:
        read_yaml(tmp_path / "f.yaml", text=text)
    [problem] = info.value.problems
    assert problem.line == line
    assert problem.message == message


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError) as info:
        read_yaml(tmp_path / "absent.yaml")
    assert str(info.value) == f"{tmp_path / 'absent.yaml'}: file not found"


def test_format_loc():
    assert format_loc(("pools", 2, "gpu_type")) == "pools[2].gpu_type"
    assert format_loc(()) == ""
