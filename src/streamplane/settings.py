"""Defaults that more than one component relies on, stated once.

Each is the value used when nobody says otherwise: the CLI's flags, the mothership's
settings, the scheduler and the PSC model all read them from here.
"""

from __future__ import annotations

MIB = 1024 * 1024

#: JVM heap of each broker the mothership provisions (small: tests run many brokers on one host)
BROKER_HEAP_MB = 384
#: replication throttle per broker while the balancer moves replicas, bytes/s
REPLICATION_THROTTLE_BYTES_PER_S = 50 * MIB
