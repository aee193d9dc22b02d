"""Inbound routes of the compatibility adapters: ``/events``, ``/multipush``, ``/poll``.

Each request is authenticated to exactly one partner first (like ``/pushpull``), its
body read within the partner's limits while it arrives, and its SETs go through the
same Link as push-pull: verified, deduplicated on ``(iss, jti)``, stored, and only
then answered. For push and multi-push the HTTP response is the answer, so nothing
is owed afterwards; a lost response makes the partner resend, and the resend is
acknowledged again without a second copy (PUSH-9).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..errors import SETRejected, UnsupportedMediaType, WireError
from ..protocol.communication import SetErr
from ..protocol.media import JSON, media_type
from ..protocol.multipush import MultiPushRequest, MultiPushResponse, is_multipush_media_type
from ..protocol.poll import PollRequest, PollResponse
from ..protocol.push import ERROR_HEADERS, error_response_body, parse_push_request
from ..protocol.vocabulary import SessionKind
from ..tokens.verify import unverified_jti

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["Authenticate", "ReadBody", "adapter_handlers"]

log = logging.getLogger("setpeer.adapters")

Authenticate = Callable[[Request], Awaitable["Link"]]
ReadBody = Callable[[Request, int], Awaitable[bytes]]
ErrorResponse = Callable[[WireError], Response]

_POST_ONLY = Response(status_code=405, headers={"allow": "POST"})


def adapter_handlers(
    authenticate: Authenticate, read_body: ReadBody, error_response: ErrorResponse
) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The request handlers, by path, sharing the server's authentication and errors."""

    async def events(request: Request) -> Response:
        """RFC 8935 push (PUSH-1..18); ``application/json`` bodies are multi-push (MP-1)."""
        if request.method != "POST":
            return _POST_ONLY
        try:
            link = await authenticate(request)
            content_type = request.headers.get("content-type")
            if is_multipush_media_type(content_type):
                return await _multipush(link, request, read_body)
            body = await read_body(request, link.limits.max_set_bytes)
            token = parse_push_request(body, content_type, limits=link.frame_limits)
            link.request_seen(SessionKind.PUSH)
            try:
                jti = unverified_jti(token)
            except SETRejected as exc:
                link.count_rejected(exc.err, exc.description)
                return _set_error(SetErr(exc.err, exc.description))
            verdict = (await link.accept_sets({jti: token}, owe=False))[jti]
        except WireError as exc:
            log.info("POST /events refused: %s %s", exc.http_status, exc.description)
            return error_response(exc)
        if verdict is None:
            return Response(status_code=202)  # PUSH-12: accepted, empty body
        return _set_error(verdict)

    async def multipush(request: Request) -> Response:
        """Multi-push (MP-1..25): a batch in, ``ack`` and ``setErrs`` out."""
        if request.method != "POST":
            return _POST_ONLY
        try:
            link = await authenticate(request)
            return await _multipush(link, request, read_body)
        except WireError as exc:
            log.info("POST /multipush refused: %s %s", exc.http_status, exc.description)
            return error_response(exc)

    async def poll(request: Request) -> Response:
        """RFC 8936 poll, transmitter side (POLL-1..22): the partner polls us."""
        if request.method != "POST":
            return _POST_ONLY
        try:
            link = await authenticate(request)
            body = await read_body(request, link.limits.max_frame_bytes)
            if media_type(request.headers.get("content-type")) != JSON:
                # POLL-2; a plain 400 is what POLL-21 asks when nothing is more specific.
                raise _json_required()
            polled = await link.parse(PollRequest.parse, body)
        except WireError as exc:
            log.info("POST /poll refused: %s %s", exc.http_status, exc.description)
            return error_response(exc)
        link.request_seen(SessionKind.POLL)
        link.answers_received(polled.ack, polled.set_errs)
        response = await _serve_poll(link, polled)
        return Response(response.serialize(), media_type=JSON)

    return {"/events": events, "/multipush": multipush, "/poll": poll}


def _json_required() -> UnsupportedMediaType:
    return UnsupportedMediaType("Content-Type must be application/json")


async def _multipush(link: Link, request: Request, read_body: ReadBody) -> Response:
    body = await read_body(request, link.limits.max_frame_bytes)
    if not is_multipush_media_type(request.headers.get("content-type")):
        raise _json_required()
    # MP-22: over max_sets_per_frame or the byte limit -> FrameTooLarge -> 413.
    batch = await link.parse(MultiPushRequest.parse, body)
    link.request_seen(SessionKind.MULTIPUSH)
    verdicts = await link.accept_sets(batch.sets, batch.rejected, owe=False)
    answer = MultiPushResponse(
        ack=[jti for jti, err in verdicts.items() if err is None],
        set_errs={jti: err for jti, err in verdicts.items() if err is not None},
    )
    headers = {"content-language": "en"} if answer.has_descriptions else {}  # MP-15
    return Response(answer.serialize(), status_code=202, media_type=JSON, headers=headers)


async def _serve_poll(link: Link, polled: PollRequest) -> PollResponse:
    """SETs for the partner: at once, or after a long poll (POLL-10, POLL-20)."""
    limit = link.batch_size
    if polled.max_events is not None:
        limit = min(limit, polled.max_events)
    if limit == 0:
        return PollResponse()  # POLL-9: acknowledge only
    sets: dict[str, str] = {}
    with anyio.move_on_after(0 if polled.return_immediately else link.limits.long_poll_timeout):
        while True:
            woken = link.outbound_ready.snapshot()
            sets = link.take_sets(limit)
            if sets or link.closing:
                break
            await woken.wait()
    if not sets:
        return PollResponse()
    # Served SETs are in flight until acked; unacked ones come back after
    # poll_redelivery (POLL-15), the Ledger's ack timeout for this partner.
    return PollResponse(sets=sets, more_available=link.pending > 0)


def _set_error(err: SetErr) -> Response:
    """RFC 8935 §2.3: a SET refused for good, 400 with the error code (PUSH-14)."""
    return Response(error_response_body(err), status_code=400, headers=ERROR_HEADERS)
