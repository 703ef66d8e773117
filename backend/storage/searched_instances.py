"""What searches for an earlier start learnt about DingTalk instances, so none is read twice."""

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, union

from backend.storage.schema import applications, changes, searched_instances

KEPT = timedelta(days=7)
"""Longer than any search looks back: a start in doubt is searched for within minutes."""


def linked(connection: Connection, instance_ids: Iterable[str]) -> set[str]:
    """Those of ``instance_ids`` an application or a change already has as its instance."""
    wanted = list(instance_ids)
    if not wanted:
        return set()
    query = union(
        select(applications.c.instance_id).where(applications.c.instance_id.in_(wanted)),
        select(changes.c.instance_id).where(changes.c.instance_id.in_(wanted)),
    )
    return {str(row[0]) for row in connection.execute(query)}


def forms(connection: Connection, instance_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """The form values read before from each of ``instance_ids``, by instance id."""
    wanted = list(instance_ids)
    if not wanted:
        return {}
    table = searched_instances.c
    rows = connection.execute(
        select(table.instance_id, table.form).where(table.instance_id.in_(wanted))
    )
    return {row.instance_id: json.loads(row.form) for row in rows}


def remember(connection: Connection, instance_id: str, form: dict[str, str], now: datetime) -> None:
    """Keep ``form`` as what ``instance_id`` holds (a concurrent search may have kept it first),
    and let go of what is older than any search needs."""
    table = searched_instances.c
    connection.execute(delete(searched_instances).where(table.seen_at < now - KEPT))
    row = {"instance_id": instance_id, "form": json.dumps(form, ensure_ascii=False), "seen_at": now}
    # The same instance read by another search holds the same form: theirs stays.
    connection.execute(
        insert(searched_instances).values(row).prefix_with(_IGNORE[connection.dialect.name])
    )


_IGNORE = {"mysql": "IGNORE", "sqlite": "OR IGNORE"}
