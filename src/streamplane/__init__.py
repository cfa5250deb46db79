"""Streamplane: a self-hosted managed Apache Kafka service."""

__version__ = "0.1.0"
