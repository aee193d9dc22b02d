"""The Ledger, table by table (spec items in each class and test docstring)."""

from __future__ import annotations

import random
import time

import pytest

from peer.protocol import Acked, AcksSent, CommunicationObject, Effect, Failed, Sent, SetErr
from peer.protocol.ledger import DEFAULT_MAX_ANSWERS, EXHAUSTED, Ledger
from peer.protocol.retry import RetryPolicy
from peer.protocol.vocabulary import SessionId, new_session_id
from tests.timing import MS


def ledger(
    window: int = 10, max_attempts: int = 3, ack_timeout: float = 5.0, **kwargs: int
) -> Ledger:
    return Ledger(
        window=window,
        retry=RetryPolicy(initial=1.0, maximum=8.0, jitter=0.0),
        max_attempts=max_attempts,
        ack_timeout=ack_timeout,
        rng=random.Random(0),
        **kwargs,
    )


def fill(led: Ledger, n: int, now: float = 0.0) -> list[str]:
    jtis = [f"j{i}" for i in range(n)]
    for jti in jtis:
        assert led.enqueue(jti, f"tok-{jti}", now=now)
    return jtis


def sent(led: Ledger, *, now: float, max_sets: int = 100) -> list[str]:
    frame = led.next_frame(now=now, max_sets=max_sets)
    return [] if frame is None else list(frame.sets)


class TestOrderAndWindow:
    """PP-9, POLL-8: oldest first, at most max_sets per frame, at most window in flight."""

    @pytest.mark.parametrize(
        ("window", "pending", "max_sets", "frames"),
        [
            (5, 8, 3, [["j0", "j1", "j2"], ["j3", "j4"], []]),
            (2, 3, 10, [["j0", "j1"], []]),
            (10, 3, 10, [["j0", "j1", "j2"], []]),
            (10, 3, 0, [[]]),  # maxResponseEvents 0: no SETs at all (PP-9)
            (3, 0, 10, [[]]),
        ],
    )
    def test_table(self, window: int, pending: int, max_sets: int, frames: list[list[str]]) -> None:
        led = ledger(window=window)
        fill(led, pending)
        assert [sent(led, now=0, max_sets=max_sets) for _ in frames] == frames
        total = sum(len(f) for f in frames)
        assert led.inflight == total and led.waiting == pending - total
        assert led.effects() == [Sent(f"j{i}", 1, 5.0) for i in range(total)]

    def test_answers_free_window_slots(self) -> None:
        led = ledger(window=2)
        fill(led, 4)
        assert sent(led, now=0) == ["j0", "j1"]
        led.frame_received(CommunicationObject(ack=["j1"]), now=1)
        assert sent(led, now=1) == ["j2"]

    def test_resent_sets_go_before_newer_ones(self) -> None:
        """POLL-8: a SET due again after a lost session keeps its place by age."""
        led = ledger(window=2)
        fill(led, 4)
        assert sent(led, now=0) == ["j0", "j1"]
        led.session_lost(now=1)
        led.enqueue("new", "t", now=1)
        assert sent(led, now=1) == ["j0", "j1"]
        led.frame_received(CommunicationObject(ack=["j0", "j1"]), now=2)
        assert sent(led, now=2) == ["j2", "j3"]


