"""``Limits``: sizes and timings from ``[peer.limits]`` and ``[partners.limits]``.

Every default and every bound has a reason, written beside it: a node must answer any input
in bounded time and memory, and a value far outside the bounds is almost always a typo
(milliseconds written as seconds, a missing unit prefix), better refused at start-up
than discovered in production.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Final

from ..errors import ConfigError
from ..protocol.limits import FrameLimits

__all__ = ["DURATION_KEYS", "INTEGER_KEYS", "Limits", "limit_problems"]

# Upper bounds. Sizes: a frame is held in memory and parsed at once, so 256 MiB is far
# beyond any batch yet still refuses "10000000000". Counts: more SETs in flight than
# 100,000 only hides a stuck partner. Durations: a week is longer than any sensible
# timer; a larger value is a unit mistake.
_MAX_BYTES: Final = 256 * 1024 * 1024
_MAX_COUNT: Final = 100_000
_MAX_ATTEMPTS: Final = 1_000_000
_MAX_SECONDS: Final = 7 * 24 * 3600.0
# A backlog beyond 100 million SETs is a store the size of a disk, not a queue; more
# sessions than 10,000 per partner or connections than 1,000,000 exceed any fd limit;
# more than 10 million SETs/s is two orders of magnitude past the signature floor.
_MAX_PENDING: Final = 100_000_000
_MAX_SESSIONS: Final = 10_000
_MAX_CONNECTIONS: Final = 1_000_000
_MAX_RATE: Final = 10_000_000
# A million failures kept per partner is ~5 GB of store with 4 KiB jtis: past it, an
# operator wants a log pipeline, not a ring.
_MAX_FAILURES_KEPT: Final = 1_000_000
_DEFAULT_FRAME: Final = FrameLimits()
# A node renews its outbox leases at most once a second (it looks at them every
# second): a lease shorter than 3 s would leave less than two seconds' margin between
# renewals, and a live node's rows would be taken over by the others.
_MIN_LEASE_TTL: Final = 3.0

INTEGER_KEYS: Final = {
    "max_frame_bytes": _MAX_BYTES,
    "max_set_bytes": _MAX_BYTES,
    "max_sets_per_frame": _MAX_COUNT,
    "window": _MAX_COUNT,
    "max_attempts": _MAX_ATTEMPTS,
    "max_sessions": _MAX_SESSIONS,
    "max_inbound_sets_per_second": _MAX_RATE,
    "max_pending": _MAX_PENDING,
    "max_connections": _MAX_CONNECTIONS,
    "failures_kept": _MAX_FAILURES_KEPT,
}
DURATION_KEYS: Final = (
    "ack_timeout",
    "retry_initial",
    "retry_max",
    "reconnect_initial",
    "reconnect_max",
    "poll_redelivery",
    "long_poll_timeout",
    "handshake_timeout",
    "idle_timeout",
    "lease_ttl",
)
# (smaller, larger): the first must not exceed the second.
_ORDERED: Final = (
    ("retry_initial", "retry_max"),
    ("reconnect_initial", "reconnect_max"),
    ("max_set_bytes", "max_frame_bytes"),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits and timings; durations are seconds (float), sizes bytes.

    Attributes:
        max_frame_bytes: a WebSocket message or HTTP body. 1 MiB holds ~1,300 typical
            SETs, far more than one batch needs, and bounds a parse at ~10 ms.
        max_set_bytes: one compact SET. 64 KiB is 80x a typical 750-byte SET.
        max_sets_per_frame: SETs in one Communication Object; also the multi-push batch
            limit answered with 413 (MP-22).
        window: SETs in flight per partner. Stop-and-wait caps a session at ~5-7k SETs/s
            on loopback (measured); 1,000 keeps the pipe full.
        ack_timeout: how long a sent SET waits for its ack before it counts as lost
            and is sent again (PP-21).
        retry_initial: first delay of the jittered exponential backoff between attempts.
        retry_max: the backoff's ceiling. Five minutes rides out a partner's deployment
            without hammering it.
        max_attempts: attempts before a SET fails with ``delivery_exhausted``; 20 with the
            defaults spans well over an hour.
        reconnect_initial: first delay between session attempts.
        reconnect_max: ceiling of that backoff; also how long the HTTP fallback runs
            before WebSocket is tried again.
        poll_redelivery: when a polled SET left unacknowledged is served again (POLL-15).
        long_poll_timeout: how long a long poll waits; 25 s stays below the 30 s idle
            timeout common in proxies and load balancers.
        handshake_timeout: from TCP accept to the end of a request's headers (TLS and
            the WebSocket upgrade included), so a slow or silent client (slowloris)
            cannot hold a socket open for free.
        idle_timeout: an HTTP keep-alive connection with no request, or a WebSocket
            session on which nothing (not even a ping or pong) arrives, is closed; a
            request body must arrive whole within it (else 408).
        max_sessions: concurrent inbound sessions of one partner: its WebSocket
            sessions plus its HTTP requests being served. Our own node, as a partner,
            holds at most 8 pushes, or 4 multi-push batches, plus a WebSocket or 4 HTTP
            push-pull requests, plus a poll; 16 covers that with room for a reconnect
            overlapping the old session. Beyond it: 429 with ``Retry-After``, or the
            upgrade refused.
        max_inbound_sets_per_second: SETs one partner may send us per second, averaged
            over a second's burst. Each costs a signature check (~0.1 ms for ES256), so
            50,000/s is far above any one partner's honest rate yet bounds the CPU one
            credential can take. Beyond it: HTTP 429, or a WebSocket read pauses.
        max_pending: SETs per partner waiting in either direction: our outbox (not yet
            acked or failed; beyond it ``publish`` raises ``Backpressure``) and the
            inbox (stored, not yet ``done()``; beyond it the partner's SETs are refused
            with 429 or close 1013, never acked, so nothing is lost). A million
            750-byte SETs is ~1 GB of store: a partner down for a day at ~10 SETs/s.
        max_connections: open connections the node serves at once, any partner or
            none (only ``[peer.limits]`` counts). Beyond it a new connection is closed
            at once; 1,000 stays under the common 1,024 file-descriptor limit.
        failures_kept: refused inbound SETs kept per partner (a ring in the store: the
            oldest go as new ones come), and failures of both directions kept in memory
            for ``Peer.failures()``. 1,000 covers a bad deployment's burst yet bounds
            what a partner sending junk costs the store (~5 MB with 4 KiB jtis).
        lease_ttl: several nodes on one PostgreSQL store: how long a node's lease on
            outbox rows lasts unless renewed (every third of it, at most every second),
            so about the longest a dead node's SETs wait for another node. 10 s rides
            out a node's stall (a long garbage collection, a slow commit) without a
            takeover; at least 3 s.
    """

    max_frame_bytes: int = 1024 * 1024
    max_set_bytes: int = 64 * 1024
    max_sets_per_frame: int = 1000
    window: int = 1000
    ack_timeout: float = 10.0
    retry_initial: float = 1.0
    retry_max: float = 300.0
    max_attempts: int = 20
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    poll_redelivery: float = 30.0
    long_poll_timeout: float = 25.0
    handshake_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_sessions: int = 16
    max_inbound_sets_per_second: int = 50_000
    max_pending: int = 1_000_000
    max_connections: int = 1000
    failures_kept: int = 1000
    lease_ttl: float = 10.0

    def frame_limits(self) -> FrameLimits:
        """The parse limits for what a partner sends us (``peer.protocol.limits``).

        The partner acknowledges at most our window in one object, so the ack limit
        grows with ``window`` rather than refusing a legitimate frame.

        Raises:
            ConfigError: these limits are invalid (see :func:`limit_problems`).
        """
        problems = limit_problems(self, "limits")
        if problems:
            raise ConfigError(problems)
        return FrameLimits(
            max_frame_bytes=self.max_frame_bytes,
            max_set_bytes=self.max_set_bytes,
            max_sets_per_frame=self.max_sets_per_frame,
            max_acks_per_frame=max(_DEFAULT_FRAME.max_acks_per_frame, self.window),
        )

    def normalized(self) -> Limits:
        """A copy with every duration as a float (TOML ``5`` is an int)."""
        changes: dict[str, Any] = {
            key: float(getattr(self, key))
            for key in DURATION_KEYS
            if type(getattr(self, key)) is int
        }
        return dataclasses.replace(self, **changes) if changes else self


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _value_problem(key: str, value: object) -> str | None:
    if key in INTEGER_KEYS:
        if not _is_int(value):
            return "must be an integer"
        assert isinstance(value, int)
        if not 1 <= value <= INTEGER_KEYS[key]:
            return f"must be between 1 and {INTEGER_KEYS[key]}"
        return None
    if not (_is_int(value) or isinstance(value, float)):
        return "must be a number of seconds"
    assert isinstance(value, int | float)
    # Compare before any float conversion: a 400-digit TOML integer overflows a float.
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number of seconds"
    if not 0 < value <= _MAX_SECONDS:
        return f"must be more than 0 and at most {_MAX_SECONDS:.0f} seconds (a week)"
    if key == "lease_ttl" and value < _MIN_LEASE_TTL:
        return f"must be at least {_MIN_LEASE_TTL:.0f} seconds (leases are renewed each second)"
    return None


