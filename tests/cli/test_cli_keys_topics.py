"""``streamplane api-key | topic | kafka-config`` against a real mothership API without Kafka:
listing and revoking keys, client configs, and every refusal a user can run into. (Issuing
keys and managing topics on real Kafka is the end-to-end test's job.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from streamplane.mothership.store import LogicalCluster, LogicalClusterStatus

from .conftest import CLI_ENV_VARS, Invoke, LiveApi, only_error

BOOTSTRAP = "127.0.0.1:19092"


def provisioning(live_api: LiveApi, streamplane: Invoke, name: str) -> LogicalCluster:
    res = streamplane("cluster", "create", name, "--type", "basic", "--data-dir", str(live_api.data_dir))
    assert res.exit_code == 0, res.output
    return live_api.cluster_named(name)


def running(live_api: LiveApi, streamplane: Invoke, name: str) -> LogicalCluster:
    """As the reconciler leaves a cluster once its Kafka runs (minus the Kafka)."""
    lc = provisioning(live_api, streamplane, name)
    return live_api.store.logical_clusters.set_status(lc.id, LogicalClusterStatus.RUNNING, bootstrap=BOOTSTRAP)


def test_list_and_revoke_api_keys(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    lc = provisioning(live_api, streamplane, "keys")
    res = streamplane("api-key", "list", "--cluster", "keys", "--data-dir", d)
    assert res.exit_code == 0 and res.stdout.startswith("no API keys; create one with")

    issued = live_api.store.api_keys.create(lc.id, description="billing service")
    key, secret = issued.api_key.id, issued.secret.get_secret_value()
    res = streamplane("api-key", "list", "--cluster", "keys", "-o", "json", "--data-dir", d)
    assert res.exit_code == 0, res.output
    [doc] = json.loads(res.stdout)
    assert (doc["key"], doc["cluster_id"], doc["description"]) == (key, lc.id, "billing service")
    assert doc["revoked_at"] is None
    assert secret not in res.stdout and "secret" not in doc
    text = streamplane("api-key", "list", "--cluster", lc.id, "--data-dir", d).stdout
    assert text.splitlines()[0].split() == ["KEY", "CREATED", "DESCRIPTION"]
    assert key in text and "billing service" in text

    res = streamplane("api-key", "revoke", key, "--data-dir", d)
    assert res.exit_code == 0 and res.stdout == f"revoked API key {key}\n"
    assert json.loads(streamplane("api-key", "list", "--cluster", "keys", "-o", "json", "--data-dir", d).stdout) == []
    assert only_error(streamplane("api-key", "revoke", key, "--data-dir", d)) == f"API key {key} is already revoked"
    assert "does not exist" in only_error(streamplane("api-key", "revoke", "AKNOSUCHKEY00000", "--data-dir", d))


def test_keys_and_topics_need_a_running_cluster(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    provisioning(live_api, streamplane, "young")
    not_yet = "cluster young is PROVISIONING, not RUNNING; try again once it runs"
    for args in (["api-key", "create", "--cluster", "young"],
                 ["topic", "create", "events", "--cluster", "young", "--partitions", "6", "--config", "a=b"],
                 ["topic", "list", "--cluster", "young"],
                 ["topic", "describe", "events", "--cluster", "young"],
                 ["topic", "update", "events", "--cluster", "young", "--partitions", "12"],
                 ["topic", "delete", "events", "--cluster", "young"]):
        assert only_error(streamplane(*args, "--data-dir", d)) == not_yet, args
    assert live_api.store.api_keys.list() == []  # the refused create left no key behind


def test_topic_arguments_are_checked_before_calling_the_api(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    assert only_error(streamplane("topic", "update", "t", "--cluster", "c", "--data-dir", d)) \
        == "nothing to change: pass --config KEY=VALUE, --delete-config KEY or --partitions N"
    assert only_error(streamplane("topic", "update", "t", "--cluster", "c", "--config", "retention.ms=1",
                                  "--delete-config", "retention.ms", "--data-dir", d)) \
        == "retention.ms: both set with --config and removed with --delete-config"
    assert "retention.ms is given twice with different values" in only_error(
        streamplane("topic", "create", "t", "--cluster", "c", "--config", "retention.ms=1",
                    "--config", "retention.ms=2", "--data-dir", d))
    assert "0 is not in the range x>=1" in only_error(
        streamplane("topic", "create", "t", "--cluster", "c", "--partitions", "0", "--data-dir", d))
    assert only_error(streamplane("topic", "describe", "..", "--cluster", "c", "--data-dir", d)) \
        == "'..' is not a valid name or id"


def test_kafka_config_prints_client_properties(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    lc = running(live_api, streamplane, "shop")
    key = live_api.store.api_keys.create(lc.id).api_key.id

    res = streamplane("kafka-config", "--cluster", "shop", "--api-key", key, "--secret", "s3cret-Value_1",
                      "--data-dir", d)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "# shop (basic) is served by a Streamplane gateway; it takes PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        f"bootstrap.servers={BOOTSTRAP}",
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=SCRAM-SHA-512",
        f"sasl.username={key}",
        "sasl.password=s3cret-Value_1",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{key}" password="s3cret-Value_1";',
    ]

    res = streamplane("kafka-config", "--cluster", lc.id, "--api-key", key, "--format", "librdkafka-json",
                      "--data-dir", d, env={"STREAMPLANE_API_SECRET": "from-env"})
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": key, "sasl.password": "from-env"}

    # a properties file librdkafka reads as is (kcat -F, confluent-kafka): no JAAS line
    res = streamplane("kafka-config", "--cluster", "shop", "--api-key", key, "--secret", "s3",
                      "--format", "librdkafka", "--data-dir", d)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [f"bootstrap.servers={BOOTSTRAP}", "security.protocol=SASL_PLAINTEXT",
                                       "sasl.mechanism=SCRAM-SHA-512", f"sasl.username={key}",
                                       "sasl.password=s3"]
    java = streamplane("kafka-config", "--cluster", "shop", "--api-key", key, "--secret", "s3",
                       "--format", "java", "--data-dir", d)
    assert java.exit_code == 0 and "sasl.jaas.config=" in java.stdout


def test_kafka_config_refusals(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    lc = running(live_api, streamplane, "shop")
    other = provisioning(live_api, streamplane, "other")
    foreign = live_api.store.api_keys.create(other.id).api_key.id

    assert only_error(streamplane("kafka-config", "--cluster", "shop", "--api-key", foreign, "--secret", "x",
                                  "--data-dir", d)) \
        == f"cluster shop has no live API key {foreign}; create one with `streamplane api-key create --cluster shop`"
    assert only_error(streamplane("kafka-config", "--cluster", "other", "--api-key", foreign, "--secret", "x",
                                  "--data-dir", d)) \
        == "cluster other has no bootstrap address yet (it is PROVISIONING); try again once it is RUNNING"
    key = live_api.store.api_keys.create(lc.id).api_key.id
    assert only_error(streamplane("kafka-config", "--cluster", "shop", "--api-key", key, "--data-dir", d)) \
        .startswith("Missing option '--secret'")


def test_the_installed_command_line(live_api: LiveApi) -> None:
    """The real ``streamplane`` entry point: the commands are registered, and an error is
    exactly one line on stderr with exit status 1."""
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV_VARS}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streamplane", *args, "--data-dir", str(live_api.data_dir)],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    res = run("cluster", "list", "-o", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
    res = run("cluster", "describe", "nope")
    assert (res.returncode, res.stdout, res.stderr) == (1, "", "error: no cluster with id or name 'nope'\n")
