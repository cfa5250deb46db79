"""``ClusterAdmin``: topics, SCRAM users and ACLs of one Kafka cluster, as its super-user.

Every method blocks (the REST API calls them from a thread pool) and returns or raises
within a bounded time: each request carries ``timeout`` to the broker, and waiting for
its answer gives up shortly after. Failures become one of the ``AdminError`` classes,
whose message is meant for the person who asked.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

import kafka.errors as kafka_errors
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AclOperation,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from kafka.protocol.admin import AlterClientQuotasRequest, DescribeClientQuotasRequest

from streamplane.kafka import acls
from streamplane.kafka.errors import (
    UNREACHABLE_CODES,
    AdminError,
    AuthorizationError,
    ClusterUnreachableError,
    InvalidTopicError,
    InvalidUserError,
    TopicExistsError,
    TopicNotFoundError,
    UserNotFoundError,
)
from streamplane.kafka.models import AclEntry, ConfigSource, PartitionInfo, TopicConfig, TopicDescription, TopicSummary
from streamplane.kafka.settings import RDKAFKA_LOG, ClientSettings, admin_client, kafka_python_admin

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0
#: how much longer than the request timeout we wait for librdkafka to report back
_GRACE_S = 2.0
SCRAM_MECHANISM = "SCRAM-SHA-512"
#: Kafka's default for new SCRAM credentials; 4096 is the least a broker accepts
SCRAM_ITERATIONS = 8192
#: a deleted user keeps a credential with a password nobody knows, marked by this
#: iteration count (see ``delete_scram_user``)
RETIRED_ITERATIONS = 4099
#: topics whose names start with this are Kafka's own (__consumer_offsets, ...)
INTERNAL_PREFIX = "__"
#: SCRAM user names we accept: what a Kafka principal, a log line and a URL carry safely
USER_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
_METADATA_POLL_S = 0.1
#: DescribeClientQuotas: match the entity's name exactly
_QUOTA_MATCH_EXACT = 0

_FORBIDDEN = frozenset({
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
})
_INVALID_TOPIC = frozenset({
    KafkaError.TOPIC_EXCEPTION, KafkaError.INVALID_PARTITIONS,
    KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.INVALID_REPLICA_ASSIGNMENT,
    KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION,
})
_CONFIG_SOURCES = {
    1: ConfigSource.TOPIC,  # DYNAMIC_TOPIC_CONFIG
    2: ConfigSource.BROKER,  # DYNAMIC_BROKER_CONFIG
    3: ConfigSource.BROKER,  # DYNAMIC_DEFAULT_BROKER_CONFIG
    4: ConfigSource.BROKER,  # STATIC_BROKER_CONFIG
    5: ConfigSource.DEFAULT,  # DEFAULT_CONFIG
}


def is_internal_topic(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIX)


class _ClientErrors:
    """Remembers librdkafka's latest connection-level error, to explain a timeout."""

    def __init__(self) -> None:
        self.last: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        self.last = err


