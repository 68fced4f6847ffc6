"""The email provider's event webhook, read: a SendGrid event batch becomes our own events.

Pure: bytes in, ``email-status`` and ``clicks`` events out (``streams.events.model``),
or ``DeliveryError`` naming the item and the field; ``streams.console.webhook`` checks
the signature and applies or publishes them.

The batch is SendGrid's event webhook JSON: a list of objects, each with ``event``,
``email``, ``timestamp`` (Unix seconds), ``sg_event_id``, and the custom arguments
the sending side attached to the message as top-level fields: ``contact_id`` and
``occurrence_key`` (SendGrid sends custom arguments as strings: ``"42"`` is taken
as the contact id 42).

What each SendGrid event becomes (the ``email-status`` schema's statuses are
scheduled, processing, sent, delivered, accepted, failed, bounced):

| SendGrid event | recorded as |
|---|---|
| ``delivered`` | status ``delivered`` |
| ``bounce`` (a bounce or a block) | status ``bounced`` |
| ``dropped`` | status ``failed`` (SendGrid will not send it) |
| ``click`` | a click (``clicks``: ``tracking_clicks``, ``tracking_id`` = the occurrence key); no status |
| ``processed``, ``deferred`` | ignored: not an outcome, and as ``accepted`` / ``processing`` they would replace a ``sent`` status (last one wins), and a row that is not ``sent`` or ``delivered`` is no initial email: its follow-up would wait on an event that may never come |
| ``open`` | ignored: the schema has no ``opened``, and as a status it would end the row's ``delivered`` (its follow-up with it, SPEC 8); follow-ups are typed by clicks and answers, not opens |
| ``spamreport``, ``unsubscribe``, ``group_unsubscribe``, ``group_resubscribe`` | ignored: list management, for the agency's own suppression lists, not a row's sending status |
| anything else | ignored |

Ignored events are counted in the response, never an error (SendGrid adds
event types; the webhook must not start refusing batches when it does).

A click is recorded as a click only, not also as ``delivered``: the status
comes with the ``delivered`` event of the same message, and a click's time is
not a delivery time.

Each event's id is ``sendgrid:<sg_event_id>``: a batch sent again (SendGrid
retries anything but a 2xx) applies nothing new (``mw_applied_events``).

What is refused (400, and nothing of the batch is recorded): a body that is
not JSON or not a list; an item that is not an object or has no ``event``;
an event that is recorded whose ``sg_event_id``, ``timestamp``, ``contact_id``
or ``occurrence_key`` is missing or malformed, or whose occurrence key names
another contact than its ``contact_id`` (keys begin with their contact's id,
SPEC section 9): such an event would overwrite another contact's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from rules.bounds import LAST_DATE, excerpt
from streams.events.kinds import CLICKS, EMAIL_STATUS
from streams.events.model import ClickEvent, EmailStatusEvent

STATUS_OF: Final[dict[str, str]] = {"delivered": "delivered", "bounce": "bounced", "dropped": "failed"}
CLICK: Final = "click"
EVENT_ID_PREFIX: Final = "sendgrid:"
MAX_ITEMS: Final = 10_000  # SendGrid posts batches of at most a few thousand events
MAX_KEY_CHARS: Final = 300
MAX_SG_ID_CHARS: Final = 150  # our event id must stay within the schema's 200 characters
_MAX_CONTACT_ID = 2_147_483_647  # the topics' schemas' id range
# Unix seconds of a real event: after 1970 (0 or less is a sender's default, not a time)
# and within the dates the scheduler decides about (rules.bounds).
_FIRST_TS = 1
_LAST_TS = int(datetime(LAST_DATE.year, 12, 31, tzinfo=UTC).timestamp())


class DeliveryError(ValueError):
    """A batch we refuse whole; the message names the item and the field."""


@dataclass(frozen=True)
class ProviderEvents:
    """A batch read: the events to record, by topic kind, and how many were ignored."""

    events: list[tuple[str, EmailStatusEvent | ClickEvent]]
    ignored: int
    received: int


def read_batch(body: bytes) -> ProviderEvents:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DeliveryError(f"the body is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise DeliveryError(f"the body is not a list of events but a JSON {type(items).__name__}")
    if len(items) > MAX_ITEMS:
        raise DeliveryError(f"{len(items):,} events in one batch: at most {MAX_ITEMS:,}")
    events: list[tuple[str, EmailStatusEvent | ClickEvent]] = []
    ignored = 0
    for index, item in enumerate(items):
        read = _read_item(index, item)
        if read is None:
            ignored += 1
        else:
            events.append(read)
    return ProviderEvents(events, ignored, len(items))


def _read_item(index: int, item: object) -> tuple[str, EmailStatusEvent | ClickEvent] | None:
    where = f"event {index}"
    if not isinstance(item, dict):
        raise DeliveryError(f"{where}: not an object but {excerpt(item)}")
    kind = item.get("event")
    if not isinstance(kind, str) or not kind:
        raise DeliveryError(f"{where}: field 'event' is missing or not a string")
    if kind != CLICK and kind not in STATUS_OF:
        return None
    where = f"event {index} ({excerpt(kind)})"
    event_id = EVENT_ID_PREFIX + _sg_event_id(where, item.get("sg_event_id"))
    at = _timestamp(where, item.get("timestamp"))
    contact_id = _contact_id(where, item.get("contact_id"))
    key = _occurrence_key(where, item.get("occurrence_key"), contact_id)
    if kind == CLICK:
        return CLICKS, ClickEvent(event_id=event_id, occurred_at=at, contact_id=contact_id, tracking_id=key)
    status = EmailStatusEvent(
        event_id=event_id, occurred_at=at, contact_id=contact_id, occurrence_key=key, status=STATUS_OF[kind]
    )
    return EMAIL_STATUS, status


def _sg_event_id(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DeliveryError(f"{where}: field 'sg_event_id' is missing or not a string")
    if len(value) > MAX_SG_ID_CHARS:
        raise DeliveryError(f"{where}: field 'sg_event_id' is longer than {MAX_SG_ID_CHARS} characters")
    return value


def _timestamp(where: str, value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeliveryError(f"{where}: field 'timestamp' is not whole Unix seconds: {excerpt(value)}")
    if not _FIRST_TS <= value <= _LAST_TS:
        raise DeliveryError(f"{where}: field 'timestamp' {value} is not a time between 1970 and {LAST_DATE}")
    return datetime.fromtimestamp(value, UTC)


def _contact_id(where: str, value: Any) -> int:
    # SendGrid's custom arguments are strings; a sender may also put a number.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number: object = int(value)
    else:
        number = value
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= _MAX_CONTACT_ID:
        raise DeliveryError(f"{where}: field 'contact_id' is not a contact id: {excerpt(value)}")
    return number


def _occurrence_key(where: str, value: Any, contact_id: int) -> str:
    if not isinstance(value, str) or not value:
        raise DeliveryError(f"{where}: field 'occurrence_key' is missing or not a string")
    if len(value) > MAX_KEY_CHARS:
        raise DeliveryError(f"{where}: field 'occurrence_key' is longer than {MAX_KEY_CHARS} characters")
    owner = value.split(":", 1)[0]
    if owner != str(contact_id):
        raise DeliveryError(
            f"{where}: field 'occurrence_key' {excerpt(value)} is not a key of contact {contact_id} "
            f"(its keys begin with '{contact_id}:')"
        )
    return value
