"""The bundled demo: a registry that looks like a real platform, and the torch models it names."""

from importlib.resources import files
from pathlib import Path


def demo_registry_path() -> Path:
    """The folder of the bundled demo registry inside the installed package."""
    return Path(str(files("planner.demo") / "registry"))
