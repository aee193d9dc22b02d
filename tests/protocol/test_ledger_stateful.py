"""Two Ledgers over a lossy, reordering, duplicating wire, with restarts (hypothesis).

A sends SETs to B; B answers. Each side keeps a "store", a plain dict of what
survives its crash: A's unfinished outbox rows (attempts, retry time), B's unpaid
answers. A Link-like feeder loads A's rows into its Ledger within ``room()``.
Frames can be dropped, duplicated, delivered in any order, or reported lost by the
transport (an HTTP request that failed). Checked after every step and at the end:

- no SET lost: each published jti is acked or failed, or still in A's store and
  tracked or waiting to be loaded (PP-21, MP-21);
- none sent after its ack or error (PP-25, MP-9), none sent more than
  ``max_attempts`` times, restarts included (PP-21, POLL-16);
- in flight never exceeds the window, tracked never exceeds the buffer;
- no impossible state move (the Ledger raises ``ImpossibleTransition``, an
  AssertionError, which fails the run), and each tracked SET's state agrees with
  where it is: in flight exactly when counted in flight, closing only with its
  attempts used up (PP-21);
- every receipt at B is answered after it, answers are never paid (``AcksSent``)
  while a receipt is unanswered, and never delivered more often than received
  (PP-23, MP-7, POLL-15);
- with the wire made reliable at the end, every SET ends, B's store empties.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from peer.protocol import Acked, AcksSent, CommunicationObject, Failed, Sent, SetErr
from peer.protocol.ledger import EXHAUSTED, Ledger
from peer.protocol.retry import RetryPolicy
from peer.protocol.setstate import SetState

WINDOW = 3
BUFFER = 6
MAX_ATTEMPTS = 3
ACK_TIMEOUT = 3.0
REFUSED = SetErr("invalid_key", "refused")


def new_ledger(seed: int) -> Ledger:
    return Ledger(
        window=WINDOW,
        retry=RetryPolicy(initial=1.0, maximum=4.0),
        max_attempts=MAX_ATTEMPTS,
        ack_timeout=ACK_TIMEOUT,
        rng=random.Random(seed),
        buffer=BUFFER,
    )


def verdict(jti: str) -> SetErr | None:
    """B refuses a few SETs, deterministically by name."""
    return REFUSED if jti.endswith("7") else None


class TwoLedgers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.step = 0  # orders receipts and answers
        self.a = new_ledger(1)
        self.b = new_ledger(2)
        self.a_store: dict[str, tuple[int, float | None]] = {}  # jti -> attempts, retry_at
        self.a_loaded: set[str] = set()  # rows this incarnation of A has loaded
        self.b_store: dict[str, SetErr | None] = {}  # answers B owes, durably
        self.b_frames: list[tuple[CommunicationObject, int]] = []  # taken, not yet settled
        self.published: list[str] = []
        self.finished: dict[str, str] = {}  # jti -> "acked" | err
        self.sends: dict[str, int] = {}
        self.wire: list[tuple[str, CommunicationObject]] = []  # (to, frame)
        self.receipts: dict[str, int] = {}
        self.last_receipt: dict[str, int] = {}
        self.delivered: dict[str, int] = {}  # answers B wrote, per jti
        self.covered: dict[str, int] = {}  # latest receipt step an answer written covers
        self.counter = 0

    # -- A's side ------------------------------------------------------------------

    def apply_a_effects(self) -> None:
        for effect in self.a.effects():
            if isinstance(effect, Sent):
                attempts, _ = self.a_store[effect.jti]
                self.a_store[effect.jti] = (max(attempts, effect.attempts), effect.retry_at)
            elif isinstance(effect, Acked | Failed):
                assert effect.jti not in self.finished, "finished twice"
                self.finished[effect.jti] = "acked" if isinstance(effect, Acked) else effect.err
                del self.a_store[effect.jti]

    def a_load(self) -> None:
        """The Link's feeder: oldest unloaded rows, within room()."""
        room = self.a.room()
        for jti, (attempts, retry_at) in self.a_store.items():
            if room <= 0:
                break
            if jti not in self.a_loaded:
                self.a_loaded.add(jti)
                assert self.a.enqueue(
                    jti, f"token-{jti}", now=self.now, attempts=attempts, not_before=retry_at
                )
                room -= 1
        self.apply_a_effects()

    def a_sends(self, max_sets: int, lose: bool = False) -> None:
        frame = self.a.next_frame(now=self.now, max_sets=max_sets)
        self.apply_a_effects()
        if frame is None:
            return
        for jti, token in frame.sets.items():
            assert token == f"token-{jti}"
            assert jti not in self.finished, f"{jti} sent after its ack or error"
            self.sends[jti] = self.sends.get(jti, 0) + 1
            assert self.sends[jti] <= MAX_ATTEMPTS, f"{jti} sent past the cap"
        if lose:
            self.a.frame_lost(frame, now=self.now)
            self.apply_a_effects()
        else:
            self.a.frame_delivered(frame)
            self.wire.append(("b", frame))

    def to_a(self, frame: CommunicationObject) -> None:
        self.a.frame_received(frame, now=self.now)
        self.apply_a_effects()
        self.a_load()  # answers made room in the buffer

    # -- B's side ------------------------------------------------------------------

    def to_b(self, frame: CommunicationObject) -> None:
        for jti in frame.sets:
            self.step += 1
            self.receipts[jti] = self.receipts.get(jti, 0) + 1
            self.last_receipt[jti] = self.step
            self.b_store[jti] = verdict(jti)
            self.b.owe(jti, verdict(jti))

    def b_take(self, limit: int | None) -> None:
        frame = self.b.next_frame(now=self.now, max_sets=0, max_answers=limit)
        if frame is not None:
            assert not frame.sets
            self.step += 1
            self.b_frames.append((frame, self.step))

    def b_settle(self, index: int, lost: bool) -> None:
        frame, taken = self.b_frames.pop(index % len(self.b_frames))
        if lost:
            self.b.frame_lost(frame, now=self.now)
        else:
            for jti in frame.ack:
                assert verdict(jti) is None
            for jti, err in frame.set_errs.items():
                assert err == verdict(jti)
            for jti in [*frame.ack, *frame.set_errs]:
                self.delivered[jti] = self.delivered.get(jti, 0) + 1
                assert self.delivered[jti] <= self.receipts[jti], "answered more than received"
                self.covered[jti] = max(self.covered.get(jti, 0), taken)
            self.b.frame_delivered(frame)
            self.wire.append(("a", frame))
        for effect in self.b.effects():
            assert isinstance(effect, AcksSent)
            for jti in effect.jtis:
                assert self.covered[jti] > self.last_receipt[jti], "paid before answered"
                del self.b_store[jti]

    # -- rules ---------------------------------------------------------------------

    @rule(count=st.integers(min_value=1, max_value=5))
    def publish(self, count: int) -> None:
        for _ in range(count):
            self.counter += 1
            jti = f"s{self.counter}"
            self.published.append(jti)
            self.a_store[jti] = (0, None)
        self.a_load()

    @rule(max_sets=st.integers(min_value=0, max_value=5), lose=st.booleans())
    def a_send(self, max_sets: int, lose: bool) -> None:
        self.a_sends(max_sets, lose)

    @rule(limit=st.none() | st.integers(min_value=1, max_value=3))
    def b_answer(self, limit: int | None) -> None:
        self.b_take(limit)

    @precondition(lambda self: self.b_frames)
    @rule(index=st.integers(min_value=0), lost=st.booleans())
    def b_written(self, index: int, lost: bool) -> None:
        self.b_settle(index, lost)

    @precondition(lambda self: self.wire)
    @rule(index=st.integers(min_value=0), fate=st.sampled_from(["once", "duplicate", "drop"]))
    def wire_step(self, index: int, fate: str) -> None:
        """Any frame on the wire, in any order, arrives once, arrives and stays for a
        duplicate, or is dropped."""
        index %= len(self.wire)
        to, frame = self.wire[index]
        if fate != "duplicate":
            del self.wire[index]
        if fate == "drop":
            return
        if to == "b":
            self.to_b(frame)
        else:
            self.to_a(frame)

    @rule(dt=st.floats(min_value=0.1, max_value=6.0))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.a.tick(now=self.now)
        self.apply_a_effects()
        self.a_load()  # SETs that failed made room
        # tick handled everything that was due: the next wake-up is in the future.
        deadline = self.a.next_deadline()
        assert deadline is None or deadline > self.now

    @rule()
    def session_lost(self) -> None:
        self.a.session_lost(now=self.now)
        self.apply_a_effects()

    @rule()
    def restart_a(self) -> None:
        """A crashes: memory gone, frames on their way to it lost; reload from its store."""
        self.wire = [(to, f) for to, f in self.wire if to == "b"]
        self.a = new_ledger(self.counter)
        self.a_loaded = set()
        self.a_load()

    @rule()
    def restart_b(self) -> None:
        """B crashes: frames not yet written are gone; owed answers come from its store."""
        self.b_frames = []
        self.b = new_ledger(self.counter + 1)
        for jti, error in self.b_store.items():
            self.b.owe(jti, error)

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def nothing_lost(self) -> None:
        for jti in self.published:
            assert (jti in self.finished) != (jti in self.a_store)
            if jti in self.a_store and jti in self.a_loaded:
                assert self.a.tracks(jti)
        for jti in self.finished:
            assert not self.a.tracks(jti)

    @invariant()
    def bounded(self) -> None:
        assert 0 <= self.a.inflight <= WINDOW
        assert self.a.inflight + self.a.waiting <= BUFFER

    @invariant()
    def states_agree_with_queues(self) -> None:
        """The Ledger's private state, read directly: a guard on its bookkeeping."""
        for jti, item in self.a._items.items():
            assert item.jti == jti
            assert item.state in (
                SetState.WAITING,
                SetState.DUE,
                SetState.IN_FLIGHT,
                SetState.CLOSING,
            )
            assert (item.state is SetState.IN_FLIGHT) == (jti in self.a._flight)
            assert item.state is not SetState.CLOSING or item.attempts >= MAX_ATTEMPTS

    @invariant()
    def outcomes_are_consistent(self) -> None:
        for jti, outcome in self.finished.items():
            if outcome == "acked":
                assert jti in self.receipts and verdict(jti) is None
            elif outcome != EXHAUSTED:
                assert outcome == REFUSED.err and jti in self.receipts

    @invariant()
    def unanswered_receipts_are_owed(self) -> None:
        for jti, last in self.last_receipt.items():
            if self.covered.get(jti, 0) < last:
                assert self.b.owes(jti) and jti in self.b_store, f"answer for {jti} forgotten"

    def teardown(self) -> None:
        """Make the wire reliable and run to quiescence: everything ends, all answered."""
        while self.b_frames:
            self.b_settle(0, lost=False)
        for _ in range(500):
            self.a_load()
            self.a_sends(WINDOW)
            while self.wire:
                to, frame = self.wire.pop(0)
                if to == "b":
                    self.to_b(frame)
                else:
                    self.to_a(frame)
            self.b_take(None)
            while self.b_frames:
                self.b_settle(0, lost=False)
            while self.wire:
                self.to_a(self.wire.pop(0)[1])
            if len(self.finished) == len(self.published):
                break
            self.now += ACK_TIMEOUT
            self.a.tick(now=self.now)
            self.apply_a_effects()
        assert set(self.finished) == set(self.published), "a SET never ended"
        assert not self.a_store and self.a.inflight == 0 and self.a.waiting == 0
        for jti, last in self.last_receipt.items():
            assert self.covered.get(jti, 0) > last, f"receipt of {jti} never answered"
        assert not self.b_store and self.b.owed == 0, "answers left unpaid"


TwoLedgers.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestTwoLedgers = pytest.mark.slow(TwoLedgers.TestCase)
