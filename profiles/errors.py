"""Errors of the profiler: what the user must change, never a traceback."""


class ProfileError(Exception):
    """The model, its source or the device cannot be profiled as asked (exit code 2)."""
