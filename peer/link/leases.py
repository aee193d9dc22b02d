"""Where a Link's outbound rows come from: the store is ours alone, or shared by nodes.

Chosen once, when the Link is built (:func:`row_source`):

- :class:`LocalRows`: SQLite or memory, one node. Every unfinished row is ours to
  send; the feed reads them in ``seq`` order behind a cursor, and what this node
  publishes goes to the Ledger as it commits, unread, while there is room.
- :class:`LeasedRows`: several nodes on one PostgreSQL database. Every node runs its
  own sessions and sends the rows it leased (``lease_outbound``, oldest unleased
  first, whatever their ``seq``: a shared store hands out seqs before commit, so no
  cursor is safe). A node leases only while it has a way out to the partner, leases
  what it publishes in the commit itself (``enqueue_leased``), renews every third of
  its lease TTL (``lease_ttl`` in ``[peer.limits]``, :data:`LEASE_TTL` by default) the
  leases of the rows it holds, and gives them up when it has had no way out for two
  periods; a node that dies stops renewing, and the others take its rows over once
  the leases expire (within the TTL plus a second).
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from ..errors import StoreError
from ..store.base import OutboundNew, OutboundRow, SharedStore, Store

__all__ = ["LEASE_TTL", "TAKEOVER_POLL", "FeedControl", "LeasedRows", "LocalRows", "RowSource"]

log = logging.getLogger("setpeer.link")

LEASE_TTL = 10.0
"""Seconds a node's lease on outbox rows lasts unless renewed (every third of it):
with several nodes on one store, about the longest a dead node's SETs wait. The
default of ``lease_ttl`` (``Limits``); a node takes its partner's value."""

TAKEOVER_POLL = 1.0
"""Seconds between looks for rows whose node died (their leases expired)."""


class FeedControl(Protocol):
    """What the lease keeper asks of the outbox feed it serves."""

    def can_send(self) -> bool: ...

    def wanted(self) -> None: ...

    def released(self) -> None: ...

    def tracked(self) -> list[str]: ...


class RowSource(Protocol):
    """How a Link loads, enqueues and holds its outbound rows."""

    held: bool
    """Rows leased to this node may sit in the Ledger."""

    @property
    def in_order(self) -> bool:
        """Rows go out in outbox order: a SET this node publishes goes to the Ledger
        unread only while no older row waits in the store."""
        ...

    @property
    def leases_own(self) -> bool:
        """A SET this node publishes may go to the Ledger as it commits, unread (on a
        shared store, leased to this node in that commit)."""
        ...

    def may_load(self, can_send: bool) -> bool:
        """Whether rows may be loaded now."""
        ...

    async def load(self, limit: int) -> list[OutboundRow]:
        """The next rows to send, at most ``limit``."""
        ...

    async def enqueue(self, item: OutboundNew, *, leased: bool) -> None:
        """Commit one SET to the outbox (leased to this node when ``leased``)."""
        ...

    async def keep(self, feed: FeedControl) -> None:
        """Hold this node's leases while the node runs (until cancelled)."""
        ...

    async def release(self) -> None:
        """Give up this node's leases (graceful shutdown)."""
        ...


class LocalRows:
    """The store is this node's alone: every unfinished row is ours, read in order.

    A SET this node publishes goes to the Ledger as it commits (no read back: a store
    read less per publish, and ~1 ms less latency) while there is room and no older
    row waits in the store, so SETs still go out in outbox order; the cursor then
    lags behind it, and the next read passes over the rows the Ledger holds or
    finished.
    """

    held = False
    leases_own = True
    in_order = True

    def __init__(self, store: Store, partner: str) -> None:
        self._store = store
        self._partner = partner
        self._loaded_seq = 0

    def may_load(self, can_send: bool) -> bool:
        return True

    async def load(self, limit: int) -> list[OutboundRow]:
        rows = await self._store.load_outbound(
            self._partner, limit=limit, after_seq=self._loaded_seq
        )
        if rows:
            self._loaded_seq = max(self._loaded_seq, rows[-1].seq)
        return rows

    async def enqueue(self, item: OutboundNew, *, leased: bool) -> None:
        await self._store.enqueue([item])

    async def keep(self, feed: FeedControl) -> None:
        return

    async def release(self) -> None:
        return


class LeasedRows:
    """Several nodes share the store: this node sends the rows leased to ``owner``.

    Args:
        store: the shared store.
        partner: whose outbox rows.
        owner: names this node's leases.
        ttl: seconds a lease lasts unless renewed (renewed every third of it).
    """

    leases_own = True
    in_order = False  # rows are leased oldest first, but nodes send side by side

    def __init__(
        self, store: SharedStore, partner: str, owner: str, ttl: float = LEASE_TTL
    ) -> None:
        self._store = store
        self._partner = partner
        self._owner = owner
        self._ttl = ttl
        self.held = False

    def may_load(self, can_send: bool) -> bool:
        return can_send

    async def load(self, limit: int) -> list[OutboundRow]:
        rows = await self._store.lease_outbound(
            self._partner, self._owner, limit=limit, ttl=self._ttl
        )
        self.held |= bool(rows)
        return rows

    async def enqueue(self, item: OutboundNew, *, leased: bool) -> None:
        if leased:
            await self._store.enqueue_leased([item], self._owner, self._ttl)
            self.held = True
        else:
            await self._store.enqueue([item])

    async def keep(self, feed: FeedControl) -> None:
        unreachable = 0
        renewed = anyio.current_time()
        while True:
            # Each second, look for rows whose node died (their leases expired).
            await anyio.sleep(TAKEOVER_POLL)
            if feed.can_send():
                feed.wanted()
            if anyio.current_time() - renewed < self._ttl / 3:
                continue
            renewed = anyio.current_time()
            try:
                if feed.can_send():
                    unreachable = 0
                    # Only the rows in memory: a lease on a row we do not hold (a
                    # publish that failed after its commit) runs out and is retaken.
                    await self._store.renew_outbound(
                        self._partner, self._owner, self._ttl, jtis=feed.tracked()
                    )
                elif self.held:
                    unreachable += 1
                    if unreachable >= 2:
                        log.info("partner=%s unreachable: its leased SETs released", self._partner)
                        await self._store.release_outbound(self._partner, self._owner)
                        self.held = False
                        feed.released()
            except StoreError as exc:
                log.warning("partner=%s cannot renew its outbox leases: %s", self._partner, exc)

    async def release(self) -> None:
        await self._store.release_outbound(self._partner, self._owner)
