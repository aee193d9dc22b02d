"""Request limits (ASGI): body deadline, close after an early answer, session slots.

A request body must arrive whole within ``idle_timeout`` (else 408); an answer given
before the body was read closes the connection, so a client cannot keep trickling a
refused 100 MB body; the partner's session slot (:func:`admitting`) is released when
the request or WebSocket ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import HTTPConnection

from ..errors import MalformedFrame, RequestTimeout, WireError
from .http_guard import mark_authenticated
from .refusal_log import RefusalLog

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["GuardMiddleware", "admitting"]

# Routes that only ever carry SETs in: refused before the body is read when the
# partner is over its rate or backlog. /pushpull checks after parsing (a frame of
# acks only is always welcome), /poll carries none.
_SET_ROUTES = frozenset({"/events", "/multipush"})
_HELD = "setpeer.sessions"  # ASGI scope key: the Links a request holds a session slot of
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def admitting(
    authenticate: Callable[[HTTPConnection], Awaitable[Link]],
    refusals: RefusalLog,
) -> Callable[[HTTPConnection], Awaitable[Link]]:
    """``authenticate``, then take a session slot of the partner for this request;
    a refusal is logged through ``refusals`` (with the partner once it is known).

    A connection a partner authenticated on is no longer a stranger's to the
    connection guard (:func:`~peer.server.http_guard.mark_authenticated`).

    The slot is released by :class:`GuardMiddleware` when the request or WebSocket
    ends. SET-only routes are also refused while the partner is over its rate or
    backlog, before their body is read.
    """

    async def admit(conn: HTTPConnection) -> Link:
        try:
            link = await authenticate(conn)
        except WireError as exc:
            refusals.refused(conn, exc)
            raise
        mark_authenticated(conn.scope)  # a partner's connection: the long keep-alive
        held = conn.scope.get(_HELD)
        try:
            if conn.scope.get("path") in _SET_ROUTES:
                link.check_inbound()
            if held is not None:  # only counted where it is released again
                link.take_slot()
                held.append(link)
        except WireError as exc:
            refusals.refused(conn, exc, link.name)
            raise
        return link

    return admit


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class GuardMiddleware:
    """ASGI middleware: body deadline, close after an early answer, release slots.

    Args:
        app: the application.
        body_timeout: seconds a request body may take from the request's start
            (``idle_timeout``).
    """

    def __init__(self, app: ASGIApp, *, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        held: list[Link] = []
        scope[_HELD] = held
        try:
            if kind == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        finally:
            for link in held:
                link.give_slot()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = anyio.current_time() + self.body_timeout
        body_done = not _has_body(scope)

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal body_done
            if body_done:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                if message.get("type") == "http.disconnect":
                    # Gone mid-body: a typed refusal for the route, not a crash.
                    raise MalformedFrame("the client went away before the body was complete")
                if not message.get("more_body", False):
                    body_done = True
                return message
            raise RequestTimeout(f"request body not complete within {self.body_timeout:g} s")

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start" and not body_done:
                # Answered before the body was read (401, 413, 429, 408): close
                # afterwards, or the rest of the body keeps the connection busy.
                headers = list(message.get("headers", []))
                headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)