class TestAnswers:
    """PP-5, PP-6, PP-14, PP-22, MP-5: answers end SETs; unknown answers are ignored."""

    @pytest.mark.parametrize(
        ("ack", "set_errs", "effects"),
        [
            (["j1"], {}, [Acked("j1")]),
            (["j2", "j0"], {}, [Acked("j2"), Acked("j0")]),  # out of order (PP-14)
            ([], {"j0": SetErr("invalid subject", "x")}, [Failed("j0", "invalid subject", "x")]),
            (["nope"], {"other": SetErr("invalid_key")}, []),  # MP-5
            (["j0", "j0"], {}, [Acked("j0")]),  # a repeated ack counts once
            (["j0"], {"j0": SetErr("invalid_key")}, [Failed("j0", "invalid_key", "")]),
            (["j3"], {}, [Acked("j3")]),  # not sent yet in this run, still tracked
        ],
    )
    def test_table(
        self, ack: list[str], set_errs: dict[str, SetErr], effects: list[Effect]
    ) -> None:
        """A jti in both ack and setErrs is an error report (decision)."""
        led = ledger(window=3)
        fill(led, 4)
        sent(led, now=0)
        led.effects()
        led.frame_received(CommunicationObject(ack=ack, set_errs=set_errs), now=1)
        assert led.effects() == effects
        finished = {e.jti for e in effects}
        assert {j for j in ["j0", "j1", "j2", "j3"] if led.tracks(j)} == (
            {"j0", "j1", "j2", "j3"} - finished
        )

    @pytest.mark.parametrize(
        "first",
        [CommunicationObject(ack=["j0"]), CommunicationObject(set_errs={"j0": SetErr("x")})],
    )
    def test_second_answer_is_ignored(self, first: CommunicationObject) -> None:
        """MP-5: once finished, a later ack or error for the jti changes nothing."""
        led = ledger()
        fill(led, 1)
        sent(led, now=0)
        led.frame_received(first, now=1)
        led.effects()
        led.frame_received(CommunicationObject(ack=["j0"], set_errs={"j0": SetErr("y")}), now=2)
        assert led.effects() == []

    def test_late_ack_while_waiting_for_retry(self) -> None:
        """PP-14, PP-22: an ack after the deadline still counts; the SET is not resent."""
        led = ledger()
        fill(led, 1)
        sent(led, now=0)
        led.tick(now=5)
        assert led.inflight == 0 and led.waiting == 1
        led.frame_received(CommunicationObject(ack=["j0"]), now=5.2)
        assert led.effects()[-1] == Acked("j0")
        assert led.next_deadline() is None and sent(led, now=100) == []


class TestNeverResent:
    """PP-25, MP-9: an acked or errored jti is never sent again."""

    @pytest.mark.parametrize(
        "ending",
        [
            CommunicationObject(ack=["j0"]),
            CommunicationObject(set_errs={"j0": SetErr("invalid_request")}),
            None,  # exhausted
        ],
    )
    def test_finished_jti_is_refused(self, ending: CommunicationObject | None) -> None:
        led = ledger(max_attempts=1)
        fill(led, 1)
        sent(led, now=0)
        if ending is None:
            led.tick(now=5)
        else:
            led.frame_received(ending, now=1)
        assert not led.tracks("j0")
        assert not led.enqueue("j0", "again", now=6)
        assert sent(led, now=100) == [] and led.next_deadline() is None

    def test_duplicate_enqueue_of_tracked_jti_is_ignored(self) -> None:
        led = ledger()
        assert led.enqueue("j", "first", now=0)
        assert not led.enqueue("j", "second", now=0, attempts=2)
        frame = led.next_frame(now=0, max_sets=10)
        assert frame is not None and frame.sets == {"j": "first"}
        assert led.effects() == [Sent("j", 1, 5.0)]

    def test_finished_memory_is_bounded(self) -> None:
        """Only recent jtis are remembered; the store's unique key is the durable guard."""
        led = ledger(finished_memory=2)
        fill(led, 3)
        sent(led, now=0)
        led.frame_received(CommunicationObject(ack=["j0", "j1", "j2"]), now=1)
        assert led.enqueue("j0", "t", now=2)  # forgotten
        assert not led.enqueue("j1", "t", now=2) and not led.enqueue("j2", "t", now=2)


