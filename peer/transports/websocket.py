"""The push-pull WebSocket binding (push-pull §7): one Communication Object per message.

Both ends run the same session loop once the handshake is done: a reader feeding
the Link, and a writer sending whatever the Link has (SETs and acks together).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..errors import CLOSE_INTERNAL_ERROR, SessionClosed, WireError
from ..protocol.communication import CommunicationObject
from ..protocol.vocabulary import SessionId, SessionKind
from .frame_log import debug

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["ClientChannel", "ServerChannel", "SUBPROTOCOL", "run_ws_session"]

log = logging.getLogger("setpeer.websocket")

# push-pull §7.1.1 (-03 IANA); -02's "puhspull" is a typo we do not accept (decision 1).
SUBPROTOCOL = "pushpull"


class Channel(Protocol):
    async def send(self, data: bytes) -> None: ...
    async def recv(self) -> str | bytes: ...
    async def close(self, code: int, reason: str) -> None: ...


class ClientChannel:
    """A websockets client connection as a channel."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        try:
            # JSON is text (PP pitfall 6): send a text frame.
            await self._ws.send(data.decode())
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


def _closed(exc: ConnectionClosed) -> SessionClosed:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return SessionClosed(1006, "connection lost")
    return SessionClosed(frame.code, frame.reason)


class ServerChannel:
    """A Starlette (uvicorn) server-side WebSocket as a channel."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._closed = False

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send_text(data.decode())
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise SessionClosed(1006, "connection lost") from exc

    async def recv(self) -> str | bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            self._closed = True
            raise SessionClosed(int(message.get("code", 1005)), str(message.get("reason") or ""))
        text = message.get("text")
        if text is not None:
            return str(text)
        # Binary frames holding UTF-8 JSON are accepted (PP pitfall 6).
        return bytes(message.get("bytes") or b"")

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._ws.close(code, reason)
        except (RuntimeError, OSError):
            pass


async def run_ws_session(link: Link, channel: Channel) -> None:
    """Exchange Communication Objects with the partner until the session ends.

    A malformed or oversized message closes the session with 1007/1009 and a reason
    (docs/decisions.md, decision 6); what was stored stays stored.
    """
    session = link.session_opened(SessionKind.WEBSOCKET, closer=channel)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_closed, _writer, link, channel, session, tg.cancel_scope)
            await _until_closed(_reader, link, channel, session, tg.cancel_scope)
    except Exception:
        log.exception(
            "partner=%s session=%d websocket session failed",
            link.name,
            session,
            extra={"partner": link.name, "session": session},
        )
        with anyio.CancelScope(shield=True):
            await channel.close(CLOSE_INTERNAL_ERROR, "internal error")
    finally:
        link.session_closed(session)
        debug.ended(session)


async def _until_closed(
    loop: Callable[[Link, Channel, SessionId], Awaitable[None]],
    link: Link,
    channel: Channel,
    session: SessionId,
    scope: anyio.CancelScope,
) -> None:
    """Run the reader or writer; when either ends (closed or done) stop both."""
    try:
        await loop(link, channel, session)
    except* SessionClosed as group:
        for exc in group.exceptions:
            assert isinstance(exc, SessionClosed)
            log.info(
                "partner=%s session=%d websocket closed %s %s",
                link.name,
                session,
                exc.code,
                exc.reason,
                extra={"partner": link.name, "session": session, "description": exc.reason},
            )
    finally:
        scope.cancel()


# Frames being verified and stored at once per session: their inbox writes share one
# group commit instead of queueing one fsync each behind the other.
_PIPELINE = 32
# Frames read in a row before the reader lets the rest of the node run.
_BURST = 8


async def _reader(link: Link, channel: Channel, session: SessionId) -> None:
    """Read the partner's messages, each only once there is room for its work.

    A slot of the session's pipeline is taken BEFORE the next message is read, so a
    partner sending faster than its frames are handled is paused by TCP instead of
    piling up parsed frames and tasks. A frame without SETs (answers only, or ``{}``)
    is handled inline and costs no task.
    """
    limiter = anyio.CapacityLimiter(_PIPELINE)
    read = 0

    async def handle(frame: CommunicationObject, slot: object) -> None:
        try:
            await link.frame_received(frame, via=session)
        except WireError as exc:
            await _refuse(link, channel, exc, session)
            tg.cancel_scope.cancel()
        finally:
            limiter.release_on_behalf_of(slot)

    async with anyio.create_task_group() as tg:
        while True:
            slot = object()
            read += 1
            try:
                # Room first. While there is room the frames already buffered are read
                # in one go (their SETs then share one commit), yielding to the rest
                # of the node every _BURST frames.
                limiter.acquire_on_behalf_of_nowait(slot)
                if read % _BURST == 0:
                    await anyio.lowlevel.checkpoint()
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(slot)
            except BaseException:
                limiter.release_on_behalf_of(slot)
                raise
            try:
                message = await channel.recv()
                frame = await link.parse(CommunicationObject.parse, message)
                if debug.on:
                    debug.frame(link.name, session, "in", len(message), frame)
                del message  # up to max_frame_bytes: not kept while the next is awaited
                if frame.sets or frame.rejected:
                    # Over the partner's rate the reader pauses (TCP pushes back on
                    # it) instead of closing a session that is merely fast; over the
                    # backlog the session closes 1013 and the partner comes back
                    # later: the refused frame was neither stored nor acknowledged.
                    await link.admit_frame(len(frame.sets) + len(frame.rejected))
            except WireError as exc:
                limiter.release_on_behalf_of(slot)
                await _refuse(link, channel, exc, session)
                return
            except BaseException:
                limiter.release_on_behalf_of(slot)
                raise
            if frame.sets or frame.rejected:
                tg.start_soon(handle, frame, slot)
                continue
            limiter.release_on_behalf_of(slot)
            if frame.ack or frame.set_errs:
                await link.frame_received(frame, via=session)  # answers only: no I/O


async def _refuse(link: Link, channel: Channel, exc: WireError, session: SessionId) -> None:
    """Close the session for ``exc`` with its close code and reason. Bad data also
    counts against the partner's budget of such closes (:mod:`peer.link.session_brake`)."""
    delay = link.session_refused(exc)
    after = f" (its next session in {delay:.1f} s at the earliest)" if delay else ""
    log.info(
        "partner=%s session=%d websocket refused: %s %s%s",
        link.name,
        session,
        exc.close_code,
        exc.description,
        after,
        extra={
            "partner": link.name,
            "session": session,
            "status": exc.close_code,
            "err": exc.err,
            "description": exc.description,
        },
    )
    await channel.close(exc.close_code, exc.close_reason)


async def _writer(link: Link, channel: Channel, session: SessionId) -> None:
    while True:
        woken = link.outbound_ready.snapshot()
        # While closing, only answers go out: no new SETs on a session about to end.
        max_sets = 0 if link.closing else link.batch_size
        frame = await link.take_frame(max_sets=max_sets, via=session)
        if frame is None:
            await woken.wait()
            continue
        try:
            data = frame.serialize()
            if debug.on:
                debug.frame(link.name, session, "out", len(data), frame)
            await channel.send(data)
        except BaseException:
            link.frame_lost(frame)
            raise
        await link.frame_delivered(frame)
