"""The placement planner: packs ML model replicas onto shared GPU pools at the lowest cost."""

__version__ = "0.1.0"
