"""A cluster's topics: ``/v1/clusters/{ref}/topics[/{name}]``, through Kafka admin (with the
tenant's prefix on a shared cluster)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from streamplane.capacity import cluster_capacity
from streamplane.kafka import TopicNotFoundError
from streamplane.kafka.models import TopicDescription
from streamplane.models import api as s
from streamplane.mothership.access import KafkaTarget
from streamplane.mothership.api.deps import Auth, Ctx, IdempotencyKey
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.api.idempotency import dump, idempotent

router = APIRouter(prefix="/v1", dependencies=[Auth])

#: how long a topic just created may stay unknown to the broker that answers
SETTLE_TIMEOUT_S = 10.0


def _describe_settled(target: KafkaTarget, name: str, timeout: float = SETTLE_TIMEOUT_S) -> TopicDescription:
    """Describe a topic just created: the broker answering may not have seen it yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return target.admin.describe_topic(target.kafka_name(name))
        except TopicNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def topic_out(target: KafkaTarget, name: str, just_changed: bool = False) -> s.TopicOut:
    d = _describe_settled(target, name) if just_changed else target.admin.describe_topic(target.kafka_name(name))
    return s.TopicOut(
        name=name, partitions=len(d.partitions), replication_factor=d.replication_factor,
        configs={k: v for k, v in d.overrides.items() if v is not None},
        partition_details=[{"partition": p.id, "leader": p.leader,
                            "replicas": list(p.replicas), "isr": list(p.isr)}
                           for p in d.partitions])


@router.get("/clusters/{ref}/topics", responses=ERRORS)
def list_topics(ctx: Ctx, ref: str) -> list[s.TopicOut]:
    target = ctx.kafka(ctx.cluster(ref))
    with target.admin as admin:
        return [s.TopicOut(name=t.name.removeprefix(target.prefix), partitions=t.partitions,
                           replication_factor=t.replication_factor)
                for t in admin.list_topics(prefix=target.prefix or None)]


@router.post("/clusters/{ref}/topics", status_code=202, responses=ERRORS)
def create_topic(ctx: Ctx, ref: str, body: s.TopicCreate, request: Request,
                 idempotency_key: IdempotencyKey = None) -> s.TopicAccepted:
    def run() -> tuple[int, dict[str, Any]]:
        lc = ctx.cluster(ref)
        target = ctx.kafka(lc)
        limit = cluster_capacity(lc.type.value, lc.cku).partitions
        with target.admin as admin:
            used = admin.partition_count(prefix=target.prefix or None)
            if used + body.partitions > limit:
                raise ApiError(422, "limit_exceeded",
                               f"cluster {lc.name} may have at most {limit} partitions; it has "
                               f"{used}, so a topic with {body.partitions} more does not fit")
            admin.create_topic(target.kafka_name(body.name), body.partitions,
                               body.replication_factor, body.configs)
            topic = topic_out(target, body.name, just_changed=True)
        op = ctx.finished_op("create_topic", lc.id, body.model_dump(mode="json"))
        return 202, dump(s.TopicAccepted(operation=op, topic=topic))

    return idempotent(ctx, request, body, idempotency_key, run)  # type: ignore[return-value]


@router.get("/clusters/{ref}/topics/{name}", responses=ERRORS)
def describe_topic(ctx: Ctx, ref: str, name: str) -> s.TopicOut:
    target = ctx.kafka(ctx.cluster(ref))
    with target.admin:
        return topic_out(target, name)


@router.patch("/clusters/{ref}/topics/{name}", status_code=202, responses=ERRORS)
def update_topic(ctx: Ctx, ref: str, name: str, body: s.TopicUpdate) -> s.TopicAccepted:
    lc = ctx.cluster(ref)
    target = ctx.kafka(lc)
    with target.admin as admin:
        kname = target.kafka_name(name)
        current = admin.describe_topic(kname)
        if body.partitions is not None and body.partitions != len(current.partitions):
            if body.partitions < len(current.partitions):
                raise ApiError(422, "invalid_request", "Kafka cannot reduce a topic's partitions "
                               f"(it has {len(current.partitions)})")
            limit = cluster_capacity(lc.type.value, lc.cku).partitions
            extra = body.partitions - len(current.partitions)
            if admin.partition_count(prefix=target.prefix or None) + extra > limit:
                raise ApiError(422, "limit_exceeded", f"cluster {lc.name} may have at most {limit} partitions")
            admin.add_partitions(kname, body.partitions)
        sets = {k: v for k, v in body.configs.items() if v is not None}
        deletes = [k for k, v in body.configs.items() if v is None]
        if sets or deletes:
            admin.alter_topic_configs(kname, sets, deletes)
        topic = topic_out(target, name)
    op = ctx.finished_op("update_topic", lc.id, body.model_dump(mode="json"))
    return s.TopicAccepted(operation=op, topic=topic)


@router.delete("/clusters/{ref}/topics/{name}", status_code=202, responses=ERRORS)
def delete_topic(ctx: Ctx, ref: str, name: str) -> s.Accepted:
    lc = ctx.cluster(ref)
    target = ctx.kafka(lc)
    with target.admin as admin:
        admin.delete_topic(target.kafka_name(name))
    return s.Accepted(operation=ctx.finished_op("delete_topic", lc.id, {"name": name}))