class TestRetry:
    """PP-21, PP-24, MP-8, MP-21, POLL-16: retry with backoff, then give up."""

    def test_timeout_retries_with_backoff_then_exhausts(self) -> None:
        led = ledger(max_attempts=3, ack_timeout=5)
        fill(led, 1)
        assert sent(led, now=0) == ["j0"]
        assert led.next_deadline() == 5
        led.tick(now=5)  # no answer: retry after 1 s
        assert led.next_deadline() == 6 and sent(led, now=5.5) == []
        assert sent(led, now=6) == ["j0"]
        led.tick(now=11)  # retry after 2 s
        assert led.next_deadline() == 13 and sent(led, now=12.9) == []
        assert sent(led, now=13) == ["j0"]
        assert led.next_deadline() == 18
        led.tick(now=17.9)
        assert led.inflight == 1
        led.tick(now=18)
        assert led.effects() == [
            Sent("j0", 1, 5),
            Sent("j0", 2, 11),
            Sent("j0", 3, 18),
            Failed("j0", EXHAUSTED, "no answer after 3 attempts"),
        ]
        assert led.next_deadline() is None and led.inflight == 0 and led.waiting == 0

    def test_ack_before_last_deadline_wins(self) -> None:
        """The last attempt's answer is still awaited until its deadline."""
        led = ledger(max_attempts=1)
        fill(led, 1)
        sent(led, now=0)
        led.tick(now=4.9)
        led.frame_received(CommunicationObject(ack=["j0"]), now=4.9)
        assert led.effects()[-1] == Acked("j0")

    def test_jitter_comes_from_the_injected_rng(self) -> None:
        """Seeded rngs give the same retry times; delays stay within the policy."""
        policy = RetryPolicy(initial=2.0, maximum=8.0, jitter=0.5)
        times = []
        for _ in range(2):
            led = Ledger(
                window=5, retry=policy, max_attempts=5, ack_timeout=1, rng=random.Random(9)
            )
            fill(led, 5)
            sent(led, now=0)
            led.tick(now=1)
            times.append(led.next_deadline())
        assert times[0] == times[1]
        assert times[0] is not None and 1 + 1.0 <= times[0] <= 1 + 2.0

    @pytest.mark.parametrize(
        ("attempts", "not_before", "first_send", "outcome"),
        [
            (0, None, 0, None),
            (2, None, 0, Sent("j", 3, 5.0)),  # attempts of earlier runs count (PP-21)
            (1, 7.0, 7.0, Sent("j", 2, 12.0)),  # waits for its stored retry time
            (1, -3.0, 0, Sent("j", 2, 5.0)),  # retry time already past
            (3, 4.0, None, Failed("j", EXHAUSTED, "no answer after 3 attempts")),
            (5, None, None, Failed("j", EXHAUSTED, "no answer after 5 attempts")),
        ],
    )
    def test_reloaded_rows(
        self,
        attempts: int,
        not_before: float | None,
        first_send: float | None,
        outcome: Effect | None,
    ) -> None:
        """After a restart a row keeps its attempts and retry time; used up: it only waits."""
        led = ledger(max_attempts=3)
        assert led.enqueue("j", "t", now=0, attempts=attempts, not_before=not_before)
        if first_send is None:
            assert led.inflight == 0 and led.waiting == 1  # no window slot taken
            assert led.next_deadline() == (not_before or 0)
            assert sent(led, now=not_before or 0) == []  # never sent; its deadline ends it
            assert led.effects() == [outcome]
            return
        if first_send > 0:
            assert sent(led, now=first_send - 0.1) == []
            assert led.next_deadline() == first_send
        assert sent(led, now=first_send) == ["j"]
        if outcome is not None:
            assert led.effects() == [outcome]

    def test_reloaded_exhausted_row_accepts_a_late_ack(self) -> None:
        led = ledger(max_attempts=3)
        led.enqueue("j", "t", now=0, attempts=3, not_before=4.0)
        led.frame_received(CommunicationObject(ack=["j"]), now=2)
        assert led.effects() == [Acked("j")] and led.next_deadline() is None


class TestLoss:
    """PP-30: SETs whose answer may never come go out again promptly, attempts kept."""

    def test_session_lost(self) -> None:
        led = ledger(max_attempts=2)
        fill(led, 1)
        sent(led, now=0)
        led.session_lost(now=1)
        assert led.inflight == 0 and sent(led, now=1) == ["j0"]
        assert led.effects() == [Sent("j0", 1, 5.0), Sent("j0", 2, 6.0)]
        led.session_lost(now=2)  # attempts used up: no third send, the deadline stands
        assert sent(led, now=2) == [] and led.inflight == 1
        led.tick(now=6)
        assert led.effects() == [Failed("j0", EXHAUSTED, "no answer after 2 attempts")]

    def test_frame_lost_touches_only_its_own_sets(self) -> None:
        led = ledger()
        fill(led, 4)
        first = led.next_frame(now=0, max_sets=2)
        assert first is not None and sent(led, now=0) == ["j2", "j3"]
        led.frame_lost(first, now=1)
        assert led.inflight == 2 and sent(led, now=1) == ["j0", "j1"]

    def test_loss_after_answer_changes_nothing(self) -> None:
        led = ledger()
        fill(led, 1)
        frame = led.next_frame(now=0, max_sets=1)
        assert frame is not None
        led.frame_received(CommunicationObject(ack=["j0"]), now=1)
        led.frame_lost(frame, now=1)
        assert sent(led, now=1) == [] and not led.tracks("j0")


