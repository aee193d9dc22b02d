"""Ledger: one partner's delivery state, as a sans-I/O state machine.

Outbound, a tracked SET is *waiting* (for a retry time), *due*, *in flight* (sent,
answer expected by a deadline) or *closing* (reloaded with its attempts used up: not
sent again, but a late answer counts until its last deadline). An ack or setErr
*finishes* it. Inbound, the Ledger keeps the *debt*: the answers we owe the partner.
Feed it facts with the time as an argument, ask ``next_frame``/``next_deadline``,
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

O(log n) per SET: heaps with lazy deletion, compacted when stale entries dominate.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from .communication import CommunicationObject, SetErr
from .effects import Acked, AcksSent, Effect, Failed, Sent
from .jsonio import dumps
from .retry import RetryPolicy

__all__ = ["DEFAULT_MAX_ANSWERS", "ENVELOPE_BYTES", "EXHAUSTED", "FINISHED_MEMORY", "Ledger"]

EXHAUSTED = "delivery_exhausted"
# Recently finished jtis remembered so a late duplicate enqueue is refused (PP-25).
# 100k jtis of ~40 bytes is a few MiB; the store's unique key is the durable guard.
FINISHED_MEMORY = 100_000
# Answers per frame unless the caller says otherwise: 1,000 typical jtis are ~40 KiB,
# far inside a partner's frame and ack-count limits (FrameLimits: 1 MiB, 10,000), so
# a backlog of owed answers after a restart never makes a frame the partner refuses.
DEFAULT_MAX_ANSWERS = 1000
# Bytes of a Communication Object around its members ({"sets":{},"ack":[],...}) and of
# the other bodies SETs go in (multi-push, a poll response), with room to spare.
ENVELOPE_BYTES = 256

_WAITING, _DUE, _FLIGHT, _CLOSING = range(4)
_Heap = list[tuple[float, int, str]]  # (key, version, jti); stale when version moved on


class _Debt:
    """Answers owed to the partner for SETs it sent us (PP-23, MP-7).

    ``_owed`` holds answers to hand out, oldest first; ``_sent`` those handed out in
    frames not yet settled, with how many such frames carry each jti. A jti's debt
    is paid (``AcksSent``) when its last frame is delivered and no newer receipt of
    it is owed; a lost frame's answers are owed again.

    ``_via`` pins an owed answer to the session its SET came on, while that session
    lives: any session may carry any answer (PP-22), but when the partner is several
    nodes sharing one store, the answer reaches the node that sent the SET.
    """

    __slots__ = ("_owed", "_sent", "_via")

    def __init__(self) -> None:
        self._owed: OrderedDict[str, SetErr | None] = OrderedDict()
        self._sent: dict[str, tuple[SetErr | None, int]] = {}
        self._via: dict[str, object] = {}  # jti -> session, for owed answers only

    @property
    def count(self) -> int:
        return len(self._owed) + len(self._sent)

    def __contains__(self, jti: str) -> bool:
        return jti in self._owed or jti in self._sent

    def owe(self, jti: str, error: SetErr | None, via: object = None) -> None:
        # A repeat receipt not yet answered keeps its place; the latest verdict and
        # session win.
        self._owed[jti] = error
        if via is None:
            self._via.pop(jti, None)
        else:
            self._via[jti] = via

    def take(self, limit: int | None, via: object = None) -> tuple[list[str], dict[str, SetErr]]:
        count = len(self._owed) if limit is None else min(max(limit, 0), len(self._owed))
        if not self._via:
            # Nothing pinned (one node, one session): the oldest answers, as they come.
            taken = [self._owed.popitem(last=False) for _ in range(count)]
        else:
            # Answers for this session or for any, oldest first; others wait for theirs.
            jtis: list[str] = []
            for jti in self._owed:
                if len(jtis) >= count:
                    break
                pinned = self._via.get(jti)
                if pinned is None or pinned is via:
                    jtis.append(jti)
            taken = []
            for jti in jtis:
                taken.append((jti, self._owed.pop(jti)))
                self._via.pop(jti, None)
        ack: list[str] = []
        errs: dict[str, SetErr] = {}
        for jti, error in taken:
            self._sent[jti] = (error, self._sent.get(jti, (None, 0))[1] + 1)
            if error is None:
                ack.append(jti)
            else:
                errs[jti] = error
        return ack, errs

    def unpin(self, via: object) -> None:
        """``via`` ended: its owed answers may go on any session."""
        if self._via:
            self._via = {jti: v for jti, v in self._via.items() if v is not via}

    def _settle(self, answers: Mapping[str, SetErr | None] | None) -> dict[str, SetErr | None]:
        """Take one frame's answers (None: every frame's) off ``_sent``; return those
        that were handed out and not settled yet."""
        if answers is None:
            settled = {jti: error for jti, (error, _) in self._sent.items()}
            self._sent.clear()
            return settled
        done: dict[str, SetErr | None] = {}
        for jti, error in answers.items():
            entry = self._sent.get(jti)
            if entry is None:
                continue  # not ours to settle: settled already, or never handed out
            if entry[1] > 1:
                self._sent[jti] = (entry[0], entry[1] - 1)
            else:
                del self._sent[jti]
            done[jti] = error
        return done

    def delivered(self, answers: Mapping[str, SetErr | None] | None) -> AcksSent | None:
        # Paid once no other frame carries it and no newer receipt of it is owed.
        paid = tuple(
            jti for jti in self._settle(answers) if jti not in self._sent and jti not in self._owed
        )
        return AcksSent(paid) if paid else None

    def lost(self, answers: Mapping[str, SetErr | None] | None) -> None:
        # Owed again even if another frame still carries an answer: that one may
        # predate a later receipt. Ahead of newer answers, in their original order.
        for jti, error in reversed(self._settle(answers).items()):
            if jti not in self._owed:
                self._owed[jti] = error
                self._owed.move_to_end(jti, last=False)


class _Item:
    __slots__ = ("attempts", "jti", "seq", "state", "token", "version")

    def __init__(self, jti: str, token: str, attempts: int, seq: int) -> None:
        self.jti = jti
        self.token = token
        self.attempts = attempts
        self.seq = seq  # enqueue order: due SETs go out oldest first
        self.state = _WAITING
        self.version = 0  # bumps on every move; heap entries of older versions are stale


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
        self._finished_memory = finished_memory
        self._items: dict[str, _Item] = {}
        self._seq = 0
        self._waiting: _Heap = []  # key: due time
        self._due: _Heap = []  # key: seq (oldest first)
        self._deadlines: _Heap = []  # in flight and closing; key: deadline
        self._flight: dict[str, None] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._debt = _Debt()
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
            self._remember_finished(jti)
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
        item = self._items[jti] = _Item(jti, token, attempts, self._seq)
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
            if self._peek(self._due) is None:
                break
            item = self._items[self._due[0][2]]
            if max_bytes is not None:
                size += _member_bytes(item.jti, item.token)
                if size > max_bytes and (sets or not first_always):
                    break  # it goes in the next frame
            heapq.heappop(self._due)
            item.attempts += 1
            self._move(item, _FLIGHT, deadline)
            sets[item.jti] = item.token
            self._effects.append(Sent(item.jti, item.attempts, deadline))
        return sets

    def tick(self, *, now: float) -> None:
        """Expire answers past their deadline (retry later, or fail exhausted) and
        make waiting SETs whose retry time has come due.

        Args:
            now: the current time.
        """
        while (item := self._pop(self._deadlines, now)) is not None:
            if item.attempts >= self.max_attempts:
                self._finish(item)
                self._effects.append(
                    Failed(item.jti, EXHAUSTED, f"no answer after {item.attempts} attempts")
                )
            else:
                self._move(item, _WAITING, now + self.retry.delay(item.attempts, self._rng))
        while (item := self._pop(self._waiting, now)) is not None:
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
            if item is not None and item.state == _FLIGHT and item.attempts < self.max_attempts:
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
            if item is None or item.state != _FLIGHT:
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

    def owe(self, jti: str, error: SetErr | None, via: object = None) -> None:
        """We received the SET ``jti`` (again) and owe an ack (None) or a setErr.

        Call it on every receipt, duplicates included (POLL-15): each receipt gets
        an answer sent after it. Receipts not yet answered share one answer.

        Args:
            via: the session the SET came on: its answer goes out on that session
                until :meth:`session_ended` (None: on any).
        """
        self._debt.owe(jti, error, via)

    def take_answers(
        self, limit: int | None = None, via: object = None
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

    def session_ended(self, via: object) -> None:
        """The session ``via`` closed: answers pinned to it may go on any session."""
        self._debt.unpin(via)

    def answers_delivered(self, frame: CommunicationObject | None = None) -> None:
        """The answers in ``frame`` went out (None: every answer taken so far).

        Produces ``AcksSent`` for the jtis whose debt is now fully paid.
        """
        paid = self._debt.delivered(None if frame is None else _answered(frame))
        if paid:
            self._effects.append(paid)

    def answers_lost(self, frame: CommunicationObject | None = None) -> None:
        """The answers in ``frame`` may not have arrived (None: every answer taken so
        far): they are owed again, ahead of newer ones."""
        self._debt.lost(None if frame is None else _answered(frame))

    # -- output --------------------------------------------------------------------

    def next_frame(
        self,
        *,
        now: float,
        max_sets: int,
        max_answers: int | None = DEFAULT_MAX_ANSWERS,
        via: object = None,
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
        ack, errs = self._debt.take(max_answers, via)
        budget = None
        if max_bytes is not None:
            budget = max_bytes - ENVELOPE_BYTES - _answers_bytes(ack, errs)
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
            t for t in (self._peek(self._deadlines), self._peek(self._waiting)) if t is not None
        ]
        return min(times) if times else None

    def effects(self) -> list[Effect]:
        """Decisions to persist, in order (``Sent``, ``Acked``, ``Failed``,
        ``AcksSent``); the list is cleared."""
        effects, self._effects = self._effects, []
        return effects

    # -- internals -----------------------------------------------------------------

    def _move(self, item: _Item, state: int, when: float = 0.0) -> None:
        """Put ``item`` in ``state``; ``when`` is its due time or deadline."""
        item.version += 1
        if item.state == _FLIGHT:
            del self._flight[item.jti]
        item.state = state
        if state == _DUE:
            self._push(self._due, float(item.seq), item)
        elif state == _WAITING:
            self._push(self._waiting, when, item)
        else:
            if state == _FLIGHT:
                self._flight[item.jti] = None
            self._push(self._deadlines, when, item)

    def _finish(self, item: _Item) -> None:
        del self._items[item.jti]
        if item.state == _FLIGHT:
            del self._flight[item.jti]
        item.version += 1  # its heap entries are stale now
        self._remember_finished(item.jti)

    def _remember_finished(self, jti: str) -> None:
        if self._finished_memory:
            self._finished[jti] = None
            if len(self._finished) > self._finished_memory:
                self._finished.popitem(last=False)

    def _push(self, heap: _Heap, key: float, item: _Item) -> None:
        heapq.heappush(heap, (key, item.version, item.jti))
        # Stale entries pile up (a SET acked long before its deadline leaves one):
        # rebuild once they outnumber the live ones, which keeps pushes O(log n)
        # amortised and memory bounded by the number of tracked SETs.
        if len(heap) > 2 * len(self._items) + 64:
            heap[:] = [entry for entry in heap if self._live(entry)]
            heapq.heapify(heap)

    def _live(self, entry: tuple[float, int, str]) -> bool:
        item = self._items.get(entry[2])
        return item is not None and item.version == entry[1]

    def _peek(self, heap: _Heap) -> float | None:
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _pop(self, heap: _Heap, until: float | None) -> _Item | None:
        """The first live item whose key is <= ``until`` (None: any), removed."""
        key = self._peek(heap)
        if key is None or (until is not None and key > until):
            return None
        return self._items[heapq.heappop(heap)[2]]


def _member_bytes(jti: str, token: str) -> int:
    """Bytes of ``"jti":"token",`` in compact JSON (a compact JWS needs no escapes)."""
    return len(dumps(jti)) + len(token) + 4


def _answers_bytes(ack: list[str], errs: Mapping[str, SetErr]) -> int:
    """Bytes the answers take in a Communication Object, members and separators."""
    size = sum(len(dumps(jti)) + 1 for jti in ack)
    for jti, error in errs.items():
        size += len(dumps(jti)) + len(dumps(error.to_json())) + 2
    return size


def _answered(frame: CommunicationObject) -> dict[str, SetErr | None]:
    answers: dict[str, SetErr | None] = dict.fromkeys(frame.ack)
    answers.update(frame.set_errs)
    return answers
