"""Sessions: what is open to a partner, and the state ``status`` shows."""

from __future__ import annotations

import time

import pytest

from peer.link.sessions import Sessions
from peer.protocol.vocabulary import SessionKind
from tests.timing import MS


def test_state_is_the_best_open_kind() -> None:
    sessions = Sessions(idle_timeout=60)
    assert sessions.state == "down"
    poll = sessions.open(SessionKind.POLL)
    ws = sessions.open(SessionKind.WEBSOCKET)
    assert sessions.state == "websocket"
    assert sessions.close(ws) == SessionKind.WEBSOCKET
    assert sessions.state == "poll"
    assert sessions.close(poll) == SessionKind.POLL
    assert sessions.state == "down"


def test_each_session_has_its_own_identity_and_closes_once() -> None:
    sessions = Sessions(idle_timeout=60)
    one, two = sessions.open(SessionKind.HTTP), sessions.open(SessionKind.HTTP)
    assert one != two
    assert sessions.count(SessionKind.HTTP) == 2
    assert sessions.close(one) == SessionKind.HTTP
    assert sessions.close(one) is None  # a second close changes nothing
    assert sessions.count(SessionKind.HTTP) == 1
    assert sessions.pushpull_open


def test_requests_count_as_a_session_for_two_idle_timeouts() -> None:
    sessions = Sessions(idle_timeout=20 * MS)
    assert sessions.request_seen(SessionKind.HTTP)  # the first one opens a way
    assert not sessions.request_seen(SessionKind.HTTP)
    assert sessions.state == "http"
    time.sleep(50 * MS)
    assert sessions.state == "down"
    assert sessions.request_seen(SessionKind.HTTP)


@pytest.mark.parametrize(
    ("send_via", "kind", "expected_before", "expected_after"),
    [
        ("push", SessionKind.PUSH, True, True),
        ("multipush", SessionKind.MULTIPUSH, True, True),
        ("poll", SessionKind.POLL, False, True),
        ("pushpull", SessionKind.HTTP, False, True),
        ("pushpull", SessionKind.POLL, False, False),
    ],
)
def test_can_send(
    send_via: str, kind: SessionKind, expected_before: bool, expected_after: bool
) -> None:
    """A node sends (and, sharing a store, leases rows) only while a way out exists."""
    sessions = Sessions(idle_timeout=60)
    assert sessions.can_send(send_via) is expected_before  # type: ignore[arg-type]
    sessions.request_seen(kind)
    assert sessions.can_send(send_via) is expected_after  # type: ignore[arg-type]


def test_closers_are_the_sessions_we_can_close() -> None:
    class Closer:
        async def close(self, code: int, reason: str) -> None:
            raise AssertionError("not called here")

    sessions = Sessions(idle_timeout=60)
    closer = Closer()
    ws = sessions.open(SessionKind.WEBSOCKET, closer)
    sessions.open(SessionKind.HTTP)
    assert sessions.closers() == [closer]
    sessions.close(ws)
    assert sessions.closers() == []
