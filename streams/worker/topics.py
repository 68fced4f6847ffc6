"""The Kafka topics of one deployment, and their creation.

Every name is prefixed (``org206.contacts``) so several agencies can share a
cluster. Topics keyed by contact are co-partitioned: they must all have the same
partition count, so one worker sees every event of a contact. Input topics,
``sweep-runs`` and ``baselines`` are the audit record: kept forever, never compacted.
``engagement``, the windowed engagement table, is compacted: a table keeps
each contact's latest value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.events.kinds import (
    AGENT_INPUT_KINDS,
    BASELINES,
    CLICKS,
    CONTACTS,
    DEADLETTER,
    EMAIL_STATUS,
    ENGAGEMENT,
    HEALTH,
    SCHEDULE_CHANGES,
    SWEEP_RUNS,
    TOPIC_KINDS,
)

TOPICS: tuple[str, ...] = TOPIC_KINDS
INPUT_TOPICS: tuple[str, ...] = AGENT_INPUT_KINDS
CONTACT_KEYED_TOPICS: tuple[str, ...] = (CONTACTS, CLICKS, HEALTH, EMAIL_STATUS, SCHEDULE_CHANGES, ENGAGEMENT)
# The audit record: the input events, the sweeps that ran and the baselines replay starts from.
KEPT_FOREVER_TOPICS: tuple[str, ...] = (*INPUT_TOPICS, SWEEP_RUNS, BASELINES)

# One partition: replay reads the sweep runs and baselines in the order they
# happened; people read the dead letters in the order they came.
SINGLE_PARTITION_TOPICS: tuple[str, ...] = (SWEEP_RUNS, BASELINES, DEADLETTER)

KEPT_FOREVER_CONFIG: Mapping[str, str] = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
}


METADATA_TIMEOUT = 30.0  # seconds for a new topic to show in the broker's metadata


class CoPartitioningError(RuntimeError):
    """The contact-keyed topics do not all have the expected partition count."""


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic."""


def topic_name(prefix: str, name: str) -> str:
    """The full name of one of ``TOPICS`` in a deployment with this prefix."""
    if name not in TOPICS:
        raise ValueError(f"unknown topic {name!r}: expected one of {', '.join(TOPICS)}")
    return f"{prefix}{name}"


def partition_count(name: str, partitions: int) -> int:
    """How many partitions topic ``name`` gets when ``partitions`` is the contact-keyed count."""
    return 1 if name in SINGLE_PARTITION_TOPICS else partitions


# The engagement table: only each contact's latest value matters.
COMPACTED_TOPICS: tuple[str, ...] = (ENGAGEMENT,)


def topic_config(name: str) -> dict[str, str]:
    """The topic-level config ``name`` is created with (empty: the broker's defaults)."""
    if name in COMPACTED_TOPICS:
        return {"cleanup.policy": "compact"}
    return dict(KEPT_FOREVER_CONFIG) if name in KEPT_FOREVER_TOPICS else {}


