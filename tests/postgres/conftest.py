"""A throwaway PostgreSQL server (scripts/pg-local) for the session, a fresh database per test.

The server cannot start: every test here fails with the script's one-line
reason.  They never skip: a skipped PostgreSQL test would hide that the
store no longer works there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_LOCAL = Path(__file__).resolve().parents[2] / "scripts" / "pg-local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_local(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PG_LOCAL), command], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The server's URL without a database name."""
    # Not pytest's tmp_path: it is closed to other users, and run as root the
    # server runs as the postgres user, which must reach its data directory.
    state = Path(tempfile.mkdtemp(prefix="mailwindow-pg-"))
    port = _free_port()
    env = {**os.environ, "PG_STATE": str(state), "PG_PORT": str(port)}
    started = _pg_local("start", env)
    if started.returncode != 0:
        _pg_local("stop", env)  # in case it runs but did not answer; its log stays in PG_STATE
        reason = (started.stderr.strip() or started.stdout.strip()).splitlines()
        pytest.fail(reason[-1] if reason else "scripts/pg-local start failed", pytrace=False)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        _pg_local("stop", env)
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def new_database(pg_server: str) -> Iterator[str]:
    """A new, empty database on the server, dropped at the end."""
    name = f"mw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{pg_server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")  # a name of ours, not a value
        yield f"{pg_server}/{name}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the session's server."""
    with new_database(pg_server) as url:
        yield url
