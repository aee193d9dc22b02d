"""The outbox feed: keeps a partner's Ledger filled from the store, oldest first.

The Ledger holds a bounded window of SETs in memory; the feed tops it up whenever
room frees (acks, failures) or the store may hold more (a publish, another process
enqueuing, a lease period passing). Rows come from the Link's :class:`RowSource`.
A SET this node publishes while it can send may skip the read: its row goes to the
Ledger as it is committed (:meth:`OutboxFeed.reserve`, :meth:`OutboxFeed.enqueued`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from ..config import Limits
from ..errors import StoreError
from ..protocol.effects import Effect
from ..protocol.ledger import Ledger
from ..signal import Signal
from ..store.base import OutboundRow, Store
from .leases import RowSource
from .outcomes import LinkCounters

__all__ = ["OutboxFeed"]

log = logging.getLogger("setpeer.link")


class OutboxFeed:
    """Loads one partner's outbound rows into its Ledger.

    Args:
        name: the partner.
        store: the node's store (for counts after another process enqueued).
        ledger: the partner's Ledger.
        limits: the partner's limits.
        rows: where rows come from (ours alone, or leased).
        counters: the partner's counters (``unfinished`` is resynced from the store).
        apply: takes the Ledger's effects (rows that fail as they load).
        can_send: whether SETs have a way out to the partner now.
        outbound_ready: set when SETs are due.
        timer: set when the Ledger's next deadline may have moved.
    """

    def __init__(
        self,
        *,
        name: str,
        store: Store,
        ledger: Ledger,
        limits: Limits,
        rows: RowSource,
        counters: LinkCounters,
        apply: Callable[[list[Effect]], None],
        can_send: Callable[[], bool],
        outbound_ready: Signal,
        timer: Signal,
    ) -> None:
        self.name = name
        self.rows = rows
        self._store = store
        self._ledger = ledger
        self._max_attempts = limits.max_attempts
        self._counters = counters
        self._apply = apply
        self._can_send = can_send
        self._outbound_ready = outbound_ready
        self._timer = timer
        self._signal = Signal()  # the store may hold SETs the Ledger has not loaded
        self._maybe_more = True
        self._resync = False
        self._reserved = 0  # Ledger room promised to our publishes being committed
        self._reading = False  # a read of the outbox is under way

    # -- what the Link and the lease keeper tell it ---------------------------------

    def can_send(self) -> bool:
        return self._can_send()

    def tracked(self) -> list[str]:
        return self._ledger.tracked()

    def room(self) -> int:
        """Rows the Ledger can take now, less those promised to publishes committing."""
        return self._ledger.room() - self._reserved

    def reserve(self) -> bool:
        """Whether a SET about to be published should be leased to this node in its
        own commit and handed straight to the Ledger (a way out, and room).

        True reserves the room: then call :meth:`enqueued` with the token once the
        SET is committed, or :meth:`abandoned` if the commit failed.
        """
        if not self.rows.leases_own or not self._can_send() or self.room() <= 0:
            return False
        if self.rows.in_order and (self._maybe_more or self._reading):
            return False  # older rows wait in the store: this one must not pass them
        self._reserved += 1
        return True

    def abandoned(self) -> None:
        """A publish :meth:`reserve` reserved for did not commit (or may have: its
        lease then runs out unrenewed, and the row is leased again)."""
        self._reserved -= 1

    def enqueued(self, jti: str, token: str | None) -> None:
        """A SET was committed; ``token`` when it was reserved, and goes to the
        Ledger now, unread."""
        if token is None:
            self.wanted()
            return
        self._reserved -= 1
        if self._ledger.enqueue(jti, token, now=time.time()):
            self._outbound_ready.set()  # due now: no deadline for the clock

    def wanted(self) -> None:
        """Look in the store for rows (a publish, a way out opened, a lease period)."""
        self._maybe_more = True
        self._signal.set()

    def wake(self) -> None:
        """Room may have freed in the Ledger."""
        self._signal.set()

    def store_changed(self) -> None:
        """Another process may have enqueued for this partner (``setpeer send``)."""
        self._resync = True
        self.wanted()

    def released(self) -> None:
        """Our leases were given up: forget the rows, another node sends them."""
        self._ledger.drop_outbound()
        self._timer.set()

    # -- the loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the Ledger's bounded buffer filled from the outbox, until cancelled."""
        while True:
            woken = self._signal.snapshot()
            if self._resync:
                await self._resync_count()
            room = self.room()
            if room > 0 and self._maybe_more and self.rows.may_load(self._can_send()):
                # Cleared before the read: an ``enqueued()`` while it runs sets it
                # again, so a row committed just after the read is never stranded.
                self._maybe_more = False
                self._reading = True
                try:
                    rows = await self.rows.load(room)
                except StoreError as exc:
                    # The store is unreachable (a database restart): try again soon;
                    # what is in the outbox stays there.
                    log.warning("partner=%s cannot read the outbox: %s", self.name, exc)
                    self._maybe_more = True
                    await anyio.sleep(0.5)
                    continue
                finally:
                    self._reading = False
                self._track(rows)
                if len(rows) >= room:
                    self._maybe_more = True  # the buffer filled: there may be more
                if self._maybe_more:
                    continue
            await woken.wait()

    async def _resync_count(self) -> None:
        """Another process enqueued: the store's count is the truth."""
        self._resync = False
        try:
            counts = (await self._store.stats()).get(self.name)
        except StoreError:
            self._resync = True  # again on the next round
            return
        if counts is not None:
            self._counters.unfinished = counts.pending + counts.inflight

    def _track(self, rows: list[OutboundRow]) -> None:
        """Give outbox rows to the Ledger (it skips jtis it holds or finished)."""
        now = time.time()
        added = False
        for row in rows:
            # A row with its attempts used up keeps its last deadline (a late ack may
            # still come); the others go out again at once.
            spent = row.attempts >= self._max_attempts
            added |= self._ledger.enqueue(
                row.jti,
                row.token,
                now=now,
                attempts=row.attempts,
                not_before=row.next_attempt_at if spent else None,
            )
        self._apply(self._ledger.effects())  # rows failed as they came (too large)
        if added:
            self._outbound_ready.set()
            self._timer.set()
