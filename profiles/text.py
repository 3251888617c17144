"""A profile as text: the YAML file in the registry, and the same YAML between markers in a
profiling Job's log, from which `planner profile import` reads it back.

Needs no torch: a CI runner or laptop without the `profile` extra imports Jobs' results.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from profiles.errors import ProfileError
from profiles.schema import Profile

BEGIN = "=== planner profile begin {model} {gpu_type} ==="
END = "=== planner profile end ==="
_BEGIN_PATTERN = re.compile(re.escape(BEGIN).replace(r"\{model\}", r"(\S+)")
                            .replace(r"\{gpu_type\}", r"(\S+)"))


def dump_profile(profile: Profile) -> str:
    """The profile file's YAML, in the field order a reader expects; empty strings left out."""
    body = {"apiVersion": profile.api_version, "kind": profile.kind,
            **profile.model_dump(mode="json", exclude_none=True,
                                 exclude={"api_version", "kind"})}
    body["environment"] = {k: v for k, v in body["environment"].items() if v != ""}
    return yaml.safe_dump(body, sort_keys=False, width=100)


def with_markers(profile: Profile) -> str:
    """The profile between markers, for collecting from a Job's log."""
    return (BEGIN.format(model=profile.model, gpu_type=profile.gpu_type) + "\n"
            + dump_profile(profile) + END + "\n")


def read_log(path: Path) -> list[Profile]:
    """Every profile logged between markers in one log; a broken one names file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}; pass the log file of a "
                           "profiling Job (kubectl logs job/NAME > FILE)") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not a text file; pass the log file of a profiling Job"
                           ) from None
    profiles = []
    start = None
    for number, line in enumerate(lines, start=1):
        if _BEGIN_PATTERN.search(line):
            start = number
        elif line.strip() == END and start is not None:
            text = "\n".join(lines[start:number - 1])
            try:
                profiles.append(Profile.model_validate(yaml.safe_load(text)))
            except (yaml.YAMLError, ValidationError) as exc:
                first = str(exc).splitlines()[0]
                raise ProfileError(f"{path}:{start}: the profile logged here is not valid: "
                                   f"{first}") from None
            start = None
    if start is not None:
        raise ProfileError(f"{path}:{start}: profile begins but never ends; the Job may "
                           "have been cut short")
    return profiles


def read_logs(paths: list[Path]) -> list[Profile]:
    """The profiles of every log in `paths`; none at all is an error that says what to pass."""
    profiles = [profile for path in paths for profile in read_log(path)]
    if not profiles:
        raise ProfileError(f"no profile between '{BEGIN.split(' {')[0]} ...' and '{END}' "
                           f"markers in {', '.join(map(str, paths))}; pass the logs of Jobs "
                           "written by `planner profile jobs`")
    return profiles
