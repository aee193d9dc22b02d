"""The node's status per partner, read from the store: what ``setpeer status --json``
prints and ``GET /v1/status`` answers (one rule for both)."""

from __future__ import annotations

from typing import Any, Final

from ..config import PeerConfig
from ..store.base import Store

__all__ = ["COLUMNS", "REASONS_SHOWN", "read_status", "status_json"]

COLUMNS = (
    "session",
    "pending",
    "inflight",
    "acked",
    "failed",
    "received",
    "unhandled",
    "refused",
)

REASONS_SHOWN: Final = 3
"""The newest failures per partner ``status`` shows, both directions together."""

DESCRIPTION_SHOWN: Final = 200
"""Characters of a failure's description ``status`` keeps."""


async def read_status(
    config: PeerConfig, store: Store, *, running: bool = True
) -> dict[str, dict[str, Any]]:
    """The status of every configured partner, read from ``store``.

    Args:
        running: whether the node runs; when it does not, every session is ``down``
            whatever the store last recorded (a killed node leaves its rows).

    Raises:
        StoreError: the store could not be read.
    """
    stats = await store.stats()
    sessions = await store.sessions() if running else {}
    result: dict[str, dict[str, Any]] = {}
    for partner in config.partners:
        counts = stats.get(partner.name)
        entry: dict[str, Any] = {"session": sessions.get(partner.name, "down")}
        for column in COLUMNS[1:]:
            entry[column] = 0 if counts is None else getattr(counts, column)
        if counts is not None:
            entry["attempts"] = counts.max_attempts
            entry["next_retry"] = counts.next_attempt_at
        entry["running"] = running
        entry["reasons"] = await _reasons(store, partner.name, counts is not None)
        result[partner.name] = entry
    return result


async def _reasons(store: Store, partner: str, any_rows: bool) -> list[dict[str, Any]]:
    """The newest failures of both directions, newest first: ``outbound`` (the partner
    refused our SET, or it ran out of attempts), ``inbound`` (we refused the partner's)."""
    if not any_rows:
        return []
    outbound = await store.failures(partner, limit=REASONS_SHOWN)
    inbound = await store.refusals(partner=partner, limit=REASONS_SHOWN)
    rows = [("outbound", r.jti, r.err, r.description, r.at) for r in outbound] + [
        ("inbound", r.jti, r.err, r.description, r.at) for r in inbound
    ]
    rows.sort(key=lambda row: row[4], reverse=True)
    return [
        {"direction": d, "jti": j, "err": e, "description": text[:DESCRIPTION_SHOWN], "at": at}
        for d, j, e, text, at in rows[:REASONS_SHOWN]
    ]


def status_json(status: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The JSON object scripts rely on: the :data:`COLUMNS` per partner, plus the
    retry view: most attempts of an in-flight SET and the earliest planned retry
    (epoch seconds, null when nothing waits); whether the node runs (``running``)
    and the newest failures of both directions (``reasons``)."""
    return {
        name: {c: e[c] for c in COLUMNS}
        | {"attempts": e.get("attempts") or 0, "next_retry": e.get("next_retry")}
        | {"running": e.get("running", True), "reasons": e.get("reasons", [])}
        for name, e in status.items()
    }
