"""The worker's health over HTTP: ``GET /health/live`` and ``GET /health/ready`` (issue 16).

``mailwindow worker --health-port N`` serves them from inside the worker's event
loop (a few lines of HTTP/1.1 on asyncio streams: Faust's own web server stays
off, and the answers need nothing more).  Both answer 200 or 503 with a small
JSON body: ``status``, ``reason`` (why not ok, else null) and what was looked at.

**Live** (restart me if not): the event loop turns (the health tick, every
``Limits.tick_s``, has run within ``Limits.silent_s``), the database process is
alive, and the call it is on has not lasted beyond its limit: ``call_s`` for a
batch or any short call (generous: on PostgreSQL a batch waits, by design,
while another worker sweeps), ``long_call_s`` for a sweep or the start's
preparation (which may run a sweep a crash left unfinished, or copy the
database for the audit baseline).  A running sweep is reported
(``sweeping_for_s``), not a failure.

**Ready** (this member takes its share of the partitions): live, started (the
topics made sure of, the database prepared, the Faust app started, the outbox
published), a member of the consumer group with the rebalance finished (an
empty assignment counts: more workers than partitions), the database
answering (the last call that reached it did not fail as unavailable), and not
stopping: from the first SIGTERM on it is 503.

The verdicts are pure functions of an ``Observation`` (what the worker knows at
one moment, in monotonic seconds) and ``Limits``; ``DatabaseCalls`` keeps what
the database process is doing as the event loop sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"

# Calls of the database process (its functions' names without the underscore) that may
# legitimately last long: a sweep; the start's preparation; the first call, which waits for
# the process to start (its initializer migrates the database, a no-op after the CLI's).
LONG_CALLS = frozenset({"sweep", "prepare", "started"})
BATCH_CALL = "process"

# What the worker is doing while it starts, and the words readiness gives for it.
STAGES = {
    "topics": "making sure of the topics",
    "database": "preparing the database (an unfinished sweep, the audit baseline)",
    "app": "starting the Faust app",
    "outbox": "publishing the outbox",
    "running": "running",
    "stopping": "stopping",
}


@dataclass(frozen=True)
class Limits:
    # The health tick's period: it marks the loop as turning and, when the database
    # process has nothing to do, asks the database a trivial question.
    tick_s: float = 5.0
    # No tick for this long: the event loop does not turn (or the tick died).
    silent_s: float = 60.0
    # One batch (or any short call) for longer than this: the database process is stuck.
    # 15 minutes: a batch on PostgreSQL waits while another worker sweeps (the longest
    # sweep measured, 3M contacts in the AEP season, took 8 minutes).
    call_s: float = 900.0
    # One sweep (or the start's preparation) for longer than this: stuck.
    long_call_s: float = 7200.0


@dataclass(frozen=True)
class Call:
    kind: str  # the database process's function, e.g. "process" (a batch), "sweep", "ping"
    since: float  # when the process began it (monotonic; best estimate, see DatabaseCalls)


@dataclass(frozen=True)
class Observation:
    """What the worker knows at ``now`` (monotonic seconds)."""

    now: float
    started_at: float
    stage: str  # a key of STAGES
    last_tick: float | None = None  # the health tick's last run
    database_alive: bool = True
    running: Call | None = None  # the call the database process is on
    queued: int = 0  # calls waiting behind it
    database_error: str | None = None  # the last call's "database unavailable", until a success
    last_batch_done: float | None = None
    joined: bool = False  # a generation of the consumer group was received
    rebalancing: bool = False
    assigned: Mapping[str, Sequence[int]] = field(default_factory=dict)  # topic -> partitions
    leader: bool = False  # this member is the group's leader (it sweeps)
    stopping_since: float | None = None


@dataclass(frozen=True)
class Verdict:
    code: int  # 200 or 503
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == 200


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 1)


def _database(o: Observation) -> dict[str, Any]:
    busy = None
    if o.running is not None:
        busy = {"call": o.running.kind, "for_s": _age(o.now, o.running.since), "queued": o.queued}
    return {
        "alive": o.database_alive,
        "busy": busy,
        "error": o.database_error,
        "last_batch_age_s": _age(o.now, o.last_batch_done),
    }


def _sweeping_for(o: Observation) -> float | None:
    if o.running is not None and o.running.kind == "sweep":
        return _age(o.now, o.running.since)
    return None


def liveness(o: Observation, limits: Limits = Limits()) -> Verdict:
    """200 while the loop turns and the database process is alive and not stuck."""
    reason = None
    last_tick = o.started_at if o.last_tick is None else o.last_tick
    if o.now - last_tick > limits.silent_s:
        reason = f"the health tick has not run for {o.now - last_tick:.0f} s: the event loop is stuck"
    elif not o.database_alive:
        reason = "the database process is gone"
    elif o.running is not None:
        limit = limits.long_call_s if o.running.kind in LONG_CALLS else limits.call_s
        busy = o.now - o.running.since
        if busy > limit:
            reason = (
                f"the database process has been on one {o.running.kind} call for {busy:.0f} s "
                f"(limit {limit:.0f} s)"
            )
    body = {
        "status": "ok" if reason is None else "failing",
        "reason": reason,
        "stage": o.stage,
        "uptime_s": _age(o.now, o.started_at),
        "last_tick_age_s": _age(o.now, o.last_tick),
        "sweeping_for_s": _sweeping_for(o),
        "database": _database(o),
    }
    return Verdict(200 if reason is None else 503, body)


def readiness(o: Observation, limits: Limits = Limits()) -> Verdict:
    """200 once started, in the group with the rebalance done, the database answering;
    503 before that, when not live, and from the first SIGTERM on."""
    live = liveness(o, limits)
    status, reason = "ok", None
    if o.stopping_since is not None or o.stage == "stopping":
        status = "stopping"
        reason = "stopping (SIGTERM): finishing the batch in hand, then leaving the consumer group"
    elif not live.ok:
        status, reason = "not ready", f"not live: {live.body['reason']}"
    elif o.stage != "running":
        status, reason = "starting", f"starting: {STAGES.get(o.stage, o.stage)}"
    elif o.database_error is not None:
        status, reason = "not ready", f"the database does not answer: {o.database_error}"
    elif not o.joined:
        status, reason = "starting", "joining the consumer group"
    elif o.rebalancing:
        status, reason = "not ready", "the consumer group is rebalancing"
    body = {
        "status": status,
        "reason": reason,
        "stage": o.stage,
        "uptime_s": _age(o.now, o.started_at),
        "stopping_for_s": _age(o.now, o.stopping_since),
        "group": {
            "joined": o.joined,
            "rebalancing": o.rebalancing,
            "leader": o.leader,
            "partitions": sum(len(p) for p in o.assigned.values()),
            "assigned": {t: sorted(p) for t, p in sorted(o.assigned.items())},
        },
        "sweeping_for_s": _sweeping_for(o),
        "database": _database(o),
    }
    return Verdict(200 if reason is None else 503, body)


class DatabaseCalls:
    """What the worker's database process is doing, as the event loop sees it.

    The process takes its calls one at a time in the order they were made (one
    worker process, a FIFO queue), so the call it is on is the oldest one not
    finished, and it began when it was made or when the call before it
    finished, whichever came later.  ``begin`` and ``end`` are called on the
    event loop; ``clock`` is injected for the tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight: dict[int, tuple[str, float]] = {}  # token -> (kind, made at); in order
        self._next = 0
        self.last_done: float | None = None
        self.last_batch_done: float | None = None
        self.error: str | None = None

    def begin(self, kind: str) -> int:
        token = self._next
        self._next += 1
        self._in_flight[token] = (kind, self._clock())
        return token

    def end(self, token: int, unavailable: str | None = None, *, at: float | None = None) -> None:
        """The call finished; ``unavailable``: it failed as "database unavailable" (the text).

        A success clears an earlier failure: the database answered."""
        kind, _ = self._in_flight.pop(token)
        now = self._clock() if at is None else at
        self.last_done = now if self.last_done is None else max(self.last_done, now)
        if kind == BATCH_CALL and unavailable is None:
            self.last_batch_done = now
        if kind != "started":  # the process answering says nothing about the database
            self.error = unavailable

    @property
    def idle(self) -> bool:
        return not self._in_flight

    @property
    def queued(self) -> int:
        return max(0, len(self._in_flight) - 1)

    @property
    def running(self) -> Call | None:
        if not self._in_flight:
            return None
        kind, made = next(iter(self._in_flight.values()))
        since = made if self.last_done is None else max(made, self.last_done)
        return Call(kind, since)


