"""The campaigns page: types (the table's winning over the config's, as the sweep reads
them), instances with their dates, the date change log, and each instance's targets by
status.  ``/campaigns`` and ``/api/campaigns`` are both made from ``campaigns_data``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection

from rules.config import Config
from streams.admin.campaigns import known_types, table_types
from streams.console import queries
from streams.store.campaigns import has_campaign_tables, instance_rows

CHANGES_LISTED = 200
_INSTANCE_FIELDS = (
    "id", "campaign_type", "instance_name", "email_template", "sms_template",
    "active_start_date", "active_end_date", "metadata",
)
_CANCELLED = frozenset({"cancelled", "canceled"})


def campaigns_data(conn: Connection, config: Config) -> dict[str, Any]:
    if not has_campaign_tables(conn):  # an old database: only the config's types
        types = [{**asdict(t), "source": "config"} for t in config.campaign_types.values()]
        return {"types": types, "instances": [], "changes": []}
    in_table = {t.name for t in table_types(conn)}
    types = [
        {**asdict(t), "source": "table" if name in in_table else "config"}
        for name, t in sorted(known_types(conn, config).items())
    ]
    targets = queries.targets_by_status(conn)
    instances = []
    for row in instance_rows(conn):
        instance = dict(zip(_INSTANCE_FIELDS, row, strict=True))
        by_status = targets.get(int(instance["id"]), {})  # type: ignore[call-overload]
        instance["targets_by_status"] = by_status
        instance["live_targets"] = sum(n for s, n in by_status.items() if s.strip().lower() not in _CANCELLED)
        instances.append(instance)
    return {"types": types, "instances": instances, "changes": queries.change_log(conn, CHANGES_LISTED)}
