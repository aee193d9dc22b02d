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
import dataclasses
import logging
import math
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Self, cast

import anyio

from .auth.partner_keys import RemoteKeys
from .config import PeerConfig
from .errors import Backpressure, DuplicateJti, PeerError, StoreError, UnknownPartner
from .link import LEASE_TTL, Failure, Link
from .logs import install_redaction
from .metrics import NodeMetrics
from .protocol.ledger import Ledger
from .protocol.retry import RetryPolicy
from .publisher import Publisher, check_size
from .server.guards import ConnectionGuard
from .server.serve import HTTPServer, server_ssl_options
from .signal import Signal
from .store import open_store
from .store.base import OutboundNew, SharedStore, Store
from .tokens.keys import KeyStore, load_private_jwks, public_jwks
from .tokens.sign import Signer
from .tokens.verify import Verifier, unverified_jti
from .transports.partner_limits import count_backlogs

__all__ = ["Peer", "Received"]

_TAKEOVER_POLL = 1.0  # seconds between looks for rows a dead node leased

log = logging.getLogger("setpeer.node")


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A verified SET from a partner, as the application sees it.

    Call :meth:`done` once it is handled: until then a restart hands it out again
    (locally — it never travels the wire twice).
    """

    partner: str
    jti: str
    claims: Mapping[str, Any]
    token: str
    seq: int
    _store: Store = dataclasses.field(repr=False)
    _handled: Callable[[], None] | None = dataclasses.field(default=None, repr=False)

    async def done(self) -> None:
        """Mark handled: never handed to the application again."""
        await self._store.mark_done([self.seq])
        if self._handled is not None:
            self._handled()  # issue 6: the partner's inbox backlog shrinks (max_pending)


class Peer:
    """A setpeer node (API.md "Python facade").

    Args:
        config: the node's configuration (``load_config`` or built in code).
    """

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.url = ""
        self.links: dict[str, Link] = {}
        self.metrics = NodeMetrics(self.links)  # GET /metrics (issue 7)
        # Names this node's leases in a shared store: unique per run (issue 7).
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
        self._private_jwks: Any = None

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        from .server.app import create_app  # the app reaches back into the node

        config = self.config
        install_redaction()  # issue 6: no credential or token in any library's log line
        config.validate()  # a config built in code gets the checks load_config applies
        self._store = store = await open_store(config.store, base_dir=config.config_dir)
        self._stack.push_async_callback(store.aclose)
        self._private_jwks = load_private_jwks(config.signing_keys_path)
        self._publisher = Publisher(issuer=config.issuer, signer=Signer(self._private_jwks))
        rng = random.Random()
        for partner in config.partners:
            limits = partner.limits
            ledger = Ledger(
                window=limits.window,
                retry=RetryPolicy(initial=limits.retry_initial, maximum=limits.retry_max),
                max_attempts=limits.max_attempts,
                # A partner that polls us acks in a later poll: unacked SETs are
                # served again after poll_redelivery (POLL-15), not ack_timeout.
                ack_timeout=(
                    limits.poll_redelivery if partner.send_via == "poll" else limits.ack_timeout
                ),
                rng=rng,
                max_set_bytes=limits.max_set_bytes,
            )
            # Keys from a file, or fetched from jwks_uri once the node runs (issue 6).
            keys = KeyStore.from_file(partner.jwks_path)
            verifier = Verifier(
                issuer=partner.issuer,
                audience=config.issuer,
                keys=keys,
                ssf=partner.ssf,
                strict_subjects=partner.strict_subjects,
                max_token_bytes=partner.limits.max_set_bytes,
            )
            link = Link(
                partner=partner,
                store=store,
                ledger=ledger,
                verifier=verifier,
                inbox_signal=self._inbox,
                progress_signal=self._progress,
            )
            link.metrics = self.metrics
            if getattr(store, "shared", False):
                link.row_owner = self.owner  # several nodes: each sends the rows it leased
            if partner.jwks_uri is not None:
                link.remote_keys = RemoteKeys(partner, keys)
            await link.restore()
            self.links[partner.name] = link
        await count_backlogs(store, self.links)  # issue 6: inbox backlog per partner
        limits = config.limits
        ssl_options = None
        if config.tls is not None:
            ssl_options = server_ssl_options(
                str(config.tls.certfile),
                str(config.tls.keyfile),
                None if config.tls.client_ca is None else str(config.tls.client_ca),
            )
        self._server = HTTPServer(
            create_app(self),
            host=config.listen_host,
            port=config.listen_port,
            max_frame_bytes=limits.max_frame_bytes,
            ssl_options=ssl_options,
            idle_timeout=limits.idle_timeout,
            guard=ConnectionGuard.from_limits(limits),
        )
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self.url = await self._tg.start(self._server.serve)
        for link in self.links.values():
            self._tg.start_soon(link.run)
            self._tg.start_soon(self._dial_and_hold, link)
        self._tg.start_soon(self._watch_store)
        if any(link.row_owner is not None for link in self.links.values()):
            self._tg.start_soon(self._resync_counts)

    async def _dial_and_hold(self, link: Link) -> None:
        """Run the partner's outbound sessions; on a shared store, hold our row leases.

        With several nodes on one PostgreSQL database (issue 7, DESIGN.md "Storage")
        every node runs its sessions to every partner and sends the outbox rows it
        leased: its leases are renewed every third of :data:`LEASE_TTL` while it has
        a way out to the partner, and given up when it has had none for two periods
        in a row; a node that dies stops renewing, and the others take its rows over
        once they expire. While the store cannot be reached, leases are left to run.
        """
        if link.row_owner is None:
            await self._dial(link)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._dial, link)
            await self._hold_rows(link, cast(SharedStore, self._store))

    async def _hold_rows(self, link: Link, store: SharedStore) -> None:
        unreachable = 0
        renewed = anyio.current_time()
        while True:
            # Each second, look for rows whose node died (their leases expired): a
            # dead node's SETs wait at most LEASE_TTL plus this second.
            await anyio.sleep(_TAKEOVER_POLL)
            if link.can_send:
                link.rows_wanted()
            if anyio.current_time() - renewed < LEASE_TTL / 3:
                continue
            renewed = anyio.current_time()
            try:
                if link.can_send:
                    unreachable = 0
                    # Only the rows in memory: a lease on a row we do not hold (a
                    # publish that failed after its commit) runs out and is retaken.
                    await store.renew_outbound(
                        link.name, self.owner, LEASE_TTL, jtis=link.ledger.tracked()
                    )
                elif link.rows_held:
                    unreachable += 1
                    if unreachable >= 2:
                        log.info("partner=%s unreachable: its leased SETs released", link.name)
                        await store.release_outbound(link.name, self.owner)
                        link.rows_released()
            except StoreError as exc:
                log.warning("partner=%s cannot renew its outbox leases: %s", link.name, exc)

    async def _dial(self, link: Link) -> None:
        from .transports.adapters import needs_adapters, run_adapters
        from .transports.dialer import run_dialer

        partner = link.partner
        async with anyio.create_task_group() as tg:
            if "pushpull" in (partner.send_via, partner.receive_via):
                tg.start_soon(run_dialer, link, self)
            if needs_adapters(link):
                tg.start_soon(run_adapters, link)

    async def _resync_counts(self) -> None:
        """Shared store: take each partner's pending count from the store every
        second. Other nodes' SETs, leased to them as they were published, wake no one
        here; ``stats()`` and ``max_pending`` still see them within a second."""
        assert self._store is not None
        while True:
            await anyio.sleep(_TAKEOVER_POLL)
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
                    if link.row_owner is not None and self._store is not None:
                        with contextlib.suppress(StoreError):
                            shared = cast(SharedStore, self._store)
                            await shared.release_outbound(link.name, self.owner)
            if self._server is not None:
                await self._server.stop()
        self._tg.cancel_scope.cancel()
        self._tg = None
        await self._stack.aclose()

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
    ) -> str:
        """Sign a SET for ``partner`` and commit it to the outbox.

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
        store = self._require_store()
        _check_room(link)
        assert self._publisher is not None
        jti, token = self._publisher.mint(
            link.partner, events, sub_id=sub_id, txn=txn, toe=toe, jti=jti
        )
        started = anyio.current_time()
        await self._enqueue(link, store, jti, token, timed=True)
        self.metrics.store_time("enqueue", anyio.current_time() - started)
        return jti

    async def forward(self, partner: str, token: str) -> str:
        """Queue a SET signed elsewhere for ``partner``; returns its jti.

        Raises as :meth:`publish` does; forwarding one token twice to one partner
        raises DuplicateJti the second time.
        """
        link = self._link(partner)
        store = self._require_store()
        _check_room(link)
        check_size(link.partner, token)
        jti = unverified_jti(token)
        await self._enqueue(link, store, jti, token, timed=False)
        return jti

    async def _enqueue(
        self, link: Link, store: Store, jti: str, token: str, *, timed: bool
    ) -> None:
        """Commit one SET to the outbox. On a shared store, while this node can send
        to the partner, the row is leased to us in the same transaction and goes
        straight to the Ledger: no read back, no wake-up of the other nodes."""
        item = OutboundNew(link.name, jti, token)
        leased = link.lease_own()
        try:
            if leased:
                await cast(SharedStore, store).enqueue_leased([item], self.owner, LEASE_TTL)
            else:
                await store.enqueue([item])
        except BaseException as exc:
            if leased:
                link.own_abandoned()
            if isinstance(exc, DuplicateJti):
                raise DuplicateJti.of_set(link.name, jti) from exc
            raise
        link.enqueued(jti, token if leased else None, timed=timed)

    async def receive(self) -> AsyncIterator[Received]:
        """Verified inbound SETs from every partner, in inbox order, until cancelled."""
        store = self._require_store()
        after = 0
        while True:
            woken = self._inbox.snapshot()
            rows = await store.fetch_inbox(after_seq=after, limit=256)
            if not rows:
                await woken.wait()
                continue
            for row in rows:
                after = row.seq
                link = self.links.get(row.partner)
                handled = None if link is None else link.inbound.handled
                yield Received(row.partner, row.jti, row.claims, row.token, row.seq, store, handled)

    def failures(self) -> list[Failure]:
        """SETs a partner rejected or that ran out of attempts, oldest first."""
        return [failure for link in self.links.values() for failure in link.failures]

    def stats(self) -> dict[str, dict[str, int | str]]:
        """Per partner: session, pending, inflight, acked, failed, received."""
        return {name: link.stats() for name, link in self.links.items()}

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

    def public_jwks(self) -> dict[str, Any]:
        """Our public signing keys (``/.well-known/jwks.json``); never a private member."""
        return public_jwks(self._private_jwks)

    async def ready(self) -> bool:
        """Readiness: the store answers and the signing keys are loaded."""
        if self._store is None or self._publisher is None:
            return False
        try:
            with anyio.fail_after(2):
                await self._store.stats()
        except (StoreError, TimeoutError):
            return False
        return True


def _check_room(link: Link) -> None:
    """issue 6: the outbox of one partner grows to ``max_pending``, no further."""
    pending, limit = link.counters.unfinished, link.limits.max_pending
    if pending >= limit:
        raise Backpressure(link.name, pending, limit)
