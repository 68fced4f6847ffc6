"""The Kafka-side commands as an operator runs them: one line and exit 2 for what cannot be
done, the baseline recorded and published, partition counts that fit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from streams.worker.replay import read_audit_log
from streams.worker.topics import contact_partitions
from synthetic.generate import generate_database
from tests.kafka.workers import ROOT
from tests.sweeps import checksum


def mailwindow(*args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_partitions_are_chosen_and_a_mismatch_is_one_line(kafka_broker: str, topic_prefix: str, tmp_path: Path) -> None:
    sent = mailwindow("send-test-events", "--broker", kafka_broker, "--prefix", topic_prefix,
                      "--count", "20", "--partitions", "2")
    assert sent.returncode == 0, sent.stderr
    assert asyncio.run(contact_partitions(kafka_broker, topic_prefix)) == 2
    # more events: the existing count is kept when none is given
    again = mailwindow("send-test-events", "--broker", kafka_broker, "--prefix", topic_prefix, "--count", "5")
    assert again.returncode == 0, again.stderr
    db = tmp_path / "a.db"
    generate_database(str(db), 10, seed=1)
    line = one_line(
        mailwindow("worker", "--broker", kafka_broker, "--prefix", topic_prefix, "--db", str(db),
                   "--partitions", "4", "--datadir", str(tmp_path / "faust"))
    )
    assert "co-partitioning broken" in line and f"{topic_prefix}contacts=2" in line, line


def test_replay_without_a_baseline_says_so_in_one_line(kafka_broker: str, topic_prefix: str, tmp_path: Path) -> None:
    line = one_line(mailwindow("replay", "--broker", kafka_broker, "--prefix", topic_prefix,
                               "--db", str(tmp_path / "r.db")))
    assert "no audit baseline" in line and f"{topic_prefix}baselines" in line
    assert "not found in cluster metadata" not in line


def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    for args in (
        ("send-test-events", "--count", "3"),
        ("replay", "--db", str(tmp_path / "r.db")),
    ):
        line = one_line(mailwindow(args[0], "--broker", "127.0.0.1:1", *args[1:]))
        assert line.endswith("cannot reach the Kafka broker at 127.0.0.1:1"), line


def test_baseline_records_and_publishes_and_replay_restores_it(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    db = tmp_path / "agency.db"
    generate_database(str(db), 300, seed=3, campaign_instances=2, followup_initials=20)
    swept = mailwindow("sweep", "--db", str(db), "--as-of", "2026-03-10")
    assert swept.returncode == 0, swept.stderr
    done = mailwindow("publish", "--broker", kafka_broker, "--prefix", topic_prefix, "--db", str(db),
                      "--as-of", "2026-03-10", "--partitions", "2")
    assert done.returncode == 0, done.stderr
    assert "baseline baseline-" in done.stdout and "decision day 2026-03-10" in done.stdout
    snapshots = list((tmp_path / "agency.db.baselines").glob("baseline-*.db"))
    assert len(snapshots) == 1
    log = read_audit_log(kafka_broker, topic_prefix)
    assert len(log.baselines) == 1 and log.baselines[0].snapshot_path == str(snapshots[0])
    assert len(log.runs) == 1  # the sweep run by hand, published with the baseline
    replayed = mailwindow("replay", "--broker", kafka_broker, "--prefix", topic_prefix,
                          "--db", str(tmp_path / "replayed.db"))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == checksum(db)
    # An auditor's copy of the snapshot elsewhere; a wrong file is refused by its sha256.
    copy = tmp_path / "archive.db"
    copy.write_bytes(snapshots[0].read_bytes())
    again = mailwindow("replay", "--broker", kafka_broker, "--prefix", topic_prefix,
                       "--db", str(tmp_path / "replayed2.db"), "--snapshot", str(copy))
    assert again.stdout.strip() == checksum(db)
    wrong = one_line(mailwindow("replay", "--broker", kafka_broker, "--prefix", topic_prefix,
                                "--db", str(tmp_path / "replayed3.db"), "--snapshot", str(db)))
    assert "is not the baseline's: sha256" in wrong
