"""The scheduling simulation: an output folder's manifests replayed against the nodes its
NodePools would create, with the Kubernetes scheduler's filters and the device allocation (the
NVIDIA device plugin's, or Dynamic Resource Allocation of ResourceClaims), to show where each
pod lands, whether the plan's rules hold, and what losing each node in turn does.

`manifests` reads the documents, `nodes` makes the nodes (Karpenter's template, the GPU
Operator's device configuration), `pods` the pods of each workload, `filters` the scheduler's
filter plugins, `devices` and `claims` the device allocation, `scheduler` binding and
preemption, `replay` the plan replayed and its rules checked, `node_loss` every node lost in
turn, `export` the result as data.
"""
