"""A generic constrained vector-packing engine: integer items into GPUs, nodes and pools.

It knows nothing of models or Kubernetes, so the classic bin-packing benchmarks run through the
same code that plans a fleet. ortools is imported only by the CP-SAT modules. The `cluster*`
modules solve the other question, what fits onto nodes that already exist (a replayed trace).
"""
