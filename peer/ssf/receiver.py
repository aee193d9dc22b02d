"""Our stream at a partner that is an SSF transmitter: created, changed, kept, checked.

:class:`ReceiverStream` does each management operation through the
:class:`~peer.ssf.client.StreamClient` and keeps what it learns in the store (role
``receiver``), so the ``setpeer stream`` command and a running node share one truth.
A push stream is created with a fresh bearer token for the transmitter to present
(SSF-19); only its SHA-256 is kept, in the stored configuration's ``setpeer``
member, and it authenticates the partner like ``[partners.inbound]``.

A verification is asked for with a random ``state`` noted first in the store (the
SET may come before the answer); the verification SET that arrives is held against
it (SSF-34): the same state is recorded as verified, another one is refused with
``invalid_state``. A stream-updated SET records the status the transmitter set on
its own (SSF-28).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from ..auth.stream_bearers import StreamBearers, token_digest
from ..protocol.communication import SetErr
from ..protocol.ssf_receiver import (
    DELIVERY_METHODS,
    POLL_METHOD,
    PUSHPULL_METHOD,
    STATUSES,
    STREAM_UPDATED_EVENT,
    TransmitterMetadata,
    delivery_method,
    verification_state,
)
from ..store.base import InboundNew, Store, StreamRow
from ..tokens.schemas import EventSchemas
from .client import StreamClient, StreamError
from .status import ROLE

if TYPE_CHECKING:
    from ..config import Partner

__all__ = [
    "OURS",
    "ROLE",
    "ReceiverStream",
    "bearer_digests",
    "default_events",
    "poll_url",
    "public_config",
]

log = logging.getLogger("setpeer.ssf")

OURS: Final = "setpeer"
"""The stored configuration's member for what only we know (the token's digest)."""
_EVENT_PREFIXES: Final = (
    "https://schemas.openid.net/secevent/caep/event-type/",
    "https://schemas.openid.net/secevent/risc/event-type/",
)
_METHODS: Final = {uri: name for name, uri in DELIVERY_METHODS.items()}


def default_events() -> list[str]:
    """Every CAEP and RISC event type we have a schema for, sorted."""
    known = EventSchemas.default().known_event_types()
    return sorted(uri for uri in known if uri.startswith(_EVENT_PREFIXES))


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored configuration as the transmitter gave it: without our member."""
    return {key: value for key, value in config.items() if key != OURS}


def poll_url(row: StreamRow) -> str | None:
    """The transmitter's poll endpoint of a poll stream, else None."""
    if delivery_method(row.config) != POLL_METHOD:
        return None
    url = row.config["delivery"].get("endpoint_url")
    return url if isinstance(url, str) and url else None


def pushpull_url(row: StreamRow) -> str | None:
    """The transmitter's push-pull endpoint of a push-pull stream (we dial it), else
    None."""
    if delivery_method(row.config) != PUSHPULL_METHOD:
        return None
    url = row.config["delivery"].get("endpoint_url")
    return url if isinstance(url, str) and url else None


def _digest(row: StreamRow) -> bytes | None:
    ours = row.config.get(OURS)
    value = ours.get("bearer_sha256") if isinstance(ours, Mapping) else None
    try:
        return bytes.fromhex(value) if isinstance(value, str) and len(value) == 64 else None
    except ValueError:
        return None


async def bearer_digests(store: Store) -> list[tuple[str, bytes]]:
    """``(partner, digest)`` of every stream token we gave a transmitter."""
    found = []
    for row in await store.streams(role=ROLE):
        digest = _digest(row)
        if digest is not None:
            found.append((row.partner, digest))
    return found


