"""The control channel: PSCs and status carried over Kafka topics on the system cluster.

The mothership publishes PSCs to the compacted ``desired`` topic (key = cluster id) with
``DesiredPublisher`` and reads the compacted ``status`` topic with ``StatusReader``; each
satellite follows ``desired`` with ``KafkaDesiredSource`` and reports through
``KafkaStatusSink``. ``ensure_topics`` creates both topics.
"""

from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.channel.mothership import DesiredPublisher, StatusReader
from streamplane.channel.satellite import KafkaDesiredSource, KafkaStatusSink
from streamplane.channel.topics import ensure_topics

__all__ = [
    "ChannelConfig",
    "ChannelError",
    "DesiredPublisher",
    "KafkaDesiredSource",
    "KafkaStatusSink",
    "StatusReader",
    "ensure_topics",
]