class TestDebt:
    """PP-23, MP-7, POLL-15: every inbound SET is answered after each receipt."""

    def test_owed_delivered_and_lost(self) -> None:
        led = ledger()
        led.owe("in1", None)
        led.owe("in2", SetErr("invalid_key", "bad"))
        frame = led.next_frame(now=0, max_sets=10)
        assert frame == CommunicationObject(
            ack=["in1"], set_errs={"in2": SetErr("invalid_key", "bad")}
        )
        assert led.owed == 2 and led.owes("in1")
        led.frame_lost(frame, now=0)
        assert led.effects() == []
        again = led.next_frame(now=0, max_sets=10)
        assert again == frame
        led.frame_delivered(again)
        assert led.effects() == [AcksSent(("in1", "in2"))]
        assert led.owed == 0 and not led.owes("in1") and led.next_frame(now=0, max_sets=10) is None

    def test_answers_go_back_on_the_session_their_sets_came_on(self) -> None:
        """PP-22 lets any session carry any answer; a partner that is several nodes
        on one store hears its own answers when each goes back on its SET's session."""
        led = ledger()
        one, two = new_session_id(), new_session_id()
        led.owe("a1", None, one)
        led.owe("b1", None, two)
        led.owe("a2", SetErr("invalid_key", "bad"), one)
        led.owe("any", None)
        frame = led.next_frame(now=0, max_sets=0, via=two)
        assert frame == CommunicationObject(ack=["b1", "any"])
        frame = led.next_frame(now=0, max_sets=0, via=one)
        assert frame == CommunicationObject(
            ack=["a1"], set_errs={"a2": SetErr("invalid_key", "bad")}
        )
        assert led.next_frame(now=0, max_sets=0, via=one) is None

    def test_answers_of_an_ended_session_go_on_any(self) -> None:
        led = ledger()
        gone, other = new_session_id(), new_session_id()
        led.owe("a", None, gone)
        led.owe("b", None, gone)
        assert led.next_frame(now=0, max_sets=0, via=other) is None
        assert led.next_frame(now=0, max_sets=0) is None  # "any session" is not theirs either
        led.session_ended(gone)
        frame = led.next_frame(now=0, max_sets=0, max_answers=1, via=other)
        assert frame == CommunicationObject(ack=["a"])
        assert led.next_frame(now=0, max_sets=0) == CommunicationObject(ack=["b"])

    def test_a_lost_pinned_answer_may_go_on_any_session(self) -> None:
        led = ledger()
        one, two = new_session_id(), new_session_id()
        led.owe("a", None, one)
        frame = led.next_frame(now=0, max_sets=0, via=one)
        assert frame is not None
        led.frame_lost(frame, now=0)  # its session broke while sending
        assert led.next_frame(now=0, max_sets=0, via=two) == CommunicationObject(ack=["a"])

    def test_a_repeat_receipt_follows_its_latest_session(self) -> None:
        led = ledger()
        one, two = new_session_id(), new_session_id()
        led.owe("a", None, one)
        led.owe("a", None, two)  # the partner resent it on another session
        assert led.next_frame(now=0, max_sets=0, via=one) is None
        assert led.next_frame(now=0, max_sets=0, via=two) == CommunicationObject(ack=["a"])

    def test_a_session_is_known_by_its_id_not_by_the_object(self) -> None:
        """Session ids are ints: an equal id built elsewhere names the same session."""
        led = ledger()
        led.owe("a", None, SessionId(10**6))
        assert led.next_frame(now=0, max_sets=0, via=SessionId(10**6 + 1)) is None
        same = SessionId(int("1000000"))  # equal, but not the same int object
        assert led.next_frame(now=0, max_sets=0, via=same) == CommunicationObject(ack=["a"])
        led.owe("b", None, SessionId(10**6))
        led.session_ended(same)
        assert led.next_frame(now=0, max_sets=0, via=new_session_id()) == CommunicationObject(
            ack=["b"]
        )

    def test_lost_answers_go_ahead_of_newer_ones(self) -> None:
        led = ledger()
        led.owe("a", None)
        led.owe("b", None)
        frame = led.next_frame(now=0, max_sets=0)
        led.owe("c", None)
        assert frame is not None
        led.frame_lost(frame, now=0)
        assert led.take_answers() == (["a", "b", "c"], {})

    def test_frames_settle_independently(self) -> None:
        """Confirming one frame does not pay the answers of another still unconfirmed."""
        led = ledger()
        led.owe("a", None)
        first = led.next_frame(now=0, max_sets=0)
        led.owe("b", None)
        second = led.next_frame(now=0, max_sets=0)
        assert first is not None and second is not None
        led.frame_delivered(first)
        assert led.effects() == [AcksSent(("a",))]
        led.frame_lost(second, now=0)
        assert led.take_answers() == (["b"], {})

    def test_receipt_after_answer_taken_is_answered_again(self) -> None:
        """POLL-15: a duplicate arriving while its answer is in flight gets a new answer;
        the store's debt is paid only once the newest answer is out."""
        led = ledger()
        led.owe("a", None)
        first = led.next_frame(now=0, max_sets=0)
        led.owe("a", None)  # received again
        assert first is not None
        led.frame_delivered(first)
        assert led.effects() == [] and led.owes("a")
        second = led.next_frame(now=0, max_sets=0)
        assert second is not None and second.ack == ("a",)
        third_receipt_frame = (led.owe("a", None), led.next_frame(now=0, max_sets=0))[1]
        assert third_receipt_frame is not None
        led.frame_delivered(second)  # "a" is still in the third frame
        assert led.effects() == []
        led.frame_delivered(third_receipt_frame)
        assert led.effects() == [AcksSent(("a",))]

    def test_lost_newer_answer_is_owed_even_if_an_older_one_arrives(self) -> None:
        """An answer taken before a repeat receipt does not cover it (found by hypothesis)."""
        led = ledger()
        led.owe("a", None)
        older = led.next_frame(now=0, max_sets=0)
        led.owe("a", None)  # received again
        newer = led.next_frame(now=0, max_sets=0)
        assert older is not None and newer is not None
        led.frame_lost(newer, now=0)
        led.frame_delivered(older)
        assert led.effects() == [] and led.owes("a")
        assert led.take_answers() == (["a"], {})

    def test_receipts_not_yet_answered_share_one_answer(self) -> None:
        """The latest verdict wins; one answer covers receipts before it."""
        led = ledger()
        led.owe("a", SetErr("invalid_request"))
        led.owe("a", None)
        assert led.take_answers() == (["a"], {})

    def test_max_answers_splits_a_backlog(self) -> None:
        """A backlog (after a restart) goes out in frames the partner accepts."""
        led = ledger()
        for i in range(DEFAULT_MAX_ANSWERS + 5):
            led.owe(f"in{i}", None)
        frame = led.next_frame(now=0, max_sets=0)
        assert frame is not None and len(frame.ack) == DEFAULT_MAX_ANSWERS
        frame = led.next_frame(now=0, max_sets=0, max_answers=2)
        assert frame is not None and frame.ack == (
            f"in{DEFAULT_MAX_ANSWERS}",
            f"in{DEFAULT_MAX_ANSWERS + 1}",
        )
        frame = led.next_frame(now=0, max_sets=0, max_answers=None)
        assert frame is not None and len(frame.ack) == 3

    def test_sets_and_answers_share_a_frame(self) -> None:
        """PP-27: one object carries SETs and acks together."""
        led = ledger()
        fill(led, 1)
        led.owe("in", None)
        frame = led.next_frame(now=0, max_sets=10)
        assert frame == CommunicationObject(sets={"j0": "tok-j0"}, ack=["in"])


