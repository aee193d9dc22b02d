"""What is open to one partner: its sessions by kind, and the requests it makes to us.

A session is a WebSocket (either side's), an HTTP push-pull session we run, or an
adapter loop whose endpoint answers (push, multi-push, poll). As an HTTP responder we
only see requests, so a partner that keeps making them counts as ``http`` (or ``poll``,
``push``, ``multipush``) for two idle timeouts after the last one.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from ..protocol.vocabulary import (
    PUSHPULL_KINDS,
    SESSION_KINDS,
    DeliveryMode,
    SessionId,
    SessionKind,
    SessionState,
    new_session_id,
)

__all__ = ["Closable", "Sessions"]


class Closable(Protocol):
    """A session that can be closed from our side (a WebSocket channel)."""

    async def close(self, code: int, reason: str) -> None: ...


class Sessions:
    """One partner's open sessions and recent requests.

    Args:
        idle_timeout: seconds of the partner's ``idle_timeout``; a request counts as
            a live session for twice that.
    """

    __slots__ = ("_closers", "_counts", "_idle", "_open", "_seen")

    def __init__(self, idle_timeout: float) -> None:
        self._idle = idle_timeout
        self._open: dict[SessionId, SessionKind] = {}
        self._counts: dict[SessionKind, int] = {}
        self._closers: dict[SessionId, Closable] = {}
        self._seen: dict[SessionKind, float] = {}  # kind -> monotonic time of last request

    def open(self, kind: SessionKind, closer: Closable | None = None) -> SessionId:
        """Count a new session of ``kind``; ``closer`` closes it at shutdown."""
        session = new_session_id()
        self._open[session] = kind
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if closer is not None:
            self._closers[session] = closer
        return session

    def close(self, session: SessionId) -> SessionKind | None:
        """Forget ``session``; its kind, or None if it was not open."""
        kind = self._open.pop(session, None)
        self._closers.pop(session, None)
        if kind is not None:
            self._counts[kind] = max(0, self._counts.get(kind, 0) - 1)
        return kind

    def closers(self) -> list[Closable]:
        """The sessions we can close (graceful shutdown)."""
        return list(self._closers.values())

    def count(self, kind: SessionKind) -> int:
        """Open sessions of ``kind``."""
        return self._counts.get(kind, 0)

    def request_seen(self, kind: SessionKind) -> bool:
        """The partner made a ``kind`` request; True if it had made none lately."""
        was = self.recent(kind)
        self._seen[kind] = time.monotonic()
        return not was

    def recent(self, kind: SessionKind) -> bool:
        """The partner made a ``kind`` request within two idle timeouts."""
        return self._seen.get(kind, -math.inf) > time.monotonic() - 2 * self._idle

    @property
    def pushpull_open(self) -> bool:
        """A push-pull session (WebSocket or HTTP, ours or the partner's) is open."""
        return any(self._counts.get(kind) for kind in PUSHPULL_KINDS)

    @property
    def state(self) -> SessionState:
        """The best open session kind, else the best kind of recent requests, or down."""
        for kind in SESSION_KINDS:
            if self._counts.get(kind):
                return kind.value
        for kind in SESSION_KINDS:
            if self.recent(kind):
                return kind.value
        return "down"

    def can_send(self, send_via: DeliveryMode) -> bool:
        """Whether SETs have a way out to the partner now.

        Push and multi-push dial per request; poll needs the partner polling us;
        push-pull needs a session (ours or the partner's) or its recent requests.
        """
        if send_via in ("push", "multipush"):
            return True
        if send_via == "poll":
            return self.recent(SessionKind.POLL)
        return self.pushpull_open or self.recent(SessionKind.HTTP)
