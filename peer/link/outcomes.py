"""What became of one partner's outbound SETs: counts, failures, publish-to-ack times.

Counts are kept in memory, seeded from the store at start, so ``stats()`` is cheap;
they are what ``stats()``, ``setpeer status`` and ``/metrics`` show.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Literal, Protocol, TypedDict

from ..protocol.effects import Acked, Effect, Failed
from ..protocol.vocabulary import SessionState

__all__ = [
    "MAX_TIMED",
    "Failure",
    "LinkCounters",
    "Observer",
    "Outcomes",
    "PartnerStats",
    "safe_jti",
]

log = logging.getLogger("setpeer.link")

MAX_TIMED = 100_000
"""SETs whose publish time is kept for the latency histogram; beyond it (a partner
down for long, a huge backlog) newer SETs go untimed rather than grow memory."""


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """A SET that ended in error (``Peer.failures()``).

    Attributes:
        partner: the partner's name.
        jti: the SET's jti (as the partner sent it, for an inbound refusal).
        err: the RFC 8935 error code (``invalid_request``, ...), or ours
            (``delivery_exhausted``).
        description: the reason in words, the partner's for an outbound SET.
        direction: ``outbound`` (a partner refused ours, or attempts ran out) or
            ``inbound`` (we refused the partner's).
        at: when it ended, Unix time (0 when not known: a row kept before it was).
    """

    partner: str
    jti: str
    err: str
    description: str
    direction: Literal["outbound", "inbound"] = "outbound"
    at: float = 0.0


@dataclasses.dataclass(slots=True)
class LinkCounters:
    """In-memory counts, seeded from the store at start (so ``stats()`` is cheap)."""

    unfinished: int = 0  # outbox rows neither acked nor failed
    acked: int = 0
    failed: int = 0
    received: int = 0  # distinct inbound SETs from this partner
    sent: int = 0  # transmissions, retries included (since this process started)


class Observer(Protocol):
    """Where a Link reports timings (the node's metrics)."""

    def acked(self, partner: str, seconds: float) -> None: ...

    def store_time(self, operation: str, seconds: float) -> None: ...


class Outcomes:
    """Counters and failures of one partner, and when each of its SETs was published."""

    __slots__ = ("counters", "failures", "name", "observer", "_published_at")

    def __init__(self, name: str, observer: Observer | None = None) -> None:
        self.name = name
        self.observer = observer
        self.counters = LinkCounters()
        self.failures: list[Failure] = []
        self._published_at: dict[str, float] = {}  # jti -> monotonic publish time

    def enqueued(self, jti: str, *, timed: bool) -> None:
        """A SET was committed to the outbox; ``timed`` starts its latency clock."""
        if timed and len(self._published_at) < MAX_TIMED:
            self._published_at[jti] = time.monotonic()
        self.counters.unfinished += 1

    def count(self, effects: list[Effect]) -> bool:
        """Count the Ledger's decisions; True if a SET was acked or failed."""
        progressed = False
        counters = self.counters
        for effect in effects:
            if isinstance(effect, Acked):
                counters.acked += 1
                counters.unfinished -= 1
                progressed = True
                published = self._published_at.pop(effect.jti, None)
                if published is not None and self.observer is not None:
                    self.observer.acked(self.name, time.monotonic() - published)
            elif isinstance(effect, Failed):
                self._published_at.pop(effect.jti, None)
                counters.failed += 1
                counters.unfinished -= 1
                self.failures.append(Failure(self.name, effect.jti, effect.err, effect.description))
                log.warning(
                    "partner=%s jti=%s failed err=%s", self.name, safe_jti(effect.jti), effect.err
                )
                progressed = True
        return progressed


def safe_jti(jti: str) -> str:
    """A jti fit for a log line: bounded, printable (it may come from a partner)."""
    return jti[:64].encode("unicode_escape").decode("ascii")


class PartnerStats(TypedDict):
    """One partner's entry in ``Peer.stats()``."""

    session: SessionState
    pending: int
    inflight: int
    acked: int
    failed: int
    received: int
