"""Kept for the imports of ``cli/local.py`` and ``tests/test_engine.py`` only: the Kafka
node lives in ``satellite/kafka/``; import from there."""

from streamplane.satellite.kafka.node import KAFKA_MAIN, java_executable

__all__ = ["KAFKA_MAIN", "java_executable"]
