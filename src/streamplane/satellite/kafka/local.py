"""The Kafka of one physical cluster as real processes on this host."""

from __future__ import annotations

import asyncio

from streamplane.engine import KafkaDistribution
from streamplane.engine.distribution import EngineResolver
from streamplane.files import write_private
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.proc.process import ProcessHandle
from streamplane.satellite.kafka.node import LocalKafkaNode, java_executable, last_line, run_tool
from streamplane.satellite.kafka.probe import ClusterProbe
from streamplane.satellite.layout import ClusterLayout


class LocalKafkaCluster:
    """Makes the nodes and probes of the cluster in ``layout``; see ``interface.KafkaCluster``."""

    def __init__(self, layout: ClusterLayout, resolver: EngineResolver) -> None:
        self.layout = layout
        self.resolver = resolver

    async def distribution(self, version: str) -> KafkaDistribution:
        return await asyncio.to_thread(self.resolver.resolve, version)

    def node(self, node_id: int, handle: ProcessHandle | None = None) -> LocalKafkaNode:
        return LocalKafkaNode(node_id, self.layout, handle)

    def probe(self, internal_bootstrap: str, user: str, password: str,
              ca_file: str | None = None) -> ClusterProbe:
        return ClusterProbe(internal_bootstrap, user, password, ca_file)

    async def unregister(
        self, psc: PhysicalClusterSpec, bootstrap: str, broker_ids: list[int],
        dist: KafkaDistribution,
    ) -> tuple[list[int], list[str]]:
        """Kafka's ``kafka-cluster unregister`` for each broker (one JVM each)."""
        config = self.layout.root / "unregister.properties"
        tls = (["ssl.truststore.type=PEM", f"ssl.truststore.location={self.layout.ca_file}"]
               if psc.tls is not None else [])
        write_private(config, "\n".join([
            f"security.protocol={'SASL_SSL' if tls else 'SASL_PLAINTEXT'}", "sasl.mechanism=PLAIN", *tls,
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{psc.super_user.name}" password="{psc.super_user.password.get_secret_value()}";',
        ]) + "\n")
        done: list[int] = []
        said: list[str] = []
        try:
            for node_id in broker_ids:
                argv = [java_executable(), "-Xmx128m", "-cp", dist.classpath,
                        "org.apache.kafka.tools.ClusterTool", "unregister",
                        "--bootstrap-server", bootstrap, "--config", str(config), "--id", str(node_id)]
                code, text = await run_tool(argv)
                if code is None:
                    said.append(f"unregistering broker {node_id} timed out; retrying")
                elif code == 0 or "BrokerIdNotRegistered" in text or "not registered" in text:
                    done.append(node_id)
                else:
                    said.append(f"unregistering broker {node_id} failed: {last_line(text, code)}")
        finally:
            config.unlink(missing_ok=True)
        return done, said

