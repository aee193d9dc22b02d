"""Link: everything about one partner — its Ledger, its sessions, its counters.

Transports call in with what they read (:meth:`Link.frame_received`) and ask for
what to write (:meth:`Link.take_frame`); the Link persists the Ledger's decisions
before anything is written (persist, then send) and wakes whoever can use them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast

import anyio

from .auth.outbound import OutboundAuth
from .errors import CLOSE_GOING_AWAY, Overloaded, SETRejected, StoreError
from .protocol.communication import CommunicationObject, SetErr
from .protocol.effects import Acked, Effect, Failed, Sent
from .protocol.ledger import ENVELOPE_BYTES, Ledger
from .signal import Signal
from .store.base import Answer, InboundNew, OutboundRow, SharedStore, Store
from .tokens.verify import UnknownKey
from .transports.partner_limits import PartnerGuard

if TYPE_CHECKING:
    from .auth.partner_keys import RemoteKeys
    from .config import Partner
    from .metrics import NodeMetrics
    from .tokens.verify import Verifier
    from .transports.websocket import Channel

__all__ = ["Failure", "Link", "LinkCounters"]

log = logging.getLogger("setpeer.link")

# Frames with at least this many SETs are verified in a worker thread; a handful
# costs less inline than the hand-off (~30 µs) and keeps batch-1 latency low.
_VERIFY_IN_THREAD = 8

# Seconds an attempt (Sent) waits before it is written: most SETs are acked sooner,
# and an acked row is then written once (acked) instead of twice. ``setpeer status``
# sees an attempt this much later; a crash may leave it uncounted.
_HOLD_SENT = 1.0
# Seconds a frame's SETs may take to be stored once handed to the store, even when
# their session ends meanwhile (then they are still counted; see accept_sets).
_STORE_WAIT = 30.0

LEASE_TTL = 10.0
"""Seconds a node's lease on outbox rows lasts unless renewed (every third of it):
with several nodes on one store, about the longest a dead node's SETs wait."""

# Session kinds, best first, as ``stats()`` and ``status`` name them.
SESSION_KINDS = ("websocket", "http", "multipush", "push", "poll")
_PUSHPULL = ("websocket", "http")

# SETs whose publish time is kept for the latency histogram; beyond it (a partner
# down for long, a huge backlog) newer SETs go untimed rather than grow memory.
_MAX_TIMED = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """An outbound SET that ended in error (API.md ``node.failures()``)."""

    partner: str
    jti: str
    err: str
    description: str


@dataclasses.dataclass(slots=True)
class LinkCounters:
    """In-memory counts, seeded from the store at start (so ``stats()`` is cheap)."""

    unfinished: int = 0  # outbox rows neither acked nor failed
    acked: int = 0
    failed: int = 0
    received: int = 0  # distinct inbound SETs from this partner
    sent: int = 0  # transmissions, retries included (since this process started)


