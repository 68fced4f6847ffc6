"""Who owns a schedule row (SPEC section 1).

The scheduler only ever creates, changes or deletes rows in its own statuses.
Every other status, known or not, belongs to the sending side.
"""

from __future__ import annotations

PRE_SCHEDULED = "pre-scheduled"
SKIPPED = "skipped"
OWNED_STATUSES = frozenset({PRE_SCHEDULED, SKIPPED})
SENT_LIKE_STATUSES = frozenset({"scheduled", "processing", "sent", "delivered", "accepted"})


def is_owned(status: str) -> bool:
    # Exact match: a legacy 'SKIPPED' is not ours to change; unknown means the sender's.
    return status in OWNED_STATUSES


def is_sent_like(status: str) -> bool:
    return status.lower() in SENT_LIKE_STATUSES


def counts_toward_volume(status: str) -> bool:
    """Rows that occupy a day's sending volume and a contact's frequency budget."""
    return status == PRE_SCHEDULED or is_sent_like(status)


def normalized_type(email_type: str) -> str:
    """Legacy upper-case types as today's: ``POST_WINDOW_BIRTHDAY`` is ``post_window``."""
    lowered = email_type.lower()
    if lowered.startswith("post_window"):
        return "post_window"
    return lowered
