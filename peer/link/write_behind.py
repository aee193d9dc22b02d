"""Bookkeeping written behind the hot path, many decisions per transaction.

Attempts, acks and errors received, answers paid: none of them is a promise to
anyone, so the sender does not wait for them. A crash loses at most the last few
milliseconds of it, and the cost is benign: an acked SET is sent again and
deduplicated by the partner, an attempt goes uncounted. What is a promise — the
outbox row behind ``publish``, the inbox row behind an ack — is written durably
before anyone is told (``Store.enqueue``, ``Store.accept_inbound``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import anyio

from ..errors import StoreError
from ..protocol.effects import Acked, Effect, Failed, Sent
from ..signal import Signal
from ..store.base import Store
from .outcomes import Observer

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
    """

    def __init__(
        self,
        name: str,
        store: Store,
        session_state: Callable[[], str],
        observer: Observer | None = None,
    ) -> None:
        self._name = name
        self._store = store
        self._session_state = session_state
        self._observer = observer
        self._writes: list[Effect] = []  # decisions not yet in the store
        # Attempts not written yet, by jti, oldest first, with when they were made.
        self._held: dict[str, tuple[Sent, float]] = {}
        self._writing = False
        self._signal = Signal()
        self._synced = Signal()

    def record(self, effects: list[Effect]) -> None:
        """Queue the Ledger's decisions for the next write."""
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

    def state_changed(self) -> None:
        """The session state may have changed: write it soon."""
        self._signal.set()

    async def run(self) -> None:
        """Write until cancelled; a failed write is retried, never dropped."""
        stored_state = ""
        while True:
            woken = self._signal.snapshot()
            state = self._session_state()
            if state != stored_state:
                try:
                    await self._store.set_session(self._name, state)
                    stored_state = state
                except StoreError as exc:
                    log.warning("partner=%s cannot record session state: %s", self._name, exc)
            self._release_held(time.monotonic() - HOLD_SENT)
            if not self._writes:
                if not self._held:
                    await woken.wait()
                else:
                    oldest = next(iter(self._held.values()))[1]
                    with anyio.move_on_after(oldest + HOLD_SENT - time.monotonic()):
                        await woken.wait()
                continue
            batch, self._writes = self._writes, []
            self._writing = True
            try:
                started = time.monotonic()
                await self._store.apply(self._name, batch)
                if self._observer is not None:
                    self._observer.store_time("apply", time.monotonic() - started)
            except StoreError as exc:
                log.warning("partner=%s store write failed, retrying: %s", self._name, exc)
                self._writes[:0] = batch
                await anyio.sleep(0.1)
            finally:
                self._writing = False
                self._synced.set()

    def _release_held(self, before: float) -> None:
        """Attempts made before ``before`` (monotonic) go to the next write."""
        while self._held:
            jti, (sent, at) = next(iter(self._held.items()))
            if at > before:
                return
            del self._held[jti]
            self._writes.append(sent)

    async def sync(self) -> None:
        """Wait until every decision so far is in the store (needs :meth:`run`)."""
        self._release_held(math.inf)
        self._signal.set()
        while self._writes or self._writing:
            await self._synced.wait()
