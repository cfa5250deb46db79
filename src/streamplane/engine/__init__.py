"""The Kafka engine: resolving Apache Kafka from Maven Central (or ``KAFKA_HOME``)."""

from streamplane.engine.distribution import EngineError, KafkaDistribution, resolve_distribution

__all__ = ["EngineError", "KafkaDistribution", "resolve_distribution"]
