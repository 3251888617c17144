"""Replaying traffic against a plan's lazy caches: arrivals, then loads and evictions."""
