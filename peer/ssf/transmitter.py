"""The transmitter role: each partner with ``ssf = "receiver"`` has at most one stream
with us, kept in the store and laid over its Link as a :class:`~peer.link.delivery.Delivery`.

Every operation is one partner's (the routes authenticate it first) and is bound to
that partner's own stream: another partner's ``stream_id`` is simply not found
(404, never 403, so existence does not leak). State changes are saved before they
are answered, and a restart restores streams, subjects, status and delivery.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from ..errors import StoreError, StreamDisabled
from ..link.delivery import Delivery, Hold
from ..protocol.ssf_streams import (
    METHODS,
    POLL_METHOD,
    PUSHPULL_METHOD,
    STATUSES,
    STREAM_UPDATED_EVENT,
    VERIFICATION_EVENT,
    StreamConfigError,
    events_delivered,
    merge_receiver_fields,
    receiver_fields,
    wanted,
)
from ..store.base import Store, StreamRow

if TYPE_CHECKING:
    from ..link.link import Link

__all__ = ["MIN_VERIFICATION_INTERVAL", "ROLE", "StreamError", "Transmitter"]

log = logging.getLogger("setpeer.ssf")

DISABLED_ERR = "stream_disabled"
DISABLED_DESCRIPTION = "the receiver disabled its SSF stream: nothing is held"
DISCARD_DEADLINE = 5.0  # seconds a disable spends failing queued SETs before answering
DISCARD_POLL = 0.02
FOLLOW_INTERVAL = 1.0  # seconds between reads of the streams other nodes may change

ROLE: Final = "transmitter"
MIN_VERIFICATION_INTERVAL: Final = 5
"""Seconds between verification requests of one stream; sooner ones get 429 (SSF-36)."""

Send = Callable[[str, Mapping[str, Mapping[str, Any]], Mapping[str, Any]], Awaitable[str]]
"""Mint and enqueue a SET for a partner: ``(partner, events, sub_id) -> jti``."""


class StreamError(Exception):
    """A management request refused: HTTP status, error code, description."""

    def __init__(
        self, status: int, err: str, description: str, retry_after: int | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.err = err
        self.description = description
        self.retry_after = retry_after


def _not_found() -> StreamError:
    return StreamError(404, "not_found", "no such stream")


class Transmitter:
    """The streams partners that are SSF receivers made with us.

    Args:
        store: the node's store.
        links: every partner's Link, by name.
        issuer: our ``iss``.
        supported: the event types we can send (``events_supported``).
        base_url: our public base URL (``public_url``, else the bound URL).
        send: mints and enqueues a SET, past subject filtering (verification and
            stream-updated events).
        insecure_ok: whether a plain ``http://`` endpoint on a host is allowed.
    """

    def __init__(
        self,
        *,
        store: Store,
        links: Mapping[str, Link],
        issuer: str,
        supported: list[str],
        base_url: Callable[[], str],
        send: Send,
        insecure_ok: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.links = links
        self.issuer = issuer
        self.supported = supported
        self.base_url = base_url
        self.send = send
        self.insecure_ok = insecure_ok
        self._streams: dict[str, StreamRow] = {}
        self._subjects: dict[str, list[Mapping[str, Any]]] = {}
        self._lock = anyio.Lock()  # one management change at a time

    @property
    def partners(self) -> list[str]:
        """Partners that may manage a stream with us (``ssf = "receiver"``)."""
        return [name for name, link in self.links.items() if link.configured.ssf_receiver]

    async def restore(self) -> None:
        """Load the streams and subjects from the store and apply their delivery."""
        for row in await self.store.streams(role=ROLE):
            link = self.links.get(row.partner)
            if link is None or not link.configured.ssf_receiver:
                continue  # the partner left the config, or is no receiver any more
            self._streams[row.partner] = row
            self._subjects[row.partner] = await self.store.subjects(
                row.partner, ROLE, row.stream_id
            )
            link.set_delivery(self._delivery(row))

    async def follow(self, interval: float = FOLLOW_INTERVAL) -> None:
        """Nodes sharing one database serve the same streams: take up what another
        node created, changed or deleted, re-reading the store every ``interval``."""
        while True:
            await anyio.sleep(interval)
            try:
                async with self._lock:
                    await self._refresh()
            except StoreError:
                continue  # the store is away; the node's readiness says so

    async def _refresh(self) -> None:
        rows = {
            row.partner: row
            for row in await self.store.streams(role=ROLE)
            if row.partner in self.links and self.links[row.partner].configured.ssf_receiver
        }
        for partner in list(self._streams):
            if partner not in rows:  # deleted through another node
                del self._streams[partner]
                self._subjects.pop(partner, None)
                self.links[partner].set_delivery(None)
        for partner, row in rows.items():
            subjects = await self.store.subjects(partner, ROLE, row.stream_id)
            if self._streams.get(partner) == row and self._subjects.get(partner) == subjects:
                continue
            self._streams[partner] = row
            self._subjects[partner] = subjects
            self.links[partner].set_delivery(self._delivery(row))

    # -- what the node asks ---------------------------------------------------------

    def wanted(self, partner: str, sub_id: Mapping[str, Any] | None) -> bool:
        """Whether a SET about ``sub_id`` goes to ``partner`` (SSF-29): always, unless
        its stream has subjects and none matches."""
        if partner not in self._streams:
            return True
        return wanted(self._subjects.get(partner, []), sub_id)

    def stream(self, partner: str) -> StreamRow | None:
        """The partner's stream, if it made one."""
        return self._streams.get(partner)

    # -- configuration (SSF 8.1.1) -------------------------------------------------

    def _own(self, partner: str, stream_id: object) -> StreamRow:
        row = self._streams.get(partner)
        if not isinstance(stream_id, str) or row is None or row.stream_id != stream_id:
            raise _not_found()
        return row

    def _fields(self, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return receiver_fields(body, self.insecure_ok)
        except StreamConfigError as exc:
            raise StreamError(400, "invalid_request", exc.description) from None

    def _config(self, partner: str, stream_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The whole configuration object: ours (T) and the receiver's (R) members."""
        link = self.links[partner]
        delivery = dict(fields.get("delivery") or {"method": POLL_METHOD})
        base = self.base_url().rstrip("/")
        if delivery["method"] == POLL_METHOD:
            delivery["endpoint_url"] = base + "/poll"
        elif delivery["method"] == PUSHPULL_METHOD:
            delivery["endpoint_url"] = base + "/pushpull"
        requested = fields.get("events_requested")
        config: dict[str, Any] = {
            "stream_id": stream_id,
            "iss": self.issuer,
            "aud": link.configured.audience,
            "events_supported": list(self.supported),
        }
        if requested is not None:
            config["events_requested"] = list(requested)
        config["events_delivered"] = events_delivered(self.supported, requested)
        config["delivery"] = delivery
        config["min_verification_interval"] = MIN_VERIFICATION_INTERVAL
        if "description" in fields:
            config["description"] = fields["description"]
        return config

    @staticmethod
    def public(row: StreamRow) -> dict[str, Any]:
        """The configuration object as the receiver reads it (``authorization_header``
        is write-only: a credential is never echoed)."""
        config = dict(row.config)
        delivery = dict(config.get("delivery") or {})
        delivery.pop("authorization_header", None)
        config["delivery"] = delivery
        return config

    @staticmethod
    def _delivery(row: StreamRow) -> Delivery:
        delivery = row.config.get("delivery") or {}
        method = delivery.get("method", POLL_METHOD)
        via = METHODS.get(method, "poll")
        endpoint = delivery.get("endpoint_url") if via in ("push", "multipush") else None
        status: Hold = row.status  # type: ignore[assignment]  # checked by the store
        return Delivery(via, endpoint, delivery.get("authorization_header"), status)

    async def _save(self, row: StreamRow) -> StreamRow:
        saved = await self.store.save_stream(row)
        self._streams[row.partner] = saved
        link = self.links[row.partner]
        link.set_delivery(self._delivery(saved))
        if saved.status == "disabled":
            await self.discard_while_disabled(link)
        return saved

    async def discard_while_disabled(self, link: Link) -> None:
        """A disabled stream holds nothing (SSF 8.1.2): the partner's SETs queued
        before the disable fail with ``stream_disabled`` (they show in
        ``failures``), in the Ledger and then the rest of the outbox as the feed loads
        it; new ones are refused at ``publish``."""
        discarded = 0
        with anyio.move_on_after(DISCARD_DEADLINE):
            while link.delivery is not None and link.delivery.status == "disabled":
                failed = link.discard_queued(DISABLED_ERR, DISABLED_DESCRIPTION)
                discarded += failed
                if not failed:
                    await link.sync()
                    if link.idle:
                        break
                await anyio.sleep(DISCARD_POLL)
        if discarded:
            log.info("partner=%s ssf stream disabled: %d queued SETs failed", link.name, discarded)

    async def create(self, partner: str, body: Mapping[str, Any]) -> StreamRow:
        """A new stream (SSF 8.1.1.1); 409 when the partner has one already."""
        fields = self._fields(body)
        async with self._lock:
            if partner in self._streams:
                raise StreamError(409, "conflict", "this receiver has a stream already")
            stream_id = secrets.token_urlsafe(16)
            config = self._config(partner, stream_id, fields)
            row = StreamRow(partner, ROLE, stream_id, config, "enabled")
            self._subjects[partner] = []
            saved = await self._save(row)
        log.info("partner=%s ssf stream %s created (%s)", partner, stream_id, config["delivery"])
        return saved

    async def update(self, partner: str, body: Mapping[str, Any], *, replace: bool) -> StreamRow:
        """PATCH (only the members given) or PUT (members left out are deleted)."""
        async with self._lock:
            row = self._own(partner, body.get("stream_id"))
            fields = self._fields(body)
            current = {
                k: row.config[k]
                for k in ("events_requested", "description", "delivery")
                if k in row.config
            }
            try:
                merged = merge_receiver_fields(current, fields, replace=replace)
            except StreamConfigError as exc:
                raise StreamError(400, "invalid_request", exc.description) from None
            config = self._config(partner, row.stream_id, merged)
            return await self._save(dataclasses.replace(row, config=config, updated_at=0.0))

    async def delete(self, partner: str, stream_id: object) -> None:
        """Delete the stream and its subjects; the Link goes back to its configuration."""
        async with self._lock:
            row = self._own(partner, stream_id)
            await self.store.delete_stream(partner, ROLE, row.stream_id)
            del self._streams[partner]
            self._subjects.pop(partner, None)
            self.links[partner].set_delivery(None)

    # -- status (SSF 8.1.2) ------------------------------------------------------------

    def status_of(self, partner: str, stream_id: object) -> dict[str, Any]:
        """``{stream_id, status, reason?}``."""
        row = self._own(partner, stream_id)
        answer: dict[str, Any] = {"stream_id": row.stream_id, "status": row.status}
        if row.reason is not None:
            answer["reason"] = row.reason
        return answer

    async def set_status(
        self, partner: str, stream_id: object, status: object, reason: object = None
    ) -> dict[str, Any]:
        """The receiver sets its stream's status."""
        if not isinstance(status, str) or status not in STATUSES:
            raise StreamError(400, "invalid_request", f"status must be one of {STATUSES}")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 2048):
            raise StreamError(400, "invalid_request", "reason must be a string")
        async with self._lock:
            row = self._own(partner, stream_id)
            changed = dataclasses.replace(row, status=status, reason=reason, updated_at=0.0)
            await self._save(changed)
        return self.status_of(partner, stream_id)

    async def change_status(
        self, partner: str, status: str, reason: str | None = None, *, settle: float = 5.0
    ) -> None:
        """We change the stream's status (an operator): the receiver hears of it by a
        stream-updated event (SSF-28), sent before a pause or disable takes effect
        (waiting up to ``settle`` seconds for it to be acknowledged), after enabling.

        Raises:
            LookupError: the partner has no stream.
            ValueError: not a status.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        row = self._streams.get(partner)
        if row is None:
            raise LookupError(f"partner {partner!r} has no SSF stream")
        payload: dict[str, Any] = {"status": status}
        if reason is not None:
            payload["reason"] = reason
        event = {STREAM_UPDATED_EVENT: payload}
        sub_id = {"format": "opaque", "id": row.stream_id}
        link = self.links[partner]
        if status != "enabled":
            await self._send_quietly(partner, event, sub_id)
            with anyio.move_on_after(settle):
                await link.drained()
        await self.set_status(partner, row.stream_id, status, reason)
        if status == "enabled":
            await self._send_quietly(partner, event, sub_id)

    async def _send_quietly(
        self, partner: str, events: Mapping[str, Mapping[str, Any]], sub_id: Mapping[str, Any]
    ) -> None:
        try:
            await self.send(partner, events, sub_id)
        except StreamDisabled:
            log.info("partner=%s ssf stream disabled: event not sent", partner)

    # -- subjects (SSF 8.1.3) ----------------------------------------------------------

    async def add_subject(self, partner: str, body: Mapping[str, Any]) -> None:
        """Add a subject; SSF-30: ``verified`` is accepted and not acted upon."""
        subject = _subject(body)
        async with self._lock:
            row = self._own(partner, body.get("stream_id"))
            if await self.store.add_subject(partner, ROLE, row.stream_id, subject):
                self._subjects.setdefault(partner, []).append(subject)

    async def remove_subject(self, partner: str, body: Mapping[str, Any]) -> None:
        """Remove a subject; one never added is no error."""
        subject = _subject(body)
        async with self._lock:
            row = self._own(partner, body.get("stream_id"))
            await self.store.remove_subject(partner, ROLE, row.stream_id, subject)
            self._subjects[partner] = await self.store.subjects(partner, ROLE, row.stream_id)

    # -- verification (SSF 8.1.4) ------------------------------------------------------

    async def verify(self, partner: str, body: Mapping[str, Any]) -> None:
        """Queue a verification SET echoing ``state`` (SSF-35); 429 within
        ``min_verification_interval`` of the last request (SSF-36). A disabled
        stream sends nothing (answered 204 still)."""
        state = body.get("state")
        if state is not None and (not isinstance(state, str) or len(state) > 2048):
            raise StreamError(400, "invalid_request", "state must be a string")
        async with self._lock:
            row = self._own(partner, body.get("stream_id"))
            now = time.time()
            last = (row.verification or {}).get("requested_at")
            if isinstance(last, (int, float)) and now - last < MIN_VERIFICATION_INTERVAL:
                wait = int(MIN_VERIFICATION_INTERVAL - (now - last)) + 1
                raise StreamError(429, "too_many_requests", "verification asked too often", wait)
            verification: dict[str, Any] = {"requested_at": now}
            if state is not None:
                verification["state"] = state
            await self._save(dataclasses.replace(row, verification=verification, updated_at=0.0))
        payload = {} if state is None else {"state": state}
        sub_id = {"format": "opaque", "id": row.stream_id}
        await self._send_quietly(partner, {VERIFICATION_EVENT: payload}, sub_id)


def _subject(body: Mapping[str, Any]) -> dict[str, Any]:
    subject = body.get("subject")
    if not isinstance(subject, Mapping) or not isinstance(subject.get("format"), str):
        raise StreamError(400, "invalid_request", "subject must be an object with a format")
    verified = body.get("verified")
    if verified is not None and not isinstance(verified, bool):
        raise StreamError(400, "invalid_request", "verified must be true or false")
    return dict(subject)
