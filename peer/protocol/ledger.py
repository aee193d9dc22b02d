"""Ledger: one partner's delivery state, as a sans-I/O state machine.

Outbound, a tracked SET is waiting, due, in flight or closing until an answer or
its last deadline finishes it; ``setstate`` lists the states and the only moves
between them. Inbound, the Ledger keeps the debt (``answers``): the answers we owe
the partner. Feed it facts with the time as an argument, ask ``next_frame``/``next_deadline``,
and take its decisions for the store with ``effects()``. It never reads a clock.

- Oldest first among due SETs (POLL-8); at most ``window`` in flight; at most
  ``max_sets`` per frame (the peer's ``maxResponseEvents``, PP-9).
- An ack or setErr ends a SET for good (PP-25, MP-9). Late and out-of-order answers
  count, on any session (PP-14, PP-22); answers for untracked jtis are ignored
  (MP-5). A jti in both ``ack`` and ``setErrs`` is an error report (decision: an ack
  cannot take back a reported failure).
- No answer by the deadline: retry after a jittered backoff until ``max_attempts``
  sends, earlier runs included; after the last deadline, ``Failed(jti,
  "delivery_exhausted")`` (PP-21, PP-24, MP-8, MP-21, POLL-16). A lost frame or
  session makes its SETs due again at once, attempts kept (PP-30).
- Every receipt of an inbound SET is answered after it (PP-23, MP-7, POLL-15).

O(log n) per SET: heaps with lazy deletion (``schedule``), compacted when stale
entries dominate. Frames are filled within a byte budget (``framebytes``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from .answers import Debt, answered
from .communication import CommunicationObject, SetErr
from .effects import Acked, Effect, Failed, Sent
from .finished import FINISHED_MEMORY, Finished
from .framebytes import ENVELOPE_BYTES, answers_bytes, member_bytes
from .retry import RetryPolicy
from .schedule import Queue
from .setstate import MOVES, ImpossibleTransition, SetState, TrackedSet
from .vocabulary import SessionId

__all__ = ["DEFAULT_MAX_ANSWERS", "ENVELOPE_BYTES", "EXHAUSTED", "FINISHED_MEMORY", "Ledger"]

EXHAUSTED = "delivery_exhausted"
# Answers per frame unless the caller says otherwise: 1,000 typical jtis are ~40 KiB,
# far inside a partner's frame and ack-count limits (FrameLimits: 1 MiB, 10,000), so
# a backlog of owed answers after a restart never makes a frame the partner refuses.
DEFAULT_MAX_ANSWERS = 1000

# The states as globals: cheaper to read than enum attributes on every SET's path.
_NEW, _WAITING, _DUE, _IN_FLIGHT, _CLOSING, _FINISHED = SetState


class Ledger:
    """Delivery state for one partner.

    Args:
        window: most SETs in flight at once (>= 1).
        retry: backoff between attempts of one SET.
        max_attempts: sends before a SET fails with ``delivery_exhausted`` (>= 1).
        ack_timeout: seconds a sent SET waits for its answer (> 0).
        rng: randomness for jitter; seed it for reproducible schedules.
        buffer: most SETs tracked at once; the rest stay in the store. Default
            ``4 * window``: enough to refill the window while answers come back,
            without millions of pending rows in memory.
        finished_memory: how many finished jtis to remember.
        max_set_bytes: the partner's limit; a larger SET given to :meth:`enqueue`
            fails at once (``invalid_request``) instead of being sent. None: no check.

    Raises:
        ValueError: a parameter is out of range.
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
        finished_memory: int = FINISHED_MEMORY,
        max_set_bytes: int | None = None,
    ) -> None:
        if window < 1 or max_attempts < 1 or not ack_timeout > 0:
            raise ValueError("window and max_attempts must be >= 1, ack_timeout > 0")
        if (buffer is not None and buffer < 1) or finished_memory < 0:
            raise ValueError("buffer must be >= 1, finished_memory >= 0")
        self.window = window
        self.retry = retry
        self.max_attempts = max_attempts
        self.ack_timeout = ack_timeout
        self.buffer = buffer if buffer is not None else 4 * window
        self.max_set_bytes = max_set_bytes
        self._rng = rng if rng is not None else random.Random()
        self._items: dict[str, TrackedSet] = {}
        self._seq = 0
        self._waiting = Queue(self._items)  # key: due time
        self._due = Queue(self._items)  # key: seq (oldest first)
        self._deadlines = Queue(self._items)  # in flight and closing; key: deadline
        self._flight: dict[str, None] = {}
        self._finished = Finished(finished_memory)
        self._debt = Debt()
        self._effects: list[Effect] = []

    # -- counters ------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        """SETs sent and not yet answered nor timed out (never above ``window``)."""
        return len(self._flight)

    @property
    def waiting(self) -> int:
        """SETs tracked but not in flight: due now, waiting for a retry, or closing."""
        return len(self._items) - len(self._flight)

    @property
    def owed(self) -> int:
        """Answers we owe the partner, including those in frames not yet confirmed."""
        return self._debt.count

    def tracks(self, jti: str) -> bool:
        """True while the outbound ``jti`` is tracked (not finished)."""
        return jti in self._items

    def tracked(self) -> list[str]:
        """The outbound jtis tracked now (not finished), in no set order."""
        return list(self._items)

    def owes(self, jti: str) -> bool:
        """True while an answer for the inbound ``jti`` is owed or not yet confirmed."""
        return jti in self._debt

    # -- outbound: loading ----------------------------------------------------------

    def room(self) -> int:
        """How many more SETs the Link may load from the store now."""
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
        """Track an outbound SET: new, or reloaded from the store after a restart.

        Args:
            jti: the SET's ``jti``.
            token: the compact SET.
            now: the current time.
            attempts: sends so far, in earlier runs too; they count toward the cap.
            not_before: earliest send time (the row's ``next_attempt_at``); for a
                SET with its attempts used up, the deadline of its last send.

        Returns:
            False, and nothing changes, if ``jti`` is tracked already or finished
            recently (a finished jti is never sent again: PP-25, MP-9).

        Raises:
            ValueError: ``attempts`` is negative.
        """
        if attempts < 0:
            raise ValueError("attempts must be >= 0")
        if jti in self._items or jti in self._finished:
            return False
        if self.max_set_bytes is not None and len(token) > self.max_set_bytes:
            # Stored before this limit held (an older version, a limit lowered since):
            # the partner refuses it, and one too large for a frame would hold every
            # SET behind it. It fails now instead of being sent.
            self._finished.add(jti)
            self._effects.append(
                Failed(
                    jti,
                    "invalid_request",
                    f"SET is {len(token)} bytes, over max_set_bytes ({self.max_set_bytes});"
                    " not sent",
                )
            )
            return True
        self._seq += 1
        item = self._items[jti] = TrackedSet(jti, token, attempts, self._seq)
        when = now if not_before is None else not_before
        if attempts >= self.max_attempts:
            # PP-21: no more sends; an answer to the last one may still come until its
            # deadline, then it fails. It holds no window slot: it is not on this wire.
            self._move(item, _CLOSING, when)
        elif when <= now:
            self._move(item, _DUE)
        else:
            self._move(item, _WAITING, when)
        return True

    # -- outbound: sending ------------------------------------------------------------

    def take_sets(
        self, *, now: float, limit: int, max_bytes: int | None = None, first_always: bool = True
    ) -> dict[str, str]:
        """Due SETs to send now, oldest first, within the window, ``limit`` and
        ``max_bytes``.

        Each goes in flight until ``now + ack_timeout`` and a ``Sent`` effect records
        the attempt; its ``retry_at`` is that deadline, the earliest a restarted node
        may send it again.

        Args:
            now: the current time.
            limit: most SETs to take (the peer's ``maxResponseEvents`` or batch size).
            max_bytes: most bytes the SETs may take in a JSON object (each jti and SET
                with its quotes and separators); None for no bound. A frame the
                partner refuses as too large would be sent again and again, and hold
                every SET behind it.
            first_always: take the first due SET even if it alone exceeds
                ``max_bytes`` (it is at most ``max_set_bytes``: ``publish`` refuses
                larger), so a SET is never held back forever.

        Returns:
            jti -> compact SET, in send order.
        """
        self.tick(now=now)
        sets: dict[str, str] = {}
        room = min(limit, self.window - len(self._flight))
        deadline = now + self.ack_timeout
        size = 0
        while len(sets) < room:
            item = self._due.first()
            if item is None:
                break
            if max_bytes is not None:
                size += member_bytes(item.jti, item.token)
                if size > max_bytes and (sets or not first_always):
                    break  # it goes in the next frame
            self._due.drop_first()
            item.attempts += 1
            self._move(item, _IN_FLIGHT, deadline)
            sets[item.jti] = item.token
            self._effects.append(Sent(item.jti, item.attempts, deadline))
        return sets

    def tick(self, *, now: float) -> None:
        """Expire answers past their deadline (retry later, or fail exhausted) and
        make waiting SETs whose retry time has come due.

        Args:
            now: the current time.
        """
        while (item := self._deadlines.pop(now)) is not None:
            if item.attempts >= self.max_attempts:
                self._finish(item)
                self._effects.append(
                    Failed(item.jti, EXHAUSTED, f"no answer after {item.attempts} attempts")
                )
            else:
                self._move(item, _WAITING, now + self.retry.delay(item.attempts, self._rng))
        while (item := self._waiting.pop(now)) is not None:
            self._move(item, _DUE)

    def sets_lost(self, jtis: Iterable[str], *, now: float) -> None:
        """The answers to these in-flight SETs may never come: make them due now.

        Attempts are kept. A SET with its attempts used up keeps its deadline (one
        last chance for a late answer) and then fails. Other jtis are ignored.

        Args:
            jtis: SETs of a frame that may not have arrived.
            now: the current time.
        """
        for jti in jtis:
            item = self._items.get(jti)
            if item is not None and item.state is _IN_FLIGHT and item.attempts < self.max_attempts:
                self._move(item, _DUE)

    def retry_later(self, jtis: Iterable[str], *, now: float, not_before: float = 0.0) -> None:
        """The partner could not take these in-flight SETs now (a 5xx, a 429, a
        timeout): send them again after the backoff, and not before ``not_before``
        (its ``Retry-After``; PUSH-21/22). A SET with its attempts used up fails
        with ``delivery_exhausted``. Other jtis are ignored.

        Args:
            jtis: SETs whose attempt failed.
            now: the current time.
            not_before: the earliest time to try again (0: the backoff decides).
        """
        for jti in jtis:
            item = self._items.get(jti)
            if item is None or item.state is not _IN_FLIGHT:
                continue
            if item.attempts >= self.max_attempts:
                self._finish(item)
                self._effects.append(
                    Failed(item.jti, EXHAUSTED, f"not accepted after {item.attempts} attempts")
                )
                continue
            when = max(now + self.retry.delay(item.attempts, self._rng), not_before)
            self._move(item, _WAITING, when)
            self._effects.append(Sent(item.jti, item.attempts, when))  # the next retry time

    def session_lost(self, *, now: float) -> None:
        """Every in-flight SET's answer may never come (PP-30): see :meth:`sets_lost`."""
        self.sets_lost(list(self._flight), now=now)

    def drop_outbound(self) -> None:
        """Forget every outbound SET, in flight or not; answers owed are kept.

        Another node took the partner over (its lease): it sends them from the shared
        store now, and a SET both nodes sent is deduplicated by the partner.
        """
        self._items.clear()
        self._waiting.clear()
        self._due.clear()
        self._deadlines.clear()
        self._flight.clear()

    # -- outbound: answers ---------------------------------------------------------

    def ack_received(self, jtis: Iterable[str]) -> None:
        """The partner accepted these SETs (PP-5); unknown jtis are ignored (MP-5)."""
        for jti in jtis:
            item = self._items.get(jti)
            if item is not None:
                self._finish(item)
                self._effects.append(Acked(jti))

    def errs_received(self, errs: Mapping[str, SetErr]) -> None:
        """The partner refused these SETs (PP-6): failed with its code, verbatim."""
        for jti, err in errs.items():
            item = self._items.get(jti)
            if item is not None:
                self._finish(item)
                self._effects.append(Failed(jti, err.err, err.description))

    def frame_received(self, frame: CommunicationObject, *, now: float) -> None:
        """Apply the ``ack`` and ``setErrs`` of an object from the partner.

        Errors are applied first, so a jti in both ends as an error report. The
        object's ``sets`` are not the Ledger's business: the Link verifies them and
        calls :meth:`owe` for each.

        Args:
            frame: the partner's object, on any session (PP-22).
            now: the current time (answers count whenever they come: PP-14).
        """
        self.errs_received(frame.set_errs)
        self.ack_received(frame.ack)

    # -- inbound debt ---------------------------------------------------------------

    def owe(self, jti: str, error: SetErr | None, via: SessionId | None = None) -> None:
        """We received the SET ``jti`` (again) and owe an ack (None) or a setErr.

        Call it on every receipt, duplicates included (POLL-15): each receipt gets
        an answer sent after it. Receipts not yet answered share one answer.

        Args:
            via: the session the SET came on: its answer goes out on that session
                until :meth:`session_ended` (None: on any).
        """
        self._debt.owe(jti, error, via)

    def take_answers(
        self, limit: int | None = None, via: SessionId | None = None
    ) -> tuple[list[str], dict[str, SetErr]]:
        """Owed answers, oldest first, for the next frame; unconfirmed until settled.

        Args:
            limit: most answers to take; None for all.
            via: the session the frame goes on: answers pinned to another session
                stay owed.

        Returns:
            ``(ack, set_errs)``.
        """
        return self._debt.take(limit, via)

    def session_ended(self, via: SessionId) -> None:
        """The session ``via`` closed: answers pinned to it may go on any session."""
        self._debt.unpin(via)

    def answers_delivered(self, frame: CommunicationObject | None = None) -> None:
        """The answers in ``frame`` went out (None: every answer taken so far).

        Produces ``AcksSent`` for the jtis whose debt is now fully paid.
        """
        paid = self._debt.delivered(None if frame is None else answered(frame))
        if paid:
            self._effects.append(paid)

    def answers_lost(self, frame: CommunicationObject | None = None) -> None:
        """The answers in ``frame`` may not have arrived (None: every answer taken so
        far): they are owed again, ahead of newer ones."""
        self._debt.lost(None if frame is None else answered(frame))

    # -- output --------------------------------------------------------------------

    def next_frame(
        self,
        *,
        now: float,
        max_sets: int,
        max_answers: int | None = DEFAULT_MAX_ANSWERS,
        via: SessionId | None = None,
        max_bytes: int | None = None,
    ) -> CommunicationObject | None:
        """Due SETs and owed answers as one object (PP-27), or None if nothing to say.

        Args:
            now: the current time.
            max_sets: most SETs (the peer's ``maxResponseEvents``, PP-9; 0 for none).
            max_answers: most ``ack`` plus ``setErrs`` entries; None for all.
            via: the session it goes on (see :meth:`owe`).
            max_bytes: the partner's frame size (our ``max_frame_bytes`` for it): the
                object serializes within it, unless one SET alone is larger.

        Returns:
            The object to send; settle it with :meth:`frame_delivered` or
            :meth:`frame_lost`.
        """
        room = None if max_bytes is None else max_bytes - ENVELOPE_BYTES
        ack, errs = self._debt.take(max_answers, via, room)
        budget = None
        if room is not None:
            budget = room - answers_bytes(ack, errs)
        # With answers aboard, a SET that does not fit waits for a frame with fewer.
        sets = self.take_sets(
            now=now, limit=max_sets, max_bytes=budget, first_always=not (ack or errs)
        )
        if not sets and not ack and not errs:
            return None
        return CommunicationObject(sets=sets, ack=ack, set_errs=errs)

    def frame_delivered(self, frame: CommunicationObject) -> None:
        """``frame`` (from :meth:`next_frame`) was written: its answers are paid."""
        self.answers_delivered(frame)

    def frame_lost(self, frame: CommunicationObject, *, now: float) -> None:
        """``frame`` may not have arrived (e.g. its HTTP request or response failed):
        its answers are owed again and its SETs are due again (PP-30)."""
        self.answers_lost(frame)
        self.sets_lost(frame.sets, now=now)

    def next_deadline(self) -> float | None:
        """The earliest time the Link must call :meth:`tick`: an answer's deadline or
        a retry coming due; None when no timer is needed.

        SETs already due wait for room in the window or for a frame, not for a time.
        """
        times = [
            t for t in (self._deadlines.first_key(), self._waiting.first_key()) if t is not None
        ]
        return min(times) if times else None

    def effects(self) -> list[Effect]:
        """Decisions to persist, in order (``Sent``, ``Acked``, ``Failed``,
        ``AcksSent``); the list is cleared."""
        effects, self._effects = self._effects, []
        return effects

    # -- internals -----------------------------------------------------------------

    def _move(self, item: TrackedSet, state: SetState, when: float = 0.0) -> None:
        """Put ``item`` in ``state``; ``when`` is its due time or deadline.

        Raises:
            ImpossibleTransition: ``MOVES`` has no such move (a bug in the Ledger).
        """
        source = item.state
        if (source, state) not in MOVES:
            raise ImpossibleTransition(item.jti, source, state)
        item.version += 1
        if source is _IN_FLIGHT:
            del self._flight[item.jti]
        item.state = state
        if state is _DUE:
            self._due.push(float(item.seq), item)
        elif state is _WAITING:
            self._waiting.push(when, item)
        else:
            if state is _IN_FLIGHT:
                self._flight[item.jti] = None
            self._deadlines.push(when, item)

    def _finish(self, item: TrackedSet) -> None:
        """``item`` is done for good: untracked, its heap entries stale, remembered.

        Raises:
            ImpossibleTransition: it is not in a state a SET can finish from.
        """
        source = item.state
        if (source, _FINISHED) not in MOVES:
            raise ImpossibleTransition(item.jti, source, _FINISHED)
        del self._items[item.jti]
        if source is _IN_FLIGHT:
            del self._flight[item.jti]
        item.state = _FINISHED
        item.version += 1  # its heap entries are stale now
        self._finished.add(item.jti)
