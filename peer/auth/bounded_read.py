"""Every answer we read from a partner or an authorization server, bounded in bytes and time.

httpx reads a whole body before anyone can look at its size, and its timeouts are
per read: a partner answering with hundreds of megabytes, or one byte a second
forever, would hold our memory or our request without end. :func:`bounded_request`
streams the answer instead, stops at ``max_bytes`` (the connection is closed, the
rest never read) and cuts the whole exchange - connect, request, answer - at
``deadline`` seconds. Either is :class:`ResponseCut`: an unusable answer, which the
caller treats like any other (its SETs are retried later).

We ask for the body uncompressed (``Accept-Encoding: identity``) and refuse one that
comes compressed anyway: a few kilobytes of gzip can inflate to megabytes in one
read, before any cap can look at it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Mapping
from typing import Any

import anyio
import httpx

from ..errors import ConnectError

__all__ = ["BoundedResponse", "ResponseCut", "bounded_request", "read_capped", "why_failed"]


class ResponseCut(ConnectError):
    """An answer passed its byte cap or its total deadline, and was cut."""


def why_failed(exc: BaseException) -> str:
    """What a log line says of a request that got no usable answer: the cut, or the
    HTTP error's class with its text (``ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED]
    certificate verify failed: certificate has expired ...``), never the class alone."""
    if isinstance(exc, ResponseCut):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class BoundedResponse:
    """A status, headers and a body of at most the cap's size."""

    status_code: int
    headers: httpx.Headers
    content: bytes


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes | None:
    """The body of a streamed response, read while it arrives; None once it passes
    ``max_bytes`` (the rest is never read). The bytes are those of the wire, not decoded.
    """
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        return None
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


async def bounded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = False,
    body_of: Container[int] | None = None,
    **kwargs: Any,
) -> BoundedResponse:
    """Send one request and read its answer, at most ``max_bytes`` within ``deadline`` s.

    Args:
        client: the HTTP client (its per-read timeouts still apply).
        method: the HTTP method.
        url: where to send it.
        max_bytes: the largest body accepted, counted while it arrives.
        deadline: seconds for the whole exchange, from connecting to the last byte.
        headers: request headers (``Accept-Encoding: identity`` is added).
        follow_redirects: whether to follow redirects (never, unless asked).
        body_of: the statuses whose body the caller uses; any other status comes
            with an empty body, unread. None: every status.
        kwargs: passed to ``client.build_request`` (``content``, ``data``, ``timeout``...).

    Raises:
        ResponseCut: the body passed ``max_bytes`` or came compressed, or the answer
            was not complete after ``deadline`` seconds.
        httpx.HTTPError: the request failed on the way (TLS, connection, timeout).
    """
    request = client.build_request(
        method, url, headers={**(headers or {}), "accept-encoding": "identity"}, **kwargs
    )
    with anyio.move_on_after(deadline) as scope:
        response = await client.send(request, stream=True, follow_redirects=follow_redirects)
        try:
            if body_of is not None and response.status_code not in body_of:
                return BoundedResponse(response.status_code, response.headers, b"")
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                raise ResponseCut(f"{method} {url}: answer compressed ({encoding}) unasked")
            body = await read_capped(response, max_bytes)
        finally:
            # Unread, the connection cannot be reused: closing it drops the rest.
            await response.aclose()
        if body is None:
            raise ResponseCut(f"{method} {url}: answer larger than {max_bytes} bytes")
        return BoundedResponse(response.status_code, response.headers, body)
    assert scope.cancelled_caught
    raise ResponseCut(f"{method} {url}: no complete answer within {deadline:g} s")
