"""Issue 15, provenance: a sweep records which rules it ran under, and a skip in a dated
version's window names that version and its source."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from rules.config import DEFAULT_CONFIG, config_digest, config_from_mapping
from tests.legacy_db import add_contacts, dump
from tests.sweeps import sweep

PROFILE = config_from_mapping({"state_rules": {"profile": "state-changes-2024-2026"}})[0]


def test_checkpoint_records_the_config_digest(legacy_db: Path) -> None:
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-20"}])
    first = sweep(legacy_db, date(2026, 4, 1))
    second = sweep(legacy_db, date(2026, 4, 2), PROFILE)
    assert first.config_digest == config_digest(DEFAULT_CONFIG)
    assert second.config_digest == config_digest(PROFILE) != first.config_digest
    stored = [json.loads(s)["config_digest"] for (s,) in dump(legacy_db, "SELECT summary FROM scheduler_checkpoints ORDER BY id")]
    assert stored == [first.config_digest, second.config_digest]


def test_a_dated_skip_names_its_version_and_source(legacy_db: Path) -> None:
    add_contacts(
        legacy_db,
        [
            # VA, born July 10: 2026's window uses the version from 2025-07-01 (60 days)
            {"id": 1, "zip_code": "22201", "state": "VA", "birth_date": "1950-07-10"},
            # CA keeps its undated default: the reason is today's, without provenance
            {"id": 2, "zip_code": "90210", "state": "CA", "birth_date": "1950-07-10"},
        ],
    )
    sweep(legacy_db, date(2026, 6, 20), PROFILE)
    reasons = dict(
        dump(legacy_db, "SELECT contact_id, skip_reason FROM email_schedules WHERE email_type = 'birthday'")
    )
    assert reasons[1].startswith("VA birthday window 2026-05-11..2026-09-08 (rule from 2025-07-01; source: Va. Code")
    assert reasons[2] == "CA birthday window 2026-04-11..2026-09-08"
