"""The push-pull HTTP binding (push-pull §6): POST a Communication Object, get one back.

Responder: :func:`respond` turns one request into one response, putting SETs for
the initiator in it (they count as in flight, PP-22). Initiator: :func:`run_http_session`
posts SETs and answers, and polls with empty objects while idle, at a bounded rate.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NamedTuple

import anyio
import httpx

from ..auth.bounded_read import ResponseCut, bounded_request, why_failed
from ..errors import ConnectError, PeerError, SessionClosed, UnsupportedMediaType, WireError
from ..protocol.communication import CommunicationObject
from ..protocol.media import JSON, media_type
from ..protocol.vocabulary import SessionId, SessionKind, new_session_id

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["respond", "run_http_session"]

log = logging.getLogger("setpeer.http")

# Idle polling: start fast after traffic, back off to at most this many per second.
IDLE_POLL_MIN = 0.02
IDLE_POLL_MAX = 0.5


async def respond(link: Link, body: bytes, content_type: str | None) -> CommunicationObject:
    """Handle one HTTP push-pull request from ``link``'s partner.

    Raises:
        WireError: the request is refused as a whole (PP-13): nothing in it is
            acknowledged or rejected, so the partner resends it (``Overloaded``: 429).
    """
    if media_type(content_type) != JSON:
        raise UnsupportedMediaType("Content-Type must be application/json")
    request = await link.parse(CommunicationObject.parse, body)
    if request.sets or request.rejected:
        # Over its rate or our inbox backlog, the partner's request is refused whole
        # (429, PP-13): nothing stored or acknowledged, it sends it again later.
        link.check_inbound()
    link.request_seen(SessionKind.HTTP)
    # This request's answers go in this response, not in another request's (the
    # partner may be several nodes, each asking for the answers to its own SETs).
    via = new_session_id()
    try:
        await link.frame_received(request, via=via)
        return await _reply(link, request, via)
    finally:
        link.request_done(via)


async def _reply(link: Link, request: CommunicationObject, via: SessionId) -> CommunicationObject:
    if link.closing:
        max_sets = 0
    elif request.max_response_events is None:
        max_sets = link.batch_size
    else:
        max_sets = min(request.max_response_events, link.batch_size)
    reply = await link.take_frame(max_sets=max_sets, via=via)
    if reply is None:
        return CommunicationObject()
    # We cannot know the response arrives: its SETs stay in flight until acked
    # (PP-30); its answers are repeated only if the partner resends the SETs.
    await link.frame_delivered(reply)
    return reply


# Requests in flight at once while there is traffic: one request at a time leaves
# each side idle while the other works (a 100-SET frame is ~10 ms of verification);
# the answers are per partner, so they may come back on any request (PP-23).
CONCURRENT_REQUESTS = 4


async def run_http_session(
    link: Link, client: httpx.AsyncClient, url: str, *, until: float | None = None
) -> None:
    """Talk push-pull over HTTP to the partner until ``until`` (monotonic) or an error.

    One request loop polls with empty objects while idle (bounded rate); up to
    :data:`CONCURRENT_REQUESTS` - 1 more post only when there is something to send.

    Raises:
        ConnectError: the partner could not be reached or answered with an error.
        SessionClosed: the partner answered in a way we cannot use.
    """
    session = _Session(link, client, url, until, link.session_opened(SessionKind.HTTP))
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENT_REQUESTS - 1):
                tg.start_soon(_request_loop, session, False)
            await _request_loop(session, True)
            tg.cancel_scope.cancel()
    except ExceptionGroup as group:
        # One request loop failed and the others were cancelled: report its error
        # as the session's, like the single-request binding did.
        errors, rest = group.split(PeerError)
        if rest is not None or errors is None:
            raise
        first: BaseException = errors
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        link.session_closed(session.id)


class _Session(NamedTuple):
    """One HTTP push-pull session we run; ``id`` is what its answers are pinned to."""

    link: Link
    client: httpx.AsyncClient
    url: str
    until: float | None
    id: SessionId


async def _request_loop(session: _Session, polls: bool) -> None:
    link, until = session.link, session.until
    idle = IDLE_POLL_MIN
    while until is None or time.monotonic() < until:
        woken = link.outbound_ready.snapshot()
        max_sets = 0 if link.closing else link.batch_size
        frame = await link.take_frame(max_sets=max_sets, via=session.id)
        if frame is None and not polls:
            await woken.wait()
            continue
        frame = frame or CommunicationObject()
        reply = await _exchange(session, frame)
        if frame or reply:
            idle = IDLE_POLL_MIN
            continue
        with anyio.move_on_after(idle):
            await woken.wait()
        idle = min(idle * 2, IDLE_POLL_MAX)


async def _exchange(session: _Session, frame: CommunicationObject) -> CommunicationObject:
    """POST ``frame`` and take in the partner's reply."""
    link, client, url = session.link, session.client, session.url
    request = CommunicationObject(
        sets=frame.sets,
        ack=frame.ack,
        set_errs=frame.set_errs,
        # With our inbox backlog full, ask for answers only (PP-9: 0 SETs).
        max_response_events=0 if link.inbox_full else link.batch_size,
    )
    try:
        response = await bounded_request(
            client,
            "POST",
            url,
            max_bytes=link.limits.max_frame_bytes,
            # The whole exchange, to the last byte (httpx's timeouts are per read).
            deadline=link.limits.handshake_timeout + link.limits.ack_timeout,
            body_of=(200,),
            content=request.serialize(),
            headers={"content-type": JSON, "accept": JSON, **link.auth_headers()},
        )
    except ResponseCut:
        # Over the frame size or the deadline: cut, its SETs and answers owed again.
        link.frame_lost(frame)
        raise
    except httpx.HTTPError as exc:
        link.frame_lost(frame)
        raise ConnectError(f"POST {url}: {why_failed(exc)}") from exc
    except BaseException:  # cancelled with the request on the wire: it may be lost
        link.frame_lost(frame)
        raise
    if response.status_code != 200:
        link.frame_lost(frame)
        raise ConnectError(f"POST {url}: HTTP {response.status_code}")
    await link.frame_delivered(frame)
    try:
        reply = await link.parse(CommunicationObject.parse, response.content)
    except WireError as exc:
        raise SessionClosed(1002, f"bad response: {exc.description}") from exc
    await link.frame_received(reply, via=session.id)
    return reply