class ReceiverStream:
    """Our stream at one transmitter partner.

    Args:
        partner: the partner (``ssf = "transmitter"``).
        store: the node's store.
        client: talks to the partner.
        base_url: returns our public base URL (where ``/events`` is).
        bearers: the running node's book of stream tokens, told of new ones.
        clock: wall-clock seconds (tests).
    """

    def __init__(
        self,
        partner: Partner,
        store: Store,
        client: StreamClient,
        *,
        base_url: Callable[[], str],
        bearers: StreamBearers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.partner = partner
        self.store = store
        self.client = client
        self.base_url = base_url
        self.bearers = bearers
        self.clock = clock
        self._lock = anyio.Lock()

    @property
    def name(self) -> str:
        return self.partner.name

    async def discover(self) -> TransmitterMetadata:
        """The partner's SSF metadata, read and checked now (SSF-20..24)."""
        return await self.client.discover()

    async def row(self) -> StreamRow | None:
        """Our stream at this partner as last stored, if there is one."""
        rows = await self.store.streams(partner=self.name, role=ROLE)
        return rows[0] if rows else None

    async def _require(self) -> StreamRow:
        row = await self.row()
        if row is None:
            raise StreamError(f"no stream at partner {self.name!r}: create one first")
        return row

    async def _save(self, row: StreamRow, **changes: Any) -> StreamRow:
        """Change the kept stream as it is now, not as ``row`` was read before a
        request: a verification noted meanwhile is not lost to a status read."""
        async with self._lock:
            rows = await self.store.streams(partner=self.name, role=ROLE)
            current = next((r for r in rows if r.stream_id == row.stream_id), None)
            if current is None:
                return row  # deleted meanwhile
            row = dataclasses.replace(current, **changes, updated_at=self.clock())
            await self.store.save_stream(row)
            return row

    # -- management ----------------------------------------------------------------

    async def create(
        self,
        *,
        delivery: str | None = None,
        events_requested: Sequence[str] | None = None,
        description: str | None = None,
    ) -> StreamRow:
        """Create our stream at the partner (SSF 8.1.1.1) and keep it.

        Args:
            delivery: ``push``, ``poll`` or ``pushpull``; default ``[partners.stream]``.
            events_requested: event type URIs; default ``[partners.stream]``, else
                every CAEP and RISC type we understand.
            description: the stream's description.

        Raises:
            StreamError: a stream is kept already, the transmitter does not support
                the delivery method, or the exchange failed (409: it has one for us).
        """
        settings = self.partner.stream
        delivery = delivery or settings.delivery
        if delivery not in DELIVERY_METHODS:
            raise StreamError(f"delivery must be one of {', '.join(DELIVERY_METHODS)}")
        if await self.row() is not None:
            raise StreamError(f"a stream at partner {self.name!r} is kept already: delete it first")
        metadata = await self.client.discover()
        wanted = DELIVERY_METHODS[delivery]
        method = metadata.advertised(wanted)  # a legacy transmitter's RISC name too
        if method is None:
            raise StreamError(f"the transmitter does not advertise delivery {wanted}")
        events = list(events_requested or settings.events_requested or default_events())
        body: dict[str, Any] = {"events_requested": events}
        description = description or settings.description
        if description is not None:
            body["description"] = description
        digest: bytes | None = None
        if delivery in ("poll", "pushpull"):
            # We connect to the endpoint the transmitter returns (decisions.md
            # "Delivery method URIs"), with our [partners.auth] credential.
            body["delivery"] = {"method": method}
        else:
            token = secrets.token_urlsafe(32)
            digest = token_digest(token)
            body["delivery"] = {
                "method": method,
                "endpoint_url": self.base_url().rstrip("/") + "/events",
                "authorization_header": f"Bearer {token}",
            }
            if self.bearers is not None:
                # Before the request: the transmitter may push at once.
                self.bearers.put(self.name, digest)
        config = await self.client.create(body)
        return await self._keep_new(config, digest)

    async def _keep_new(self, config: Mapping[str, Any], digest: bytes | None) -> StreamRow:
        stored = dict(config)
        delivery = stored.get("delivery")
        if isinstance(delivery, dict):
            # The token is the transmitter's to present: never at rest here.
            stored["delivery"] = {k: v for k, v in delivery.items() if k != "authorization_header"}
        if digest is not None:
            stored[OURS] = {"bearer_sha256": digest.hex()}
        row = StreamRow(
            partner=self.name,
            role=ROLE,
            stream_id=str(config["stream_id"]),
            config=stored,
            status="enabled",
            updated_at=self.clock(),
        )
        await self.store.save_stream(row)
        log.info("partner=%s stream %s created", self.name, row.stream_id)
        return row

    async def _merge(self, row: StreamRow, config: Mapping[str, Any]) -> StreamRow:
        """Keep a configuration the transmitter returned, with our member."""
        stored = dict(config)
        delivery = stored.get("delivery")
        if isinstance(delivery, dict):
            stored["delivery"] = {k: v for k, v in delivery.items() if k != "authorization_header"}
        if OURS in row.config:
            stored[OURS] = row.config[OURS]
        return await self._save(row, config=stored)

    async def show(self) -> StreamRow:
        """Read the stream's configuration at the partner (SSF 8.1.1.2) and keep it.

        Raises:
            StreamError: no stream is kept, or the transmitter has none (404).
        """
        row = await self._require()
        config = await self.client.read(row.stream_id)
        if config is None:
            raise StreamError(f"the transmitter has no stream {row.stream_id!r}", 404)
        return await self._merge(row, config)

    async def update(self, changes: Mapping[str, Any]) -> StreamRow:
        """PATCH receiver-supplied fields (``events_requested``, ``description``,
        ``delivery``...); the configuration returned is kept (SSF 8.1.1.3).
        A change the transmitter accepted for later (202) leaves the kept one."""
        row = await self._require()
        config = await self.client.update({**changes, "stream_id": row.stream_id})
        return row if config is None else await self._merge(row, config)

    async def delete(self) -> bool:
        """Delete the stream at the partner (SSF 8.1.1.5) and here.

        Returns:
            False when the transmitter no longer had it (deleted here all the same).
        """
        row = await self._require()
        existed = await self.client.delete(row.stream_id)
        await self.store.delete_stream(self.name, ROLE, row.stream_id)
        if self.bearers is not None:
            self.bearers.replace(await bearer_digests(self.store))
        log.info("partner=%s stream %s deleted", self.name, row.stream_id)
        return existed

    async def read_status(self) -> StreamRow:
        """The stream's status at the partner (SSF 8.1.2.1), kept."""
        row = await self._require()
        status = await self.client.status(row.stream_id)
        return await self._save(row, status=status.status, reason=status.reason)

    async def set_status(self, status: str, reason: str | None = None) -> StreamRow:
        """Ask the partner for ``enabled``, ``paused`` or ``disabled`` (SSF 8.1.2.2);
        the status it reports is kept (unchanged while it has not decided: 202)."""
        if status not in STATUSES:
            raise StreamError(f"status must be one of {', '.join(STATUSES)}")
        row = await self._require()
        answer = await self.client.set_status(row.stream_id, status, reason)
        if answer is None:
            return row
        return await self._save(row, status=answer.status, reason=answer.reason)

    async def add_subject(self, subject: Mapping[str, Any], verified: bool | None = None) -> None:
        """Add a subject to the stream (SSF 8.1.3.2); kept once the partner took it."""
        row = await self._require()
        await self.client.add_subject(row.stream_id, subject, verified)
        await self.store.add_subject(self.name, ROLE, row.stream_id, subject)

    async def remove_subject(self, subject: Mapping[str, Any]) -> None:
        """Remove a subject from the stream (SSF 8.1.3.3), here too. Events about it
        that still arrive are taken as usual (SSF-31)."""
        row = await self._require()
        await self.client.remove_subject(row.stream_id, subject)
        await self.store.remove_subject(self.name, ROLE, row.stream_id, subject)

    async def subjects(self) -> list[Mapping[str, Any]]:
        """The subjects we added, as kept."""
        row = await self._require()
        return await self.store.subjects(self.name, ROLE, row.stream_id)

    async def verify(self) -> StreamRow:
        """Ask for a verification SET with a fresh random ``state`` (SSF 8.1.4.2).

        The state is kept first (state ``requested``); when the SET arrives the
        verification becomes ``verified`` (or ``mismatch``: refused, SSF-34).
        """
        row = await self._require()
        state = secrets.token_urlsafe(16)
        verification = {"state": "requested", "expected": state, "requested_at": self.clock()}
        row = await self._save(row, verification=verification)
        await self.client.verify(row.stream_id, state)
        return row

    # -- the partner's SETs ------------------------------------------------------------

    async def check_sets(self, items: Sequence[InboundNew]) -> dict[str, SetErr]:
        """Hold verification SETs against the state we asked for; note stream-updated
        SETs. Returns the SETs refused, by jti (the rest are stored as usual)."""
        refused: dict[str, SetErr] = {}
        for item in items:
            found = verification_state(item.claims)
            if found is not None:
                err = await self._verification(found)
                if err is not None:
                    refused[item.jti] = err
                continue
            events = item.claims.get("events")
            if isinstance(events, Mapping) and STREAM_UPDATED_EVENT in events:
                await self._stream_updated(events[STREAM_UPDATED_EVENT])
        return refused

    async def _verification(self, found: tuple[str | None, str | None]) -> SetErr | None:
        stream_id, state = found
        if state is None:
            return None  # transmitter-initiated: no state to check (SSF-35)
        row = await self.row()
        verification = dict(row.verification or {}) if row is not None else {}
        expected = verification.get("expected")
        if row is None or stream_id != row.stream_id or state != expected:
            if row is not None and verification.get("state") == "requested":
                await self._save(
                    row, verification={**verification, "state": "mismatch", "at": self.clock()}
                )
            log.info("partner=%s verification SET with a state we did not ask for", self.name)
            return SetErr("invalid_state", "the verification state is not the one requested")
        verification.update(state="verified", received_at=self.clock())
        await self._save(row, verification=verification)
        log.info("partner=%s stream %s verified", self.name, row.stream_id)
        return None

    async def _stream_updated(self, payload: object) -> None:
        if not isinstance(payload, Mapping) or payload.get("status") not in STATUSES:
            return
        row = await self.row()
        if row is None:
            return
        reason = payload.get("reason")
        await self._save(
            row,
            status=str(payload["status"]),
            reason=reason if isinstance(reason, str) else None,
        )
        log.info("partner=%s stream %s is %s", self.name, row.stream_id, payload["status"])

    # -- after a restart -----------------------------------------------------------------

    async def restore(self) -> StreamRow | None:
        """Read the kept stream at the partner again; one the transmitter lost (404)
        is created anew with the same delivery, events and description."""
        row = await self.row()
        if row is None:
            return None
        config = await self.client.read(row.stream_id)
        if config is not None:
            return await self._merge(row, config)
        log.warning(
            "partner=%s has no stream %s any more: creating it again", self.name, row.stream_id
        )
        await self.store.delete_stream(self.name, ROLE, row.stream_id)
        events = row.config.get("events_requested")
        description = row.config.get("description")
        return await self.create(
            delivery=_METHODS.get(delivery_method(row.config) or "", "push"),
            events_requested=events if isinstance(events, list) else None,
            description=description if isinstance(description, str) else None,
        )
