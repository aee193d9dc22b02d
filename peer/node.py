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
import random
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import anyio

from .config import PeerConfig
from .errors import ConfigError, PeerError, StoreError, UnknownPartner
from .link import Failure, Link
from .protocol.ledger import Ledger
from .protocol.retry import RetryPolicy
from .publisher import Publisher
from .signal import Signal
from .store import open_store
from .store.base import OutboundNew, Store
from .tokens.keys import KeyStore, load_private_jwks, public_jwks
from .tokens.sign import Signer
from .tokens.verify import Verifier, unverified_jti
from .transports.serve import HTTPServer, server_ssl_options

__all__ = ["Peer", "Received"]

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

    async def done(self) -> None:
        """Mark handled: never handed to the application again."""
        await self._store.mark_done([self.seq])


class Peer:
    """A setpeer node (API.md "Python facade").

    Args:
        config: the node's configuration (``load_config`` or built in code).
    """

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.url = ""
        self.links: dict[str, Link] = {}
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
        from .server import create_app  # the app reaches back into the node

        config = self.config
        config.validate()  # a config built in code gets the checks load_config applies
        for index, partner in enumerate(config.partners):
            if partner.jwks is None:
                raise ConfigError(
                    [
                        (
                            f"partners[{index}].jwks_uri",
                            "fetching keys from jwks_uri is not "
                            "supported yet (issue 6): give the partner's keys as a jwks file",
                        )
                    ]
                )
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
            )
            verifier = Verifier(
                issuer=partner.issuer,
                audience=config.issuer,
                keys=KeyStore.from_file(partner.jwks_path),
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
            await link.restore()
            self.links[partner.name] = link
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
        )
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self.url = await self._tg.start(self._server.serve)
        for link in self.links.values():
            self._tg.start_soon(link.run)
            self._tg.start_soon(self._dial, link)
        self._tg.start_soon(self._watch_store)

    async def _dial(self, link: Link) -> None:
        from .transports.adapters import needs_adapters, run_adapters
        from .transports.dialer import run_dialer

        partner = link.partner
        async with anyio.create_task_group() as tg:
            if "pushpull" in (partner.send_via, partner.receive_via):
                tg.start_soon(run_dialer, link, self)
            if needs_adapters(link):
                tg.start_soon(run_adapters, link)

    async def _watch_store(self) -> None:
        assert self._store is not None
        async for partner in self._store.watch():
            targets = self.links.values() if partner is None else [self.links[partner]]
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
            ValueError: ``events`` or another argument is not a valid claim value.
            StoreError: the store could not make it durable.
        """
        link = self._link(partner)
        store = self._require_store()
        assert self._publisher is not None
        jti, token = self._publisher.mint(
            link.partner, events, sub_id=sub_id, txn=txn, toe=toe, jti=jti
        )
        await store.enqueue([OutboundNew(partner, jti, token)])
        link.enqueued(1)
        return jti

    async def forward(self, partner: str, token: str) -> str:
        """Queue a SET signed elsewhere for ``partner``; returns its jti."""
        link = self._link(partner)
        store = self._require_store()
        jti = unverified_jti(token)
        await store.enqueue([OutboundNew(partner, jti, token)])
        link.enqueued(1)
        return jti

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
                yield Received(row.partner, row.jti, row.claims, row.token, row.seq, store)

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
        with anyio.move_on_after(timeout):
            while True:
                woken = self._progress.snapshot()
                if all(link.idle for link in self.links.values()):
                    for link in self.links.values():
                        await link.sync()
                    counts = await store.stats()
                    if all(c.pending + c.inflight == 0 for c in counts.values()):
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