class ClusterAdmin:
    """Admin-protocol access to one cluster's client listener (SASL SCRAM-SHA-512).

    Safe to share between threads. Use as a context manager, or call ``close()``.
    """

    def __init__(self, bootstrap: str, username: str, password: str,
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.bootstrap = bootstrap
        self.username = username
        self.timeout = timeout
        self._client_errors = _ClientErrors()
        self._settings = ClientSettings(bootstrap, username, password, SCRAM_MECHANISM)
        self._admin: Any = admin_client(self._settings, timeout, RDKAFKA_LOG.getChild("admin"),
                                        error_cb=self._client_errors)
        #: client quotas go through kafka-python: librdkafka has no client-quota admin API
        self._quota_admin: Any = None
        self._quota_lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Drop the connection; librdkafka shuts down once the last reference is gone."""
        if self._admin is not None:
            self._admin.poll(0)
            self._admin = None
        with self._quota_lock:
            if self._quota_admin is not None:
                self._quota_admin.close()
                self._quota_admin = None

    def __enter__(self) -> ClusterAdmin:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- topics --------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, replication_factor: int | None = None,
                     configs: Mapping[str, str] | None = None, *,
                     validate_only: bool = False) -> None:
        """Create a topic (the broker default replication factor when None), or with
        ``validate_only`` only ask the cluster whether it would; returns once the new
        topic is visible in metadata (or ``timeout`` passed)."""
        action = f"create topic {name!r}"
        if is_internal_topic(name):
            raise InvalidTopicError(f"cannot {action}: names starting with '{INTERNAL_PREFIX}' "
                                    "are reserved for Kafka's internal topics")
        if partitions < 1:
            raise InvalidTopicError(f"cannot {action}: a topic needs at least 1 partition, "
                                    f"not {partitions}")
        if replication_factor is not None and replication_factor < 1:
            raise InvalidTopicError(f"cannot {action}: the replication factor must be at least 1, "
                                    f"not {replication_factor}")
        with _checked_locally(action):
            new = NewTopic(name, partitions, replication_factor or -1,
                           config={k: str(v) for k, v in (configs or {}).items()})
            futures = self._client.create_topics([new], validate_only=validate_only,
                                                 **self._request_options(operation=True))
        self._wait(futures[name], action, topic=name)
        if not validate_only:
            self._await_metadata(name, lambda meta: meta is not None)

    def list_topics(self, prefix: str | None = None) -> list[TopicSummary]:
        """Topics sorted by name, Kafka's internal ones left out."""
        meta = self._metadata()
        summaries = []
        for name, topic in meta.topics.items():
            if is_internal_topic(name) or (prefix is not None and not name.startswith(prefix)):
                continue
            parts = topic.partitions.values()
            summaries.append(TopicSummary(
                name=name, partitions=len(parts),
                replication_factor=max((len(p.replicas) for p in parts), default=0),
            ))
        return sorted(summaries, key=lambda s: s.name)

    def partition_count(self, prefix: str | None = None) -> int:
        """Partitions of all non-internal topics (starting with ``prefix``), for limits."""
        return sum(t.partitions for t in self.list_topics(prefix))

    def describe_topic(self, name: str) -> TopicDescription:
        """Partitions with leader, replicas and ISR, topic id, and every non-default config."""
        action = f"describe topic {name!r}"
        options = self._request_options()
        with _checked_locally(action):
            resource = ConfigResource(ResourceType.TOPIC, name)
            described = self._client.describe_topics(TopicCollection([name]), **options)[name]
            configured = self._client.describe_configs([resource], **options)[resource]
        desc = self._wait(described, action, topic=name)
        entries = self._wait(configured, action, topic=name)
        partitions = tuple(
            PartitionInfo(
                id=p.id, leader=p.leader.id if p.leader is not None else None,
                replicas=tuple(n.id for n in p.replicas), isr=tuple(n.id for n in p.isr),
            )
            for p in sorted(desc.partitions, key=lambda p: p.id)
        )
        configs = {
            key: TopicConfig(
                name=key, value=None if e.is_sensitive else e.value,
                source=_CONFIG_SOURCES.get(_enum_value(e.source), ConfigSource.OTHER),
                read_only=e.is_read_only, sensitive=e.is_sensitive,
            )
            for key, e in sorted(entries.items())
            if not e.is_default
        }
        return TopicDescription(name=desc.name, topic_id=str(desc.topic_id),
                                internal=bool(desc.is_internal), partitions=partitions,
                                configs=configs)

    def alter_topic_configs(self, name: str, set: Mapping[str, str],
                            delete: Sequence[str] = (), *, validate_only: bool = False) -> None:
        """Set some topic configs and reset others to their defaults, in one request."""
        action = f"change the configs of topic {name!r}"
        self._refuse_internal(name, action)
        both = sorted(k for k in delete if k in set)
        if both:
            raise InvalidTopicError(f"cannot {action}: {', '.join(both)} cannot be both set "
                                    "and reset to the default")
        if not set and not delete:
            return
        with _checked_locally(action):
            entries = [ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET)
                       for k, v in set.items()]
            entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                        for k in delete]
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
            futures = self._client.incremental_alter_configs(
                [resource], validate_only=validate_only, **self._request_options())
        self._wait(futures[resource], action, topic=name)

    def add_partitions(self, name: str, total: int, *, validate_only: bool = False) -> None:
        """Grow a topic to ``total`` partitions (Kafka never shrinks one)."""
        action = f"grow topic {name!r} to {total} partitions"
        self._refuse_internal(name, action)
        with _checked_locally(action):
            futures = self._client.create_partitions(
                [NewPartitions(name, total)], validate_only=validate_only,
                **self._request_options(operation=True))
        self._wait(futures[name], action, topic=name)
        if not validate_only:
            self._await_metadata(name, lambda meta: meta is not None
                                 and len(meta.partitions) >= total)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and its data; returns once metadata no longer lists it."""
        action = f"delete topic {name!r}"
        self._refuse_internal(name, action)
        with _checked_locally(action):
            futures = self._client.delete_topics([name], **self._request_options(operation=True))
        self._wait(futures[name], action, topic=name)
        self._await_metadata(name, lambda meta: meta is None)

    # ---- consumer groups -----------------------------------------------------------

    def list_groups(self, prefix: str | None = None) -> list[str]:
        """Ids of the consumer groups (classic and KIP-848), sorted; those starting with
        ``prefix`` only, if given."""
        action = "list consumer groups"
        future = self._client.list_consumer_groups(**self._request_options())
        listed = self._wait(future, action)
        return sorted(g.group_id for g in listed.valid
                      if prefix is None or g.group_id.startswith(prefix))

    def delete_groups(self, group_ids: Sequence[str]) -> None:
        """Delete consumer groups and their committed offsets. A group that still has
        members cannot be deleted (``NON_EMPTY_GROUP``): stop its consumers first."""
        if not group_ids:
            return
        futures = self._client.delete_consumer_groups(list(group_ids), **self._request_options())
        for group_id, future in futures.items():
            self._wait(future, f"delete consumer group {group_id!r}")

    # ---- SCRAM users ---------------------------------------------------------------

    def upsert_scram_user(self, name: str, password: str) -> None:
        """Create the SCRAM-SHA-512 credential of ``name``, or replace its password."""
        action = f"set the password of user {name!r}"
        _check_user_name(name)
        if not password:
            raise InvalidUserError(f"cannot {action}: the password is empty")
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(name, info, password.encode())
        futures = self._client.alter_user_scram_credentials([upsert], **self._request_options())
        self._wait(futures[name], action, user=name)

    def delete_scram_user(self, name: str) -> None:
        """Make new logins as ``name`` fail from now on: its credential is replaced by one
        for a random password that is never stored (marked with ``RETIRED_ITERATIONS``).

        Why not Kafka's own deletion: with Kafka 4.3.1, a RemoveUserScramCredentialRecord
        in the metadata log made brokers that restarted come up with no SCRAM credential
        at all (every user, the super-user too, refused until a credential is written
        again). Cutting such a broker's metadata log at each batch boundary showed it: the
        log up to the batch before that record gave a broker with every user, the log
        including it a broker with none. Not every deletion does it (a one-broker cluster
        that deleted a user restarted fine), so Streamplane writes none: replacing a
        credential is an ordinary UserScramCredentialRecord.

        Connections already authenticated stay open; revoke the user's ACLs too so
        they can no longer do anything."""
        action = f"delete user {name!r}"
        _check_user_name(name)
        if name not in self.scram_users():
            raise UserNotFoundError(f"cannot {action}: there is no SCRAM user named {name!r}", name)
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, RETIRED_ITERATIONS)
        retired = UserScramCredentialUpsertion(name, info, secrets.token_bytes(48))
        futures = self._client.alter_user_scram_credentials([retired], **self._request_options())
        self._wait(futures[name], action, user=name)

    def scram_users(self) -> list[str]:
        """Names of every user with a SCRAM-SHA-512 credential (the super-user included;
        users deleted by ``delete_scram_user`` left out)."""
        action = "list SCRAM users"
        # librdkafka (2.16) aborts the whole process when this request fails as a whole,
        # as it does for a principal without DESCRIBE on the cluster: ask first
        self._require_cluster_describe(action)
        future = self._client.describe_user_scram_credentials(**self._request_options())
        described = self._wait(future, action)
        return sorted(
            name for name, desc in described.items()
            if any(i.mechanism == ScramMechanism.SCRAM_SHA_512 and i.iterations != RETIRED_ITERATIONS
                   for i in desc.scram_credential_infos)
        )

    # ---- ACLs ----------------------------------------------------------------------

    def grant_client_access(self, principal_name: str, prefix: str | None = None) -> list[AclEntry]:
        """Allow user ``principal_name`` to create, manage, produce to and consume from
        topics, consumer groups and transactional ids: all of them (``prefix=None``), or
        those whose names start with ``prefix`` (e.g. ``"lkc-abc_"``; end it with a
        separator so ``lkc-a_`` does not also match ``lkc-ab...``). Nothing cluster-wide.

        Idempotent: granting again changes nothing; if the request fails half-way, call it
        again (or ``revoke_client_access``). Returns the bindings, see ``acls.py``.
        """
        _check_user_name(principal_name)
        entries = acls.client_access(principal_name, prefix)
        action = f"grant client access to user {principal_name!r}"
        futures = self._client.create_acls([acls.binding(e) for e in entries],
                                           **self._request_options())
        for future in futures.values():
            self._wait(future, action, user=principal_name)
        return entries

    def revoke_client_access(self, principal_name: str) -> list[AclEntry]:
        """Delete every ACL binding of user ``principal_name``; returns what was deleted."""
        _check_user_name(principal_name)
        action = f"revoke the access of user {principal_name!r}"
        acl_filter = acls.principal_filter(principal_name)
        futures = self._client.delete_acls([acl_filter], **self._request_options())
        deleted = self._wait(futures[acl_filter], action, user=principal_name)
        return sorted((acls.entry(b) for b in deleted), key=acls.order)

    def acls_for(self, principal_name: str) -> list[AclEntry]:
        """Every ACL binding of user ``principal_name``."""
        _check_user_name(principal_name)
        action = f"list the ACLs of user {principal_name!r}"
        # librdkafka answers an empty list, not an error, when the request is refused
        self._require_cluster_describe(action)
        future = self._client.describe_acls(acls.principal_filter(principal_name),
                                            **self._request_options())
        found = self._wait(future, action, user=principal_name)
        return sorted((acls.entry(b) for b in found), key=acls.order)

    # ---- client quotas -------------------------------------------------------------

    def set_client_quotas(self, user: str, quotas: Mapping[str, float | None]) -> None:
        """Set Kafka client quotas of user ``user`` (``producer_byte_rate``,
        ``consumer_byte_rate``, ``request_percentage``, ...); a None value removes that
        quota. Keys not named are left as they are."""
        action = f"set the client quotas of user {user!r}"
        _check_user_name(user)
        bad = {k: v for k, v in quotas.items() if v is not None and not v > 0}
        if bad:
            raise AdminError(f"cannot {action}: quotas must be positive, not "
                             + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))
        if not quotas:
            return
        ops = [(key, float(value or 0.0), value is None) for key, value in quotas.items()]
        request = AlterClientQuotasRequest(entries=[([("user", user)], ops)],
                                           validate_only=False)
        response = self._quota_request(request, action)
        for entry in response.entries:
            self._raise_quota_error(entry.error_code, entry.error_message, action)

    def describe_client_quotas(self, user: str) -> dict[str, float]:
        """The client quotas set on user ``user`` itself (not defaults); {} if none."""
        action = f"describe the client quotas of user {user!r}"
        _check_user_name(user)
        request = DescribeClientQuotasRequest(
            components=[("user", _QUOTA_MATCH_EXACT, user)], strict=True)
        response = self._quota_request(request, action)
        self._raise_quota_error(response.error_code, response.error_message, action)
        quotas: dict[str, float] = {}
        for entry in response.entries or []:
            if [(e.entity_type, e.entity_name) for e in entry.entity] == [("user", user)]:
                quotas.update({v.key: float(v.value) for v in entry.values})
        return quotas

    def _quota_request(self, request: Any, action: str) -> Any:
        """Send ``request`` to any broker (KRaft forwards quota changes to the controller)."""
        try:
            admin = self._quota_client()
            return admin._manager.run(self._send_quota_request, admin, request)
        except kafka_errors.KafkaError as exc:
            if isinstance(exc, kafka_errors.AuthenticationFailedError):
                raise ClusterUnreachableError(
                    f"cannot {action}: the Kafka cluster at {self.bootstrap} refused the "
                    f"credentials of {self.username!r}", "SASL_AUTHENTICATION_FAILED") from None
            if isinstance(exc, kafka_errors.NoBrokersAvailable | kafka_errors.KafkaTimeoutError
                          | kafka_errors.KafkaConnectionError | kafka_errors.RequestTimedOutError):
                raise ClusterUnreachableError(
                    f"cannot {action}: the Kafka cluster at {self.bootstrap} did not answer "
                    f"within {self.timeout:g} s ({exc})", "_TIMED_OUT", retriable=True) from None
            raise AdminError(f"cannot {action}: {exc}", type(exc).__name__,
                             bool(getattr(exc, "retriable", False))) from None

    async def _send_quota_request(self, admin: Any, request: Any) -> Any:
        return await admin._manager.send(request, request_timeout_ms=int(self.timeout * 1000))

    def _quota_client(self) -> Any:
        with self._quota_lock:
            if self._admin is None:
                raise AdminError("this ClusterAdmin was closed; create a new one")
            if self._quota_admin is None:
                self._quota_admin = kafka_python_admin(self._settings, self.timeout, "streamplane-admin")
            return self._quota_admin

    def _raise_quota_error(self, code: int, message: str | None, action: str) -> None:
        if not code:
            return
        error = kafka_errors.for_code(code)
        name = str(getattr(error, "message", error.__name__))
        if name == "CLUSTER_AUTHORIZATION_FAILED":
            raise self._forbidden(action, name)
        raise AdminError(f"cannot {action}: {message or error.description} ({name})", name,
                         bool(getattr(error, "retriable", False)))

    # ---- plumbing ------------------------------------------------------------------

    @property
    def _client(self) -> Any:
        if self._admin is None:
            raise AdminError("this ClusterAdmin was closed; create a new one")
        return self._admin

    def _request_options(self, operation: bool = False) -> dict[str, float]:
        options = {"request_timeout": self.timeout}
        if operation:
            # how long the controller may wait for the change to reach the brokers
            options["operation_timeout"] = self.timeout
        return options

    def _wait(self, future: Future[T], action: str, *, topic: str | None = None,
              user: str | None = None) -> T:
        failure: KafkaError | None = None
        try:
            return future.result(timeout=self.timeout + _GRACE_S)
        except KafkaException as exc:
            failure = exc.args[0]
        except TimeoutError:
            pass
        finally:
            # first, so that a connection error librdkafka reported can explain a timeout
            self._serve_callbacks()
        raise self._failure(failure, action, topic, user)

    def _metadata(self, topic: str | None = None) -> Any:
        try:
            if topic is None:
                return self._client.list_topics(timeout=self.timeout)
            return self._client.list_topics(topic=topic, timeout=self.timeout)
        except KafkaException as exc:
            failure = exc.args[0]
        finally:
            self._serve_callbacks()
        raise self._failure(failure, "list topics", topic, None)

    def _await_metadata(self, name: str, done: Callable[[Any], bool]) -> None:
        """Poll metadata until ``done(topic metadata or None)``; give up quietly at the
        deadline, because the change itself already succeeded."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                topic = self._metadata(name).topics.get(name)
            except AdminError:
                return
            missing = topic is not None and topic.error is not None \
                and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if done(None if missing else topic):
                return
            time.sleep(_METADATA_POLL_S)

    def _require_cluster_describe(self, action: str) -> None:
        """Raise AuthorizationError unless we may DESCRIBE the cluster resource."""
        future = self._client.describe_cluster(include_authorized_operations=True,
                                               **self._request_options())
        ops = self._wait(future, action).authorized_operations or []
        if AclOperation.DESCRIBE not in ops and AclOperation.ALL not in ops:
            raise self._forbidden(action, "CLUSTER_AUTHORIZATION_FAILED")

    def _forbidden(self, action: str, kafka_error: str) -> AuthorizationError:
        return AuthorizationError(f"cannot {action}: user {self.username!r} is not authorized "
                                  f"to do that ({kafka_error})", kafka_error)

    def _serve_callbacks(self) -> None:
        # the admin client hands log lines and connection errors over only in poll()
        if self._admin is not None:
            self._admin.poll(0)

    def _refuse_internal(self, name: str, action: str) -> None:
        if is_internal_topic(name):
            raise InvalidTopicError(f"cannot {action}: it is one of Kafka's internal topics")

    def _unreachable(self, action: str) -> ClusterUnreachableError:
        last = self._client_errors.last
        if last is not None and last.code() == KafkaError._AUTHENTICATION:
            return ClusterUnreachableError(
                f"cannot {action}: the Kafka cluster at {self.bootstrap} refused the credentials "
                f"of {self.username!r} ({last.str()})", last.name(), retriable=False)
        why = f"; last problem: {last.str()}" if last is not None else ""
        return ClusterUnreachableError(
            f"cannot {action}: the Kafka cluster at {self.bootstrap} did not answer within "
            f"{self.timeout:g} s{why}", "_TIMED_OUT", retriable=True)

    def _failure(self, err: KafkaError | None, action: str, topic: str | None,
                 user: str | None) -> AdminError:
        """The AdminError for librdkafka's ``err`` (None: no answer in time)."""
        if err is None:
            return self._unreachable(action)
        code, name, text = err.code(), err.name(), err.str()
        if code in UNREACHABLE_CODES:
            return self._unreachable(action)
        if code == KafkaError.TOPIC_ALREADY_EXISTS:
            return TopicExistsError(f"cannot {action}: a topic named {topic!r} already exists; "
                                    "choose another name or delete that topic first", name)
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID):
            return TopicNotFoundError(f"cannot {action}: there is no topic named {topic!r}", name)
        if code in _INVALID_TOPIC:
            return InvalidTopicError(f"cannot {action}: {text}", name)
        if code in _FORBIDDEN:
            return self._forbidden(action, name)
        if code == KafkaError.RESOURCE_NOT_FOUND and user is not None:
            return UserNotFoundError(f"cannot {action}: there is no SCRAM user named {user!r}",
                                     name)
        if code in (KafkaError.UNACCEPTABLE_CREDENTIAL, KafkaError.DUPLICATE_RESOURCE):
            return InvalidUserError(f"cannot {action}: {text}", name)
        return AdminError(f"cannot {action}: {text} ({name})", name, bool(err.retriable()))


@contextmanager
def _checked_locally(action: str) -> Iterator[None]:
    """librdkafka checks some topic arguments itself, raising ValueError or TypeError."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise InvalidTopicError(f"cannot {action}: {exc}") from None


def _check_user_name(name: str) -> None:
    if not USER_NAME.match(name):
        raise InvalidUserError(
            f"user name {name!r} must be 1-128 letters, digits or any of . _ @ + -")


def _enum_value(value: Any) -> int:
    return int(getattr(value, "value", value))
