"""The Ledger, table by table (spec items in each test's docstring)."""

from __future__ import annotations

import random

import pytest

from peer.protocol import Acked, AcksSent, CommunicationObject, Failed, Sent, SetErr
from peer.protocol.ledger import EXHAUSTED, Ledger
from peer.protocol.retry import RetryPolicy


def ledger(window: int = 10, max_attempts: int = 3, ack_timeout: float = 5.0) -> Ledger:
    return Ledger(
        window=window,
        retry=RetryPolicy(initial=1.0, maximum=8.0, jitter=0.0),
        max_attempts=max_attempts,
        ack_timeout=ack_timeout,
        rng=random.Random(0),
    )


def fill(led: Ledger, n: int, now: float = 0.0) -> list[str]:
    jtis = [f"j{i}" for i in range(n)]
    for jti in jtis:
        led.enqueue(jti, f"tok-{jti}", now=now)
    return jtis


def test_fifo_within_window_and_limit() -> None:
    """PP-9: at most max_sets per frame; at most window in flight; oldest first."""
    led = ledger(window=5)
    fill(led, 8)
    frame = led.next_frame(now=0, max_sets=3)
    assert frame is not None and list(frame.sets) == ["j0", "j1", "j2"]
    frame = led.next_frame(now=0, max_sets=100)
    assert frame is not None and list(frame.sets) == ["j3", "j4"]
    assert led.next_frame(now=0, max_sets=100) is None
    assert led.inflight == 5 and led.waiting == 3
    assert led.effects() == [Sent(f"j{i}", 1, 5.0) for i in range(5)]


def test_ack_ends_a_set_for_good() -> None:
    """PP-25, MP-9: after its ack a jti is never sent again, nor re-enqueued."""
    led = ledger()
    fill(led, 1)
    led.next_frame(now=0, max_sets=10)
    led.frame_received(CommunicationObject(ack=["j0"]), now=1)
    assert Acked("j0") in led.effects()
    assert not led.enqueue("j0", "again", now=2)
    led.tick(now=100)
    assert led.next_frame(now=100, max_sets=10) is None


def test_set_err_fails_with_partner_code() -> None:
    """PP-6, PP-21: a setErrs entry fails the SET with the partner's code, verbatim."""
    led = ledger()
    fill(led, 2)
    led.next_frame(now=0, max_sets=10)
    led.frame_received(CommunicationObject(set_errs={"j1": SetErr("invalid subject", "x")}), now=1)
    assert led.effects()[-1] == Failed("j1", "invalid subject", "x")
    assert led.inflight == 1


def test_unknown_and_duplicate_acks_are_ignored() -> None:
    """MP-5: acks/errors for jtis we do not track do nothing; a second ack does nothing."""
    led = ledger()
    fill(led, 1)
    led.next_frame(now=0, max_sets=10)
    led.effects()
    led.frame_received(
        CommunicationObject(ack=["nope", "j0", "j0"], set_errs={"other": SetErr("x")}), now=1
    )
    assert led.effects() == [Acked("j0")]
    led.frame_received(CommunicationObject(ack=["j0"]), now=2)
    assert led.effects() == []


def test_ack_and_err_for_same_jti_is_an_error_report() -> None:
    """Decision: a jti in both ack and setErrs of one object fails."""
    led = ledger()
    fill(led, 1)
    led.next_frame(now=0, max_sets=10)
    led.effects()
    led.frame_received(
        CommunicationObject(ack=["j0"], set_errs={"j0": SetErr("invalid_key")}), now=1
    )
    assert led.effects() == [Failed("j0", "invalid_key", "")]


def test_timeout_retries_with_backoff_then_exhausts() -> None:
    """PP-21, PP-24, MP-21: no answer: retry with backoff; after max_attempts fail."""
    led = ledger(max_attempts=3, ack_timeout=5)
    fill(led, 1)
    assert led.next_frame(now=0, max_sets=1) is not None
    assert led.next_deadline() == 5
    led.tick(now=5)  # deadline: retry after 1 s
    assert led.next_frame(now=5.5, max_sets=1) is None
    assert led.next_deadline() == 6
    assert led.next_frame(now=6, max_sets=1) is not None  # attempt 2
    led.tick(now=11)  # retry after 2 s
    assert led.next_frame(now=13, max_sets=1) is not None  # attempt 3
    led.tick(now=18)
    assert led.effects()[-1] == Failed("j0", EXHAUSTED, "no answer after 3 attempts")
    assert led.next_deadline() is None and led.inflight == 0 and led.waiting == 0