def limit_problems(
    limits: object, path: str, inherited: Limits | None = None
) -> list[tuple[str, str]]:
    """Every problem with ``limits``, each keyed ``path.key``.

    Args:
        limits: the value to check (anything: a config built in code may hold junk).
        path: key path of the table, e.g. ``"peer.limits"`` or ``"partners[0].limits"``.
        inherited: the peer's limits when checking a partner's; values the partner
            inherited unchanged were reported at ``peer.limits`` already.

    Returns:
        ``(key_path, message)`` pairs, empty when the limits are valid.
    """
    if not isinstance(limits, Limits):
        return [(path, "must be a Limits table")]
    problems: list[tuple[str, str]] = []
    overridden: set[str] = set()
    bad: set[str] = set()
    for field in dataclasses.fields(Limits):
        value = getattr(limits, field.name)
        message = _value_problem(field.name, value)
        if message is not None:
            bad.add(field.name)
        if inherited is not None:
            theirs = getattr(inherited, field.name)
            if value is theirs or (type(value) is type(theirs) and value == theirs):
                continue
        overridden.add(field.name)
        if message is not None:
            problems.append((f"{path}.{field.name}", message))
    for small, large in _ORDERED:
        if bad & {small, large} or not overridden & {small, large}:
            continue
        if getattr(limits, small) > getattr(limits, large):
            problems.append((f"{path}.{small}", f"must not exceed {large}"))
    return problems
