"""The one error hierarchy of the admin library: each message says what was wrong."""

from __future__ import annotations

from confluent_kafka import KafkaError

#: librdkafka codes that mean the cluster did not answer (or would not let us in), not
#: that it refused the request: worth trying again once it is reachable
UNREACHABLE_CODES = frozenset({
    KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError._AUTHENTICATION, KafkaError._RESOLVE, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.SASL_AUTHENTICATION_FAILED,
})


class AdminError(Exception):
    """A Kafka admin operation failed; ``str(exc)`` is meant for the person who asked.

    ``kafka_error`` is Kafka's (or librdkafka's) error name, e.g. ``INVALID_CONFIG``,
    when the failure came from the cluster; ``retriable`` says whether trying the same
    request again later may succeed.
    """

    def __init__(self, message: str, kafka_error: str | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.kafka_error = kafka_error
        self.retriable = retriable


class ClusterUnreachableError(AdminError):
    """The cluster did not answer in time, or refused our own credentials."""


class AuthorizationError(AdminError):
    """The connecting principal is not allowed to do this."""


class TopicExistsError(AdminError):
    """A topic of that name already exists."""


class TopicNotFoundError(AdminError):
    """No topic of that name exists."""


class InvalidTopicError(AdminError):
    """The topic name, partition count, replication factor or a config value was refused."""


class UserNotFoundError(AdminError):
    """No SCRAM credential exists for that user."""


class InvalidUserError(AdminError):
    """The user name or password was refused."""


class InvalidAclError(AdminError):
    """The principal or resource prefix of an ACL request was refused."""
