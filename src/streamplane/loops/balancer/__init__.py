"""Partition balancing, split as Cruise Control splits it: monitor (load model), analyzer
(goals in priority order), executor (throttled, batched reassignments)."""
