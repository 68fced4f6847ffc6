"""docker-compose.yml cannot run here (no Docker engine); these checks keep it valid: what it
starts matches the project (same Kafka version as scripts/kafka-local, a worker command the
CLI accepts, services waited for by health checks, state on volumes), and the production
shape of issue 16 (worker replicas in one group on PostgreSQL, their health check asking the
readiness endpoint, run here against the worker's health server, the stop's grace period)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from streams.cli import parser

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_kafka_is_the_version_the_tests_run() -> None:
    script = (ROOT / "scripts" / "kafka-local").read_text()
    version = re.search(r"^version=(\S+)$", script, re.M)
    assert version is not None
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{version[1]}"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


def test_the_worker_command_is_one_the_cli_accepts() -> None:
    worker = compose()["services"]["worker"]
    command = worker["command"]
    assert command[:2] == ["mailwindow", "worker"]
    args = parser().parse_args(command[1:])
    assert args.broker == "kafka:9092"
    assert args.db.startswith("postgresql+psycopg://") and args.db.endswith("@postgres/mailwindow")
    assert args.partitions == compose()["services"]["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]


def test_the_worker_waits_for_healthy_services_and_state_is_on_volumes() -> None:
    c = compose()
    services = c["services"]
    for name, condition in services["worker"]["depends_on"].items():
        assert condition == {"condition": "service_healthy"}
        assert "healthcheck" in services[name], name
    declared = set(c["volumes"])
    for name, service in services.items():
        mounts = {v.split(":")[0] for v in service.get("volumes", [])}
        assert mounts and mounts <= declared, name
        assert service["restart"] == "unless-stopped", name  # the worker exits 70 to be restarted


# --- issue 16: several workers, health checks, the stop ------------------------------------


def _worker_args() -> Any:
    return parser().parse_args(compose()["services"]["worker"]["command"][1:])


def _seconds(duration: str) -> float:
    """A compose duration as the file writes them here: '35s', '1m30s'."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts is not None and duration, duration
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


def test_several_worker_replicas_share_one_consumer_group_and_the_postgresql_database() -> None:
    services = compose()["services"]
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2
    # identical replicas: one app id (one consumer group), no fixed name or host port to clash
    assert "--app-id" not in worker["command"]
    assert "container_name" not in worker and "ports" not in worker
    env = services["postgres"]["environment"]
    user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    assert _worker_args().db == f"postgresql+psycopg://{user}:{password}@postgres/{db}"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    # Faust's directory per replica (container-local); the baseline snapshots on the shared volume
    args = _worker_args()
    assert args.datadir.startswith("/tmp/")
    assert any(v.endswith(":/var/lib/mailwindow") for v in worker["volumes"])
    assert args.snapshot_dir.startswith("/var/lib/mailwindow/")


def test_the_workers_health_check_asks_readiness_on_the_port_the_worker_serves() -> None:
    worker = compose()["services"]["worker"]
    args = _worker_args()
    assert args.health_port and args.health_host == "0.0.0.0"
    assert str(args.health_port) in [str(p) for p in worker["expose"]]
    check = worker["healthcheck"]
    assert check["test"][0] == "CMD"
    assert f"http://127.0.0.1:{args.health_port}/health/ready" in " ".join(check["test"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE {args.health_port}$", dockerfile, re.M)
    cmd = re.search(r"^CMD (\[.*?\])$", dockerfile.replace("\\\n", ""), re.M | re.S)
    assert cmd is not None
    image_args = parser().parse_args(json.loads(cmd[1])[1:])
    assert (image_args.health_port, image_args.health_host) == (args.health_port, "0.0.0.0")


def test_the_health_check_command_passes_on_200_and_fails_on_503() -> None:
    """The compose file's check itself, run here (python:3.11-slim has no curl) against the
    worker's health server answering ready and then not ready."""
    from streams.worker.health import READY_PATH, Verdict, serve_health

    worker = compose()["services"]["worker"]
    port = _worker_args().health_port
    state = {"verdict": Verdict(200, {"status": "ok"})}
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(serve_health("127.0.0.1", 0, {READY_PATH: lambda: state["verdict"]}))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        test = [
            a.replace(f":{port}/", f":{server.sockets[0].getsockname()[1]}/") for a in worker["healthcheck"]["test"][1:]
        ]
        assert test[0] == "python"

        def check() -> int:
            return subprocess.run([sys.executable, *test[1:]], capture_output=True, timeout=30).returncode

        assert check() == 0
        state["verdict"] = Verdict(503, {"status": "starting", "reason": "joining the consumer group"})
        assert check() != 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.close()


def test_the_stop_grace_period_lets_the_worker_end_itself_first() -> None:
    from streams.worker.app import STOP_TIMEOUT_S

    worker = compose()["services"]["worker"]
    stop_timeout = _worker_args().stop_timeout
    assert stop_timeout == STOP_TIMEOUT_S
    grace = _seconds(worker["stop_grace_period"])
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    # the worker's own bound first (exit 1 with its reason), the engine's SIGKILL only after
    assert stop_timeout < grace <= stop_timeout + 15


def test_the_image_copies_every_directory_the_package_is_built_from() -> None:
    """``pip install .`` in the Dockerfile fails on a package whose directory was not copied in
    (there is no Docker engine here to build the image: this is the check that can run)."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    renamed: dict[str, str] = setuptools.get("package-dir", {})
    needed = {renamed.get(p, p.replace(".", "/")).split("/")[0] for p in setuptools["packages"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", dockerfile, re.M))
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert needed == {"rules", "streams", "schemas", "synthetic"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    assert not needed & ignored, f"left out by .dockerignore: {sorted(needed & ignored)}"
