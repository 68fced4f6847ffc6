"""docker-compose.yml cannot run here (no Docker engine); these checks keep it valid: what it
starts matches the project (same Kafka version as scripts/kafka-local, a worker command the
CLI accepts, services waited for by health checks, state on volumes)."""

from __future__ import annotations

import re
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
