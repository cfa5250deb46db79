"""Choosing free TCP ports for listeners and metrics endpoints."""

from __future__ import annotations

import random
import socket

#: below the kernel's ephemeral range, so an outgoing connection never takes our port
PORT_RANGE = (20000, 32000)


class PortAllocator:
    """Hands out ports that are free now and not promised to anyone else in this process."""

    def __init__(self, host: str = "127.0.0.1", port_range: tuple[int, int] = PORT_RANGE) -> None:
        self.host = host
        self.port_range = port_range
        self._promised: set[int] = set()
        self._rng = random.Random()

    def reserve(self, ports: set[int]) -> None:
        """Ports already in use by our own clusters (recorded in their state)."""
        self._promised |= ports

    def allocate(self) -> int:
        lo, hi = self.port_range
        for _ in range(1000):
            port = self._rng.randrange(lo, hi)
            if port in self._promised or not self._bindable(port):
                continue
            self._promised.add(port)
            return port
        raise RuntimeError(f"no free port found in {lo}-{hi} on {self.host}")

    def _bindable(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((self.host, port))
            except OSError:
                return False
        return True
