"""The satellite: the per-host agent that turns PSCs into running Kafka processes."""
