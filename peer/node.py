"""Peer: the node — serves the routes, runs one Link per partner, and is the facade.

::

    async with Peer(config) as node:
        jti = await node.publish("b", {EVENT_URI: {...}}, sub_id={...})
        async for rx in node.receive():
            ...
            await rx.done()
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import anyio

from .auth.stream_bearers import StreamBearers
from .config import PeerConfig
from .config.rules import is_loopback
from .errors import PeerError, StoreError, UnknownPartner, WebhookConfigured
from .facade import Failures, Stats
from .link import Link, build_links
from .link.leases import TAKEOVER_POLL
from .local.heartbeat import Heartbeat, beat_forever, this_node
from .local.listener import LocalListener
from .local.status import read_status, status_json
from .local.unix import SocketInUse
from .local.webhook import Webhook, build_webhook
from .local.webhook_health import WebhookState
from .logs import install_redaction
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, NodeMetrics
from .protocol.ssf_streams import STREAM_UPDATED_EVENT, VERIFICATION_EVENT
from .publisher import Publisher, check_size
from .received import Received
from .server.app import create_app, create_metrics_app, metrics_on_partner_listener
from .server.guards import ConnectionGuard
from .server.serve import HTTPServer, server_ssl_options
from .signal import Signal
from .ssf.client import StreamClient
from .ssf.receiver import ReceiverStream, bearer_digests
from .ssf.routes import ssf_routes
from .ssf.runner import run_stream
from .ssf.status import stream_status
from .ssf.transmitter import Transmitter
from .store import open_store
from .store.base import InboxRow, Store, shared_store
from .tokens.keys import load_private_jwks, public_jwks
from .tokens.schemas import EventSchemas
from .tokens.sign import Signer
from .tokens.verify import unverified_jti
from .transports.tls_buffer import shrink_tls_read_buffer

__all__ = ["Peer", "Received"]

MAX_HANDED_OUT = 1_000_000
"""Inbox rows handed out through the local interface whose partner is remembered
(so ``done`` frees the partner's ``max_pending``); beyond it, no more are noted."""

log = logging.getLogger("setpeer.node")


class Peer:
    """A setpeer node: the Python facade (README "Python").

    Args:
        config: the node's configuration (``load_config`` or built in code).
    """

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.url = ""
        self.links: dict[str, Link] = {}
        self.metrics = NodeMetrics(self.links)  # GET /metrics
        # Names this node's leases in a shared store: unique per run, so two nodes (or
        # two runs of one) never hold leases under one name.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # False makes /pushpull refuse WebSocket upgrades (partners use HTTP): for
        # operators behind proxies that cannot pass upgrades, and for tests.
        self.accept_websocket = True
        self._store: Store | None = None
        self._publisher: Publisher | None = None
        self._inbox = Signal()
        self._progress = Signal()
        self._stack = contextlib.AsyncExitStack()
        self._tg: anyio.abc.TaskGroup | None = None
        self._server: HTTPServer | None = None
        self._metrics_server: HTTPServer | None = None
        self.metrics_url: str | None = None  # the [peer.metrics] listener, if any
        self._app: LocalListener | None = None
        self.app_url: str | None = None  # the [peer.app] listener, if any
        self._handed_out: dict[int, str] = {}  # inbox seq -> partner, through the interface
        self._private_jwks: Any = None
        self._unready: str | None = None  # why /readyz last said 503 (logged once)
        self._webhook: Webhook | None = None  # [peer.app] deliver
        self.ssf: Transmitter | None = None  # partners with ssf = "receiver" (peer/ssf/)
        # Partners that are SSF transmitters: our stream at each (docs/ssf.md).
        self.streams: dict[str, ReceiverStream] = {}
        self.stream_bearers: StreamBearers | None = None
        self.heartbeat: Heartbeat | None = None  # the node's row in the store's `nodes`

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            if self._tg is not None:
                with anyio.CancelScope(shield=True):
                    # The servers started so far close their sockets (cancelling
                    # uvicorn's serve alone would leave them open).
                    for server in (self._server, self._metrics_server):
                        if server is not None:
                            await server.stop(timeout=1.0)
                self._tg.cancel_scope.cancel()
                self._tg = None
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        config = self.config
        install_redaction()  # no credential or token in any library's log line
        shrink_tls_read_buffer()  # 16 KiB, not 256 KiB, per TLS connection
        config.validate()  # a config built in code gets the checks load_config applies
        self._store = store = await open_store(config.store, base_dir=config.config_dir)
        self._stack.push_async_callback(store.aclose)
        self._private_jwks = load_private_jwks(config.signing_keys_path)
        self._publisher = Publisher(issuer=config.issuer, signer=Signer(self._private_jwks))
        self.links.update(
            await build_links(
                config,
                store,
                owner=self.owner,
                inbox=self._inbox,
                progress=self._progress,
                observer=self.metrics,
            )
        )
        self._webhook = build_webhook(config, store, self._inbox, self.links)
        await self._ssf_streams(store)
        await self._build_streams(store)
        limits = config.limits
        ssl_options = None
        if config.tls is not None:
            ssl_options = server_ssl_options(
                str(config.tls.certfile),
                str(config.tls.keyfile),
                None if config.tls.client_ca is None else str(config.tls.client_ca),
            )
        self._server = HTTPServer(
            create_app(self, self._ssf_routes),
            host=config.listen_host,
            port=config.listen_port,
            max_frame_bytes=limits.max_frame_bytes,
            ssl_options=ssl_options,
            idle_timeout=limits.idle_timeout,
            guard=ConnectionGuard.from_limits(limits),
            what="peer.listen",
        )
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self.url = await self._tg.start(self._server.serve)
        # The first beat before start returns: `setpeer status` sees the node at once.
        self.heartbeat = Heartbeat(store, self.owner, time.time())
        await store.beat(this_node(self.owner, self.heartbeat.started_at))
        self.metrics.watch_store(self.heartbeat)
        self._tg.start_soon(beat_forever, self.heartbeat)
        await self._serve_metrics()
        await self._serve_app()
        for link in self.links.values():
            self._tg.start_soon(link.run)
            self._tg.start_soon(self._dial, link)
        for name, stream in self.streams.items():
            self._tg.start_soon(run_stream, stream, self.links[name])
        self._tg.start_soon(self._watch_store)
        self._deliver()
        if shared_store(store) is not None:
            self._tg.start_soon(self._resync_counts)
            if self.ssf is not None:
                self._tg.start_soon(self.ssf.follow)  # streams other nodes change

    async def _ssf_streams(self, store: Store) -> None:
        """The streams of partners that are SSF receivers, restored from the store."""
        if not any(p.ssf_receiver for p in self.config.partners):
            return
        ours = {VERIFICATION_EVENT, STREAM_UPDATED_EVENT}
        config = self.config
        self.ssf = Transmitter(
            store=store,
            links=self.links,
            issuer=config.issuer,
            supported=sorted(EventSchemas.default().known_event_types() - ours),
            base_url=lambda: config.public_url or self.url,
            send=self._send_unfiltered,
            insecure_ok=lambda host: config.allow_insecure_loopback and is_loopback(host),
        )
        await self.ssf.restore()

    def _ssf_routes(self, authenticate: Any) -> list[Any]:
        return [] if self.ssf is None else ssf_routes(self.ssf, authenticate)

    async def _send_unfiltered(
        self, partner: str, events: Mapping[str, Mapping[str, Any]], sub_id: Mapping[str, Any]
    ) -> str:
        return await self.publish(partner, events, sub_id=sub_id, _every_subject=True)

    async def _build_streams(self, store: Store) -> None:
        """Our stream at each partner that is an SSF transmitter, and the book of the
        tokens those streams were given (they authenticate the partner)."""
        transmitters = [p for p in self.config.partners if p.ssf_transmitter]
        if not transmitters:
            return
        self.stream_bearers = bearers = StreamBearers(functools.partial(bearer_digests, store))
        bearers.replace(await bearer_digests(store))
        for partner in transmitters:
            client = StreamClient(
                partner,
                insecure_ok=self.config.allow_insecure_loopback,
                auth=self.links[partner.name].outbound_auth,
            )
            self._stack.push_async_callback(client.aclose)
            self.streams[partner.name] = ReceiverStream(
                partner,
                store,
                client,
                base_url=lambda: self.config.public_url or self.url,
                bearers=bearers,
            )

    def _deliver(self) -> None:
        """Webhook delivery of received SETs, when ``[peer.app] deliver`` is set."""
        if self._webhook is not None:
            assert self._tg is not None
            self.metrics.watch_webhook(self._webhook.state)
            self._tg.start_soon(self._webhook.run)

    async def _dial(self, link: Link) -> None:
        from .transports.adapters import needs_adapters, run_adapters
        from .transports.dialer import run_dialer

        while True:
            # A stream's new delivery (peer/ssf/) restarts the loops on it.
            changed = link.delivery_changed.snapshot()
            partner = link.partner
            async with anyio.create_task_group() as tg:
                if "pushpull" in (partner.send_via, partner.receive_via):
                    tg.start_soon(run_dialer, link)
                if needs_adapters(link):
                    tg.start_soon(run_adapters, link)
                await changed.wait()
                tg.cancel_scope.cancel()

    async def _resync_counts(self) -> None:
        """Shared store: take each partner's pending count from the store every
        second. Other nodes' SETs, leased to them as they were published, wake no one
        here; ``stats()`` and ``max_pending`` still see them within a second."""
        assert self._store is not None
        while True:
            await anyio.sleep(TAKEOVER_POLL)
            try:
                counts = await self._store.stats()
            except StoreError:
                continue  # the store is away: _hold_rows and the feeders say so
            for name, link in self.links.items():
                if (c := counts.get(name)) is not None:
                    link.counters.unfinished = c.pending + c.inflight

    async def _watch_store(self) -> None:
        assert self._store is not None
        async for partner in self._store.watch():
            if partner is None:
                targets = list(self.links.values())
            else:
                # Another node or `setpeer send` may name a partner this config lacks.
                link = self.links.get(partner)
                targets = [] if link is None else [link]
            for link in targets:
                link.store_changed()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Graceful stop: stop accepting, send the acks we owe, close sessions with 1001."""
        if self._tg is None:
            await self._stack.aclose()
            return
        with anyio.CancelScope(shield=True):
            await self._stop_app()
            for link in self.links.values():
                link.closing = True
                link.outbound_ready.set()
            # Give open sessions a moment to write the answers they owe.
            with anyio.move_on_after(1.0):
                while any(
                    link.ledger.owed and link.session_state != "down"
                    for link in self.links.values()
                ):
                    await self._progress.wait()
            for link in self.links.values():
                await link.close_sessions()
            with anyio.move_on_after(5):
                for link in self.links.values():
                    await link.sync()
                # Another node sharing the store may send our leased rows at once.
                for link in self.links.values():
                    with contextlib.suppress(StoreError):
                        await link.release_rows()
            if self._server is not None:
                await self._server.stop()
            if self._metrics_server is not None:
                await self._metrics_server.stop()
            if self._store is not None:
                with anyio.move_on_after(2), contextlib.suppress(StoreError):
                    await self._store.leave(self.owner)  # status: not running
        self._tg.cancel_scope.cancel()
        self._tg = None
        await self._stack.aclose()

    async def _serve_metrics(self) -> None:
        """``/metrics`` on its own listener, when ``[peer.metrics] listen`` says so."""
        config, limits = self.config, self.config.limits
        listen = config.metrics.listen
        if listen is None:
            if not metrics_on_partner_listener(config):
                log.warning(
                    "GET /metrics is not served: the partner listener is not on loopback; "
                    "set [peer.metrics] listen or token_sha256"
                )
            return
        host, _, port = listen.rpartition(":")
        self._metrics_server = HTTPServer(
            create_metrics_app(self),
            host=host.removeprefix("[").removesuffix("]"),
            port=int(port),
            max_frame_bytes=limits.max_frame_bytes,
            idle_timeout=limits.idle_timeout,
            guard=ConnectionGuard(
                max_connections=64,  # scrapers, not partners
                handshake_timeout=limits.handshake_timeout,
                idle_timeout=limits.idle_timeout,
            ),
            what="peer.metrics.listen",
        )
        assert self._tg is not None
        self.metrics_url = await self._tg.start(self._metrics_server.serve)

    async def _serve_app(self) -> None:
        """The local application interface, when ``[peer.app] listen`` says so."""
        if self.config.app.listen is None:
            return
        assert self._tg is not None
        self._app = LocalListener(self)
        self._stack.push_async_callback(self._stop_app)  # a start that fails later
        try:
            self.app_url = await self._app.start(self._tg)
        except SocketInUse as exc:
            if not self.config.app.listen_defaulted:
                raise
            # Two configs in one folder, neither naming a socket: the first node
            # keeps app.sock. Refusing would break setups that predate the interface.
            log.warning("%s; this node serves no local interface (set [peer.app] listen)", exc)
            self._app = None

    async def _stop_app(self) -> None:
        """Stop the local interface first: no new publish while the node winds down."""
        if self._app is not None:
            await self._app.stop()

    # -- facade --------------------------------------------------------------------

    def _link(self, partner: str) -> Link:
        try:
            return self.links[partner]
        except KeyError:
            raise UnknownPartner(f"no partner named {partner!r}") from None

    def _require_store(self) -> Store:
        if self._store is None:
            raise PeerError("the node is not running: use `async with Peer(config)`")
        return self._store

    async def publish(
        self,
        partner: str,
        events: Mapping[str, Mapping[str, Any]],
        *,
        sub_id: Mapping[str, Any] | None = None,
        txn: str | None = None,
        toe: int | float | None = None,
        jti: str | None = None,
        _every_subject: bool = False,
    ) -> str:
        """Sign a SET for ``partner`` and commit it to the outbox.

        A partner that is an SSF receiver and added subjects to its stream gets only
        SETs about those subjects (SSF-29): another SET is signed but not stored, and
        its jti returned all the same (docs/ssf.md).

        Returns only once the SET is durable (it survives a crash from then on).

        Args:
            partner: the configured partner's name.
            events: event type URI -> payload object (RFC 8417 ``events``).
            sub_id: the subject identifier (RFC 9493), SSF's top-level ``sub_id``.
            txn: transaction id (RFC 8417 §2.2).
            toe: time of the event.
            jti: a jti of your own; a fresh random one by default.

        Returns:
            The SET's jti.

        Raises:
            UnknownPartner: no such partner.
            Backpressure: the partner's outbox holds ``max_pending`` SETs already.
            StreamDisabled: the partner (an SSF receiver) disabled its stream.
            ValueError: ``events`` or another argument is not a valid claim value.
            SETTooLarge: the signed SET is over the partner's ``max_set_bytes``
                (a ValueError too); nothing was stored.
            DuplicateJti: ``jti`` was published to this partner before (a retry
                after an uncertain failure: the first one is stored).
            StoreError: the store could not make it durable. A connection lost
                during the commit leaves unknown whether it did: publish with your
                own ``jti=`` and retry with it to be sure the SET is sent once.
        """
        link = self._link(partner)
        self._require_store()
        link.check_room()
        assert self._publisher is not None
        jti, token = self._publisher.mint(
            link.partner, events, sub_id=sub_id, txn=txn, toe=toe, jti=jti
        )
        if not _every_subject and self.ssf is not None and not self.ssf.wanted(partner, sub_id):
            log.debug("partner=%s SET %s: its subject is not in the stream", partner, jti)
            return jti
        started = time.monotonic()
        await link.enqueue(jti, token, timed=True)
        self.metrics.store_time("enqueue", time.monotonic() - started)
        return jti

    async def set_stream_status(self, partner: str, status: str, reason: str | None = None) -> None:
        """Change the status of ``partner``'s SSF stream with us (``enabled``,
        ``paused``, ``disabled``); the partner hears of it by a stream-updated event
        (SSF-28), sent before a pause or disable takes effect.

        Raises:
            UnknownPartner: no such partner.
            LookupError: the partner has no stream with us.
            ValueError: not a status.
        """
        self._link(partner)
        if self.ssf is None:
            raise LookupError(f"partner {partner!r} has no SSF stream")
        await self.ssf.change_status(partner, status, reason)

    async def forward(self, partner: str, token: str) -> str:
        """Queue a SET signed elsewhere for ``partner``; returns its jti.

        Raises as :meth:`publish` does; forwarding one token twice to one partner
        raises DuplicateJti the second time.
        """
        link = self._link(partner)
        self._require_store()
        link.check_room()
        check_size(link.partner, token)
        jti = unverified_jti(token)
        await link.enqueue(jti, token, timed=False)
        return jti

    async def receive(self) -> AsyncIterator[Received]:
        """Verified inbound SETs from every partner, in inbox order, until cancelled.

        Raises:
            WebhookConfigured: ``[peer.app] deliver`` is set: the webhook is the one
                consumer of received SETs (docs/webhook.md).
        """
        after = 0
        while True:
            for rx in await self._page("receive()", after, 256, math.inf):
                after = rx.seq
                yield rx

    async def received(
        self, *, after: int = 0, limit: int = 256, wait: float = 0.0
    ) -> list[Received]:
        """One page of received SETs not yet done, in inbox order, after inbox row
        ``after``; waits up to ``wait`` seconds for the first. With :meth:`done`, the
        way to handle SETs many at a time (one commit for a page, not one per SET)::

            after = 0
            while True:
                page = await node.received(after=after, wait=30)
                ...  # handle them
                await node.done([rx.seq for rx in page])
                after = page[-1].seq if page else after

        Raises:
            WebhookConfigured: ``[peer.app] deliver`` is set.
            ValueError: ``limit`` below 1 or ``wait`` negative.
        """
        if limit < 1 or wait < 0:
            raise ValueError("received() needs limit >= 1 and wait >= 0")
        return await self._page("received()", after, limit, wait)

    async def _page(self, caller: str, after: int, limit: int, wait: float) -> list[Received]:
        """Up to ``limit`` inbox rows after ``after``, waiting up to ``wait`` seconds
        for the first (an empty list then)."""
        if self.config.app.deliver is not None:
            raise WebhookConfigured(
                "this node delivers received SETs to its webhook ([peer.app] deliver): "
                f"they are not handed out by {caller} as well"
            )
        deadline = anyio.current_time() + wait
        while True:
            woken = self._inbox.snapshot()
            rows = await self.inbox(after=after, limit=limit)
            if rows:
                return [self._received(row) for row in rows]
            with anyio.move_on_after(deadline - anyio.current_time()) as scope:
                await woken.wait()
            if scope.cancelled_caught:
                return []

    def _received(self, row: InboxRow) -> Received:
        done = functools.partial(self.done, (row.seq,))
        return Received(row.partner, row.jti, row.claims, row.token, row.seq, done)

    async def done(self, seqs: Sequence[int]) -> None:
        """Mark these inbox rows handled, in one commit (``Received.done`` for many
        at once); idempotent."""
        await self.mark_done(seqs)

    def failures(self) -> Failures:
        """Failures of both directions, every partner's, oldest first (by ``at``):
        our SETs a partner rejected or that ran out of attempts (``outbound``), and
        the partners' SETs we refused (``inbound``); the newest ``failures_kept``
        per partner.

        A list; ``await node.failures()`` works too (as with :class:`peer.Client`).
        """
        failures = [failure for link in self.links.values() for failure in link.failures]
        return Failures(sorted(failures, key=lambda failure: failure.at))

    def stats(self) -> Stats:
        """Per partner: session, pending, inflight, acked, failed, received,
        unhandled (received, not yet done) and refused (the partner's SETs we refused).

        A dict; ``await node.stats()`` works too (as with :class:`peer.Client`).
        """
        return Stats((name, link.stats()) for name, link in self.links.items())

    def webhook_state(self) -> WebhookState | None:
        """The webhook's state (docs/webhook.md): ``up``, ``retrying`` or ``down``
        since when, the last error, POSTs by outcome, the backlog and the SETs being
        retried; None when ``[peer.app] deliver`` is not set or the node is not running.
        """
        return None if self._webhook is None else self._webhook.state()

    async def flush(self, timeout: float = 30) -> None:
        """Wait until nothing is pending or in flight to any partner.

        Raises:
            PeerError: still pending after ``timeout`` seconds.
        """
        store = self._require_store()
        asked = -math.inf
        with anyio.move_on_after(timeout):
            while True:
                woken = self._progress.snapshot()
                # The store is the truth: it lags memory only the safe way (an ack is
                # written behind, so it may show a SET unfinished a little longer).
                # The in-memory counts say when to ask; a partner another node holds,
                # or counts off after a resync, are settled by asking now and then.
                idle = all(link.idle for link in self.links.values())
                if idle or anyio.current_time() - asked > 1.0:
                    if idle:
                        for link in self.links.values():
                            await link.sync()
                    asked = anyio.current_time()
                    counts = await store.stats()
                    if all(c.pending + c.inflight == 0 for c in counts.values()):
                        for link in self.links.values():
                            link.counters.unfinished = 0
                        return
                with anyio.move_on_after(0.25):
                    await woken.wait()
        pending = {n: s for n, s in self.stats().items() if s["pending"] or s["inflight"]}
        raise PeerError(f"flush timed out after {timeout}s; still pending: {pending}")

    # -- for the local interface (peer.local.port.LocalNode) ---------------------------

    async def inbox(self, *, after: int, limit: int) -> list[InboxRow]:
        """Received SETs not yet done with ``seq > after``, in inbox order; each one's
        partner is noted so :meth:`mark_done` frees its ``max_pending``."""
        rows = await self._require_store().fetch_inbox(after_seq=after, limit=limit)
        for row in rows:
            if len(self._handed_out) < MAX_HANDED_OUT:
                self._handed_out[row.seq] = row.partner
        return rows

    def inbox_changed(self) -> anyio.Event:
        """Set once a SET is stored after this call."""
        return self._inbox.snapshot()

    async def mark_done(self, seqs: Sequence[int]) -> None:
        """These inbox rows are handled; idempotent (a partner's backlog shrinks once)."""
        store = self._require_store()
        await store.mark_done(seqs)
        unknown = False
        for seq in seqs:
            partner = self._handed_out.pop(seq, None)
            link = None if partner is None else self.links.get(partner)
            if link is not None:
                link.inbound.handled()
            unknown = unknown or partner is None
        if unknown:
            # Seqs handed out before a restart, or never: whose they were is not known
            # here, so each partner's backlog is taken from the store's counts again.
            for name, counts in (await store.stats()).items():
                link = self.links.get(name)
                if link is not None:
                    link.inbound.backlog = counts.unhandled

    async def status(self) -> dict[str, Any]:
        """What ``setpeer status --json`` prints, from this node's store; with a
        webhook, each partner's entry also carries its state (``webhook``: state,
        since, last error, consecutive failures, backlog)."""
        store = self._require_store()
        status = status_json(await read_status(self.config, store))
        for name, entry in (await stream_status(self.config, store)).items():
            status[name]["stream"] = entry
        hook = self.webhook_state()
        if hook is not None:
            keys = ("state", "since", "last_error", "consecutive_failures", "backlog")
            for entry in status.values():
                entry["webhook"] = {key: hook[key] for key in keys}  # type: ignore[literal-required]
        return status

    def render_metrics(self) -> tuple[bytes, str]:
        """``GET /metrics``: this node's metrics in the Prometheus text format."""
        return self.metrics.render(), METRICS_CONTENT_TYPE

    def public_jwks(self) -> dict[str, Any]:
        """Our public signing keys (``/.well-known/jwks.json``); never a private member."""
        return public_jwks(self._private_jwks)

    async def ready(self) -> bool:
        """Readiness: the store answers, a write could commit, and the signing keys
        are loaded. A change of readiness is logged once, with the reason."""
        if self._store is None or self._publisher is None:
            return False
        reason = None
        try:
            with anyio.fail_after(2):
                await self._store.stats()
                await self._store.probe_write()
        except StoreError as exc:
            reason = str(exc)
        except TimeoutError:
            reason = "the store did not answer a read and a write within 2 s"
        if reason != self._unready:
            if reason is None:
                log.info("ready: the store can write again")
            else:
                log.warning("not ready: %s", reason)
            self._unready = reason
        return reason is None
