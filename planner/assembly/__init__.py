"""Turning the engine's solution into a plan: pools, nodes, GPUs, models and every cost figure."""