class TestBounds:
    def test_room_bounds_the_buffer(self) -> None:
        """The Link loads at most room() rows: pending rows stay in the store."""
        led = ledger(window=2)
        assert led.room() == 8  # 4 x window by default
        led = ledger(window=2, buffer=5)
        fill(led, 5)
        assert led.room() == 0
        sent(led, now=0)
        led.frame_received(CommunicationObject(ack=["j0"]), now=1)
        assert led.room() == 1

    def test_tracked_names_every_unfinished_outbound_set(self) -> None:
        """What a node renews its row leases for: due, in flight, waiting."""
        led = ledger(window=2)
        fill(led, 4)
        sent(led, now=0)
        led.frame_received(
            CommunicationObject(ack=["j0"], set_errs={"j1": SetErr("invalid_key", "x")}), now=1
        )
        assert sorted(led.tracked()) == ["j2", "j3"]
        led.owe("inbound", None)  # answers owed are not outbound SETs
        assert sorted(led.tracked()) == ["j2", "j3"]

    def test_throughput(self) -> None:
        """O(log n) per SET: 50,000 SETs loaded, sent and answered, some timing out."""
        led = Ledger(
            window=1000,
            retry=RetryPolicy(initial=1, maximum=5),
            max_attempts=5,
            ack_timeout=10,
            rng=random.Random(1),
        )
        n, loaded, ended, now = 50_000, 0, 0, 0.0
        started = time.perf_counter()
        while ended < n:
            for _ in range(min(led.room(), n - loaded)):
                led.enqueue(f"j{loaded}", "t", now=now)
                loaded += 1
            frame = led.next_frame(now=now, max_sets=100)
            now += 0.01
            if frame is not None:
                # The first SET of each frame goes unanswered until it is exhausted:
                # deadlines pass and stale heap entries pile up.
                led.frame_received(CommunicationObject(ack=list(frame.sets)[1:]), now=now)
            led.tick(now=now)
            ended += sum(1 for e in led.effects() if isinstance(e, Acked | Failed))
        elapsed = time.perf_counter() - started
        assert led.inflight == led.waiting == 0
        assert elapsed < 10_000 * MS, f"{n / elapsed:.0f} SETs/s"

    def test_stale_timers_do_not_pile_up(self) -> None:
        """Memory stays bounded by the buffer when answers come long before deadlines.

        Each send leaves a heap entry that goes stale on its ack; the heaps are
        internal, so this test looks at them directly.
        """
        led = ledger(window=50, ack_timeout=1e6)
        fill(led, 1)
        sent(led, now=0)  # j0 is never answered: its deadline stays on top of the heap
        for i in range(1, 20_000):
            led.enqueue(f"k{i}", "t", now=i)
            frame = led.next_frame(now=i, max_sets=50)
            assert frame is not None
            led.frame_received(CommunicationObject(ack=list(frame.sets)), now=i)
        assert led.next_deadline() == 1e6
        assert len(led._deadlines) <= 2 * led.buffer + 64

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"window": 0},
            {"max_attempts": 0},
            {"ack_timeout": 0},
            {"ack_timeout": float("nan")},
            {"buffer": 0},
            {"finished_memory": -1},
        ],
    )
    def test_invalid_parameters(self, kwargs: dict[str, float]) -> None:
        base: dict[str, object] = {"window": 1, "max_attempts": 1, "ack_timeout": 1.0}
        base.update(kwargs)
        with pytest.raises(ValueError):
            Ledger(retry=RetryPolicy(initial=1, maximum=1), **base)  # type: ignore[arg-type]

    def test_negative_attempts_is_a_caller_bug(self) -> None:
        with pytest.raises(ValueError):
            ledger().enqueue("j", "t", now=0, attempts=-1)


