"""Ledger: one partner's delivery state, as a sans-I/O state machine.

Outbound, a SET is *queued* (due to be sent now or at a retry time), *in flight*
(sent, waiting for its answer until a deadline) or *finished* (acked or failed,
and then forgotten — apart from a bounded memory of recent jtis). Inbound, the
Ledger keeps the *debt*: the acks and setErrs we owe the partner.

Feed it facts (``enqueue``, ``frame_received``, ``owe``, ``tick``, ``session_lost``)
with the time as an argument; ask it what to do (``next_frame``, ``next_deadline``);
take its decisions for the store with ``effects()``. It never sleeps or reads a clock.

Rules (spec items):
- FIFO among due SETs, at most ``window`` in flight (local flow control; PP pitfall 7)
  and at most ``max_sets`` per frame (the peer's ``maxResponseEvents``, PP-9).
- An ack or setErr ends a SET for good: it is never sent again (PP-25, MP-9). Late
  and out-of-order answers count as long as the SET is still tracked; answers for
  jtis we do not track are ignored (MP-5). A jti in both ``ack`` and ``setErrs`` of
  one object is an error report (decision).
- No answer by the deadline: retry after a jittered backoff, until ``max_attempts``
  sends; then ``Failed(jti, "delivery_exhausted")`` (PP-21, MP-21).
- Every inbound SET is answered (PP-23, MP-7): ``owe`` records it, ``next_frame``
  hands it out, ``answers_delivered``/``answers_lost`` settle or restore the debt.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Mapping

from .communication import CommunicationObject, SetErr
from .effects import Acked, AcksSent, Effect, Failed, Sent
from .retry import RetryPolicy

__all__ = ["EXHAUSTED", "Ledger"]

EXHAUSTED = "delivery_exhausted"
_FINISHED_MEMORY = 100_000  # recent finished jtis remembered to refuse re-enqueueing


class _Item:
    __slots__ = ("attempts", "due", "jti", "token", "version")

    def __init__(self, jti: str, token: str, attempts: int, due: float) -> None:
        self.jti = jti
        self.token = token
        self.attempts = attempts
        self.due = due  # queued: earliest send time; in flight: answer deadline
        self.version = 0  # bumps on each state change; stale heap entries are skipped


class Ledger:
    """Delivery state for one partner.

    Args:
        window: most SETs in flight at once.
        retry: backoff between attempts of one SET.
        max_attempts: sends before a SET fails with ``delivery_exhausted``.
        ack_timeout: how long a sent SET waits for its answer.
        rng: randomness for jitter (seed it in tests).
        buffer: most SETs held at once (queued + in flight); the rest stay in the store.
    """

    def __init__(
        self,
        *,
        window: int,
        retry: RetryPolicy,
        max_attempts: int,
        ack_timeout: float,
        rng: random.Random | None = None,
        buffer: int | None = None,
    ) -> None:
        if window < 1 or max_attempts < 1 or ack_timeout <= 0:
            raise ValueError("window and max_attempts must be >= 1, ack_timeout > 0")
        self.window = window
        self.retry = retry
        self.max_attempts = max_attempts
        self.ack_timeout = ack_timeout
        self.buffer = buffer if buffer is not None else 4 * window
        self._rng = rng or random.Random()
        self._items: dict[str, _Item] = {}
        self._ready: OrderedDict[str, None] = OrderedDict()  # queued and due, FIFO
        self._later: list[tuple[float, int, str]] = []  # queued, due later (heap)
        self._flight: dict[str, None] = {}
        self._deadlines: list[tuple[float, int, str]] = []  # in flight (heap)
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._owed: dict[str, SetErr | None] = {}
        self._owed_sending: dict[str, SetErr | None] = {}
        self._effects: list[Effect] = []

    # -- counters ------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        """SETs sent and not yet answered."""
        return len(self._flight)

    @property
    def waiting(self) -> int:
        """SETs held but not in flight (due now or waiting for a retry)."""
        return len(self._items) - len(self._flight)

    @property
    def owed(self) -> int:
        """Answers we owe the partner, including those in a frame not yet confirmed."""
        return len(self._owed) + len(self._owed_sending)

    def tracks(self, jti: str) -> bool:
        """True while ``jti`` is queued or in flight."""
        return jti in self._items

    # -- outbound ------------------------------------------------------------------

    def room(self) -> int:
        """How many more SETs the Link may load from the store."""
        return max(0, self.buffer - len(self._items))

    def enqueue(
        self,
        jti: str,
        token: str,
        *,
        now: float,
        attempts: int = 0,
        not_before: float | None = None,
    ) -> bool:
        """Track an outbound SET (new, or reloaded after a restart with its attempts).

        Returns:
            False if ``jti`` is already tracked or recently finished (never resent).
        """
        if jti in self._items or jti in self._finished:
            return False
        if attempts >= self.max_attempts:
            # Reloaded with its attempts used up: it gets its last deadline now.
            item = _Item(jti, token, attempts, now)
            self._items[jti] = item
            self._fly(item, deadline=now)
            return True
        item = _Item(jti, token, attempts, now if not_before is None else not_before)
        self._items[jti] = item
        self._queue(item)
        return True

    def _queue(self, item: _Item) -> None:
        item.version += 1
        self._flight.pop(item.jti, None)
        heapq.heappush(self._later, (item.due, item.version, item.jti))

    def _fly(self, item: _Item, *, deadline: float) -> None:
        item.version += 1
        item.due = deadline
        self._ready.pop(item.jti, None)
        self._flight[item.jti] = None
        heapq.heappush(self._deadlines, (deadline, item.version, item.jti))

    def _promote(self, now: float) -> None:
        """Move queued SETs whose time has come to the FIFO of due SETs."""
        later = self._later
        while later and later[0][0] <= now:
            _, version, jti = heapq.heappop(later)
            item = self._items.get(jti)
            if item is not None and item.version == version and jti not in self._flight:
                self._ready[jti] = None

    def take_sets(self, *, now: float, limit: int) -> dict[str, str]:
        """Due SETs to send now, oldest first, within the window and ``limit``.

        Each becomes in flight with a deadline ``now + ack_timeout``; a ``Sent``
        effect records the attempt.
        """
        self.tick(now=now)
        count = min(limit, self.window - len(self._flight), len(self._ready))
        sets: dict[str, str] = {}
        for _ in range(max(0, count)):
            jti, _ = self._ready.popitem(last=False)
            item = self._items[jti]
            item.attempts += 1
            self._fly(item, deadline=now + self.ack_timeout)
            sets[jti] = item.token
            self._effects.append(Sent(jti, item.attempts, now + self.ack_timeout))
        return sets

    def _finish(self, jti: str) -> _Item | None:
        item = self._items.pop(jti, None)
        if item is None:
            return None
        item.version += 1  # invalidates heap entries
        self._flight.pop(jti, None)
        self._ready.pop(jti, None)
        self._finished[jti] = None
        if len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)
        return item

    def ack_received(self, jtis: list[str] | tuple[str, ...]) -> None:
        """The partner accepted these SETs (PP-5); unknown jtis are ignored (MP-5)."""
        for jti in jtis:
            if self._finish(jti) is not None:
                self._effects.append(Acked(jti))

    def errs_received(self, errs: Mapping[str, SetErr]) -> None:
        """The partner refused these SETs (PP-6): failed with its code, verbatim."""
        for jti, err in errs.items():
            if self._finish(jti) is not None:
                self._effects.append(Failed(jti, err.err, err.description))

    def frame_received(self, frame: CommunicationObject, *, now: float) -> None:
        """Apply the ``ack`` and ``setErrs`` of an object from the partner.

        A jti in both is treated as an error report: errors are applied first.
        """
        self.errs_received(frame.set_errs)
        self.ack_received(tuple(frame.ack))

    def tick(self, *, now: float) -> None:
        """Expire in-flight SETs past their deadline: retry later, or fail exhausted."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, version, jti = heapq.heappop(deadlines)
            item = self._items.get(jti)
            if item is None or item.version != version:
                continue
            if item.attempts >= self.max_attempts:
                self._finish(jti)
                self._effects.append(
                    Failed(jti, EXHAUSTED, f"no answer after {item.attempts} attempts")
                )
                continue
            item.due = now + self.retry.delay(item.attempts, self._rng)
            self._queue(item)
        self._promote(now)

    def session_lost(self, *, now: float) -> None:
        """Answers to in-flight SETs may never come: make them due again now.

        Attempts are kept, so a flapping session still reaches the cap.
        """
        for jti in list(self._flight):
            item = self._items[jti]
            if item.attempts >= self.max_attempts:
                continue  # its deadline stands: one last chance for a late answer
            item.due = now
            self._queue(item)
        self._promote(now)

    def next_deadline(self) -> float | None:
        """The earliest time the Link must call ``tick``: a deadline or a retry."""
        candidates = []
        for heap in (self._deadlines, self._later):
            while heap:
                due, version, jti = heap[0]
                item = self._items.get(jti)
                if item is not None and item.version == version:
                    candidates.append(due)
                    break
                heapq.heappop(heap)
        return min(candidates) if candidates else None

    # -- inbound debt --------------------------------------------------------------

    def owe(self, jti: str, error: SetErr | None) -> None:
        """We owe the partner an answer for ``jti``: an ack (None) or a setErr."""
        self._owed[jti] = error

    def take_answers(self, limit: int | None = None) -> tuple[list[str], dict[str, SetErr]]:
        """Owed answers for the next frame; they stay owed until delivered or lost."""
        ack: list[str] = []
        errs: dict[str, SetErr] = {}
        for jti in list(self._owed)[:limit]:
            error = self._owed.pop(jti)
            self._owed_sending[jti] = error
            if error is None:
                ack.append(jti)
            else:
                errs[jti] = error
        return ack, errs

    def answers_delivered(self) -> None:
        """The frame with the answers taken went out: the debt is paid."""
        if self._owed_sending:
            self._effects.append(AcksSent(tuple(self._owed_sending)))
            self._owed_sending.clear()

    def answers_lost(self) -> None:
        """The frame with the answers taken may not have arrived: owe them again."""
        for jti, error in self._owed_sending.items():
            self._owed.setdefault(jti, error)
        self._owed_sending.clear()

    # -- output --------------------------------------------------------------------

    def next_frame(self, *, now: float, max_sets: int) -> CommunicationObject | None:
        """SETs due and answers owed as one object, or None if there is nothing to say."""
        sets = self.take_sets(now=now, limit=max_sets) if max_sets > 0 else {}
        ack, errs = self.take_answers()
        if not sets and not ack and not errs:
            return None
        return CommunicationObject(sets=sets, ack=ack, set_errs=errs)

    def effects(self) -> list[Effect]:
        """Decisions to persist, in order; the list is cleared."""
        effects, self._effects = self._effects, []
        return effects
