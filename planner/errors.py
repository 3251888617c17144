"""Typed errors of the planner. Domain code raises them; only the CLI turns them into exits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def printable(text: str) -> str:
    """`text` with every control, format or separator character written as an escape (`\\n`,
    `\\x1b`, `\\u202e`), so that text from an input file prints as one line that cannot move
    the cursor, recolour a terminal or start a CI workflow command."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as the input allows."""

    file: Path | None
    line: int | None
    field: str | None
    message: str
    policy: bool = False  # breaks a platform rule rather than being malformed; a check gate

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.field}: " if self.field else ""
        return printable(f"{where}{field}{self.message}")


class PlannerError(Exception):
    """Base of every error the CLI knows how to report."""

    exit_code = 3


class InputError(PlannerError):
    """The input is wrong (schema, missing file, contradictory values): exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(None, None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

