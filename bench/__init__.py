"""Benchmark-only code, not shipped: readers for classic packing instances and the openb
cluster replay (placing a trace's pods onto fixed, mixed nodes)."""