class Link:
    """One partner: delivery state, sessions and counters.

    Args:
        partner: the partner's configuration.
        store: the node's store.
        ledger: delivery state for this partner.
        verifier: checks SETs this partner sends us.
        inbox_signal: set when a new inbound SET is stored (wakes ``receive()``).
        progress_signal: set whenever a SET is acked or failed (wakes ``flush()``).
    """

    def __init__(
        self,
        *,
        partner: Partner,
        store: Store,
        ledger: Ledger,
        verifier: Verifier,
        inbox_signal: Signal,
        progress_signal: Signal,
    ) -> None:
        self.partner = partner
        self.name = partner.name
        self.store = store
        self.ledger = ledger
        self.verifier = verifier
        self.limits = partner.limits
        self.frame_limits = partner.limits.frame_limits()
        self.counters = LinkCounters()
        self.failures: list[Failure] = []
        self.sessions: dict[str, int] = {}  # kind -> open count
        self.outbound_ready = Signal()  # something to send: SETs due or answers owed
        self._feed = Signal()  # the store may hold SETs the Ledger has not loaded
        self._timer = Signal()  # the Ledger's next deadline moved
        self._inbox_signal = inbox_signal
        self._progress = progress_signal
        self._loaded_seq = 0
        self._maybe_more = True
        self._resync = False
        self._writes: list[Effect] = []  # decisions not yet in the store
        # Attempts not written yet, by jti, oldest first, with when they were made
        # (see _HOLD_SENT).
        self._held: dict[str, tuple[Sent, float]] = {}
        self._writing = False
        self._write_signal = Signal()
        self._synced = Signal()
        self._seen: dict[str, float] = {}  # kind -> when the partner last called us
        self.closing = False
        self.channels: set[Channel] = set()  # open WebSocket sessions, either side
        self.remote_keys: RemoteKeys | None = None  # the partner's jwks_uri, if it has one
        self.rejected: dict[str, int] = {}  # inbound SETs refused, by error code
        # Several nodes on one store (issue 7): the name this node leases outbox rows
        # under, each node sending the rows it leased; None when the store is ours
        # alone (SQLite, memory), and every unfinished row is ours to send.
        self.row_owner: str | None = None
        self.rows_held = False  # rows leased under row_owner may sit in the Ledger
        self._reserved = 0  # Ledger room promised to our publishes being committed
        self.metrics: NodeMetrics | None = None  # latency histograms (issue 7)
        self._published_at: dict[str, float] = {}  # jti -> monotonic publish time
        # issue 6: bearer, OAuth client credentials or client certificate to the partner.
        self.outbound_auth = OutboundAuth(partner)
        # issue 6: inbound sessions, SET rate and inbox backlog of this partner.
        self.inbound = PartnerGuard(partner.limits)
        # SETs per frame we send: 100-SET frames cost well under 1 µs per SET on the
        # wire (PERFORMANCE.md); never more than the partner's batch limit.
        self.batch_size = min(100, partner.limits.max_sets_per_frame)

    # -- state ---------------------------------------------------------------------

    @property
    def session_state(self) -> str:
        """The best open session kind (:data:`SESSION_KINDS`), or ``down``."""
        for kind in SESSION_KINDS:
            if self.sessions.get(kind):
                return kind
        # As an HTTP responder we only see requests: "http" (or "poll") while the
        # partner keeps making them.
        for kind in SESSION_KINDS:
            if self._recent(kind):
                return kind
        return "down"

    def http_seen(self, kind: str = "http") -> None:
        """The partner made a request to us (``http`` push-pull, ``poll``, ...)."""
        was = self._recent(kind)
        self._seen[kind] = time.monotonic()
        if not was and self.row_owner is not None:
            self.rows_wanted()  # a way out opened: lease rows for it

    def _recent(self, kind: str) -> bool:
        """The partner made a ``kind`` request to us within two idle timeouts."""
        return self._seen.get(kind, -math.inf) > time.monotonic() - 2 * self.limits.idle_timeout

    @property
    def can_send(self) -> bool:
        """Whether SETs have a way out to the partner from this node right now.

        With several nodes on one store, a node leases outbox rows only while it
        does: push and multi-push dial per request; push-pull needs a session (ours
        or the partner's, WebSocket or HTTP requests); poll needs the partner polling.
        """
        via = self.partner.send_via
        if via in ("push", "multipush"):
            return True
        if via == "poll":
            return self._recent("poll")
        return any(self.sessions.get(k) for k in _PUSHPULL) or self._recent("http")

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate us to the partner (issue 6: ``outbound_auth``)."""
        return self.outbound_auth.current_headers()

    async def close_sessions(self) -> None:
        """Close every open WebSocket with 1001 going away (graceful shutdown)."""
        for channel in list(self.channels):
            await channel.close(CLOSE_GOING_AWAY, "going away")

    def session_opened(self, kind: str) -> None:
        self.sessions[kind] = self.sessions.get(kind, 0) + 1
        log.info("partner=%s session=%s opened", self.name, kind)
        self._write_signal.set()  # the session state goes to the store for `status`
        if self.row_owner is not None:
            self.rows_wanted()

    def session_closed(self, kind: str, via: object = None) -> None:
        """A session of ``kind`` ended; ``via`` names it if answers were pinned to it."""
        if via is not None:
            self.ledger.session_ended(via)
        self.sessions[kind] = max(0, self.sessions.get(kind, 0) - 1)
        log.info("partner=%s session=%s closed", self.name, kind)
        self._write_signal.set()
        if kind in _PUSHPULL and not any(self.sessions.get(k) for k in _PUSHPULL):
            # Answers to SETs in flight may never come on a dead session (PP-30). The
            # adapters' requests settle their own SETs (retry_later, sets_lost): a
            # failed POST must not resend SETs whose own requests are still open.
            self.ledger.session_lost(now=time.time())
            self._timer.set()
            self.outbound_ready.set()

    def stats(self) -> dict[str, int | str]:
        """API.md ``stats()`` entry for this partner."""
        inflight = self.ledger.inflight
        return {
            "session": self.session_state,
            "pending": max(0, self.counters.unfinished - inflight),
            "inflight": inflight,
            "acked": self.counters.acked,
            "failed": self.counters.failed,
            "received": self.counters.received,
        }

    @property
    def idle(self) -> bool:
        """Nothing pending or in flight (``flush()``'s condition)."""
        return self.counters.unfinished <= 0

    # -- start-up ------------------------------------------------------------------

    async def restore(self) -> None:
        """Seed counters, failures and owed answers from the store (after a restart)."""
        stats = await self.store.stats()
        counts = stats.get(self.name)
        if counts is not None:
            self.counters.unfinished = counts.pending + counts.inflight
            self.counters.acked = counts.acked
            self.counters.failed = counts.failed
            self.counters.received = counts.received
        for row in await self.store.failures(self.name):
            self.failures.append(Failure(self.name, row.jti, row.err, row.description))
        for answer in await self.store.acks_due(self.name):
            self.ledger.owe(answer.jti, _set_err(answer))

    # -- outbound ------------------------------------------------------------------

    def lease_own(self) -> bool:
        """Shared store: whether a SET about to be published should be leased to this
        node as it is committed and handed straight to the Ledger (we have a way out
        to the partner and room), rather than left for any node to lease.

        True reserves the room: then call :meth:`enqueued` with the token once the
        SET is committed, or :meth:`own_abandoned` if the commit failed.
        """
        if self.row_owner is None or not self.can_send or self._room() <= 0:
            return False
        self._reserved += 1
        return True

    def _room(self) -> int:
        """Rows the Ledger can take now, less those promised to publishes committing."""
        return self.ledger.room() - self._reserved

    def own_abandoned(self) -> None:
        """A publish :meth:`lease_own` reserved for did not commit (or may have: its
        lease then runs out unrenewed, and the row is leased again)."""
        self._reserved -= 1

    def enqueued(self, jti: str, token: str | None = None, *, timed: bool = True) -> None:
        """The SET ``jti`` for this partner was committed to the outbox; ``timed``
        starts the clock of its publish-to-ack latency. ``token``: it was leased to us
        (:meth:`lease_own`) and goes to the Ledger now, unread."""
        if timed and len(self._published_at) < _MAX_TIMED:
            self._published_at[jti] = time.monotonic()
        self.counters.unfinished += 1
        if token is not None:
            self._reserved -= 1
            if self.ledger.enqueue(jti, token, now=time.time()):
                self.rows_held = True
                self.outbound_ready.set()  # due now: no deadline for the clock
            return
        self._maybe_more = True
        self._feed.set()

    def rows_wanted(self) -> None:
        """Shared store: look for rows to lease (a session opened, a lease period
        passed: another node's leases may have expired)."""
        self._maybe_more = True
        self._feed.set()

    def rows_released(self) -> None:
        """Shared store: our leases were given up (no way out to the partner): forget
        the rows, another node sends them."""
        self.rows_held = False
        self.ledger.drop_outbound()
        self._timer.set()

    def store_changed(self) -> None:
        """Another process may have enqueued for this partner (``setpeer send``)."""
        self._maybe_more = True
        self._resync = True
        self._feed.set()

    async def _feeder(self) -> None:
        """Keep the Ledger's bounded buffer filled from the outbox, oldest first."""
        while True:
            woken = self._feed.snapshot()
            if self._resync:
                # Another process enqueued: the store's count is the truth.
                self._resync = False
                try:
                    counts = (await self.store.stats()).get(self.name)
                except StoreError:
                    counts = None
                    self._resync = True  # again on the next round
                if counts is not None:
                    self.counters.unfinished = counts.pending + counts.inflight
            room = self._room()
            owner = self.row_owner
            if room > 0 and self._maybe_more and (owner is None or self.can_send):
                # Cleared before the read: an ``enqueued()`` while it runs sets it
                # again, so a row committed just after the read is never stranded.
                self._maybe_more = False
                try:
                    if owner is None:
                        rows = await self.store.load_outbound(
                            self.name, limit=room, after_seq=self._loaded_seq
                        )
                    else:
                        # Oldest unleased rows first, whatever their seq: a shared
                        # store hands out seqs before commit, so no cursor is safe.
                        shared = cast(SharedStore, self.store)
                        rows = await shared.lease_outbound(
                            self.name, owner, limit=room, ttl=LEASE_TTL
                        )
                        self.rows_held |= bool(rows)
                except StoreError as exc:
                    # The store is unreachable (a database restart): try again soon;
                    # what is in the outbox stays there.
                    log.warning("partner=%s cannot read the outbox: %s", self.name, exc)
                    self._maybe_more = True
                    await anyio.sleep(0.5)
                    continue
                self._track(rows)
                if rows:
                    self._loaded_seq = max(self._loaded_seq, rows[-1].seq)
                if len(rows) >= room:
                    self._maybe_more = True  # the buffer filled: there may be more
                if self._maybe_more:
                    continue
            await woken.wait()

    def _track(self, rows: list[OutboundRow]) -> None:
        """Give outbox rows to the Ledger (it skips jtis it holds or finished)."""
        now = time.time()
        added = False
        for row in rows:
            # A row with its attempts used up keeps its last deadline (a late ack may
            # still come); the others go out again at once.
            spent = row.attempts >= self.limits.max_attempts
            added |= self.ledger.enqueue(
                row.jti,
                row.token,
                now=now,
                attempts=row.attempts,
                not_before=row.next_attempt_at if spent else None,
            )
        self._apply(self.ledger.effects())  # rows failed as they came (too large)
        if added:
            self.outbound_ready.set()
            self._timer.set()

    async def _clock(self) -> None:
        """Wake at the Ledger's next deadline: retries due, answers overdue."""
        while True:
            woken = self._timer.snapshot()
            deadline = self.ledger.next_deadline()
            delay = math.inf if deadline is None else max(0.0, deadline - time.time())
            with anyio.move_on_after(delay):
                await woken.wait()
            now = time.time()
            if deadline is not None and now >= deadline:
                self.ledger.tick(now=now)
                self._apply(self.ledger.effects())
                self.outbound_ready.set()
                self._feed.set()  # SETs that failed made room in the buffer

    async def take_frame(self, *, max_sets: int, via: object = None) -> CommunicationObject | None:
        """The next Communication Object to send, persisted first; None if nothing.

        Args:
            max_sets: most SETs to include (the peer's ``maxResponseEvents``, or our
                batch size on a WebSocket).
            via: the session it goes on: answers owed on another live session of
                this partner stay for that one (see :meth:`accept_sets`).
        """
        if self.partner.send_via != "pushpull":
            max_sets = 0  # SETs go by the partner's own protocol; answers still ride along
        frame = self.ledger.next_frame(
            now=time.time(),
            max_sets=max_sets,
            via=via,
            max_bytes=self.partner.limits.max_frame_bytes,
        )
        self._apply(self.ledger.effects())
        if frame is not None and frame.sets:
            self.counters.sent += len(frame.sets)
            self._timer.set()
        return frame

    # -- outbound by the adapters (push, multi-push, poll) ---------------------------

    def take_sets(self, limit: int) -> dict[str, str]:
        """Due SETs to send now (oldest first, within the window): jti -> SET.

        They are in flight until answered; settle them with :meth:`answers_received`,
        :meth:`retry_later` or :meth:`sets_lost`.
        """
        sets = self.ledger.take_sets(
            now=time.time(),
            limit=limit,
            max_bytes=self.partner.limits.max_frame_bytes - ENVELOPE_BYTES,
        )
        self._apply(self.ledger.effects())
        if sets:
            self.counters.sent += len(sets)
            self._timer.set()
        return sets

    def answers_received(self, ack: Iterable[str], set_errs: Mapping[str, SetErr]) -> None:
        """The partner's answers, on whatever request they came (MP-18); unknown jtis
        are ignored (MP-5)."""
        self.ledger.errs_received(set_errs)
        self.ledger.ack_received(ack)
        self._apply(self.ledger.effects())
        self._feed.set()  # room in the window
        self.outbound_ready.set()

    def retry_later(self, jtis: Iterable[str], not_before: float = 0.0) -> None:
        """These in-flight SETs were not taken (5xx, 429, timeout): back off (PUSH-21)."""
        self.ledger.retry_later(jtis, now=time.time(), not_before=not_before)
        self._apply(self.ledger.effects())
        self._timer.set()
        self._feed.set()  # SETs that failed made room in the buffer

    def sets_lost(self, jtis: Iterable[str]) -> None:
        """These in-flight SETs may not have arrived: due again now (PP-30)."""
        self.ledger.sets_lost(jtis, now=time.time())
        self._timer.set()
        self.outbound_ready.set()

    @property
    def has_inflight(self) -> bool:
        """SETs sent and not answered yet (MP-3: worth an empty batch to collect)."""
        return self.ledger.inflight > 0

    async def wait_outbound(self, timeout: float) -> None:
        """Until there may be something to send, or ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self.outbound_ready.wait()

    async def frame_delivered(self, frame: CommunicationObject) -> None:
        """``frame`` was written: the answers in it are paid."""
        if frame.ack or frame.set_errs:
            self.ledger.frame_delivered(frame)
            self._apply(self.ledger.effects())
            self._progress.set()

    def frame_lost(self, frame: CommunicationObject) -> None:
        """``frame`` may not have arrived: owe its answers again, resend its SETs soon."""
        self.ledger.frame_lost(frame, now=time.time())
        self._timer.set()
        self.outbound_ready.set()

    # -- inbound -------------------------------------------------------------------

    async def frame_received(
        self, frame: CommunicationObject, via: object = None
    ) -> dict[str, SetErr | None]:
        """Take in a partner's Communication Object: answers to our SETs, and its SETs.

        ``via`` names the session it came on (see :meth:`accept_sets`).

        Returns:
            The verdict per inbound jti: None (accepted, or a duplicate) or the error.
        """
        if frame.ack or frame.set_errs:
            self.ledger.frame_received(frame, now=time.time())
            self._apply(self.ledger.effects())
            self._feed.set()  # room in the window
            self.outbound_ready.set()
        if frame.sets or frame.rejected:
            return await self.accept_sets(frame.sets, frame.rejected, via=via)
        return {}

    async def accept_sets(
        self,
        sets: Mapping[str, str],
        rejected: Mapping[str, SetErr] | None = None,
        *,
        owe: bool = True,
        via: object = None,
    ) -> dict[str, SetErr | None]:
        """Verify, store and owe answers for SETs from this partner (DESIGN "A SET coming in").

        Valid SETs and every answer are committed in one transaction before anyone
        is told; a duplicate ``(iss, jti)`` is not stored again but still acknowledged.

        Args:
            sets: jti -> compact SET, as received.
            rejected: SETs the codec refused already, with their errors.
            owe: answer them in a later frame or poll (push-pull, poll). False when
                the HTTP response itself is the answer (RFC 8935 push, multi-push):
                nothing is owed afterwards; a lost response means a resend, deduped.
            via: the session they came on. Their answers go back on it while it
                lives (then on any): when the partner runs several nodes on one
                store, each node hears the answers to the SETs it sent.
        """
        self.inbound.received(len(sets) + len(rejected or {}))
        if sets and self.remote_keys is not None and not self.remote_keys.loaded:
            await self.remote_keys.refetch()
            self.remote_keys.require_loaded()  # still none: refused, retryable (503/1013)
        verdicts, items, unknown = await self._verify(sets)
        if unknown and self.remote_keys is not None and await self.remote_keys.refetch():
            # A kid we do not know: the partner may have rotated its keys. Check these
            # SETs again with the keys fetched now (issue 6: rotation loses no SET).
            again, more, _ = await self._verify({jti: sets[jti] for jti in unknown})
            verdicts.update(again)
            items.extend(more)
        for jti, refusal in (rejected or {}).items():
            verdicts[jti] = refusal
        answers = [
            Answer(jti, None if err is None else err.err, None if err is None else err.description)
            for jti, err in verdicts.items()
            if owe
        ]
        for err in verdicts.values():
            if err is not None:
                self.count_rejected(err.err)
        started = time.monotonic()
        # Shielded: SETs handed to the store are committed even if this session dies
        # meanwhile (its peer went away mid-frame), and what was stored must be counted
        # (received, inbox backlog) and handed to the application. Bounded: a store
        # that does not answer within _STORE_WAIT seconds is refused like a failed one.
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(_STORE_WAIT):
                    fresh = await self.store.accept_inbound(self.name, items, answers)
            except (StoreError, TimeoutError) as exc:
                # Not stored, so not acknowledged: refused whole and retryable (503 /
                # close 1013); the partner keeps the SETs and sends them again.
                why = str(exc) or f"no answer in {_STORE_WAIT:g} s"
                log.warning("partner=%s cannot store its SETs: %s", self.name, why)
                raise Overloaded("cannot store SETs now, try again", retry_after=1.0) from exc
            new = sum(1 for flag in fresh if flag)
            self.inbound.stored(new)
            if new:
                self.counters.received += new
                self._inbox_signal.set()
        if self.metrics is not None:
            self.metrics.store_time("accept_inbound", time.monotonic() - started)
        # A session that ended while the store worked owes nothing on itself: the
        # answers are in the store (acks_due), and the partner's resend is answered.
        await anyio.lowlevel.checkpoint()
        if owe:
            for jti, err in verdicts.items():
                self.ledger.owe(jti, err, via)
            self.outbound_ready.set()
        return verdicts

    async def _verify(
        self, sets: Mapping[str, str]
    ) -> tuple[dict[str, SetErr | None], list[InboundNew], list[str]]:
        if len(sets) >= _VERIFY_IN_THREAD:
            # The signature checks release the GIL: a frame's worth runs in a worker
            # thread beside the event loop, on the other core (PERFORMANCE.md).
            return await anyio.to_thread.run_sync(self._verify_all, sets)
        return self._verify_all(sets)

    def count_rejected(self, err: str) -> None:
        """One inbound SET refused with ``err`` (``setpeer_sets_rejected_total``)."""
        self.rejected[err] = self.rejected.get(err, 0) + 1

    def _verify_all(
        self, sets: Mapping[str, str]
    ) -> tuple[dict[str, SetErr | None], list[InboundNew], list[str]]:
        """Verify each SET: the verdict per jti, the SETs to store, and the jtis whose
        ``kid`` no key of the partner has (worth a key refetch)."""
        now = time.time()
        verdicts: dict[str, SetErr | None] = {}
        items: list[InboundNew] = []
        unknown: list[str] = []
        for jti, token in sets.items():
            try:
                verified = self.verifier.verify(token, now=now, expected_jti=jti)
            except SETRejected as exc:
                verdicts[jti] = SetErr(exc.err, exc.description)
                if isinstance(exc, UnknownKey):
                    unknown.append(jti)
                log.info("partner=%s jti=%s rejected err=%s", self.name, _safe(jti), exc.err)
                continue
            verdicts[jti] = None
            items.append(InboundNew(verified.iss, jti, token, verified.claims))
        return verdicts, items, unknown

    # -- persistence ---------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        """Count the Ledger's decisions now; write them behind (see :meth:`_persist`)."""
        if not effects:
            return
        now = time.monotonic()
        for effect in effects:
            if isinstance(effect, Sent):
                # A retry replaces the attempt held but keeps its time and place: the
                # count reaches the store a second after the first unwritten attempt,
                # however often the SET is retried (the dict stays in time order).
                held = self._held.get(effect.jti)
                self._held[effect.jti] = (effect, now if held is None else held[1])
                continue
            if isinstance(effect, Acked):
                self._held.pop(effect.jti, None)  # finished: its attempts are moot
            elif isinstance(effect, Failed) and effect.jti in self._held:
                self._writes.append(self._held.pop(effect.jti)[0])  # failures show attempts
            self._writes.append(effect)
        self._write_signal.set()
        progressed = False
        for effect in effects:
            if isinstance(effect, Acked):
                self.counters.acked += 1
                self.counters.unfinished -= 1
                progressed = True
                published = self._published_at.pop(effect.jti, None)
                if published is not None and self.metrics is not None:
                    self.metrics.acked(self.name, time.monotonic() - published)
            elif isinstance(effect, Failed):
                self._published_at.pop(effect.jti, None)
                self.counters.failed += 1
                self.counters.unfinished -= 1
                self.failures.append(Failure(self.name, effect.jti, effect.err, effect.description))
                log.warning(
                    "partner=%s jti=%s failed err=%s", self.name, _safe(effect.jti), effect.err
                )
                progressed = True
        if progressed:
            self._progress.set()

    async def _persist(self) -> None:
        """Write bookkeeping behind the hot path, many decisions per transaction.

        Attempts, acks and errors received, answers paid: none of them is a promise
        to anyone, so the sender does not wait for them. A crash loses at most the
        last few milliseconds of it, and the cost is benign: an acked SET is sent
        again and deduplicated by the partner, an attempt goes uncounted. What is a
        promise — the outbox row behind ``publish``, the inbox row behind an ack —
        is written durably before anyone is told (``enqueue``, ``accept_inbound``).
        """
        stored_state = ""
        while True:
            woken = self._write_signal.snapshot()
            state = self.session_state
            if state != stored_state:
                try:
                    await self.store.set_session(self.name, state)
                    stored_state = state
                except StoreError as exc:
                    log.warning("partner=%s cannot record session state: %s", self.name, exc)
            self._release_held(time.monotonic() - _HOLD_SENT)
            if not self._writes:
                if not self._held:
                    await woken.wait()
                else:
                    oldest = next(iter(self._held.values()))[1]
                    with anyio.move_on_after(oldest + _HOLD_SENT - time.monotonic()):
                        await woken.wait()
                continue
            batch, self._writes = self._writes, []
            self._writing = True
            try:
                started = time.monotonic()
                await self.store.apply(self.name, batch)
                if self.metrics is not None:
                    self.metrics.store_time("apply", time.monotonic() - started)
            except StoreError as exc:
                log.warning("partner=%s store write failed, retrying: %s", self.name, exc)
                self._writes[:0] = batch
                await anyio.sleep(0.1)
            finally:
                self._writing = False
                self._synced.set()

    def _release_held(self, before: float) -> None:
        """Attempts made before ``before`` (monotonic) go to the next write."""
        while self._held:
            jti, (sent, at) = next(iter(self._held.items()))
            if at > before:
                return
            del self._held[jti]
            self._writes.append(sent)

    async def sync(self) -> None:
        """Wait until every decision so far is in the store."""
        self._release_held(math.inf)
        self._write_signal.set()
        while self._writes or self._writing:
            await self._synced.wait()

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Background work of this partner until cancelled."""
        async with anyio.create_task_group() as tg:
            if self.remote_keys is not None:
                tg.start_soon(self.remote_keys.run)
            tg.start_soon(self._feeder)
            tg.start_soon(self._clock)
            tg.start_soon(self._persist)


def _set_err(answer: Answer) -> SetErr | None:
    if answer.err is None:
        return None
    return SetErr(answer.err, answer.description or "")


def _safe(jti: str) -> str:
    """A jti fit for a log line: bounded, printable (it comes from a partner)."""
    return jti[:64].encode("unicode_escape").decode("ascii")
