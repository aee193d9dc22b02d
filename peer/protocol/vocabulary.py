"""The words every layer shares: delivery modes, session kinds, session identities.

A partner's ``send_via`` names how our SETs reach it, ``receive_via`` how its SETs
reach us (push-pull, RFC 8935 push, multi-push, RFC 8936 poll; ``none`` when it
sends us nothing). A session kind names what is open to a partner right now, best
first; ``stats()`` and ``setpeer status`` show the best one, or ``down``. A
:data:`SessionId` names one session, so that the answers to the SETs a session
brought go back on that session while it lives.
"""

from __future__ import annotations

import enum
import itertools
from typing import Final, Literal, NewType, TypeAlias

__all__ = [
    "PUSHPULL_KINDS",
    "SESSION_KINDS",
    "DeliveryMode",
    "ReceiveMode",
    "SessionId",
    "SessionKind",
    "SessionState",
    "Transport",
    "new_session_id",
]

DeliveryMode: TypeAlias = Literal["pushpull", "push", "multipush", "poll"]
"""``send_via`` / ``receive_via``: the protocol SETs travel by in one direction."""

ReceiveMode: TypeAlias = Literal["pushpull", "push", "multipush", "poll", "none"]
"""``receive_via``: a delivery mode, or ``none`` for a partner that sends us nothing."""

Transport: TypeAlias = Literal["websocket", "http"]
"""The push-pull binding an initiator tries first (``transport``)."""


class SessionKind(enum.StrEnum):
    """What is open to a partner; the values are the names ``status`` prints."""

    WEBSOCKET = "websocket"
    HTTP = "http"
    MULTIPUSH = "multipush"
    PUSH = "push"
    POLL = "poll"


SESSION_KINDS: Final[tuple[SessionKind, ...]] = tuple(SessionKind)
"""Every kind, best first."""

PUSHPULL_KINDS: Final = frozenset({SessionKind.WEBSOCKET, SessionKind.HTTP})
"""The kinds that carry push-pull frames (SETs and answers both ways)."""

SessionState: TypeAlias = Literal["websocket", "http", "multipush", "push", "poll", "down"]
"""A partner's best open session kind, or ``down``."""

SessionId = NewType("SessionId", int)
"""One session with a partner (a WebSocket, an HTTP request, a poll)."""

_ids = itertools.count(1)


def new_session_id() -> SessionId:
    """A session identity never handed out before in this process."""
    return SessionId(next(_ids))
