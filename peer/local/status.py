"""The node's status per partner, read from the store: what ``setpeer status --json``
prints and ``GET /v1/status`` answers (one rule for both)."""

from __future__ import annotations

from typing import Any

from ..config import PeerConfig
from ..store.base import Store

__all__ = ["COLUMNS", "read_status", "status_json"]

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


async def read_status(config: PeerConfig, store: Store) -> dict[str, dict[str, Any]]:
    """The status of every configured partner, read from ``store``.

    Raises:
        StoreError: the store could not be read.
    """
    stats = await store.stats()
    sessions = await store.sessions()
    result: dict[str, dict[str, Any]] = {}
    for partner in config.partners:
        counts = stats.get(partner.name)
        entry: dict[str, Any] = {"session": sessions.get(partner.name, "down")}
        for column in COLUMNS[1:]:
            entry[column] = 0 if counts is None else getattr(counts, column)
        if counts is not None:
            entry["attempts"] = counts.max_attempts
            entry["next_retry"] = counts.next_attempt_at
        result[partner.name] = entry
    return result


def status_json(status: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The JSON object scripts rely on: the :data:`COLUMNS` per partner, plus the
    retry view: most attempts of an in-flight SET and the earliest planned retry
    (epoch seconds, null when nothing waits)."""
    return {
        name: {c: e[c] for c in COLUMNS}
        | {"attempts": e.get("attempts") or 0, "next_retry": e.get("next_retry")}
        for name, e in status.items()
    }
