"""A real Kafka broker for the tests under tests/kafka: one per session.

``kafka_broker`` starts ``scripts/kafka-local`` on two free ports with its state
in a temporary directory and stops it when the session ends. Without Java or
Maven (or when the broker does not start) the tests that need it FAIL with the
one-line reason: a run without Kafka must not pass.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = ROOT / "scripts" / "kafka-local"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kafka_local(
    command: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KAFKA_LOCAL), command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"scripts/kafka-local exited with {result.returncode}"


@pytest.fixture(scope="session")
def kafka_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The bootstrap address ``127.0.0.1:PORT`` of a broker running for this session."""
    for tool, why in (("java", "Kafka needs Java 17"), ("mvn", "Maven fetches the broker jars")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: {why}", pytrace=False)
    port, controller_port = free_ports(2)
    env = {
        **os.environ,
        "KAFKA_STATE": str(tmp_path_factory.mktemp("kafka") / "state"),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
    }
    # Registered before the start, so a broker that started but was too slow is stopped too.
    request.addfinalizer(lambda: _kafka_local("stop", env, timeout=120))
    try:
        started = _kafka_local("start", env, timeout=600)  # the first run downloads the jars
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/kafka-local start did not return within 600 s", pytrace=False)
    if started.returncode != 0:
        pytest.fail(_last_line(started), pytrace=False)
    yield f"127.0.0.1:{port}"


@pytest.fixture
def topic_prefix() -> str:
    """A prefix of this test's own, like ``t1a2b3c4d.``: tests never see each other's topics."""
    return f"t{uuid.uuid4().hex[:8]}."


# The throwaway PostgreSQL server of tests/postgres, for the worker run on PostgreSQL.
from tests.postgres.conftest import pg_server, pg_url  # noqa: E402, F401
