"""``POST /webhooks/delivery``: the email provider's events, authenticated, recorded once.

1. Authentication: an HMAC-SHA256 of the raw body with the secret (the
   environment variable ``mailwindow serve --webhook-secret-env`` names), sent as
   ``X-Mailwindow-Signature: sha256=<hex>``, compared in constant time
   (``hmac.compare_digest``).  No secret configured: 503, saying so (an unsigned
   batch is never accepted).  A missing or wrong signature: 401.
2. The batch is read whole (``streams.console.delivery``) before anything is
   recorded: a malformed body or item is 400 with the reason, naming the item
   and the field, and nothing of the batch is recorded.
3. Recorded:
   - with a broker, produced onto ``<prefix>email-status`` / ``<prefix>clicks``
     keyed by contact id and acknowledged before the answer; the worker applies
     them (once each, by event id) like any producer's events.  The answer counts
     what was published, not what was new (the worker knows that).
   - without a broker, applied here through the worker's own batch step
     (``streams.worker.batch.BatchProcessor.attempt``), in one transaction: the
     facts stored once per event id, every touched contact decided again as of
     the decision day, so a delivered initial email gets its follow-up.  The
     attempt is the unguarded one, which gives up whole on any refusal: nothing
     of a refused batch is recorded.  Batches are applied one at a time.

The answer is JSON: ``received``, ``ignored`` (event types we do not record),
and ``applied`` / ``duplicates`` (direct) or ``published`` (broker).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from rules.config import Config
from streams.console.broker import Publisher
from streams.console.delivery import DeliveryError, ProviderEvents, read_batch
from streams.events.codec import dumps_event, parse_event
from streams.store.engine import Store, run_with_retry
from streams.store.epochs import NoDecisionDay
from streams.worker.batch import BatchProcessor, Message, Unguarded
from streams.worker.guarding import RetryGuarded

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-mailwindow-signature"
MAX_BODY_BYTES = 5 * 1024 * 1024


def signature_of(secret: bytes, body: bytes) -> str:
    """The header value a sender computes: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed(secret: bytes, body: bytes, header: str | None) -> bool:
    if header is None:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode())


@dataclass
class Webhook:
    """What the webhook needs: the secret (None: refuse every request), and either a
    publisher (broker) or a writable store with its config (direct)."""

    secret: bytes | None
    secret_env: str
    requests: Counter  # by outcome
    events: Counter  # by result
    publisher: Publisher | None = None
    store: Store | None = None
    config: Config | None = None
    prefix: str = ""

    def __post_init__(self) -> None:
        self._one_at_a_time = threading.Lock()  # SQLite takes one writer; batches queue here

    def _answer(self, outcome: str, status: int, body: dict[str, Any]) -> JSONResponse:
        self.requests.labels(outcome=outcome).inc()
        return JSONResponse(body, status_code=status)

    async def handle(self, request: Request) -> JSONResponse:
        if self.secret is None:
            return self._answer(
                "unconfigured", 503,
                {"error": f"no webhook secret: set the environment variable {self.secret_env} and restart"},
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return self._answer("too_large", 413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return self._answer("too_large", 413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
        if not signed(self.secret, body, request.headers.get(SIGNATURE_HEADER)):
            return self._answer("unauthorized", 401, {"error": "missing or wrong X-Mailwindow-Signature"})
        try:
            batch = read_batch(body)
        except DeliveryError as exc:
            return self._answer("malformed", 400, {"error": f"{exc}; nothing of the batch was recorded"})
        messages = [(kind, str(event.contact_id).encode(), dumps_event(event)) for kind, event in batch.events]
        for kind, _, value in messages:
            parse_event(kind, value)  # our own events must pass the topics' schemas: a bug otherwise
        if self.publisher is not None:
            return await self._publish(batch, messages)
        if self.store is None:
            return self._answer("unconfigured", 503, {"error": "the console has no writable store and no broker"})
        return await run_in_threadpool(self._apply, batch, messages)

    async def _publish(self, batch: ProviderEvents, messages: list[tuple[str, bytes, bytes]]) -> JSONResponse:
        assert self.publisher is not None
        try:
            await self.publisher.publish(messages)
        except Exception as exc:  # noqa: BLE001 - the broker's failure is the sender's to retry
            logger.warning("webhook batch not published: %s", exc)
            return self._answer(
                "unavailable", 503,
                {"error": f"the broker did not take the batch ({type(exc).__name__}); nothing to assume recorded, send it again"},
            )
        self.events.labels(result="published").inc(len(messages))
        self.events.labels(result="ignored").inc(batch.ignored)
        return self._answer(
            "accepted", 200, {"received": batch.received, "published": len(messages), "ignored": batch.ignored}
        )

    def _apply(self, batch: ProviderEvents, messages: list[tuple[str, bytes, bytes]]) -> JSONResponse:
        assert self.store is not None and self.config is not None
        # No partition and no offset: these events were never on a topic (streams.worker.batch.Message).
        batch_messages = [Message(kind, None, None, key, value) for kind, key, value in messages]
        with self._one_at_a_time:
            try:
                processor = BatchProcessor(self.store, self.config, prefix=self.prefix)
                result = run_with_retry(lambda: processor.attempt(batch_messages, Unguarded))
            except NoDecisionDay as exc:
                return self._answer("no_decision_day", 503, {"error": f"{exc}; nothing of the batch was recorded"})
            except RetryGuarded as exc:
                reason = exc.__cause__ or exc
                return self._answer(
                    "refused", 422,
                    {"error": f"the database refused the batch ({reason}); nothing of it was recorded"},
                )
        if result.deadletters:  # cannot happen: every event passed its schema above
            logger.error("webhook batch dead-lettered events: %s", result.deadletters)
        self.events.labels(result="applied").inc(result.applied)
        self.events.labels(result="duplicate").inc(result.duplicates)
        self.events.labels(result="ignored").inc(batch.ignored)
        return self._answer(
            "accepted", 200,
            {
                "received": batch.received,
                "applied": result.applied,
                "duplicates": result.duplicates,
                "ignored": batch.ignored,
                "schedule_changes": len(result.changes),
            },
        )
