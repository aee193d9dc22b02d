"""Frames bounded in bytes, not only in count (MP-22: a recipient's limits apply to
SET count and body bytes; an over-limit body is refused whole with 413, a WebSocket
message with close 1009).

A frame the partner refuses as too large is lost, sent again, refused again: every
SET behind it waits forever. The Ledger therefore fills a frame only up to the
partner's frame size (our ``max_frame_bytes`` for it), answers included.
"""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from peer.protocol import Failed, SetErr
from peer.protocol.ledger import ENVELOPE_BYTES, Ledger
from peer.protocol.retry import RetryPolicy


def ledger(window: int = 1000) -> Ledger:
    return Ledger(
        window=window,
        retry=RetryPolicy(initial=1.0, maximum=8.0, jitter=0.0),
        max_attempts=3,
        ack_timeout=5.0,
        rng=random.Random(0),
    )


def token(size: int) -> str:
    """A compact-JWS-shaped string of ``size`` bytes."""
    return "h." + "p" * max(size - 4, 0) + ".s"


def test_sets_split_across_frames_by_bytes() -> None:
    led = ledger()
    for i in range(10):
        led.enqueue(f"j{i}", token(30_000), now=0)
    frames = []
    while (frame := led.next_frame(now=0, max_sets=100, max_bytes=100_000)) is not None:
        frames.append(frame)
    assert [len(f.sets) for f in frames] == [3, 3, 3, 1]
    assert all(len(f.serialize()) <= 100_000 for f in frames)
    assert [j for f in frames for j in f.sets] == [f"j{i}" for i in range(10)]  # in order


def test_without_a_bound_count_alone_limits() -> None:
    led = ledger()
    for i in range(10):
        led.enqueue(f"j{i}", token(30_000), now=0)
    frame = led.next_frame(now=0, max_sets=100)
    assert frame is not None and len(frame.sets) == 10


def test_one_set_larger_than_the_bound_still_goes_alone() -> None:
    """Never held back forever: the first SET goes even if it alone is over."""
    led = ledger()
    led.enqueue("big", token(5_000), now=0)
    led.enqueue("small", token(100), now=0)
    first = led.next_frame(now=0, max_sets=100, max_bytes=1_000)
    second = led.next_frame(now=0, max_sets=100, max_bytes=1_000)
    assert first is not None and list(first.sets) == ["big"]
    assert second is not None and list(second.sets) == ["small"]


def test_answers_count_against_the_bound() -> None:
    """With answers aboard, a SET that does not fit waits for the next frame."""
    led = ledger()
    for i in range(40):
        led.owe(f"in-{i:02}-" + "x" * 20, None)
    led.owe("bad", SetErr("invalid_request", "d" * 500))
    led.enqueue("out", token(1_500), now=0)
    first = led.next_frame(now=0, max_sets=100, max_bytes=3_000)
    assert first is not None and len(first.ack) == 40 and "bad" in first.set_errs
    assert not first.sets
    assert len(first.serialize()) <= 3_000
    second = led.next_frame(now=0, max_sets=100, max_bytes=3_000)
    assert second is not None and list(second.sets) == ["out"] and not second.ack


def test_take_sets_for_the_adapters_is_bounded_too() -> None:
    led = ledger()
    for i in range(5):
        led.enqueue(f"j{i}", token(400), now=0)
    assert list(led.take_sets(now=0, limit=100, max_bytes=1_000)) == ["j0", "j1"]
    assert list(led.take_sets(now=0, limit=100, max_bytes=100)) == ["j2"]  # first always
    assert led.take_sets(now=0, limit=100, max_bytes=100, first_always=False) == {}


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=10, max_value=3_000), min_size=1, max_size=40),
    jtis=st.lists(st.text(min_size=1, max_size=30), min_size=40, max_size=40, unique=True),
    answers=st.lists(st.text(min_size=1, max_size=60), max_size=30, unique=True),
    errs=st.lists(st.text(min_size=1, max_size=40), max_size=5),
    max_bytes=st.integers(min_value=ENVELOPE_BYTES + 500, max_value=20_000),
)
def test_every_frame_fits_and_every_set_goes(
    sizes: list[int], jtis: list[str], answers: list[str], errs: list[str], max_bytes: int
) -> None:
    """Property: each frame serializes within ``max_bytes`` unless it is one SET alone
    that is larger, and every SET is sent exactly once, in order."""
    led = ledger()
    outbound = [(jtis[i], token(size)) for i, size in enumerate(sizes)]
    for jti, tok in outbound:
        assert led.enqueue(jti, tok, now=0)
    for jti in answers:
        led.owe("in:" + jti, None)
    for i, description in enumerate(errs):
        led.owe(f"err{i}", SetErr("invalid_request", description))
    sent: list[str] = []
    for _ in range(len(sizes) + len(answers) + len(errs) + 2):
        frame = led.next_frame(now=0, max_sets=100, max_bytes=max_bytes)
        if frame is None:
            break
        size = len(frame.serialize())
        alone = len(frame.sets) == 1 and not frame.ack and not frame.set_errs
        assert size <= max_bytes or alone, (size, max_bytes, len(frame.sets))
        sent.extend(frame.sets)
        led.frame_delivered(frame)
    assert sent == [jti for jti, _ in outbound]
    assert led.owed == 0


def test_a_stored_set_over_max_set_bytes_fails_instead_of_being_sent() -> None:
    """A row stored before the limit held fails at once, and is not sent; the SETs
    behind it go. A reload of the same row changes nothing (PP-25)."""
    led = Ledger(
        window=10,
        retry=RetryPolicy(initial=1.0, maximum=8.0, jitter=0.0),
        max_attempts=3,
        ack_timeout=5.0,
        max_set_bytes=1_000,
    )
    assert led.enqueue("huge", token(1_001), now=0)
    assert led.enqueue("fits", token(1_000), now=0)
    [failed] = led.effects()
    assert isinstance(failed, Failed) and failed.jti == "huge"
    assert failed.err == "invalid_request" and "1001 bytes, over max_set_bytes (1000)" in (
        failed.description
    )
    assert not led.enqueue("huge", token(1_001), now=0)
    assert led.effects() == []
    frame = led.next_frame(now=0, max_sets=10, max_bytes=100_000)
    assert frame is not None and list(frame.sets) == ["fits"]


def test_answers_alone_are_bounded_by_the_frame_size() -> None:
    """Many owed answers with jtis that JSON escapes six-fold (control characters):
    each frame of answers serializes within max_bytes, and every answer goes once.
    Before, answers were taken by count only, and such a frame passed the limit."""
    led = ledger()
    owed = [f"{i:04d}" + "\x1f" * 40 for i in range(300)]
    for jti in owed:
        led.owe(jti, None if int(jti[:4]) % 3 else SetErr("invalid_request", "\x07" * 30))
    seen: list[str] = []
    for _ in range(len(owed)):
        frame = led.next_frame(now=0, max_sets=100, max_bytes=ENVELOPE_BYTES + 2_000)
        if frame is None:
            break
        assert len(frame.serialize()) <= ENVELOPE_BYTES + 2_000
        assert len(frame.ack) + len(frame.set_errs) > 1  # many per frame, not one by one
        seen.extend(frame.ack)
        seen.extend(frame.set_errs)
        led.frame_delivered(frame)
    assert sorted(seen) == sorted(owed)