def test_late_ack_while_waiting_for_retry() -> None:
    """PP-14, MP-18: an ack after the deadline still counts; the SET is not resent."""
    led = ledger()
    fill(led, 1)
    led.next_frame(now=0, max_sets=1)
    led.tick(now=5)
    led.frame_received(CommunicationObject(ack=["j0"]), now=5.2)
    assert Acked("j0") in led.effects()
    assert led.next_frame(now=100, max_sets=1) is None


def test_out_of_order_acks() -> None:
    """PP-14: acks may come in any order and on any frame."""
    led = ledger()
    fill(led, 3)
    led.next_frame(now=0, max_sets=3)
    led.effects()
    led.frame_received(CommunicationObject(ack=["j2"]), now=1)
    led.frame_received(CommunicationObject(ack=["j0", "j1"]), now=1)
    assert led.effects() == [Acked("j2"), Acked("j0"), Acked("j1")]


def test_session_lost_makes_inflight_due_without_resetting_attempts() -> None:
    """PP-30: a lost session's in-flight SETs go out again promptly, attempts kept."""
    led = ledger(max_attempts=2)
    fill(led, 1)
    led.next_frame(now=0, max_sets=1)
    led.session_lost(now=1)
    frame = led.next_frame(now=1, max_sets=1)
    assert frame is not None and list(frame.sets) == ["j0"]
    led.session_lost(now=2)  # attempts used up: no third send
    assert led.next_frame(now=2, max_sets=1) is None
    led.tick(now=100)
    assert isinstance(led.effects()[-1], Failed)


def test_reloaded_attempts_count_toward_the_cap() -> None:
    """PP-21: attempts from before a restart count."""
    led = ledger(max_attempts=3)
    led.enqueue("j", "t", now=0, attempts=2)
    led.next_frame(now=0, max_sets=1)
    assert led.effects() == [Sent("j", 3, 5.0)]
    led.enqueue("k", "t", now=0, attempts=3)
    assert led.next_frame(now=0, max_sets=1) is None
    led.tick(now=0)
    assert Failed("k", EXHAUSTED, "no answer after 3 attempts") in led.effects()


def test_room_bounds_the_buffer() -> None:
    led = Ledger(
        window=2, retry=RetryPolicy(initial=1, maximum=1), max_attempts=1, ack_timeout=1, buffer=5
    )
    assert led.room() == 5
    fill(led, 5)
    assert led.room() == 0


def test_answers_owed_delivered_and_lost() -> None:
    """PP-23, MP-7: every inbound SET is answered; a lost frame's answers are owed again."""
    led = ledger()
    led.owe("in1", None)
    led.owe("in2", SetErr("invalid_key", "bad"))
    frame = led.next_frame(now=0, max_sets=10)
    assert frame == CommunicationObject(ack=["in1"], set_errs={"in2": SetErr("invalid_key", "bad")})
    led.answers_lost()
    frame = led.next_frame(now=0, max_sets=10)
    assert frame is not None and frame.ack == ("in1",)
    led.answers_delivered()
    assert led.effects() == [AcksSent(("in1", "in2"))]
    assert led.owed == 0 and led.next_frame(now=0, max_sets=10) is None


def test_sets_and_answers_share_a_frame() -> None:
    """PP-27: one object carries SETs and acks together."""
    led = ledger()
    fill(led, 1)
    led.owe("in", None)
    frame = led.next_frame(now=0, max_sets=10)
    assert frame is not None and list(frame.sets) == ["j0"] and frame.ack == ("in",)


def test_max_sets_zero_sends_only_answers() -> None:
    led = ledger()
    fill(led, 1)
    led.owe("in", None)
    frame = led.next_frame(now=0, max_sets=0)
    assert frame is not None and not frame.sets and frame.ack == ("in",)


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"max_attempts": 0}, {"ack_timeout": 0}])
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    base: dict[str, object] = {"window": 1, "max_attempts": 1, "ack_timeout": 1.0}
    base.update(kwargs)
    with pytest.raises(ValueError):
        Ledger(retry=RetryPolicy(initial=1, maximum=1), **base)  # type: ignore[arg-type]
