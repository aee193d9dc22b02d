"""How the webhook is doing: up, retrying or down, with counts, as ``webhook_state()``
and ``/metrics`` show it, and the two log lines an operator needs.

A failed POST makes the webhook *retrying*; :data:`DOWN_AFTER` failures in a row make
it *down*, logged once with the reason; the next 2xx makes it *up* again, logged once.
Single retries are not logged above DEBUG: one line per retry of an endpoint that is
away for an hour would bury everything else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, Literal, TypedDict

__all__ = ["DOWN_AFTER", "Outcome", "RetryingSet", "WebhookHealth", "WebhookState"]

log = logging.getLogger("setpeer.webhook")

DOWN_AFTER: Final = 3
"""Failed POSTs in a row (any partner's) after which the webhook counts as down."""

Outcome = Literal["delivered", "refused", "failed"]
"""A POST's outcome: a 2xx; another status (a redirect too); no usable answer
(no connection, no complete answer within the deadline, an answer too large)."""

OUTCOMES: Final[tuple[Outcome, ...]] = ("delivered", "refused", "failed")


class RetryingSet(TypedDict):
    """A SET its partner's lane is trying to deliver again."""

    partner: str
    jti: str
    seq: int
    attempts: int
    last_error: str


class WebhookState(TypedDict):
    """``Peer.webhook_state()``: the webhook as the node sees it (docs/webhook.md).

    ``state``: ``up`` (the last POST got a 2xx, or none failed yet), ``retrying``
    (the last POSTs failed, fewer than :data:`DOWN_AFTER` in a row), ``down``.
    ``since``: Unix time of the last change of ``state``. ``last_error``: why the last
    failed POST failed (kept after recovery), None before any failure.
    ``consecutive_failures``: failed POSTs since the last 2xx. ``deliveries``: POSTs
    by outcome since the node started. ``backlog``: received SETs not yet done.
    ``retrying``: the SETs being retried now, one per partner at most.
    """

    url: str
    state: Literal["up", "retrying", "down"]
    since: float
    last_error: str | None
    consecutive_failures: int
    deliveries: dict[str, int]
    backlog: int
    retrying: list[RetryingSet]


class WebhookHealth:
    """The webhook's state, updated by each POST's outcome.

    Args:
        url: the webhook's URL as shown (without its query).
        backlog: received SETs not yet done, read when asked.
        clock: Unix time (``time.time``).
    """

    def __init__(
        self, url: str, backlog: Callable[[], int], clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self.state: Literal["up", "retrying", "down"] = "up"
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self.deliveries: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.retrying: dict[str, RetryingSet] = {}
        self._backlog = backlog
        self._clock = clock
        self.since = clock()

    def delivered(self, partner: str) -> None:
        """A POST got a 2xx."""
        self.deliveries["delivered"] += 1
        self.retrying.pop(partner, None)
        if self.state == "down":
            log.info(
                "webhook up again after %d failed attempts in a row (down for %.1f s)",
                self.consecutive_failures,
                self._clock() - self.since,
            )
        self.consecutive_failures = 0
        self._move("up")

    def failed(self, outcome: Outcome, why: str, *, partner: str, jti: str, seq: int) -> None:
        """A POST failed (``refused`` or ``failed``, :data:`Outcome`) because ``why``."""
        self.deliveries[outcome] += 1
        self.consecutive_failures += 1
        self.last_error = why
        attempts = self.retrying.get(partner, {"attempts": 0})["attempts"] + 1
        self.retrying[partner] = RetryingSet(
            partner=partner, jti=jti, seq=seq, attempts=attempts, last_error=why
        )
        log.debug("webhook: partner=%s jti=%s attempt %d failed: %s", partner, jti, attempts, why)
        if self.consecutive_failures < DOWN_AFTER:
            self._move("retrying")
        elif self.state != "down":
            log.warning(
                "webhook down: %d attempts in a row failed, the last with: %s; "
                "received SETs wait in the store and are retried with backoff",
                self.consecutive_failures,
                why,
            )
            self._move("down")

    def _move(self, state: Literal["up", "retrying", "down"]) -> None:
        if state != self.state:
            self.state = state
            self.since = self._clock()

    def snapshot(self) -> WebhookState:
        """The state now, a fresh dict (JSON-ready)."""
        return WebhookState(
            url=self.url,
            state=self.state,
            since=self.since,
            last_error=self.last_error,
            consecutive_failures=self.consecutive_failures,
            deliveries=dict(self.deliveries),
            backlog=self._backlog(),
            retrying=[RetryingSet(**entry) for entry in self.retrying.values()],
        )