async def ensure_topics(
    bootstrap: str,
    prefix: str,
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout: float = METADATA_TIMEOUT,
) -> None:
    """Create every topic of ``TOPICS`` that is missing; leave existing ones alone.

    Returns once the broker's metadata shows every topic, so consumers that
    subscribe next are assigned their partitions. Raises ``CoPartitioningError``
    (before creating anything) when an existing contact-keyed topic has another
    partition count than ``partitions``, and ``TopicCreationError`` when the
    broker refuses a topic or does not show it within ``timeout`` seconds.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    names = {topic_name(prefix, n): n for n in TOPICS}
    contact_keyed = [topic_name(prefix, n) for n in CONTACT_KEYED_TOPICS]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mailwindow-topics")
    await admin.start()
    try:
        # The controller knows which topics exist; the broker's metadata can lag
        # behind it (a topic created a moment ago may not be listed yet).
        existing = await _create(admin, names, partitions, replication_factor, validate_only=True)
        counts = await _partition_counts(
            admin, [t for t in contact_keyed if t in existing], timeout
        )
        _check_co_partitioning(counts, contact_keyed, partitions)
        missing = {t: n for t, n in names.items() if t not in existing}
        if missing:
            await _create(admin, missing, partitions, replication_factor, validate_only=False)
        counts = await _partition_counts(admin, list(names), timeout)
        _check_co_partitioning(counts, contact_keyed, partitions)  # a concurrent creator's too
    finally:
        await admin.close()


async def _create(
    admin: AIOKafkaAdminClient,
    names: Mapping[str, str],
    partitions: int,
    replication_factor: int,
    *,
    validate_only: bool,
) -> set[str]:
    """Create (or, validating only, pretend to create) topics; return those that exist."""
    response = await admin.create_topics(
        [
            NewTopic(
                topic,
                partition_count(name, partitions),
                replication_factor,
                topic_configs=topic_config(name),
            )
            for topic, name in names.items()
        ],
        validate_only=validate_only,
    )
    existing: set[str] = set()
    for error in response.to_object()["topic_errors"]:
        code = error["error_code"]
        if code == TopicAlreadyExistsError.errno:
            existing.add(error["topic"])
        elif code != 0:
            reason = error.get("error_message") or for_code(code).__name__
            raise TopicCreationError(f"could not create topic {error['topic']}: {reason}")
    return existing


async def _partition_counts(
    admin: AIOKafkaAdminClient, topics: list[str], timeout: float
) -> dict[str, int]:
    """Partition count per topic, once the broker's metadata shows them all."""
    if not topics:
        return {}
    deadline = time.monotonic() + timeout
    while True:
        # Listing names no topic, so a broker with auto.create.topics.enable
        # creates nothing; a metadata request naming a missing topic would.
        listed = set(await admin.list_topics())
        if listed.issuperset(topics):
            described = await admin.describe_topics(topics)
            counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
            if len(counts) == len(topics) and all(counts.values()):
                return counts
        if time.monotonic() >= deadline:
            late = ", ".join(sorted(set(topics) - listed)) or ", ".join(topics)
            raise TopicCreationError(
                f"the broker's metadata does not show {late} after {timeout:g} s"
            )
        await asyncio.sleep(0.1)


def _check_co_partitioning(
    counts: Mapping[str, int], contact_keyed: list[str], partitions: int
) -> None:
    if any(counts[t] != partitions for t in contact_keyed if t in counts):
        found = ", ".join(f"{t}={counts[t]}" for t in contact_keyed if t in counts)
        raise CoPartitioningError(
            f"co-partitioning broken: contact-keyed topics must all have {partitions} "
            f"partitions, found {found}"
        )


async def contact_partitions(bootstrap: str, prefix: str) -> int | None:
    """The partition count of the deployment's contact-keyed topics, None when none exists yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mailwindow-topics")
    await admin.start()
    try:
        contact_keyed = [topic_name(prefix, n) for n in CONTACT_KEYED_TOPICS]
        listed = set(await admin.list_topics())
        present = [t for t in contact_keyed if t in listed]
        if not present:
            return None
        described = await admin.describe_topics(present)
        counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
        return max(counts.values()) if counts else None
    finally:
        await admin.close()


async def existing_partitions(
    broker: str, topics: Sequence[str], *, client_id: str = "mailwindow", timeout_ms: int = 40000
) -> tuple[list[Any], list[str]]:
    """The partitions of those of ``topics`` that exist, as the broker describes them (a
    consumer's own metadata lists none until it subscribes), and the topics missing."""
    from aiokafka import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=broker, client_id=client_id, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        listed = set(await admin.list_topics())
        present = [t for t in topics if t in listed]
        described = await admin.describe_topics(present) if present else []
    finally:
        await admin.close()
    partitions = [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if d["error_code"] == 0
        for p in sorted(d["partitions"], key=lambda p: p["partition"])
    ]
    return partitions, [t for t in topics if t not in listed]
