"""The worker's health endpoints without a broker: the verdicts of /health/live and
/health/ready as pure functions of what the worker knows (streams.worker.health), the
bookkeeping of the database process's calls, and the small HTTP server over a real socket.
The endpoints on a real worker are in tests/kafka/test_worker_health.py."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace
from typing import Any

import pytest

from streams.worker.health import (
    LIVE_PATH,
    READY_PATH,
    Call,
    DatabaseCalls,
    HealthPortError,
    Limits,
    Observation,
    Verdict,
    liveness,
    readiness,
    response,
    route,
    serve_health,
)

LIMITS = Limits(tick_s=5, silent_s=60, call_s=900, long_call_s=7200)
T0 = 1000.0  # the worker's start, in monotonic seconds

# A worker running normally: started, in the group with its partitions, ticking, idle.
RUNNING = Observation(
    now=T0 + 300,
    started_at=T0,
    stage="running",
    last_tick=T0 + 298,
    last_batch_done=T0 + 290,
    joined=True,
    assigned={"contacts": [1, 0], "clicks": [0, 1]},
    leader=True,
)


def at(o: Observation, **changes: Any) -> Observation:
    return replace(o, **changes)


# --- liveness -----------------------------------------------------------------------------


def test_a_running_worker_is_live_and_says_what_it_looked_at() -> None:
    v = liveness(RUNNING, LIMITS)
    assert v.code == 200 and v.ok
    assert v.body["status"] == "ok" and v.body["reason"] is None
    assert v.body["last_tick_age_s"] == 2.0
    assert v.body["database"] == {"alive": True, "busy": None, "error": None, "last_batch_age_s": 10.0}
    assert v.body["sweeping_for_s"] is None


def test_a_loop_whose_tick_stopped_is_not_live() -> None:
    v = liveness(at(RUNNING, last_tick=RUNNING.now - 61), LIMITS)
    assert v.code == 503 and v.body["status"] == "failing"
    assert "the health tick has not run for 61 s" in v.body["reason"]
    # before the first tick, the start counts as one
    assert liveness(at(RUNNING, last_tick=None, now=T0 + 30), LIMITS).ok
    assert not liveness(at(RUNNING, last_tick=None, now=T0 + 61), LIMITS).ok


def test_a_dead_database_process_is_not_live() -> None:
    v = liveness(at(RUNNING, database_alive=False), LIMITS)
    assert v.code == 503 and v.body["reason"] == "the database process is gone"


def test_a_batch_call_past_its_limit_is_stuck_and_one_within_it_is_not() -> None:
    busy = at(RUNNING, running=Call("process", RUNNING.now - 899), queued=3)
    v = liveness(busy, LIMITS)
    assert v.ok and v.body["database"]["busy"] == {"call": "process", "for_s": 899.0, "queued": 3}
    stuck = liveness(at(busy, running=Call("process", RUNNING.now - 901)), LIMITS)
    assert stuck.code == 503
    assert stuck.body["reason"] == "the database process has been on one process call for 901 s (limit 900 s)"


def test_a_long_sweep_is_reported_not_failed_until_its_own_generous_limit() -> None:
    an_hour = at(RUNNING, running=Call("sweep", RUNNING.now - 3600))
    v = liveness(an_hour, LIMITS)
    assert v.ok and v.body["sweeping_for_s"] == 3600.0
    assert readiness(an_hour, LIMITS).ok  # the worker is fine; its batches wait their turn
    over = liveness(at(RUNNING, running=Call("sweep", RUNNING.now - 7201)), LIMITS)
    assert over.code == 503 and "one sweep call for 7201 s (limit 7200 s)" in over.body["reason"]
    # the start's preparation may run an unfinished sweep: same limit
    assert liveness(at(RUNNING, stage="database", running=Call("prepare", RUNNING.now - 3600)), LIMITS).ok
    # and so may the process's own start (its initializer migrates the database)
    assert liveness(at(RUNNING, stage="database", running=Call("started", RUNNING.now - 3600)), LIMITS).ok


def test_liveness_does_not_depend_on_the_group_or_on_stopping() -> None:
    alone = at(RUNNING, joined=False, rebalancing=True, assigned={}, stopping_since=RUNNING.now - 5)
    assert liveness(alone, LIMITS).ok


# --- readiness ----------------------------------------------------------------------------


def test_a_running_member_with_its_partitions_is_ready() -> None:
    v = readiness(RUNNING, LIMITS)
    assert v.code == 200 and v.body["status"] == "ok" and v.body["reason"] is None
    assert v.body["group"] == {
        "joined": True,
        "rebalancing": False,
        "leader": True,
        "partitions": 4,
        "assigned": {"clicks": [0, 1], "contacts": [0, 1]},
    }


def test_an_empty_assignment_is_ready_once_the_group_is_stable() -> None:
    # more workers than partitions: this one waits as a standby, in the group
    v = readiness(at(RUNNING, assigned={}, leader=False), LIMITS)
    assert v.ok and v.body["group"]["partitions"] == 0


@pytest.mark.parametrize(
    ("stage", "reason"),
    [
        ("topics", "starting: making sure of the topics"),
        ("database", "starting: preparing the database (an unfinished sweep, the audit baseline)"),
        ("app", "starting: starting the Faust app"),
        ("outbox", "starting: publishing the outbox"),
    ],
)
def test_a_starting_worker_is_not_ready(stage: str, reason: str) -> None:
    v = readiness(at(RUNNING, stage=stage), LIMITS)
    assert v.code == 503 and v.body["status"] == "starting" and v.body["reason"] == reason


def test_not_ready_before_joining_and_while_the_group_rebalances() -> None:
    before = readiness(at(RUNNING, joined=False, assigned={}), LIMITS)
    assert before.code == 503 and before.body["reason"] == "joining the consumer group"
    during = readiness(at(RUNNING, rebalancing=True), LIMITS)
    assert during.code == 503 and during.body["reason"] == "the consumer group is rebalancing"


def test_not_ready_while_the_database_does_not_answer() -> None:
    v = readiness(at(RUNNING, database_error="database is locked"), LIMITS)
    assert v.code == 503 and v.body["reason"] == "the database does not answer: database is locked"
    assert liveness(at(RUNNING, database_error="database is locked"), LIMITS).ok  # a restart would not help


def test_not_ready_when_not_live() -> None:
    v = readiness(at(RUNNING, database_alive=False), LIMITS)
    assert v.code == 503 and v.body["reason"] == "not live: the database process is gone"


def test_stopping_is_not_ready_from_the_first_moment_whatever_else_holds() -> None:
    for o in (at(RUNNING, stopping_since=RUNNING.now), at(RUNNING, stage="stopping", stopping_since=RUNNING.now - 3)):
        v = readiness(o, LIMITS)
        assert v.code == 503 and v.body["status"] == "stopping"
        assert v.body["reason"].startswith("stopping")
    assert readiness(at(RUNNING, stopping_since=RUNNING.now - 3), LIMITS).body["stopping_for_s"] == 3.0
    # a worker stopped while it was starting says stopping, not starting
    assert readiness(at(RUNNING, stage="database", stopping_since=RUNNING.now), LIMITS).body["status"] == "stopping"


# --- the database process's calls, as the loop sees them ----------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_call_in_progress_is_the_oldest_and_began_when_the_one_before_ended() -> None:
    clock = Clock()
    calls = DatabaseCalls(clock)
    assert calls.idle and calls.running is None and calls.queued == 0
    a = calls.begin("process")
    clock.t = 1
    b = calls.begin("process")
    clock.t = 2
    c = calls.begin("sweep")
    assert calls.running == Call("process", 0.0) and calls.queued == 2
    clock.t = 5
    calls.end(a)
    assert calls.running == Call("process", 5.0)  # b waited behind a: it began at 5, not 1
    assert calls.last_batch_done == 5.0 and calls.queued == 1
    clock.t = 6
    calls.end(b)
    assert calls.running == Call("sweep", 6.0)
    clock.t = 100
    calls.end(c)
    assert calls.idle and calls.last_done == 100 and calls.last_batch_done == 6.0
    clock.t = 200
    d = calls.begin("ping")
    assert calls.running == Call("ping", 200.0)  # made after the last one ended
    calls.end(d)


def test_an_unavailable_database_is_remembered_until_a_call_succeeds() -> None:
    clock = Clock()
    calls = DatabaseCalls(clock)
    calls.end(calls.begin("process"), "database is locked")
    assert calls.error == "database is locked"
    assert calls.last_batch_done is None  # a batch that failed was not done
    calls.end(calls.begin("started"))  # the process answering says nothing of the database
    assert calls.error == "database is locked"
    calls.end(calls.begin("ping"))
    assert calls.error is None


def test_an_end_reported_late_keeps_the_time_it_happened() -> None:
    clock = Clock()
    calls = DatabaseCalls(clock)
    token = calls.begin("process")
    clock.t = 10
    calls.end(token, at=7.0)
    assert calls.last_done == 7.0 and calls.last_batch_done == 7.0


# --- HTTP ---------------------------------------------------------------------------------

PROBES = {
    LIVE_PATH: lambda: Verdict(200, {"status": "ok"}),
    READY_PATH: lambda: Verdict(503, {"status": "starting", "reason": "joining the consumer group"}),
}


def test_routes() -> None:
    assert route("GET", "/health/live", PROBES) == (200, {"status": "ok"})
    assert route("GET", "/health/ready?verbose=1", PROBES)[0] == 503
    assert route("HEAD", "/health/ready", PROBES)[0] == 503
    assert route("POST", "/health/live", PROBES)[0] == 405
    code, body = route("GET", "/", PROBES)
    assert code == 404 and "/health/live" in body["reason"]


def test_a_response_is_complete_http_with_its_length() -> None:
    raw = response(503, {"status": "stopping"})
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert f"Content-Length: {len(body)}" in lines and "Content-Type: application/json" in lines
    assert json.loads(body) == {"status": "stopping"}
    assert response(200, {"status": "ok"}, head=True).endswith(b"\r\n\r\n")  # HEAD: no body


async def _exchange(port: int, request: bytes) -> tuple[int, dict[str, Any] | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()  # the server closes the connection
    writer.close()
    head, body = raw.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body) if body else None


def test_the_server_answers_over_a_socket() -> None:
    async def go() -> None:
        server = await serve_health("127.0.0.1", 0, PROBES)
        port = server.sockets[0].getsockname()[1]
        try:
            assert await _exchange(port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n") == (200, {"status": "ok"})
            code, body = await _exchange(port, b"GET /health/ready HTTP/1.0\r\n\r\n")
            assert code == 503 and body is not None and body["reason"] == "joining the consumer group"
            assert await _exchange(port, b"HEAD /health/ready HTTP/1.1\r\n\r\n") == (503, None)
            assert (await _exchange(port, b"nonsense\r\n\r\n"))[0] == 400
            # a client that connects and says nothing does not hold the others up
            idle = await asyncio.open_connection("127.0.0.1", port)
            assert (await _exchange(port, b"GET /health/live HTTP/1.1\r\n\r\n"))[0] == 200
            idle[1].close()
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(go())


def test_a_probe_that_fails_does_not_take_the_server_down() -> None:
    def broken() -> Verdict:
        raise RuntimeError("a bug")

    async def go() -> None:
        server = await serve_health("127.0.0.1", 0, {**PROBES, "/health/broken": broken})
        port = server.sockets[0].getsockname()[1]
        try:
            code, body = await _exchange(port, b"GET /health/broken HTTP/1.1\r\n\r\n")
            assert code == 500 and body is not None and "RuntimeError('a bug')" in body["reason"]
            assert (await _exchange(port, b"GET /health/live HTTP/1.1\r\n\r\n"))[0] == 200
        finally:
            server.close()

    asyncio.run(go())


def test_a_port_in_use_is_one_clear_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(HealthPortError, match=f"cannot listen on 127.0.0.1:{port} for the health endpoints"):
            asyncio.run(serve_health("127.0.0.1", port, PROBES))
    finally:
        taken.close()


def test_the_worker_command_refuses_a_taken_health_port_in_one_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main
    from streams.store.engine import new_agency_database

    db = new_agency_database(tmp_path / "agency.db")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        # refused before the broker is asked anything (none listens on port 9 here)
        code = main(["worker", "--broker", "127.0.0.1:9", "--db", str(db), "--health-port", str(port),
                     "--datadir", str(tmp_path / "faust")])
    finally:
        taken.close()
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mailwindow worker: cannot listen on 127.0.0.1:{port} for the health endpoints")
    assert len(err.strip().splitlines()) == 1


def test_the_health_flags_are_checked_by_the_parser() -> None:
    from streams.cli import parser

    args = parser().parse_args(["worker", "--broker", "b:9092", "--db", "x.db"])
    assert (args.health_port, args.health_host, args.stop_timeout) == (None, "127.0.0.1", 30.0)
    with pytest.raises(SystemExit):
        parser().parse_args(["worker", "--broker", "b:9092", "--db", "x.db", "--health-port", "70000"])
    with pytest.raises(SystemExit):
        parser().parse_args(["worker", "--broker", "b:9092", "--db", "x.db", "--stop-timeout", "0"])
