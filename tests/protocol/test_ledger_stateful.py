"""Two Ledgers over a lossy, reordering, duplicating wire, with restarts (hypothesis).

A sends SETs to B; B answers. The test keeps A's "store" as a plain dict (what
survives a restart: unfinished jtis and their attempts) and checks, after every
step and at the end:

- no SET is lost: each enqueued jti ends acked or failed, or is still owned by A;
- none is sent after its ack or error (PP-25, MP-9);
- none is sent more than max_attempts times, restarts included (PP-21);
- in flight never exceeds the window;
- every SET B received is answered (PP-23, MP-7).
"""

from __future__ import annotations

import random

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from peer.protocol import Acked, CommunicationObject, Failed, Sent, SetErr
from peer.protocol.ledger import Ledger
from peer.protocol.retry import RetryPolicy

WINDOW = 4
MAX_ATTEMPTS = 4


def new_ledger(seed: int) -> Ledger:
    return Ledger(
        window=WINDOW,
        retry=RetryPolicy(initial=1.0, maximum=4.0),
        max_attempts=MAX_ATTEMPTS,
        ack_timeout=3.0,
        rng=random.Random(seed),
    )


class TwoLedgers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.a = new_ledger(1)
        self.b = new_ledger(2)
        self.store: dict[str, int] = {}  # A's durable rows: unfinished jti -> attempts
        self.enqueued: set[str] = set()
        self.finished: dict[str, str] = {}  # jti -> "acked" | error code
        self.sends: dict[str, int] = {}
        self.wire: list[tuple[str, CommunicationObject]] = []  # (to, frame)
        self.received_by_b: set[str] = set()
        self.answered_by_b: set[str] = set()
        self.counter = 0

    # -- helpers -------------------------------------------------------------------

    def apply_a_effects(self) -> None:
        for effect in self.a.effects():
            if isinstance(effect, Sent):
                if effect.jti in self.store:
                    self.store[effect.jti] = max(self.store[effect.jti], effect.attempts)
            elif isinstance(effect, Acked | Failed):
                assert effect.jti not in self.finished, "finished twice"
                self.finished[effect.jti] = "acked" if isinstance(effect, Acked) else effect.err
                self.store.pop(effect.jti, None)

    def a_sends(self, max_sets: int) -> None:
        frame = self.a.next_frame(now=self.now, max_sets=max_sets)
        self.a.answers_delivered()
        if frame is None:
            return
        for jti in frame.sets:
            assert jti not in self.finished, f"{jti} sent after its ack or error"
            self.sends[jti] = self.sends.get(jti, 0) + 1
            assert self.sends[jti] <= MAX_ATTEMPTS, f"{jti} sent past the cap"
        self.apply_a_effects()
        self.wire.append(("b", frame))

    def deliver_to_b(self, frame: CommunicationObject) -> None:
        for jti in frame.sets:
            self.received_by_b.add(jti)
            # B refuses a few SETs, deterministically by name.
            error = SetErr("invalid_key", "refused") if jti.endswith("7") else None
            self.b.owe(jti, error)

    # -- rules ---------------------------------------------------------------------

    @rule(count=st.integers(min_value=1, max_value=5))
    def publish(self, count: int) -> None:
        for _ in range(count):
            self.counter += 1
            jti = f"s{self.counter}"
            self.enqueued.add(jti)
            self.store[jti] = 0
            self.a.enqueue(jti, f"token-{jti}", now=self.now)

    @rule(max_sets=st.integers(min_value=1, max_value=6))
    def a_send(self, max_sets: int) -> None:
        self.a_sends(max_sets)

    @rule()
    def b_send(self) -> None:
        frame = self.b.next_frame(now=self.now, max_sets=0)
        if frame is not None:
            self.answered_by_b.update(frame.ack)
            self.answered_by_b.update(frame.set_errs)
            self.b.answers_delivered()
            self.b.effects()
            self.wire.append(("a", frame))

    @precondition(lambda self: self.wire)
    @rule(index=st.integers(min_value=0), duplicate=st.booleans())
    def deliver(self, index: int, duplicate: bool) -> None:
        to, frame = self.wire[index % len(self.wire)]
        if not duplicate:
            del self.wire[index % len(self.wire)]
        if to == "b":
            self.deliver_to_b(frame)
        else:
            self.a.frame_received(frame, now=self.now)
            self.apply_a_effects()

    @precondition(lambda self: self.wire)
    @rule(index=st.integers(min_value=0))
    def drop(self, index: int) -> None:
        del self.wire[index % len(self.wire)]

    @rule(dt=st.floats(min_value=0.1, max_value=6.0))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.a.tick(now=self.now)
        self.apply_a_effects()

    @rule()
    def session_lost(self) -> None:
        self.a.session_lost(now=self.now)
        self.apply_a_effects()

    @rule()
    def restart_a(self) -> None:
        """A crashes: memory gone, frames to and from it lost; reload from its store."""
        self.wire = [(to, f) for to, f in self.wire if to == "b"]
        self.a = new_ledger(self.counter)
        for jti, attempts in self.store.items():
            self.a.enqueue(jti, f"token-{jti}", now=self.now, attempts=attempts)

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def nothing_lost(self) -> None:
        for jti in self.enqueued:
            assert jti in self.finished or jti in self.store
            if jti in self.store:
                assert self.a.tracks(jti)

    @invariant()
    def window_respected(self) -> None:
        assert self.a.inflight <= WINDOW

    def teardown(self) -> None:
        """Make the wire reliable and run to quiescence: everything ends, all answered."""
        for _ in range(400):
            self.a_sends(WINDOW)
            while self.wire:
                to, frame = self.wire.pop(0)
                if to == "b":
                    self.deliver_to_b(frame)
                else:
                    self.a.frame_received(frame, now=self.now)
                    self.apply_a_effects()
            frame = self.b.next_frame(now=self.now, max_sets=0)
            if frame is not None:
                self.answered_by_b.update(frame.ack)
                self.answered_by_b.update(frame.set_errs)
                self.b.answers_delivered()
                self.a.frame_received(frame, now=self.now)
                self.apply_a_effects()
            if len(self.finished) == len(self.enqueued):
                break
            self.now += 5.0
            self.a.tick(now=self.now)
            self.apply_a_effects()
        assert set(self.finished) == self.enqueued, "a SET never ended"
        assert self.received_by_b <= self.answered_by_b, "a received SET was never answered"
        for jti, outcome in self.finished.items():
            if outcome == "acked":
                assert jti in self.received_by_b


TwoLedgers.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestTwoLedgers = TwoLedgers.TestCase