class TestRetryLater:
    """PUSH-21/22, MP-21: a 5xx, 429 or timeout retries after the backoff or Retry-After."""

    def test_backoff_then_due_again(self) -> None:
        led = ledger()
        fill(led, 1)
        assert sent(led, now=0) == ["j0"]
        led.effects()
        led.retry_later(["j0"], now=10.0)
        # The backoff after attempt 1 is 1 s (no jitter): not before, then due.
        assert sent(led, now=10.5) == []
        assert sent(led, now=11.0) == ["j0"]
        assert led.inflight == 1

    def test_retry_after_pushes_the_retry_back(self) -> None:
        led = ledger()
        fill(led, 2)
        assert sent(led, now=0) == ["j0", "j1"]
        led.effects()
        led.retry_later(["j0", "j1"], now=1.0, not_before=31.0)
        effects = led.effects()
        assert effects == [Sent("j0", 1, 31.0), Sent("j1", 1, 31.0)]
        assert sent(led, now=30.9) == []
        assert sent(led, now=31.0) == ["j0", "j1"]

    def test_last_attempt_fails_exhausted(self) -> None:
        led = ledger(max_attempts=1)
        fill(led, 1)
        assert sent(led, now=0) == ["j0"]
        led.effects()
        led.retry_later(["j0"], now=1.0)
        [failed] = led.effects()
        assert isinstance(failed, Failed) and failed.err == EXHAUSTED
        assert led.inflight == 0 and sent(led, now=100) == []

    def test_unknown_acked_or_waiting_jtis_are_ignored(self) -> None:
        """MP-5: nothing about a jti we do not hold in flight changes anything."""
        led = ledger()
        fill(led, 2)
        assert sent(led, now=0, max_sets=1) == ["j0"]
        led.ack_received(["j0"])
        led.effects()
        led.retry_later(["j0", "j1", "nope"], now=1.0)
        assert led.effects() == []
        assert sent(led, now=1.0) == ["j1"]
