"""The node's heartbeat in the store, and the rule that reads it: whether a node runs.

A running node rewrites its row of the store's ``nodes`` table every :data:`INTERVAL`
seconds and deletes it when it stops. ``setpeer status``, when no node answers on the
local interface, takes a node for running only if its last beat is younger than
:data:`STALE` seconds and, when it ran on this host, its process still exists: a node
killed with SIGKILL is seen gone at once on its own host, within :data:`STALE`
seconds elsewhere. Session rows are never read as "running" by themselves: a killed
node leaves them as they were.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Final, TypedDict

import anyio

from ..errors import StoreError
from ..store.base import NodeRow, Store

__all__ = [
    "INTERVAL",
    "STALE",
    "Heartbeat",
    "NodeView",
    "beat_forever",
    "node_view",
    "this_node",
]

log = logging.getLogger("setpeer.node")

INTERVAL: Final = 2.0
"""Seconds between two beats of a running node."""

STALE: Final = 10.0
"""Seconds without a beat after which a node is taken for gone (several missed beats:
a slow disk or a busy database delays one, not five)."""


class NodeView(TypedDict):
    """What the heartbeats say: ``running``, the live nodes (``owner``, ``host``,
    ``pid``, ``started_at``, ``beat_at``), and the newest beat of any node (None:
    no node has beaten on this store)."""

    running: bool
    nodes: list[dict[str, object]]
    last_beat: float | None


def this_node(owner: str, started_at: float, now: float | None = None) -> NodeRow:
    """The row this process beats with."""
    beat = time.time() if now is None else now
    return NodeRow(owner, socket.gethostname(), os.getpid(), started_at, beat)


class Heartbeat:
    """The beats' outcome, a write through the store's writer every :data:`INTERVAL`
    seconds: ``ok`` (the last one committed) and ``failures`` (beats that did not),
    read by ``/metrics`` as ``setpeer_store_up`` and ``setpeer_store_errors_total``.
    A change is logged once: a warning with the store's words, then an info line."""

    def __init__(self, store: Store, owner: str, started_at: float) -> None:
        self.store = store
        self.owner = owner
        self.started_at = started_at
        self.ok = True
        self.failures = 0

    async def beat(self) -> None:
        """One beat; a StoreError is counted and logged on the change, not raised."""
        try:
            await self.store.beat(this_node(self.owner, self.started_at))
        except StoreError as exc:
            self.failures += 1
            if self.ok:
                log.warning(
                    "store write failed: %s", exc, extra={"err": "store_error", "owner": self.owner}
                )
            self.ok = False
            return
        if not self.ok:
            log.info("store writes commit again", extra={"owner": self.owner})
        self.ok = True


async def beat_forever(heartbeat: Heartbeat) -> None:
    """Beat every :data:`INTERVAL` seconds until cancelled; a store that is away
    skips beats (counted, logged once), it does not stop them."""
    while True:
        await anyio.sleep(INTERVAL)
        await heartbeat.beat()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a pid we cannot test: trust the beat
    except OSError:
        return True
    return True


def _alive(node: NodeRow, now: float, host: str) -> bool:
    if now - node.beat_at > STALE:
        return False
    return node.host != host or _process_exists(node.pid)


def node_view(rows: Sequence[NodeRow], now: float | None = None) -> NodeView:
    """Whether a node runs, from the heartbeat rows (see the module)."""
    at = time.time() if now is None else now
    host = socket.gethostname()
    live = [
        {"owner": r.owner, "host": r.host, "pid": r.pid}
        | {"started_at": r.started_at, "beat_at": r.beat_at}
        for r in rows
        if _alive(r, at, host)
    ]
    last = max((r.beat_at for r in rows), default=None)
    return {"running": bool(live), "nodes": live, "last_beat": last}
