"""The SSF 1.0 stream management client: our requests to a partner that is a transmitter.

Discovery reads the partner's metadata at the path-inserted well-known URL of its
``issuer`` (SSF-22) and keeps it only when its ``issuer`` is identical (SSF-24);
every URL in it must be ``https`` (plain HTTP only to loopback with
``allow_insecure_loopback``, SSF-21). Requests go to the endpoints the metadata
names, never to fixed paths, with the partner's ``[partners.auth]`` credential
(SSF-25); an OAuth token refused with 401 is replaced and the request sent once
more. Every answer is read bounded in bytes and time, and every configuration
returned must carry the discovered ``iss`` (SSF-26).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx

from ..auth.bounded_read import ResponseCut, bounded_request
from ..auth.discovery import DiscoveryError, fetch_json
from ..auth.outbound import OutboundAuth, tls_context
from ..config.rules import url_problem
from ..errors import PeerError, WireError
from ..protocol.delivery_methods import discovery_urls
from ..protocol.jsonio import loads_strict
from ..protocol.media import JSON, media_type
from ..protocol.ssf_receiver import (
    InvalidDocument,
    StreamStatus,
    TransmitterMetadata,
    check_stream_config,
    check_stream_status,
    parse_metadata,
)

if TYPE_CHECKING:
    from ..config import Partner

__all__ = ["MAX_ANSWER_BYTES", "REQUEST_DEADLINE", "StreamClient", "StreamError"]

MAX_ANSWER_BYTES: Final = 256 * 1024
"""The largest management answer read (a list of every stream included)."""
REQUEST_DEADLINE: Final = 20.0
"""Seconds for one management exchange, to the last byte of the answer."""


class StreamError(PeerError):
    """A stream management exchange failed: unreachable, refused, or an unusable answer.

    Attributes:
        status: the HTTP status of the transmitter's answer, if it answered.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _why(status: int, body: bytes) -> str:
    """``HTTP 409`` plus the transmitter's error text, when it gave one."""
    text = f"HTTP {status}"
    try:
        document = loads_strict(body, max_bytes=MAX_ANSWER_BYTES, max_depth=8)
    except WireError:
        return text
    if isinstance(document, dict):
        parts = [document.get(k) for k in ("error", "err", "description", "error_description")]
        found = [p[:200] for p in parts if isinstance(p, str)]
        if found:
            return f"{text}: {' '.join(found)}"
    return text


