"""The HTTP application: one Starlette app with every route we serve."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..auth.inbound import WWW_AUTHENTICATE, InboundAuthenticator, Unauthorized
from ..auth.stream_bearers import StreamBearers
from ..config.rules import is_loopback
from ..errors import AuthenticationFailed, FrameTooLarge, MalformedFrame, WireError
from ..protocol.push import ERROR_HEADERS, error_response_body
from ..transports.http_adapters import adapter_handlers
from ..transports.http_pushpull import respond
from ..transports.websocket import SUBPROTOCOL, ServerChannel, run_ws_session
from .middleware import GuardMiddleware, admitting
from .refusal_log import RefusalLog, quiet_uvicorn_handshake
from .resource_metadata import resource_metadata_routes

if TYPE_CHECKING:
    from ..config import PeerConfig
    from ..link.port import LinkPort

__all__ = [
    "ExtraRoutes",
    "ServedNode",
    "create_app",
    "create_metrics_app",
    "error_response",
    "read_body",
]

log = logging.getLogger("setpeer.server")


def error_response(exc: WireError) -> Response:
    """The HTTP answer to a refused request: status, RFC 8935 body, headers."""
    headers = dict(ERROR_HEADERS)
    if isinstance(exc, AuthenticationFailed):
        # The challenge names the resource's RFC 9728 metadata (OPRM-19).
        challenge = exc.challenge if isinstance(exc, Unauthorized) else WWW_AUTHENTICATE
        headers["www-authenticate"] = challenge
    headers.update(exc.response_headers())  # Retry-After on 429
    return Response(error_response_body(exc), status_code=exc.http_status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (never buffered whole).

    Raises:
        FrameTooLarge: the announced or actual length is over ``limit``.
    """
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise FrameTooLarge(f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FrameTooLarge(f"body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; nothing was read into the store either.
        raise MalformedFrame("the client went away before the body was complete") from None
    return b"".join(chunks)


class ServedNode(Protocol):
    """What the routes need of the node they serve (``peer.node.Peer`` is one)."""

    @property
    def config(self) -> PeerConfig: ...
    @property
    def links(self) -> Mapping[str, LinkPort]: ...
    @property
    def url(self) -> str:
        """The URL actually bound."""
        ...

    @property
    def accept_websocket(self) -> bool:
        """False makes /pushpull refuse WebSocket upgrades (partners use HTTP)."""
        ...

    @property
    def stream_bearers(self) -> StreamBearers | None:
        """The tokens given to SSF transmitters with our streams, if any partner is one."""
        ...

    def public_jwks(self) -> dict[str, Any]: ...
    def render_metrics(self) -> tuple[bytes, str]:
        """The metrics exposition and its media type."""
        ...

    async def ready(self) -> bool: ...


ExtraRoutes = Callable[[Callable[[Request], Awaitable["LinkPort"]]], list[BaseRoute]]
"""Routes a higher layer adds (SSF stream management), given the authentication."""


def create_app(node: ServedNode, extra: ExtraRoutes | None = None) -> Starlette:
    """Build the app for ``node``; ``extra`` adds routes that authenticate partners
    the same way (each request holds one of its partner's session slots)."""
    # Bearer, mTLS and OAuth; resource identifiers start at our public base URL.
    auth = InboundAuthenticator(
        node.links.values(),
        base_url=lambda: node.config.public_url or node.url,
        streams=node.stream_bearers,
    )
    # Each request or WebSocket holds one of its partner's session slots; refusals
    # are logged with the partner (when known), the reason and the remote address.
    refusals = RefusalLog()
    quiet_uvicorn_handshake()
    authenticate = admitting(auth.authenticate, refusals)

    async def pushpull_post(request: Request) -> Response:
        if request.method != "POST":
            # PP-2 and decision 3: POST only; the WebSocket upgrade is a separate route.
            return Response(status_code=405, headers={"allow": "POST"})
        try:
            link = await authenticate(request)  # a refusal is logged there
        except WireError as exc:
            return error_response(exc)
        try:
            body = await read_body(request, link.limits.max_frame_bytes)
            reply = await respond(link, body, request.headers.get("content-type"))
        except WireError as exc:
            log.info(
                "POST /pushpull refused: %s %s",
                exc.http_status,
                exc.description,
                extra={"partner": link.name, "status": exc.http_status, "err": exc.err},
            )
            return error_response(exc)
        return Response(reply.serialize(), media_type="application/json")

    async def pushpull_ws(websocket: WebSocket) -> None:
        if not node.accept_websocket:
            # Behave like a POST-only endpoint (PP-2): the client falls back to HTTP.
            await websocket.send_denial_response(
                Response(status_code=405, headers={"allow": "POST"})
            )
            return
        try:
            link = await authenticate(websocket)  # a refusal is logged there
        except WireError as exc:
            # Refused before the upgrade: the client sees the HTTP status.
            await websocket.send_denial_response(error_response(exc))
            return
        try:
            await link.before_session()  # held, or 429, over its sessions closed for bad data
        except WireError as exc:
            refusals.refused(websocket, exc, link.name)
            # Refused before the upgrade: the client sees the HTTP status.
            await websocket.send_denial_response(error_response(exc))
            return
        if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
            # PP-17: no pushpull offered, no WebSocket; the client falls back to HTTP.
            await websocket.send_denial_response(
                JSONResponse(
                    {"err": "invalid_request", "description": "subprotocol pushpull required"},
                    status_code=400,
                    headers={"content-language": "en"},
                )
            )
            return
        await websocket.accept(subprotocol=SUBPROTOCOL)
        await run_ws_session(link, ServerChannel(websocket))

    async def jwks(request: Request) -> Response:
        return JSONResponse(node.public_jwks())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = await node.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    routes = [
        Route(
            "/pushpull", pushpull_post, methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST"]
        ),
        WebSocketRoute("/pushpull", pushpull_ws),
        Route("/.well-known/jwks.json", jwks),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if metrics_on_partner_listener(node.config):
        routes.append(Route("/metrics", _metrics_handler(node)))
    # RFC 8935 push, multi-push and RFC 8936 poll, on the same Links.
    methods = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST"]  # 405 for all but POST
    for path, handler in adapter_handlers(authenticate, read_body, error_response).items():
        routes.append(Route(path, handler, methods=methods))
    routes.extend(resource_metadata_routes(auth))  # RFC 9728, when OAuth is used
    if extra is not None:
        routes.extend(extra(authenticate))
    # Request bodies within idle_timeout; early answers close the connection.
    guard = Middleware(GuardMiddleware, body_timeout=node.config.limits.idle_timeout)
    return Starlette(routes=routes, middleware=[guard])


def metrics_on_partner_listener(config: PeerConfig) -> bool:
    """Whether the partner listener serves ``/metrics`` (``[peer.metrics]``).

    Not when they have a listener of their own; with a token, yes; without one, only
    on a loopback address: the metrics name partners and their refusals.
    """
    metrics = config.metrics
    if metrics.listen is not None:
        return False
    return metrics.token_sha256 is not None or is_loopback(config.listen_host)


def create_metrics_app(node: ServedNode) -> Starlette:
    """The app of the separate metrics listener (``[peer.metrics] listen``)."""
    return Starlette(routes=[Route("/metrics", _metrics_handler(node))])


def _metrics_handler(node: ServedNode) -> Callable[[Request], Awaitable[Response]]:
    token = node.config.metrics.token_sha256
    digest = bytes.fromhex(token) if token is not None else None

    async def metrics(request: Request) -> Response:
        if digest is not None and not _bearer_matches(request, digest):
            return Response(status_code=401, headers={"www-authenticate": 'Bearer realm="metrics"'})
        body, media_type = node.render_metrics()
        return Response(body, media_type=media_type)

    return metrics


def _bearer_matches(request: Request, digest: bytes) -> bool:
    presented = request.headers.getlist("authorization")
    if len(presented) != 1:
        return False
    scheme, _, token = presented[0].partition(" ")
    if scheme.lower() != "bearer":
        return False
    found = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(found, digest)
