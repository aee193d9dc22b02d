"""Link: one partner — composes its sessions, outbox feed, inbound pipeline and writes.

Transports call in with what they read (:meth:`Link.frame_received`) and ask for
what to write (:meth:`Link.take_frame`); the Link counts the Ledger's decisions,
hands them to the write-behind and wakes whoever can use them. Transports see a Link
only through :class:`~peer.link.port.LinkPort`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

import anyio

from ..config import Partner
from ..errors import (
    CLOSE_GOING_AWAY,
    Backpressure,
    DuplicateJti,
    ProtocolError,
    StreamDisabled,
    WireError,
)
from ..protocol.communication import CommunicationObject, SetErr
from ..protocol.effects import Effect
from ..protocol.ledger import ENVELOPE_BYTES, Ledger
from ..protocol.vocabulary import PUSHPULL_KINDS, SessionId, SessionKind, SessionState
from ..signal import Signal
from ..store.base import OutboundNew, Store
from .admission import Admission
from .clock import keep_time
from .delivery import Delivery
from .fair_share import FairShare
from .inbound import InboundPipeline, Verdicts
from .leases import RowSource
from .outbox_feed import OutboxFeed
from .outcomes import Failure, LinkCounters, Observer, Outcomes, PartnerStats
from .partner_limits import PartnerGuard
from .session_brake import SessionBrake
from .sessions import Closable, Sessions
from .write_behind import WriteBehind

if TYPE_CHECKING:
    from ..auth.outbound import OutboundAuth
    from ..auth.partner_keys import RemoteKeys
    from ..tokens.verify import Verifier

__all__ = ["Link"]

T = TypeVar("T")

log = logging.getLogger("setpeer.link")


class Link:
    """One partner: delivery state, sessions and counters.

    Built, and restored from the store, by :mod:`peer.link.factory`.

    Args:
        partner: the partner's configuration.
        store: the node's store.
        ledger: delivery state for this partner.
        verifier: checks SETs this partner sends us.
        rows: where its outbound rows come from (ours alone, or leased).
        outbound_auth: the credentials we present to the partner.
        inbox_signal: set when a new inbound SET is stored (wakes ``receive()``).
        progress_signal: set whenever a SET is acked or failed (wakes ``flush()``).
        remote_keys: the partner's keys from its ``jwks_uri``, if it has one.
        observer: told publish-to-ack and store times (the node's metrics).
        share: the node's turns at CPU-heavy work, shared fairly between partners.
    """

    def __init__(
        self,
        *,
        partner: Partner,
        store: Store,
        ledger: Ledger,
        verifier: Verifier,
        rows: RowSource,
        outbound_auth: OutboundAuth,
        inbox_signal: Signal,
        progress_signal: Signal,
        remote_keys: RemoteKeys | None = None,
        observer: Observer | None = None,
        share: FairShare | None = None,
    ) -> None:
        self.partner = partner  # the configuration, with a stream's delivery laid over it
        self.configured = partner
        self.delivery: Delivery | None = None
        self.delivery_changed = Signal()  # the adapters restart on the new delivery
        self.name = partner.name
        self.limits = partner.limits
        self.frame_limits = partner.limits.frame_limits()
        # SETs per frame we send: 100-SET frames cost well under 1 µs per SET on the
        # wire; never more than the partner's batch limit.
        self.batch_size = min(100, partner.limits.max_sets_per_frame)
        self.ledger = ledger
        self.outbound_auth = outbound_auth
        self.closing = False
        self.outbound_ready = Signal()  # something to send: SETs due or answers owed
        self.store = store
        self._timer = Signal()  # the Ledger's next deadline moved
        self._progress = progress_signal
        self.sessions = Sessions(partner.limits.idle_timeout)
        self.brake = SessionBrake()  # its sessions closed for bad data, budgeted
        self.outcomes = Outcomes(self.name, observer, partner.limits.failures_kept)
        self.inbound = PartnerGuard(partner.limits)
        # Answers owed at most before the partner's SETs wait (or get 429): one full
        # frame of answers, more than a partner keeping its window ever leaves owed.
        self.admission = Admission(
            self.inbound, lambda: ledger.owed, self.frame_limits.max_acks_per_frame
        )
        self.pipeline = InboundPipeline(
            name=self.name,
            store=store,
            verifier=verifier,
            guard=self.inbound,
            counters=self.outcomes.counters,
            inbox=inbox_signal,
            remote_keys=remote_keys,
            observer=observer,
            share=share,
            on_refused=self._refused,
        )
        self.writes = WriteBehind(
            self.name, store, lambda: self.session_state, observer, partner.limits.failures_kept
        )
        self.feed = OutboxFeed(
            name=self.name,
            store=store,
            ledger=ledger,
            limits=partner.limits,
            rows=rows,
            counters=self.outcomes.counters,
            apply=self._apply,
            can_send=lambda: self.can_send,
            outbound_ready=self.outbound_ready,
            timer=self._timer,
        )

    # -- parts seen from outside (the node, metrics, tests) -------------------------

    @property
    def counters(self) -> LinkCounters:
        return self.outcomes.counters

    @property
    def failures(self) -> collections.deque[Failure]:
        """Failures of both directions, the newest ``failures_kept``, oldest first."""
        return self.outcomes.failures

    @property
    def failed_by_err(self) -> dict[str, int]:
        """Our SETs that failed, by error code, since this process started."""
        return self.outcomes.failed_by_err

    @property
    def rejected(self) -> dict[str, int]:
        """Inbound SETs refused, by error code."""
        return self.pipeline.rejected

    @property
    def remote_keys(self) -> RemoteKeys | None:
        return self.pipeline.remote_keys

    @property
    def window(self) -> int:
        """SETs in flight at most."""
        return self.ledger.window

    # -- state ---------------------------------------------------------------------

    @property
    def session_state(self) -> SessionState:
        """The best open session kind, or ``down``."""
        return self.sessions.state

    @property
    def can_send(self) -> bool:
        """Whether SETs have a way out to the partner from this node right now."""
        return self.sessions.can_send(self.partner.send_via)

    def stats(self) -> PartnerStats:
        """This partner's entry in ``Peer.stats()``."""
        counters = self.outcomes.counters
        return {
            "session": self.session_state,
            "pending": self.pending,
            "inflight": self.ledger.inflight,
            "acked": counters.acked,
            "failed": counters.failed,
            "received": counters.received,
            "unhandled": self.inbound.backlog,
            "refused": counters.refused,
        }

    @property
    def pending(self) -> int:
        """SETs for the partner not sent yet."""
        return max(0, self.outcomes.counters.unfinished - self.ledger.inflight)

    @property
    def idle(self) -> bool:
        """Nothing pending or in flight (``flush()``'s condition)."""
        return self.outcomes.counters.unfinished <= 0

    @property
    def has_inflight(self) -> bool:
        """SETs sent and not answered yet (MP-3: worth an empty batch to collect)."""
        return self.ledger.inflight > 0

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate us to the partner: the stream's
        ``authorization_header`` when it gave one (SSF-19), else our credentials."""
        if self.delivery is not None and self.delivery.authorization is not None:
            return {"authorization": self.delivery.authorization}
        return self.outbound_auth.current_headers()

    async def drained(self) -> None:
        """Return once nothing is pending or in flight (every SET acked or failed)."""
        while not self.idle:
            woken = self._progress.snapshot()
            if self.idle:
                break
            await woken.wait()

    @property
    def held(self) -> bool:
        """A paused or disabled stream: no SET goes out (answers still do)."""
        return self.delivery is not None and self.delivery.status != "enabled"

    def set_delivery(self, delivery: Delivery | None) -> None:
        """Lay a stream's delivery over the configuration (None: the configuration).

        A change of protocol or endpoint restarts the partner's adapters; leaving
        a hold wakes the senders, and the held SETs go out in outbox order.
        """
        before = self.delivery
        self.delivery = delivery
        partner = self.configured
        if delivery is not None:
            via, endpoint = delivery.send_via, delivery.endpoint
            partner = dataclasses.replace(
                partner,
                send_via=via,
                push_endpoint=endpoint if via == "push" else partner.push_endpoint,
                multipush_endpoint=endpoint if via == "multipush" else partner.multipush_endpoint,
            )
        self.partner = partner
        moved = (before is None) != (delivery is None) or (
            before is not None
            and delivery is not None
            and (before.send_via, before.endpoint) != (delivery.send_via, delivery.endpoint)
        )
        if moved:
            self.delivery_changed.set()
        self.feed.wanted()
        self.outbound_ready.set()

    # -- sessions ------------------------------------------------------------------

    def session_opened(self, kind: SessionKind, closer: Closable | None = None) -> SessionId:
        """A session of ``kind`` opened; ``closer`` closes it at shutdown."""
        session = self.sessions.open(kind, closer)
        log.info(
            "partner=%s session=%s id=%d opened",
            self.name,
            kind.value,
            session,
            extra={"partner": self.name, "session": session, "session_kind": kind.value},
        )
        self.writes.state_changed()  # the session state goes to the store for `status`
        self.feed.wanted()  # a way out opened: look for rows to send on it
        return session

    def session_refused(self, error: WireError) -> float:
        """A session of the partner is being closed for ``error``. A malformed or
        oversized frame (the partner's fault) counts against its budget of such
        closes (:mod:`.session_brake`): the wait now due before its next, else 0."""
        if not isinstance(error, ProtocolError):
            return 0.0
        return self.brake.refused()

    async def before_session(self) -> None:
        """Hold an upgrade of the partner's while it is over its budget of sessions
        closed for bad data.

        Raises:
            Overloaded: the delay outlasts the hold (429 with ``Retry-After``).
        """
        await self.brake.admit()

    def session_closed(self, session: SessionId) -> None:
        """``session`` ended: answers pinned to it may go on any session."""
        self.ledger.session_ended(session)
        kind = self.sessions.close(session)
        if kind is None:
            return
        log.info(
            "partner=%s session=%s id=%d closed",
            self.name,
            kind.value,
            session,
            extra={"partner": self.name, "session": session, "session_kind": kind.value},
        )
        self.writes.state_changed()
        if kind in PUSHPULL_KINDS and not self.sessions.pushpull_open:
            # Answers to SETs in flight may never come on a dead session (PP-30). The
            # adapters' requests settle their own SETs (retry_later, sets_lost): a
            # failed POST must not resend SETs whose own requests are still open.
            self.ledger.session_lost(now=time.time())
            self._timer.set()
            self.outbound_ready.set()

    def request_seen(self, kind: SessionKind) -> None:
        """The partner made a request to us (``http`` push-pull, ``poll``, ...)."""
        if self.sessions.request_seen(kind):
            self.writes.state_changed()
            self.feed.wanted()  # a way out opened: look for rows to send on it

    def request_done(self, session: SessionId) -> None:
        """The HTTP request ``session`` was answered: answers pinned to it are free."""
        self.ledger.session_ended(session)

    async def close_sessions(self) -> None:
        """Close every open WebSocket with 1001 going away (graceful shutdown)."""
        for closer in self.sessions.closers():
            await closer.close(CLOSE_GOING_AWAY, "going away")

    # -- publishing ----------------------------------------------------------------

    def check_room(self) -> None:
        """Raises Backpressure when the outbox holds ``max_pending`` SETs already."""
        if self.delivery is not None and self.delivery.status == "disabled":
            raise StreamDisabled(self.name)
        pending, limit = self.outcomes.counters.unfinished, self.limits.max_pending
        if pending >= limit:
            raise Backpressure(self.name, pending, limit)

    async def enqueue(self, jti: str, token: str, *, timed: bool) -> None:
        """Commit one SET to the outbox; ``timed`` starts its publish-to-ack clock.

        Where several nodes share the store and this one can send to the partner,
        the row is leased to us in the same transaction and goes straight to the
        Ledger: no read back, no wake-up of the other nodes.

        Raises:
            DuplicateJti: ``jti`` was enqueued for this partner before.
            StoreError: the store could not make it durable.
        """
        leased = self.feed.reserve()
        try:
            await self.feed.rows.enqueue(OutboundNew(self.name, jti, token), leased=leased)
        except BaseException as exc:
            if leased:
                self.feed.abandoned()
            if isinstance(exc, DuplicateJti):
                raise DuplicateJti.of_set(self.name, jti) from exc
            raise
        self.outcomes.enqueued(jti, timed=timed)
        self.feed.enqueued(jti, token if leased else None)

    def store_changed(self) -> None:
        """Another process may have enqueued for this partner (``setpeer send``)."""
        self.feed.store_changed()

    # -- outbound: push-pull frames --------------------------------------------------

    async def take_frame(
        self, *, max_sets: int, via: SessionId | None = None
    ) -> CommunicationObject | None:
        """The next Communication Object to send; None if nothing.

        Args:
            max_sets: most SETs to include (the peer's ``maxResponseEvents``, or our
                batch size on a WebSocket).
            via: the session it goes on: answers owed on another live session of
                this partner stay for that one.
        """
        if self.partner.send_via != "pushpull" or self.held:
            max_sets = 0  # SETs go by the partner's own protocol; answers still ride along
        frame = self.ledger.next_frame(
            now=time.time(),
            max_sets=max_sets,
            via=via,
            max_bytes=self.limits.max_frame_bytes,
        )
        self._apply(self.ledger.effects())
        if frame is not None and frame.sets:
            self.outcomes.counters.sent += len(frame.sets)
            self._timer.set()
        return frame

    async def frame_delivered(self, frame: CommunicationObject) -> None:
        """``frame`` was written: the answers in it are paid."""
        if frame.ack or frame.set_errs:
            self.ledger.frame_delivered(frame)
            self._apply(self.ledger.effects())
            self._progress.set()
            self.admission.paid.set()

    def frame_lost(self, frame: CommunicationObject) -> None:
        """``frame`` may not have arrived: owe its answers again, resend its SETs soon."""
        self.ledger.frame_lost(frame, now=time.time())
        self._timer.set()
        self.outbound_ready.set()

    # -- outbound: the adapters (push, multi-push, poll) -----------------------------

    def take_sets(self, limit: int) -> dict[str, str]:
        """Due SETs to send now (oldest first, within the window): jti -> SET.

        They are in flight until answered; settle them with :meth:`answers_received`,
        :meth:`retry_later` or :meth:`sets_lost`. None while the stream is held.
        """
        if self.held:
            return {}
        sets = self.ledger.take_sets(
            now=time.time(),
            limit=limit,
            max_bytes=self.limits.max_frame_bytes - ENVELOPE_BYTES,
        )
        self._apply(self.ledger.effects())
        if sets:
            self.outcomes.counters.sent += len(sets)
            self._timer.set()
        return sets

    def answers_received(self, ack: Iterable[str], set_errs: Mapping[str, SetErr]) -> None:
        """The partner's answers, on whatever request they came (MP-18); unknown jtis
        are ignored (MP-5)."""
        self.ledger.errs_received(set_errs)
        self.ledger.ack_received(ack)
        self._apply(self.ledger.effects())
        self.feed.wake()  # room in the window
        self.outbound_ready.set()

    def discard_queued(self, err: str, description: str) -> int:
        """Fail every SET the Ledger holds for the partner, sent or not, with ``err``
        (a disabled SSF stream holds nothing); the feed then loads the next ones from
        the outbox. Returns how many were failed."""
        jtis = self.ledger.tracked()
        if jtis:
            self.answers_received((), {jti: SetErr(err, description) for jti in jtis})
        return len(jtis)

    def retry_later(self, jtis: Iterable[str], not_before: float = 0.0) -> None:
        """These in-flight SETs were not taken (5xx, 429, timeout): back off (PUSH-21)."""
        self.ledger.retry_later(jtis, now=time.time(), not_before=not_before)
        self._apply(self.ledger.effects())
        self._timer.set()
        self.feed.wake()  # SETs that failed made room in the buffer

    def sets_lost(self, jtis: Iterable[str]) -> None:
        """These in-flight SETs may not have arrived: due again now (PP-30)."""
        self.ledger.sets_lost(jtis, now=time.time())
        self._timer.set()
        self.outbound_ready.set()

    async def wait_outbound(self, timeout: float) -> None:
        """Until there may be something to send, or ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self.outbound_ready.wait()

    # -- inbound -------------------------------------------------------------------

    async def frame_received(
        self, frame: CommunicationObject, via: SessionId | None = None
    ) -> Verdicts:
        """Take in a partner's Communication Object: answers to our SETs, and its SETs.

        Returns:
            The verdict per inbound jti: None (accepted, or a duplicate) or the error.
        """
        if frame.ack or frame.set_errs:
            self.ledger.frame_received(frame, now=time.time())
            self._apply(self.ledger.effects())
            self.feed.wake()  # room in the window
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
        via: SessionId | None = None,
    ) -> Verdicts:
        """Verify, store and owe answers for SETs from this partner.

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
        count = len(sets) + len(rejected or {}) if owe else 0
        self.admission.answering += count
        try:
            verdicts = await self.pipeline.accept(sets, rejected, owe=owe)
        finally:
            self.admission.answering -= count
        # A session that ended while the store worked owes nothing on itself: the
        # answers are in the store (acks_due), and the partner's resend is answered.
        await anyio.lowlevel.checkpoint()
        if owe:
            for jti, err in verdicts.items():
                self.ledger.owe(jti, err, via)
            self.outbound_ready.set()
        return verdicts

    async def parse(self, parser: Callable[..., T], data: str | bytes) -> T:
        """``parser(data, limits=...)``; large frames off the event loop, in turn."""
        return await self.pipeline.parse(parser, data, self.frame_limits)

    async def admit_frame(self, count: int) -> None:
        """Wait while the partner is over its rate or leaves too many answers unread;
        Overloaded over its inbox backlog (:class:`.admission.Admission`)."""
        await self.admission.admit(count)

    def check_inbound(self) -> None:
        """Overloaded while the partner is over its rate, backlog or owed answers."""
        self.admission.check()

    @property
    def inbox_full(self) -> bool:
        """The partner's SETs fill ``max_pending`` inbox rows not yet handled."""
        return self.inbound.inbox_full

    def count_rejected(self, err: str, description: str = "", jti: str = "") -> None:
        """One inbound SET refused with ``err`` before it reached the pipeline (its jti
        unreadable: ``""``); counted, logged and kept like the pipeline's refusals."""
        self.pipeline.refused(jti, err, description)

    def _refused(self, jti: str, err: str, description: str) -> None:
        """The pipeline refused one of the partner's SETs: keep it, here and in the
        store's ring (written behind)."""
        self.writes.refused(self.outcomes.refused(jti, err, description))

    def take_slot(self) -> None:
        """A request or WebSocket of the partner starts (Overloaded over max_sessions)."""
        self.inbound.open_session()

    def give_slot(self) -> None:
        """A request or WebSocket of the partner ended."""
        self.inbound.close_session()

    # -- bookkeeping ---------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        """Count the Ledger's decisions now; write them behind."""
        if not effects:
            return
        self.writes.record(effects)
        if self.outcomes.count(effects):
            self._progress.set()

    async def sync(self) -> None:
        """Wait until every decision so far is in the store."""
        await self.writes.sync()

    # -- lifecycle -----------------------------------------------------------------

    def _after_tick(self) -> None:
        self.outbound_ready.set()
        self.feed.wake()  # SETs that failed made room in the buffer

    async def run(self) -> None:
        """Background work of this partner until cancelled."""
        async with anyio.create_task_group() as tg:
            if self.pipeline.remote_keys is not None:
                tg.start_soon(self.pipeline.remote_keys.run)
            tg.start_soon(self.feed.run)
            tg.start_soon(keep_time, self.ledger, self._timer, self._apply, self._after_tick)
            tg.start_soon(self.writes.run)
            tg.start_soon(self.feed.rows.keep, self.feed)

    async def release_rows(self) -> None:
        """Give up this node's leases so another node sends them at once (shutdown)."""
        await self.feed.rows.release()
