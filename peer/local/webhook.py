"""Webhook delivery: each received SET POSTed to ``[peer.app] deliver``, done on a 2xx.

One reader pages through the inbox — the rows ``Peer.receive()`` yields, in inbox
order — and hands each row to its partner's *lane*. A lane POSTs its partner's SETs
one at a time: SET n+1 is not sent before SET n got its 2xx and was marked done.
Lanes of different partners run side by side, at most :data:`LANES` POSTs at once.

Anything but a 2xx — another status (a redirect too: never followed), no connection,
no complete answer within the deadline, an answer over :data:`MAX_ANSWER_BYTES` — is
retried with jittered exponential backoff (``reconnect_initial`` up to
``reconnect_max``), never dropped. Delivery is at least once: a 2xx lost on the way,
or a crash between the 2xx and the commit of ``done``, sends that SET again; the
receiver dedupes on ``jti`` (docs/webhook.md).

A lane holds at most :data:`QUEUED` rows. When a partner's lane is full (its SETs
are being retried, or it is simply behind), the reader passes over that partner's
rows and reads on for the others, at most :data:`READ_AHEAD` rows; once the lane has
room again, the reader goes back to the lane's last row and reads from there. So one
partner's SETs that the webhook keeps refusing hold back the others only when more
than :data:`READ_AHEAD` rows of theirs lie behind, and memory stays bounded.
"""

from __future__ import annotations

import collections
import logging
import random
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

import anyio
import httpx

from ..auth.bounded_read import ResponseCut, bounded_request
from ..config.secrets import resolve_secret
from ..errors import StoreError
from ..protocol.jsonio import dumps
from ..protocol.media import JSON
from ..protocol.retry import RetryPolicy
from ..signal import Signal
from .items import received_item
from .webhook_health import Outcome, WebhookHealth, WebhookState

if TYPE_CHECKING:
    from ..config import PeerConfig
    from ..config.limits import Limits
    from ..link import Link
    from ..store.base import InboxRow, Store

__all__ = ["LANES", "MAX_ANSWER_BYTES", "QUEUED", "READ_AHEAD", "Webhook", "build_webhook"]

log = logging.getLogger("setpeer.webhook")

LANES: Final = 4
"""POSTs in flight at once, each for a different partner."""

QUEUED: Final = 64
"""Rows one partner's lane holds; it asks for more when down to a quarter of it."""

READ_AHEAD: Final = 1024
"""Rows the reader reads past a full lane, looking for other partners' SETs."""

PAGE: Final = 256
"""Rows per inbox read."""

MAX_ANSWER_BYTES: Final = 64 * 1024
"""The largest webhook answer read; a longer one is cut and the POST retried."""

IDLE_READ: Final = 1.0
"""Seconds between inbox reads when nothing wakes the reader: SETs another node
stored in a shared store wake no one here."""

STORE_RETRY: Final = 1.0
"""Seconds between attempts while the store does not answer."""

STORE_WAIT: Final = 5.0
"""Seconds one attempt to mark a delivered SET done may take."""


def build_webhook(
    config: PeerConfig, store: Store, inbox: Signal, links: Mapping[str, Link]
) -> Webhook | None:
    """The node's webhook, or None without ``[peer.app] deliver``.

    Raises:
        ConfigError: ``deliver_auth`` cannot be resolved (the message never holds it).
    """
    app = config.app
    if app.deliver is None:
        return None
    bearer = None
    if app.deliver_auth is not None:
        bearer = resolve_secret(app.deliver_auth, config.config_dir, key="peer.app.deliver_auth")

    def handled(partner: str) -> None:
        link = links.get(partner)
        if link is not None:
            link.inbound.handled()  # the partner's inbox backlog shrinks (max_pending)

    def backlog() -> int:
        return sum(link.inbound.backlog for link in links.values())

    return Webhook(
        app.deliver,
        store=store,
        inbox=inbox,
        limits=config.limits,
        bearer=bearer,
        handled=handled,
        backlog=backlog,
    )