class StreamClient:
    """Talks SSF stream management with one partner.

    Args:
        partner: the partner (``ssf = "transmitter"``); its ``issuer``, ``ca`` and
            ``[partners.auth]``.
        insecure_ok: ``peer.allow_insecure_loopback``: plain HTTP to loopback allowed.
        auth: its outbound credentials (a fresh one by default).
    """

    def __init__(
        self, partner: Partner, *, insecure_ok: bool = False, auth: OutboundAuth | None = None
    ) -> None:
        self.partner = partner
        self.insecure_ok = insecure_ok
        self.auth = auth if auth is not None else OutboundAuth(partner)
        self.metadata: TransmitterMetadata | None = None
        self._http = httpx.AsyncClient(
            verify=tls_context(partner), timeout=10.0, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def url_ok(self, url: str) -> bool:
        """Whether a URL the transmitter gave may be used (SSF-21)."""
        return url_problem(url, ("https",), ("http",), self.insecure_ok) is None

    async def discover(self) -> TransmitterMetadata:
        """Read and check the partner's SSF metadata (SSF-20..24); kept for later calls.

        Raises:
            StreamError: it cannot be fetched, or fails a check (nothing of it is used).
        """
        issuer = self.partner.issuer
        if not self.url_ok(issuer):
            raise StreamError(f"issuer {issuer!r} must be an https URL (SSF-21)")
        url, legacy = discovery_urls(issuer)
        try:
            try:
                document = await fetch_json(
                    self._http, url, what="ssf-configuration", max_bytes=MAX_ANSWER_BYTES
                )
            except DiscoveryError as first:
                # A transmitter on the older drafts serves risc-configuration only.
                try:
                    document = await fetch_json(
                        self._http, legacy, what="risc-configuration", max_bytes=MAX_ANSWER_BYTES
                    )
                except DiscoveryError:
                    raise first from None
                url = legacy
            self.metadata = parse_metadata(document, issuer=issuer, url_ok=self.url_ok)
        except DiscoveryError as exc:
            raise StreamError(str(exc)) from None
        except InvalidDocument as exc:
            raise StreamError(f"{url}: {exc}") from None
        return self.metadata

    async def _metadata(self) -> TransmitterMetadata:
        return self.metadata if self.metadata is not None else await self.discover()

    async def request(
        self,
        endpoint: str,
        method: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, Any]:
        """One management request to the endpoint the metadata names ``endpoint``.

        Returns:
            ``(status, document)``; the document is None for an empty body.

        Raises:
            StreamError: the endpoint is not advertised, the request failed, the
                status is not in ``ok``, or the body is not JSON.
        """
        metadata = await self._metadata()
        url = metadata.endpoint(endpoint)
        if url is None:
            raise StreamError(f"the transmitter advertises no {endpoint}")
        content = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            headers = {"accept": JSON, **(await self.auth.headers())}
            if content is not None:
                headers["content-type"] = JSON
            try:
                answer = await bounded_request(
                    self._http,
                    method,
                    url,
                    max_bytes=MAX_ANSWER_BYTES,
                    deadline=REQUEST_DEADLINE,
                    headers=headers,
                    params=params,
                    content=content,
                )
            except ResponseCut as exc:
                raise StreamError(str(exc)) from None
            except httpx.HTTPError as exc:
                raise StreamError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
            if answer.status_code == 401 and attempt == 1 and self.auth.uses_oauth:
                await self.auth.refresh()
                continue
            break
        status = answer.status_code
        if status not in ok:
            raise StreamError(f"{method} {endpoint}: {_why(status, answer.content)}", status)
        if not answer.content.strip():
            return status, None
        if media_type(answer.headers.get("content-type")) != JSON:
            raise StreamError(f"{method} {endpoint}: Content-Type is not {JSON}", status)
        try:
            return status, loads_strict(answer.content, max_bytes=MAX_ANSWER_BYTES, max_depth=32)
        except WireError as exc:
            raise StreamError(f"{method} {endpoint}: {exc.description}", status) from None

    def _config(self, document: object, stream_id: str | None = None) -> dict[str, Any]:
        try:
            return check_stream_config(document, issuer=self.partner.issuer, stream_id=stream_id)
        except InvalidDocument as exc:
            raise StreamError(f"stream configuration: {exc}") from None

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new stream (SSF 8.1.1.1): its configuration, checked."""
        _, document = await self.request("configuration_endpoint", "POST", body=body, ok=(201,))
        return self._config(document)

    async def read(self, stream_id: str) -> dict[str, Any] | None:
        """GET one stream's configuration (SSF 8.1.1.2); None when it has none (404)."""
        status, document = await self.request(
            "configuration_endpoint", "GET", params={"stream_id": stream_id}, ok=(200, 404)
        )
        if status == 404:
            return None
        if isinstance(document, list):  # some transmitters answer a list of one
            document = document[0] if len(document) == 1 else None
        return self._config(document, stream_id)

    async def update(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """PATCH receiver-supplied fields (SSF 8.1.1.3): the new configuration, or
        None when the transmitter accepted it for later (202)."""
        status, document = await self.request(
            "configuration_endpoint", "PATCH", body=body, ok=(200, 202)
        )
        return None if status == 202 else self._config(document, str(body["stream_id"]))

    async def delete(self, stream_id: str) -> bool:
        """DELETE the stream (SSF 8.1.1.5); False when the transmitter had none (404)."""
        status, _ = await self.request(
            "configuration_endpoint", "DELETE", params={"stream_id": stream_id}, ok=(204, 200, 404)
        )
        return status != 404

    def _status(self, document: object, stream_id: str) -> StreamStatus:
        try:
            return check_stream_status(document, stream_id=stream_id)
        except InvalidDocument as exc:
            raise StreamError(f"stream status: {exc}") from None

    async def status(self, stream_id: str) -> StreamStatus:
        """GET the stream's status (SSF 8.1.2.1)."""
        _, document = await self.request("status_endpoint", "GET", params={"stream_id": stream_id})
        return self._status(document, stream_id)

    async def set_status(
        self, stream_id: str, status: str, reason: str | None = None
    ) -> StreamStatus | None:
        """POST a new status (SSF 8.1.2.2): the status now, or None when the
        transmitter has not decided yet (202)."""
        body = {"stream_id": stream_id, "status": status}
        if reason is not None:
            body["reason"] = reason
        code, document = await self.request("status_endpoint", "POST", body=body, ok=(200, 202))
        return None if code == 202 else self._status(document, stream_id)

    async def add_subject(
        self, stream_id: str, subject: Mapping[str, Any], verified: bool | None = None
    ) -> None:
        """POST a subject to add (SSF 8.1.3.2). Success tells nothing more (SSF-32):
        200 (8.1.3.2) and 204 (9.1) both count."""
        body: dict[str, Any] = {"stream_id": stream_id, "subject": dict(subject)}
        if verified is not None:
            body["verified"] = verified
        await self.request("add_subject_endpoint", "POST", body=body, ok=(200, 204))

    async def remove_subject(self, stream_id: str, subject: Mapping[str, Any]) -> None:
        """POST a subject to remove (SSF 8.1.3.3); 204, or 200 from some transmitters."""
        body = {"stream_id": stream_id, "subject": dict(subject)}
        await self.request("remove_subject_endpoint", "POST", body=body, ok=(204, 200))

    async def verify(self, stream_id: str, state: str) -> None:
        """Ask for a verification SET carrying ``state`` (SSF 8.1.4.2). A 204 only
        means it will be sent (SSF-35); 429 (too soon, SSF-36) is a StreamError."""
        body = {"stream_id": stream_id, "state": state}
        await self.request("verification_endpoint", "POST", body=body, ok=(204, 200))
