"""Bookkeeping written behind the hot path, many decisions per transaction.

Attempts, acks and errors received, answers paid, the partner's SETs we refused:
none of them is a promise to anyone, so the sender does not wait for them. A crash
loses at most the last few milliseconds of it, and the cost is benign: an acked SET
is sent again and deduplicated by the partner, an attempt or a refusal goes
unrecorded. What is a promise — the outbox row behind ``publish``, the inbox row
behind an ack — is written durably before anyone is told (``Store.enqueue``,
``Store.accept_inbound``).

Refusals wait in a buffer of ``keep`` (the partner's ``failures_kept``): the store's
ring keeps no more, so while the store is slow or away a flood of junk costs this
buffer and a count, and the next write takes them all in one transaction, beside the
Ledger's decisions (one group commit). A store that was closed takes nothing more:
what is left is dropped (logged), not retried.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable

import anyio

from ..errors import StoreError
from ..protocol.effects import Acked, Effect, Failed, Sent
from ..signal import Signal
from ..store.base import InvalidValue, RefusalNew, Store, StoreClosed
from ..store.checks import refusal_plan
from .outcomes import Failure, Observer

__all__ = ["HOLD_SENT", "WriteBehind"]

log = logging.getLogger("setpeer.link")

HOLD_SENT = 1.0
"""Seconds an attempt (Sent) waits before it is written: most SETs are acked sooner,
and an acked row is then written once (acked) instead of twice. ``setpeer status``
sees an attempt this much later; a crash may leave it uncounted."""


class WriteBehind:
    """One partner's decisions on their way to the store, and its session state.

    Args:
        name: the partner.
        store: the node's store.
        session_state: the partner's session state now (written when it changes).
        observer: told how long each write took.
        keep: refusals the partner's ring keeps (``failures_kept``).
    """

    def __init__(
        self,
        name: str,
        store: Store,
        session_state: Callable[[], str],
        observer: Observer | None = None,
        keep: int = 1000,
    ) -> None:
        self._name = name
        self._store = store
        self._session_state = session_state
        self._observer = observer
        self._keep = keep
        self._writes: list[Effect] = []  # decisions not yet in the store
        self._refusals: collections.deque[RefusalNew] = collections.deque()
        self._dropped = 0  # refusals that went out of the buffer unwritten
        # Attempts not written yet, by jti, oldest first, with when they were made.
        self._held: dict[str, tuple[Sent, float]] = {}
        self._writing = False
        self._failed = False  # a write of the last round failed: pause before the next
        self._closed = False  # the store was closed: nothing more can be written
        self._signal = Signal()
        self._synced = Signal()

    def record(self, effects: list[Effect]) -> None:
        """Queue the Ledger's decisions for the next write."""
        if self._closed:
            return
        now = time.monotonic()
        for effect in effects:
            if isinstance(effect, Sent):
                # A retry replaces the attempt held but keeps its time and place: the
                # count reaches the store a second after the first unwritten attempt,
                # however often the SET is retried (the dict stays in time order).
                held = self._held.get(effect.jti)
                self._held[effect.jti] = (effect, now if held is None else held[1])
                continue
            if isinstance(effect, Acked):
                self._held.pop(effect.jti, None)  # finished: its attempts are moot
            elif isinstance(effect, Failed) and effect.jti in self._held:
                self._writes.append(self._held.pop(effect.jti)[0])  # failures show attempts
            self._writes.append(effect)
        self._signal.set()

    def refused(self, failure: Failure) -> None:
        """Queue a refused inbound SET for the store's ring."""
        if self._closed:
            return
        if len(self._refusals) >= self._keep:
            self._refusals.popleft()
            self._dropped += 1
        self._refusals.append(
            RefusalNew(self._name, failure.jti, failure.err, failure.description, failure.at)
        )
        self._signal.set()

    def state_changed(self) -> None:
        """The session state may have changed: write it soon."""
        self._signal.set()

    async def run(self) -> None:
        """Write until cancelled; a failed write is retried, never dropped."""
        stored_state = ""
        while not self._closed:
            woken = self._signal.snapshot()
            state = self._session_state()
            if state != stored_state:
                try:
                    await self._store.set_session(self._name, state)
                    stored_state = state
                except StoreClosed:
                    self._closed = True
                    break
                except StoreError as exc:
                    log.warning("partner=%s cannot record session state: %s", self._name, exc)
            self._release_held(time.monotonic() - HOLD_SENT)
            if not self._writes and not self._refusals:
                if not self._held:
                    await woken.wait()
                else:
                    oldest = next(iter(self._held.values()))[1]
                    with anyio.move_on_after(oldest + HOLD_SENT - time.monotonic()):
                        await woken.wait()
                continue
            self._writing = True
            try:
                # Both in one event-loop turn: the store commits them together.
                async with anyio.create_task_group() as tg:
                    if self._writes:
                        batch, self._writes = self._writes, []
                        tg.start_soon(self._write_effects, batch)
                    if self._refusals:
                        refusals, dropped = list(self._refusals), self._dropped
                        self._refusals.clear()
                        self._dropped = 0
                        tg.start_soon(self._write_refusals, refusals, dropped)
                failed = self._failed
                self._failed = False
            finally:
                self._writing = False
                self._synced.set()
            if failed and not self._closed:
                await anyio.sleep(0.1)
        unwritten = len(self._writes) + len(self._refusals) + len(self._held)
        if unwritten:
            log.warning("partner=%s store closed: not written: %d", self._name, unwritten)
        self._writes, self._held = [], {}
        self._refusals.clear()
        self._synced.set()

    async def _guarded(self, what: str, write: Awaitable[None]) -> bool:
        """Await ``write``; False (logged) if the store refused it."""
        try:
            started = time.monotonic()
            await write
            if self._observer is not None:
                self._observer.store_time(what, time.monotonic() - started)
            return True
        except StoreClosed:
            self._closed = True  # for good: retrying cannot help
            return False
        except StoreError as exc:
            log.warning("partner=%s store write failed, retrying: %s", self._name, exc)
            self._failed = True
            return False

    async def _write_effects(self, batch: list[Effect]) -> None:
        if not await self._guarded("apply", self._store.apply(self._name, batch)):
            self._writes[:0] = batch

    async def _write_refusals(self, refusals: list[RefusalNew], dropped: int) -> None:
        try:
            # Checked before anything is written: a value no store can hold (never
            # expected: frames with lone surrogates are refused when parsed) is
            # dropped, not retried for ever.
            refusal_plan(refusals, self._keep, None)
        except InvalidValue as exc:
            log.warning("partner=%s cannot record refusals: %s", self._name, exc)
            return
        write = self._store.record_refusals(
            refusals, self._keep, dropped={self._name: dropped} if dropped else None
        )
        if not await self._guarded("record_refusals", write):
            # Back in front of the ones that came meanwhile, within the bound.
            merged = refusals + list(self._refusals)
            over = max(0, len(merged) - self._keep)
            self._dropped += dropped + over
            self._refusals = collections.deque(merged[over:])

    def _release_held(self, before: float) -> None:
        """Attempts made before ``before`` (monotonic) go to the next write."""
        while self._held:
            jti, (sent, at) = next(iter(self._held.items()))
            if at > before:
                return
            del self._held[jti]
            self._writes.append(sent)

    async def sync(self) -> None:
        """Wait until every decision so far is in the store (needs :meth:`run`), or
        the store was closed."""
        self._release_held(math.inf)
        self._signal.set()
        while (self._writes or self._refusals or self._writing) and not self._closed:
            await self._synced.wait()
