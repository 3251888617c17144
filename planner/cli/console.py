"""The two consoles of the CLI: results on stdout, diagnostics and progress on stderr.

Off a terminal, rich would wrap tables at 80 columns; results are read whole there, so the
stdout console is made wide enough never to truncate a pool or model name.
"""

from __future__ import annotations

import sys

from rich.console import Console

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)
