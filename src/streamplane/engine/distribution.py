"""Resolve Apache Kafka jars from Maven Central into a per-version cache.

A distribution is a directory of jars plus the Prometheus JMX exporter agent and the
logging configuration Kafka expects. Maven does the resolving; we only write a tiny POM
and ask Maven to copy the runtime dependencies. A ``complete.json`` marker makes a
second call a no-op.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from streamplane.paths import cache_root
from streamplane.versions import JMX_EXPORTER_VERSION, KafkaRelease, release

JAVA_HINT = "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
MAVEN_HINT = "install Apache Maven (Debian: apt-get install maven), or set KAFKA_HOME"


class EngineError(RuntimeError):
    """The Kafka engine cannot be made available; the message says what to install."""


@dataclass(frozen=True)
class KafkaDistribution:
    """Everything needed to launch one Kafka version."""

    version: str
    libs_dir: Path
    jmx_agent: Path
    log_config: Path
    logging_flavour: str
    source: str  # "maven" or "KAFKA_HOME"

    @property
    def classpath(self) -> str:
        return str(self.libs_dir / "*")

    def logging_jvm_options(self, logs_dir: Path) -> list[str]:
        opts = [f"-Dkafka.logs.dir={logs_dir}"]
        if self.logging_flavour == "log4j2":
            opts.append(f"-Dlog4j2.configurationFile={self.log_config}")
        else:
            opts.append(f"-Dlog4j.configuration=file:{self.log_config}")
        return opts


LOG4J2_CONFIG = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

LOG4J_CONFIG = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""


def _pom(rel: KafkaRelease) -> str:
    coords = [
        f"org.apache.kafka:kafka_{rel.scala}:{rel.version}",
        f"org.apache.kafka:kafka-tools:{rel.version}",
        *rel.logging_artifacts,
        f"io.prometheus.jmx:jmx_prometheus_javaagent:{JMX_EXPORTER_VERSION}",
    ]
    deps = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*c.split(":"))
        for c in coords
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.streamplane.engine</groupId>
  <artifactId>kafka-{rel.version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def check_java(java: str = "java") -> int:
    """Return the major version of ``java``; raise EngineError if missing or too old."""
    exe = shutil.which(java)
    if exe is None:
        raise EngineError(f"'java' was not found on PATH: {JAVA_HINT}")
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise EngineError(f"could not read the Java version from '{exe} -version': {JAVA_HINT}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < 17:
        raise EngineError(f"Java {major} found at {exe}; Kafka 4 needs 17 or newer: {JAVA_HINT}")
    return major


def _kafka_home_version(home: Path) -> str | None:
    for jar in (home / "libs").glob("kafka_2.*-*.jar"):
        m = re.fullmatch(r"kafka_2\.\d+-(\d+\.\d+\.\d+)\.jar", jar.name)
        if m:
            return m.group(1)
    return None


class EngineResolver:
    """Makes Kafka distributions available, installing them with Maven when needed."""

    def __init__(self, cache_dir: Path | None = None, mvn: str = "mvn") -> None:
        self.cache_dir = cache_dir or cache_root() / "kafka"
        self.mvn = mvn

    def version_dir(self, version: str) -> Path:
        return self.cache_dir / version

    def installed(self, version: str) -> KafkaDistribution | None:
        """The cached distribution if it is complete, else None. Never downloads."""
        rel = release(version)
        home = os.environ.get("KAFKA_HOME")
        if home and _kafka_home_version(Path(home)) == version:
            agent = self._agent_from_cache(version)
            if agent is not None:
                return self._from_kafka_home(Path(home), rel, agent)
        vdir = self.version_dir(version)
        marker = vdir / "complete.json"
        if not marker.exists():
            return None
        try:
            recorded = json.loads(marker.read_text())
        except ValueError:
            return None
        libs = vdir / "libs"
        if not all((libs / name).exists() for name in recorded.get("jars", [])):
            return None
        agent = vdir / "agent" / recorded.get("agent", "")
        if not agent.is_file():
            return None
        return KafkaDistribution(
            version=version,
            libs_dir=libs,
            jmx_agent=agent,
            log_config=self._write_log_config(vdir, rel),
            logging_flavour=rel.logging_flavour,
            source="maven",
        )

    def resolve(self, version: str) -> KafkaDistribution:
        """Return the distribution for ``version``, installing it first if needed."""
        rel = release(version)
        dist = self.installed(version)
        if dist is not None:
            return dist
        check_java()
        self._install_with_maven(rel)
        home = os.environ.get("KAFKA_HOME")
        if home and _kafka_home_version(Path(home)) == version:
            agent = self._agent_from_cache(version)
            assert agent is not None
            return self._from_kafka_home(Path(home), rel, agent)
        dist = self.installed(version)
        if dist is None:
            raise EngineError(f"Kafka {version} was installed but the cache is incomplete")
        return dist

    def _agent_from_cache(self, version: str) -> Path | None:
        agents = sorted((self.version_dir(version) / "agent").glob("jmx_prometheus_javaagent-*.jar"))
        return agents[-1] if agents else None

    def _from_kafka_home(self, home: Path, rel: KafkaRelease, agent: Path) -> KafkaDistribution:
        return KafkaDistribution(
            version=rel.version,
            libs_dir=home / "libs",
            jmx_agent=agent,
            log_config=self._write_log_config(self.version_dir(rel.version), rel),
            logging_flavour=rel.logging_flavour,
            source="KAFKA_HOME",
        )

    @staticmethod
    def _write_log_config(vdir: Path, rel: KafkaRelease) -> Path:
        vdir.mkdir(parents=True, exist_ok=True)
        if rel.logging_flavour == "log4j2":
            path, text = vdir / "log4j2.properties", LOG4J2_CONFIG
        else:
            path, text = vdir / "log4j.properties", LOG4J_CONFIG
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path

    def _install_with_maven(self, rel: KafkaRelease) -> None:
        mvn = shutil.which(self.mvn)
        if mvn is None:
            raise EngineError(f"'mvn' was not found on PATH: {MAVEN_HINT}")
        vdir = self.version_dir(rel.version)
        vdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=vdir, prefix=".resolve-") as tmp:
            work = Path(tmp)
            (work / "pom.xml").write_text(_pom(rel))
            out = work / "libs"
            proc = subprocess.run(
                [mvn, "-B", "-q", "-f", str(work / "pom.xml"),
                 "dependency:copy-dependencies", f"-DoutputDirectory={out}",
                 "-DincludeScope=runtime"],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln]
                detail = errors[0] if errors else proc.stderr.strip()[-500:]
                raise EngineError(
                    f"Maven could not resolve Kafka {rel.version} from Maven Central: {detail}"
                )
            agent_dir = work / "agent"
            agent_dir.mkdir()
            agents = list(out.glob("jmx_prometheus_javaagent-*.jar"))
            if not agents:
                raise EngineError("Maven did not deliver the Prometheus JMX exporter agent")
            for agent in agents:
                agent.rename(agent_dir / agent.name)
            jars = sorted(p.name for p in out.glob("*.jar"))
            for name in ("libs", "agent"):
                target = vdir / name
                if target.exists():
                    shutil.rmtree(target)
                (work / name).rename(target)
            marker = {"version": rel.version, "jars": jars, "agent": agents[0].name}
            (vdir / "complete.json").write_text(json.dumps(marker, indent=1))


def resolve_distribution(version: str) -> KafkaDistribution:
    """Convenience: the default resolver's distribution for ``version``."""
    return EngineResolver().resolve(version)
