"""The control channel: PSCs and status carried over Kafka topics on the system cluster."""
