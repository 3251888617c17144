"""Writing an output folder atomically: everything lands, or the old folder stays as it was."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from planner.errors import InputError, Problem


def write_folder(target: Path, files: dict[str, str]) -> None:
    """Write `files` (relative path -> text) as the new content of `target`.

    The files go to a temporary sibling folder first, which then replaces `target` by rename;
    a failure before the swap leaves `target` untouched.
    """
    target = target.resolve()
    blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(Problem(target, None, None, f"cannot write the output folder: "
                                 f"{blocker} is a file; choose another --out"))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise InputError(Problem(target, None, None,
                                 f"cannot write the output folder: {exc.strerror}; choose "
                                 "another --out")) from None
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(Problem(target, None, None,
                                 f"cannot write the output folder: {exc.strerror}; choose "
                                 "another --out")) from None
