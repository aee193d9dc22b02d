"""What the adapter loops share: is the partner's endpoint answering, and when to call again.

The push, multi-push and poll loops have no session to open or close; this turns the
outcome of each request into the Link's session state (``status`` shows ``push``,
``multipush`` or ``poll`` while the endpoint answers, ``down`` when it does not) and
into one pause for every worker of the partner: after a ``Retry-After`` or while the
endpoint is unreachable, backing off with jitter (PUSH-21, MP-21).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import anyio

from ..protocol.retry import RetryPolicy
from ..protocol.vocabulary import SessionId, SessionKind

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["Reachability"]


class Reachability:
    """The partner's endpoint for one adapter, as the requests find it.

    Args:
        link: the partner.
        kind: the session kind it shows as (``push``, ``multipush``, ``poll``).
    """

    def __init__(self, link: Link, kind: SessionKind) -> None:
        self._link = link
        self._kind = kind
        self._session: SessionId | None = None  # while the endpoint answers
        self._failures = 0
        self._resume_at = 0.0  # monotonic
        self._retry = RetryPolicy(
            initial=link.limits.reconnect_initial, maximum=link.limits.reconnect_max
        )
        self._rng = random.Random()

    def answered(self) -> None:
        """The endpoint answered (whatever the status): it is up."""
        self._failures = 0
        if self._session is None:
            self._session = self._link.session_opened(self._kind)

    def unreachable(self) -> None:
        """No answer (connection refused, timeout, reset): pause with backoff."""
        self._failures += 1
        self.pause(self._retry.delay(self._failures, self._rng))
        if self._session is not None:
            self._link.session_closed(self._session)
            self._session = None

    def refused(self, seconds: float) -> None:
        """The endpoint answers, but with an error (a poll answered 500, or with a
        body that is no poll response): it is down, and asked again after ``seconds``."""
        self.pause(seconds)
        if self._session is not None:
            self._link.session_closed(self._session)
            self._session = None

    def pause(self, seconds: float) -> None:
        """No request before ``seconds`` from now (a ``Retry-After``), for every worker."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def wait(self) -> None:
        """Sleep out the current pause, if any."""
        # Another worker may push the pause back while we sleep: check again after.
        while True:
            delay = self._resume_at - time.monotonic()
            if delay <= 0:
                return
            await anyio.sleep(delay)

    def close(self) -> None:
        """The loop ends: the session state goes back to ``down``."""
        if self._session is not None:
            self._link.session_closed(self._session)
            self._session = None
