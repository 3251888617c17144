"""Regenerate docs/plan-example.png, the top of the demo's plan.html in headless Chromium.

    python scripts/plan_screenshot.py

Plans the demo with the golden files' command (scripts/update_goldens.py), opens the page
1400 px wide and keeps its top 1500 px. Look at the image before committing it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.update_goldens import COMMAND  # noqa: E402
from tests import browser  # noqa: E402

SCREENSHOT = ROOT / "docs" / "plan-example.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        # The registry by its path in the repository, as the page shows it.
        command = [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a
                   for a in COMMAND]
        subprocess.run([sys.executable, "-m", "planner", *command, "--out", str(out)],
                       check=True, capture_output=True, cwd=ROOT)
        result = browser.load(out / "plan.html", width=1400, height=1500)
    if result.errors:
        sys.exit(f"plan.html has errors: {result.errors}")
    SCREENSHOT.write_bytes(result.screenshot_png)
    print(f"updated {SCREENSHOT}")


if __name__ == "__main__":
    main()
