"""Kafka on a satellite's host: the one place that knows how to run a Kafka node.

``interface`` says what a cluster worker asks of Kafka (``KafkaCluster``, ``KafkaNode``,
``KafkaProbe``); ``local`` runs real processes: ``node`` (render, format, start, adopt,
restart with backoff, stop), ``config`` (``server.properties``), ``probe`` (the admin
protocol and JMX exporter metrics).
"""
