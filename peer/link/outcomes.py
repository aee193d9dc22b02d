"""What became of one partner's SETs: counts, failures, publish-to-ack times.

Counts are kept in memory, seeded from the store at start, so ``stats()`` is cheap;
they are what ``stats()``, ``setpeer status`` and ``/metrics`` show. Failures of both
directions (our SETs the partner refused or that ran out of attempts, the partner's
SETs we refused) are kept in a ring of ``failures_kept``, oldest first.
"""

from __future__ import annotations

import collections
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
    "safe_description",
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
    refused: int = 0  # inbound SETs we refused, ever (seeded from the store)


class Observer(Protocol):
    """Where a Link reports timings (the node's metrics)."""

    def acked(self, partner: str, seconds: float) -> None: ...

    def store_time(self, operation: str, seconds: float) -> None: ...


class Outcomes:
    """Counters and failures of one partner, and when each of its SETs was published.

    Args:
        name: the partner.
        observer: told publish-to-ack times.
        keep: failures kept in memory (``failures_kept``), both directions together.
    """

    __slots__ = ("counters", "failed_by_err", "failures", "name", "observer", "_published_at")

    def __init__(self, name: str, observer: Observer | None = None, keep: int = 1000) -> None:
        self.name = name
        self.observer = observer
        self.counters = LinkCounters()
        self.failures: collections.deque[Failure] = collections.deque(maxlen=keep)
        self.failed_by_err: dict[str, int] = {}  # since this process started
        self._published_at: dict[str, float] = {}  # jti -> monotonic publish time

    def refused(self, jti: str, err: str, description: str) -> Failure:
        """We refused the partner's SET ``jti``: counted and kept (logged by the
        pipeline, at a bounded rate)."""
        failure = Failure(self.name, jti, err, description, "inbound", time.time())
        self.counters.refused += 1
        self.failures.append(failure)
        return failure

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
                err, description = effect.err, effect.description
                self.failed_by_err[err] = self.failed_by_err.get(err, 0) + 1
                self.failures.append(
                    Failure(self.name, effect.jti, err, description, "outbound", time.time())
                )
                log.warning(
                    "partner=%s jti=%s failed err=%s description=%s",
                    self.name,
                    safe_jti(effect.jti),
                    safe_jti(err),
                    safe_description(description),
                    extra={"partner": self.name, "jti": safe_jti(effect.jti), "err": err}
                    | {"description": description[:200]},
                )
                progressed = True
        return progressed


def safe_jti(jti: str) -> str:
    """A jti fit for a log line: bounded, printable (it may come from a partner)."""
    return jti[:64].encode("unicode_escape").decode("ascii")


MAX_LOGGED_DESCRIPTION = 200
"""Characters of a failure's description a log line shows (a partner writes some)."""


def safe_description(description: str) -> str:
    """A description fit for a log line: bounded, quoted, every control character
    escaped (``repr``: it may come from a partner, and must not start a line)."""
    cut = description[:MAX_LOGGED_DESCRIPTION]
    if len(description) > MAX_LOGGED_DESCRIPTION:
        cut += "..."
    return repr(cut)


class PartnerStats(TypedDict):
    """One partner's entry in ``Peer.stats()``."""

    session: SessionState
    pending: int
    inflight: int
    acked: int
    failed: int
    received: int
    unhandled: int
    """Received SETs the application has not marked done."""
    refused: int
    """The partner's SETs we refused, ever."""