class _Lane:
    """One partner's SETs on their way to the webhook, in inbox order."""

    __slots__ = ("after", "filled", "partner", "queue", "skipping")

    def __init__(self, partner: str) -> None:
        self.partner = partner
        self.queue: collections.deque[InboxRow] = collections.deque()
        self.after = 0  # seq of the last row queued
        self.skipping = False  # rows passed over since the queue was full
        self.filled = Signal()


class Webhook:
    """Delivers received SETs to one URL until cancelled.

    Args:
        url: ``[peer.app] deliver``.
        store: the node's store (the inbox is read from it, ``done`` written to it).
        inbox: the node's signal, set when a new SET is stored.
        limits: ``[peer.limits]``: the backoff (``reconnect_initial``, ``reconnect_max``),
            the connect timeout (``handshake_timeout``) and, with ``ack_timeout``, the
            deadline of a whole POST.
        bearer: sent as ``Authorization: Bearer ...`` when given.
        handled: told the partner of each SET marked done.
        backlog: received SETs not yet done (for the state).
        rng: jitter of the backoff.
    """

    def __init__(
        self,
        url: str,
        *,
        store: Store,
        inbox: Signal,
        limits: Limits,
        bearer: str | None = None,
        handled: Callable[[str], None] = lambda partner: None,
        backlog: Callable[[], int] = lambda: 0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        shown = urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl()
        self.health = WebhookHealth(shown, backlog)
        self._store = store
        self._inbox = inbox
        self._handled = handled
        self._headers = {"content-type": JSON}
        if bearer is not None:
            self._headers["authorization"] = f"Bearer {bearer}"
        self._retry = RetryPolicy(initial=limits.reconnect_initial, maximum=limits.reconnect_max)
        self._timeout = httpx.Timeout(limits.ack_timeout, connect=limits.handshake_timeout)
        self._deadline = limits.handshake_timeout + limits.ack_timeout
        self._rng = rng or random.Random()
        self._lanes: dict[str, _Lane] = {}
        self._slots = anyio.Semaphore(LANES)
        self._cursor = 0  # seq of the last inbox row read
        self._rewinds = 0  # bumped when a lane sends the reader back
        self._ahead = 0  # rows read while a lane passes over its rows
        self._room = Signal()  # a full lane has room again
        self._store_away = False  # the last inbox read failed (logged once)

    def state(self) -> WebhookState:
        """The webhook's state now (``Peer.webhook_state()``)."""
        return self.health.snapshot()

    async def run(self) -> None:
        """Read the inbox and deliver, until cancelled."""
        limits = httpx.Limits(max_connections=LANES, max_keepalive_connections=LANES)
        async with (
            httpx.AsyncClient(timeout=self._timeout, limits=limits) as client,
            anyio.create_task_group() as tg,
        ):
            while True:
                for row in await self._next_rows():
                    self._offer(row, client, tg)

    # -- the reader ----------------------------------------------------------------

    async def _next_rows(self) -> list[InboxRow]:
        """The next page of the inbox, waiting until there is one worth reading."""
        while True:
            woken, room = self._inbox.snapshot(), self._room.snapshot()
            if self._ahead >= READ_AHEAD:
                await room.wait()  # far enough past a full lane: wait for it
                continue
            rewinds = self._rewinds
            try:
                rows = await self._store.fetch_inbox(after_seq=self._cursor, limit=PAGE)
            except StoreError as exc:
                if not self._store_away:  # once per outage, not once a second
                    log.warning("webhook: cannot read the inbox, trying every second: %s", exc)
                self._store_away = True
                await anyio.sleep(STORE_RETRY)
                continue
            if self._store_away:
                log.info("webhook: the inbox can be read again")
                self._store_away = False
            if rewinds != self._rewinds:
                continue  # a lane sent the reader back meanwhile: read from there
            if rows:
                return rows
            with anyio.move_on_after(IDLE_READ):
                await _first(woken, room)

    def _offer(self, row: InboxRow, client: httpx.AsyncClient, tg: anyio.abc.TaskGroup) -> None:
        """Queue ``row`` in its partner's lane, or pass over it while the lane is full."""
        self._cursor = row.seq
        lane = self._lanes.get(row.partner)
        if lane is None:
            lane = self._lanes[row.partner] = _Lane(row.partner)
            tg.start_soon(self._deliver_lane, lane, client)
        if any(other.skipping for other in self._lanes.values()):
            self._ahead += 1
        if row.seq <= lane.after:
            return  # queued before the reader went back
        if lane.skipping or len(lane.queue) >= QUEUED:
            lane.skipping = True
            return
        lane.queue.append(row)
        lane.after = row.seq
        lane.filled.set()

    def _taken(self, lane: _Lane) -> None:
        """``lane`` delivered its first row: when it passed over rows and has room
        now, the reader goes back to the lane's last row."""
        lane.queue.popleft()
        if lane.skipping and len(lane.queue) <= QUEUED // 4:
            lane.skipping = False
            self._cursor = min(self._cursor, lane.after)
            self._rewinds += 1
            self._ahead = 0
            self._room.set()

    # -- a lane --------------------------------------------------------------------

    async def _deliver_lane(self, lane: _Lane, client: httpx.AsyncClient) -> None:
        while True:
            while not lane.queue:
                await lane.filled.wait()
            row = lane.queue[0]
            await self._deliver(row, client)
            await self._mark_done(row)
            self._taken(lane)

    async def _deliver(self, row: InboxRow, client: httpx.AsyncClient) -> None:
        """POST ``row`` until a 2xx answers it."""
        body = dumps(received_item(row))
        failures = 0
        while True:
            async with self._slots:
                outcome, why = await self._post(body, client)
            if outcome == "delivered":
                self.health.delivered(row.partner)
                return
            self.health.failed(outcome, why, partner=row.partner, jti=row.jti, seq=row.seq)
            failures += 1
            await anyio.sleep(self._retry.delay(failures, self._rng))

    async def _post(self, body: bytes, client: httpx.AsyncClient) -> tuple[Outcome, str]:
        """One POST: its outcome, and why when it is not ``delivered``."""
        try:
            response = await bounded_request(
                client,
                "POST",
                self.url,
                max_bytes=MAX_ANSWER_BYTES,
                deadline=self._deadline,
                content=body,
                headers=self._headers,
            )
        except ResponseCut as exc:
            return "failed", str(exc).removeprefix(f"POST {self.url}: ")
        except httpx.HTTPError as exc:
            name = type(exc).__name__
            return "failed", (f"{name}: {exc}" if str(exc) else name)
        status = response.status_code
        if 200 <= status < 300:
            return "delivered", ""
        if 300 <= status < 400:
            return "refused", f"answered {status} (redirects are not followed)"
        return "refused", f"answered {status}"

    async def _mark_done(self, row: InboxRow) -> None:
        """Mark ``row`` done, trying again while the store does not answer: the
        webhook has it, so it is not POSTed again (unless the node stops first).
        Each attempt is shielded (a delivered SET is marked even when the node
        stops meanwhile) and bounded by :data:`STORE_WAIT` seconds."""
        while True:
            why = f"no answer within {STORE_WAIT:g} s"
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + STORE_WAIT
                try:
                    await self._store.mark_done([row.seq])
                except StoreError as exc:
                    why = str(exc)
                else:
                    self._handled(row.partner)
                    return
            log.warning(
                "webhook: partner=%s jti=%s delivered, cannot mark it done yet: %s",
                row.partner,
                row.jti,
                why,
            )
            await anyio.sleep(STORE_RETRY)


async def _first(*events: anyio.Event) -> None:
    """Return once any of ``events`` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)
