"""The SSF 1.0 routes of the transmitter role, on the partner listener.

``GET /.well-known/ssf-configuration[/issuer path]`` (public, SSF-20..24) names the
management endpoints; clients follow it. Each management request is authenticated
as its partner's inbound authentication (SSF-25) before its body is read (at most
:data:`MAX_BODY` bytes), and acts on that partner's own stream only. Refusals are
the partner routes' error shape: status plus ``{"err", "description"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import WireError
from ..protocol.delivery_methods import RISC_POLL, RISC_PUSH
from ..protocol.jsonio import loads_strict
from ..protocol.media import JSON, media_type
from ..protocol.push import ERROR_HEADERS
from ..protocol.ssf_streams import CONFIGURATION_PATH, METHODS
from ..server.app import error_response, read_body
from .transmitter import StreamError, Transmitter

if TYPE_CHECKING:
    from ..link.link import Link

__all__ = ["ENDPOINTS", "MAX_BODY", "ssf_routes"]

log = logging.getLogger("setpeer.ssf")

MAX_BODY: Final = 65_536
"""Bytes a management request body may have."""

ENDPOINTS: Final = {
    "configuration_endpoint": "/ssf/stream",
    "status_endpoint": "/ssf/status",
    "add_subject_endpoint": "/ssf/subjects/add",
    "remove_subject_endpoint": "/ssf/subjects/remove",
    "verification_endpoint": "/ssf/verify",
}

Authenticate = Callable[[Request], Awaitable["Link"]]
Handler = Callable[["Link", Request], Awaitable[Response]]


def _refusal(status: int, err: str, description: str, retry_after: int | None = None) -> Response:
    headers = dict(ERROR_HEADERS)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return JSONResponse(
        {"err": err, "description": description}, status_code=status, headers=headers
    )


async def _json_body(request: Request) -> dict[str, Any]:
    if media_type(request.headers.get("content-type")) != JSON:
        raise StreamError(415, "invalid_request", "Content-Type must be application/json")
    body = await read_body(request, MAX_BODY)
    try:
        value = loads_strict(body, max_bytes=MAX_BODY, max_depth=16)
    except ValueError as exc:
        raise StreamError(400, "invalid_request", f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise StreamError(400, "invalid_request", "the body must be a JSON object")
    return value


def authorization_schemes(transmitter: Transmitter) -> list[dict[str, str]]:
    """The schemes our receivers' inbound authentication uses (SSF 7.1)."""
    urns: set[str] = set()
    for name in transmitter.partners:
        inbound = transmitter.links[name].configured.inbound
        if inbound.bearer_sha256 is not None:
            urns.add("urn:ietf:rfc:6750")
        if inbound.oauth is not None:
            urns.add("urn:ietf:rfc:6749")
        if inbound.client_cert_sha256 is not None:
            urns.add("urn:ietf:rfc:8705")
    return [{"spec_urn": urn} for urn in sorted(urns)]


def metadata(transmitter: Transmitter) -> dict[str, Any]:
    """The transmitter configuration metadata (SSF 7.1)."""
    base = transmitter.base_url().rstrip("/")
    document: dict[str, Any] = {
        "spec_version": "1_0",
        "issuer": transmitter.issuer,
        "jwks_uri": base + "/.well-known/jwks.json",
        # Our names; the RISC ones are understood in a stream's delivery, not advertised.
        "delivery_methods_supported": [m for m in METHODS if m not in (RISC_PUSH, RISC_POLL)],
    }
    document.update({key: base + path for key, path in ENDPOINTS.items()})
    schemes = authorization_schemes(transmitter)
    if schemes:  # claims with zero elements are omitted (SSF-23)
        document["authorization_schemes"] = schemes
    document["default_subjects"] = "ALL"
    return document


def ssf_routes(transmitter: Transmitter, authenticate: Authenticate) -> list[Route]:
    """The discovery document and the management endpoints; none when no partner
    has ``ssf = "receiver"``."""
    if not transmitter.partners:
        return []

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                link = await authenticate(request)
                if not link.configured.ssf_receiver:
                    raise StreamError(403, "access_denied", "this partner manages no stream")
                return await handler(link, request)
            except WireError as exc:
                log.info("%s %s refused: %s", request.method, request.url.path, exc.description)
                return error_response(exc)
            except StreamError as exc:
                log.info("%s %s refused: %s", request.method, request.url.path, exc.description)
                return _refusal(exc.status, exc.err, exc.description, exc.retry_after)

        return endpoint

    async def configuration(link: Link, request: Request) -> Response:
        name = link.name
        if request.method == "GET":
            wanted = request.query_params.get("stream_id")
            row = transmitter.stream(name)
            if wanted is None:
                return JSONResponse([] if row is None else [transmitter.public(row)])
            return JSONResponse(transmitter.public(transmitter._own(name, wanted)))
        if request.method == "DELETE":
            await transmitter.delete(name, request.query_params.get("stream_id"))
            return Response(status_code=204)
        body = await _json_body(request)
        if request.method == "POST":
            row = await transmitter.create(name, body)
            return JSONResponse(transmitter.public(row), status_code=201)
        row = await transmitter.update(name, body, replace=request.method == "PUT")
        return JSONResponse(transmitter.public(row))

    async def status(link: Link, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(
                transmitter.status_of(link.name, request.query_params.get("stream_id"))
            )
        body = await _json_body(request)
        answer = await transmitter.set_status(
            link.name, body.get("stream_id"), body.get("status"), body.get("reason")
        )
        return JSONResponse(answer)

    async def add_subject(link: Link, request: Request) -> Response:
        await transmitter.add_subject(link.name, await _json_body(request))
        return Response(status_code=200)

    async def remove_subject(link: Link, request: Request) -> Response:
        await transmitter.remove_subject(link.name, await _json_body(request))
        return Response(status_code=204)

    async def verify(link: Link, request: Request) -> Response:
        await transmitter.verify(link.name, await _json_body(request))
        return Response(status_code=204)

    async def discovery(request: Request) -> Response:
        return JSONResponse(metadata(transmitter))

    path = urlsplit(transmitter.issuer).path.rstrip("/")
    handlers: Mapping[str, tuple[Handler, list[str]]] = {
        "configuration_endpoint": (configuration, ["GET", "POST", "PATCH", "PUT", "DELETE"]),
        "status_endpoint": (status, ["GET", "POST"]),
        "add_subject_endpoint": (add_subject, ["POST"]),
        "remove_subject_endpoint": (remove_subject, ["POST"]),
        "verification_endpoint": (verify, ["POST"]),
    }
    routes = [Route(CONFIGURATION_PATH + path, discovery, methods=["GET"])]
    for key, (handler, methods) in handlers.items():
        routes.append(Route(ENDPOINTS[key], guarded(handler), methods=methods))
    return routes
