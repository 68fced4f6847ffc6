"""The console over a real SQLite file, as the tests drive it (Starlette's TestClient)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from starlette.testclient import TestClient

from rules.config import DEFAULT_CONFIG, Config
from streams.console.app import ConsoleOptions, make_app
from streams.store.engine import open_store

SECRET = b"test-secret"


@contextmanager
def console(
    db: Path,
    today: date,
    *,
    secret: bytes | None = SECRET,
    config: Config = DEFAULT_CONFIG,
    webhook: bool = True,
) -> Iterator[TestClient]:
    """The console as ``mailwindow serve`` makes it (a read-only store for the pages, a
    writable one for the webhook), answering through a TestClient."""
    store = open_store(str(db), read_only=True)
    writable = open_store(str(db)) if webhook else None
    try:
        options = ConsoleOptions(today=today, webhook_secret=secret)
        with TestClient(make_app(store, config, options, webhook_store=writable)) as client:
            yield client
    finally:
        store.close()
        if writable is not None:
            writable.close()


def sign(body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    """The header a sender computes, here independently of the console's code."""
    return {"X-Mailwindow-Signature": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}
