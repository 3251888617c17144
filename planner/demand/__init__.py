"""From profile to demand: operating point, replicas and per-replica resources, and the
integer packing problem handed to the engine."""
