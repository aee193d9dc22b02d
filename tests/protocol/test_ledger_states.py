"""The Ledger's outbound states: every listed move is made, no other is allowed.

Each move in ``MOVES`` is driven through the public API below (the spec item it
serves in the docstring). Every other ``(from, to)`` pair raises
``ImpossibleTransition``: a guard against a Ledger bug that would lose or resend a
SET quietly, so those tests drive the private moves directly.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import pytest

from peer.protocol import CommunicationObject, Failed
from peer.protocol.ledger import EXHAUSTED, Ledger
from peer.protocol.retry import RetryPolicy
from peer.protocol.setstate import MOVES, ImpossibleTransition, SetState, TrackedSet

S = SetState
MAX_ATTEMPTS = 2
ACK_TIMEOUT = 5.0


class Recording(Ledger):
    """A Ledger that records each move it makes, in order."""

    def __init__(self) -> None:
        super().__init__(
            window=10,
            retry=RetryPolicy(initial=1.0, maximum=8.0, jitter=0.0),
            max_attempts=MAX_ATTEMPTS,
            ack_timeout=ACK_TIMEOUT,
            rng=random.Random(0),
        )
        self.moves: list[tuple[SetState, SetState]] = []

    def _move(self, item: TrackedSet, state: SetState, when: float = 0.0) -> None:
        self.moves.append((item.state, state))
        super()._move(item, state, when)

    def _finish(self, item: TrackedSet) -> None:
        self.moves.append((item.state, S.FINISHED))
        super()._finish(item)


def send(led: Ledger, now: float = 0.0) -> None:
    frame = led.next_frame(now=now, max_sets=10)
    assert frame is not None and list(frame.sets) == ["a"]


def later(led: Ledger) -> None:
    """PP-24: a retry time in the future (a reload from the store) waits for it."""
    led.enqueue("a", "t", now=0, not_before=10)


def due(led: Ledger) -> None:
    """POLL-8: a new SET is due at once."""
    led.enqueue("a", "t", now=0)


def closing(led: Ledger) -> None:
    """PP-21: reloaded with its attempts used up, it is never sent again."""
    led.enqueue("a", "t", now=0, attempts=MAX_ATTEMPTS, not_before=ACK_TIMEOUT)


def retry_time_came(led: Ledger) -> None:
    later(led)
    led.tick(now=10)


def sent(led: Ledger) -> None:
    due(led)
    send(led)


def no_answer_by_deadline(led: Ledger) -> None:
    """PP-24: no answer by the deadline, attempts left: retried after a backoff."""
    sent(led)
    led.tick(now=ACK_TIMEOUT)


def frame_lost(led: Ledger) -> None:
    """PP-30: a lost frame makes its SETs due again at once."""
    sent(led)
    frame = CommunicationObject(sets={"a": "t"})
    led.frame_lost(frame, now=1)


def acked_while_waiting(led: Ledger) -> None:
    """PP-14: a late answer counts while the SET waits for its retry."""
    no_answer_by_deadline(led)
    led.ack_received(["a"])


def acked_while_due(led: Ledger) -> None:
    """PP-14, PP-22: a late answer on another session counts while the SET is due again."""
    frame_lost(led)
    led.ack_received(["a"])


def acked_in_flight(led: Ledger) -> None:
    """PP-25: an ack ends a SET for good."""
    sent(led)
    led.ack_received(["a"])


def closing_deadline_passed(led: Ledger) -> None:
    """PP-21: the last deadline passes with no answer: delivery_exhausted."""
    closing(led)
    led.tick(now=ACK_TIMEOUT)
    assert led.effects()[-1:] == [
        Failed("a", EXHAUSTED, f"no answer after {MAX_ATTEMPTS} attempts")
    ]


SCENARIOS: dict[tuple[SetState, SetState], Callable[[Ledger], None]] = {
    (S.NEW, S.WAITING): later,
    (S.NEW, S.DUE): due,
    (S.NEW, S.CLOSING): closing,
    (S.WAITING, S.DUE): retry_time_came,
    (S.DUE, S.IN_FLIGHT): sent,
    (S.IN_FLIGHT, S.WAITING): no_answer_by_deadline,
    (S.IN_FLIGHT, S.DUE): frame_lost,
    (S.WAITING, S.FINISHED): acked_while_waiting,
    (S.DUE, S.FINISHED): acked_while_due,
    (S.IN_FLIGHT, S.FINISHED): acked_in_flight,
    (S.CLOSING, S.FINISHED): closing_deadline_passed,
}


def test_every_listed_move_has_a_scenario() -> None:
    assert set(SCENARIOS) == MOVES


@pytest.mark.parametrize("move", sorted(MOVES), ids=lambda m: f"{m[0].name}-{m[1].name}")
def test_the_ledger_makes_each_listed_move(move: tuple[SetState, SetState]) -> None:
    led = Recording()
    SCENARIOS[move](led)
    assert led.moves[-1] == move
    assert set(led.moves) <= MOVES


def test_a_finished_set_never_moves_again() -> None:
    """PP-25, MP-9: nothing leaves FINISHED; no state leads back to NEW."""
    assert not any(source is S.FINISHED for source, _ in MOVES)
    assert not any(target is S.NEW for _, target in MOVES)
    assert {source for source, _ in MOVES} == set(S) - {S.FINISHED}


IMPOSSIBLE = sorted(set(itertools.product(S, S)) - MOVES)


@pytest.mark.parametrize("move", IMPOSSIBLE, ids=lambda m: f"{m[0].name}-{m[1].name}")
def test_an_impossible_move_raises_and_changes_nothing(move: tuple[SetState, SetState]) -> None:
    source, target = move
    led = Recording()
    item = TrackedSet("x", "t", 0, 1)
    item.state = source
    led._items["x"] = item
    with pytest.raises(ImpossibleTransition) as raised:
        if target is S.FINISHED:
            led._finish(item)
        else:
            led._move(item, target, 1.0)
    assert (raised.value.jti, raised.value.source, raised.value.target) == ("x", source, target)
    assert item.state is source and item.version == 0 and led.tracks("x")
    assert led.next_deadline() is None and led.effects() == []


def test_the_guard_names_the_set_and_both_states() -> None:
    """A bug guard: an AssertionError, whose message says what was tried."""
    error = ImpossibleTransition("j1", S.CLOSING, S.IN_FLIGHT)
    assert isinstance(error, AssertionError)
    assert str(error) == "SET 'j1': no move from CLOSING to IN_FLIGHT"


def test_a_set_finished_twice_is_refused() -> None:
    """An answer handled twice would record two outcomes for one SET (PP-25)."""
    led = Recording()
    sent(led)
    item = led._items["a"]
    led.ack_received(["a"])
    with pytest.raises(ImpossibleTransition, match="FINISHED to FINISHED"):
        led._finish(item)


def test_a_refused_move_leaves_the_ledger_usable() -> None:
    """PP-30: the SET is still due and goes out in the next frame."""
    led = Recording()
    due(led)
    with pytest.raises(ImpossibleTransition):
        led._move(led._items["a"], S.CLOSING, 1.0)
    send(led)
    assert led.inflight == 1