# --- the HTTP side: one request per connection, GET or HEAD, a JSON answer ------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_READ_TIMEOUT_S = 5.0
_MAX_HEADER_LINES = 100


class HealthPortError(Exception):
    """The health endpoints' address cannot be listened on (in use, not ours)."""


def response(code: int, body: Mapping[str, Any], head: bool = False) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    lines = [
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else payload)


def route(method: str, target: str, probes: Mapping[str, Callable[[], Verdict]]) -> tuple[int, dict[str, Any]]:
    """The answer to one request line's method and target."""
    path = target.split("?", 1)[0]
    probe = probes.get(path)
    if probe is None:
        return 404, {"status": "not found", "reason": f"no such path; try {', '.join(sorted(probes))}"}
    if method not in ("GET", "HEAD"):
        return 405, {"status": "method not allowed", "reason": "GET or HEAD"}
    verdict = probe()
    return verdict.code, verdict.body


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, probes: Mapping[str, Callable[[], Verdict]]
) -> None:
    method = ""
    try:
        try:
            request = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
            for _ in range(_MAX_HEADER_LINES):  # the headers: read and ignored
                line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT_S)
                if line in (b"\r\n", b"\n", b""):
                    break
            method, target, _version = request.decode("latin-1").split(" ", 2)
        except (ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            writer.write(response(400, {"status": "bad request", "reason": "not an HTTP/1.1 request"}))
        else:
            try:
                code, body = route(method, target, probes)
            except Exception as exc:  # noqa: BLE001 - a probe's bug must not end the worker
                logger.exception("the health endpoint failed on %s %s", method, target)
                code, body = 500, {"status": "failing", "reason": f"the health check failed: {exc!r}"}
            writer.write(response(code, body, head=method == "HEAD"))
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass  # a client that said nothing, or went away: nothing to answer
    finally:
        writer.close()


async def serve_health(
    host: str, port: int, probes: Mapping[str, Callable[[], Verdict]]
) -> asyncio.Server:
    """Listen on ``host:port`` (0: any free port) in the running loop; ``probes`` by path."""
    try:
        return await asyncio.start_server(lambda r, w: _answer(r, w, probes), host, port)
    except OSError as exc:
        raise HealthPortError(
            f"cannot listen on {host}:{port} for the health endpoints: {exc.strerror or exc}"
        ) from None
