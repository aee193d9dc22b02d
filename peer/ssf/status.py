"""The ``stream`` entry of ``setpeer status``: our stream at each SSF transmitter partner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..config import PeerConfig
from ..store.base import Store, StreamRow

__all__ = ["ROLE", "stream_entry", "stream_status"]

ROLE: Final = "receiver"
"""The store's role for our streams at a transmitter."""
_SHOWN: Final = ("state", "requested_at", "received_at")


def stream_entry(row: StreamRow | None) -> dict[str, Any]:
    """``{stream_id, status, reason, verification}`` of a kept stream (all null when
    none is kept); the verification shows its state and times, never the state
    value we sent."""
    if row is None:
        return {"stream_id": None, "status": None, "reason": None, "verification": None}
    verification: Mapping[str, Any] | None = row.verification
    return {
        "stream_id": row.stream_id,
        "status": row.status,
        "reason": row.reason,
        "verification": None
        if verification is None
        else {key: verification.get(key) for key in _SHOWN},
    }


async def stream_status(config: PeerConfig, store: Store) -> dict[str, dict[str, Any]]:
    """The ``stream`` entry of every partner with ``ssf = "transmitter"``, by name.

    Raises:
        StoreError: the store could not be read.
    """
    wanted = [p.name for p in config.partners if p.ssf == "transmitter"]
    if not wanted:
        return {}
    rows = {row.partner: row for row in await store.streams(role=ROLE)}
    return {name: stream_entry(rows.get(name)) for name in wanted}
