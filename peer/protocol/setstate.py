"""An outbound SET's state in the Ledger, and the moves between states as data.

A tracked SET is *waiting* (for a retry time), *due*, *in flight* (sent, answer
expected by a deadline) or *closing* (loaded with its attempts used up: not sent
again, but a late answer counts until its last deadline), and then *finished* by
an ack, a setErr or its last deadline. :data:`MOVES` lists every move the Ledger
makes; any other is a bug in the Ledger, and it raises :class:`ImpossibleTransition`
rather than lose or resend a SET quietly.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["MOVES", "ImpossibleTransition", "SetState", "TrackedSet"]


@enum.unique
class SetState(enum.IntEnum):
    """Where one outbound SET stands in its partner's Ledger."""

    NEW = 0  # created by enqueue, placed at once
    WAITING = 1  # for its retry time (or a not_before from the store)
    DUE = 2  # to go out when the window and a frame have room
    IN_FLIGHT = 3  # sent; its answer is expected by a deadline
    CLOSING = 4  # attempts used up; a late answer still counts until the deadline
    FINISHED = 5  # acked, refused, or failed; never sent again (PP-25, MP-9)


_NEW, _WAITING, _DUE, _IN_FLIGHT, _CLOSING, _FINISHED = SetState

MOVES: Final[frozenset[tuple[SetState, SetState]]] = frozenset(
    {
        # enqueue: retry time in the future, due now, or attempts used up (PP-21)
        (_NEW, _WAITING),
        (_NEW, _DUE),
        (_NEW, _CLOSING),
        # tick: its retry time came
        (_WAITING, _DUE),
        # take_sets: sent in a frame, multi-push batch or poll response
        (_DUE, _IN_FLIGHT),
        # tick past its deadline, or retry_later: retried after a backoff (PP-24)
        (_IN_FLIGHT, _WAITING),
        # sets_lost, frame_lost, session_lost: due again at once, attempts kept (PP-30)
        (_IN_FLIGHT, _DUE),
        # an ack or setErr ends a SET in any tracked state, late ones too (PP-14, PP-22)
        (_WAITING, _FINISHED),
        (_DUE, _FINISHED),
        # ... and so does its last deadline, or retry_later with attempts used up
        (_IN_FLIGHT, _FINISHED),
        (_CLOSING, _FINISHED),
    }
)
"""Every ``(from, to)`` move of an outbound SET; the Ledger makes no other."""


class ImpossibleTransition(AssertionError):
    """The Ledger tried a move :data:`MOVES` does not list: a bug, never the partner's doing.

    Attributes:
        jti: the SET concerned.
        source: the state it is in.
        target: the state the Ledger tried to put it in.
    """

    def __init__(self, jti: str, source: SetState, target: SetState) -> None:
        super().__init__(f"SET {jti!r}: no move from {source.name} to {target.name}")
        self.jti = jti
        self.source = source
        self.target = target


class TrackedSet:
    """One outbound SET the Ledger tracks: its token, attempts so far and state."""

    __slots__ = ("attempts", "jti", "seq", "state", "token", "version")

    def __init__(self, jti: str, token: str, attempts: int, seq: int) -> None:
        self.jti = jti
        self.token = token
        self.attempts = attempts
        self.seq = seq  # enqueue order: due SETs go out oldest first
        self.state = _NEW
        self.version = 0  # bumps on every move; heap entries of older versions are stale
