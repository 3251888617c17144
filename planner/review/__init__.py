"""Reviewing a change: plan diffs, the check's gates, and reading the base from git."""
