"""The kinds of topic a deployment has: every topic's name without the agency prefix.

The one list of names: the schemas (``schemas/<kind>.v1.json``), the event
model, the agents and the topic creation (``streams.worker.topics``) all take
them from here.
"""

from __future__ import annotations

from typing import Final

CONTACTS: Final = "contacts"
CLICKS: Final = "clicks"
HEALTH: Final = "health"
EMAIL_STATUS: Final = "email-status"
CAMPAIGNS: Final = "campaigns"
SWEEP_RUNS: Final = "sweep-runs"
BASELINES: Final = "baselines"
SCHEDULE_CHANGES: Final = "schedule-changes"
DEADLETTER: Final = "deadletter"
ENGAGEMENT: Final = "engagement"

# What the agents read: the events about contacts and campaigns.
AGENT_INPUT_KINDS: Final = (CONTACTS, CLICKS, HEALTH, EMAIL_STATUS, CAMPAIGNS)
# What ``parse_event`` reads: the agents' input, and the audit records replay reads.
INPUT_KINDS: Final = (*AGENT_INPUT_KINDS, SWEEP_RUNS, BASELINES)
OUTPUT_KINDS: Final = (SCHEDULE_CHANGES, DEADLETTER, ENGAGEMENT)
TOPIC_KINDS: Final = INPUT_KINDS + OUTPUT_KINDS


def check_kind(topic_kind: str) -> None:
    """Refuse a kind no topic has."""
    # A wrong kind is the caller's bug, not a bad message: ValueError, not EventError.
    if topic_kind not in TOPIC_KINDS:
        raise ValueError(f"unknown topic kind {topic_kind!r} (expected one of {TOPIC_KINDS})")
