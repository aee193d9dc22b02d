"""The local application interface: JSON over HTTP for the identity service beside
the node (docs/local-interface.md).

- ``POST /v1/publish`` ``{"to", "events", "sub_id"?, "txn"?, "toe"?, "jti"?}``:
  201 ``{"jti"}``, once durable;
- ``POST /v1/forward`` ``{"to", "set"}``: 201 ``{"jti"}``;
- ``GET /v1/received?after=&limit=&wait=``: 200 ``{"received": [...]}``, long polled;
- ``POST /v1/done`` ``{"seq": [...]}``: 204, idempotent;
- ``GET /v1/failures?since=``: 200 ``{"failures": [...]}``;
- ``GET /v1/status``: 200, what ``setpeer status --json`` prints.
- ``GET /v1/node``: 200 ``{"issuer", "partners"}``: which node answers.

Every error is ``{"error": CODE, "description": TEXT}``; the facade's errors map to
statuses in :func:`refusal`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import (
    Backpressure,
    DuplicateJti,
    SETRejected,
    SETTooLarge,
    StoreError,
    StreamDisabled,
    UnknownPartner,
)
from ..server.http_guard import mark_authenticated
from ..server.middleware import GuardMiddleware
from .inputs import (
    MAX_SEQ,
    Refused,
    bad,
    json_object,
    optional,
    query,
    query_int,
    query_number,
    required,
)
from .items import received_item
from .port import LocalNode

__all__ = [
    "ENVELOPE_BYTES",
    "MAX_DONE",
    "MAX_LIMIT",
    "MAX_WAIT",
    "create_local_app",
    "error_body",
    "refusal",
]

log = logging.getLogger("setpeer.local")

MAX_LIMIT = 1000  # received SETs in one answer
MAX_WAIT = 60.0  # seconds a GET /v1/received may wait for the first
MAX_DONE = 1000  # seqs in one POST /v1/done
ENVELOPE_BYTES = 4096  # a publish or forward body beyond the SET it carries

Handler = Callable[[Request], Awaitable[Response]]


def error_body(error: str, description: str) -> dict[str, str]:
    """The body of every error answer."""
    return {"error": error, "description": description}


def refusal(exc: Exception) -> Refused | None:
    """The answer to an error the facade raised; None for one it does not document."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, UnknownPartner):
        return Refused(404, "unknown_partner", str(exc))
    if isinstance(exc, DuplicateJti):
        return Refused(409, "duplicate_jti", str(exc))
    if isinstance(exc, SETTooLarge):
        more = {"partner": exc.partner, "size": exc.size, "limit": exc.limit}
        return Refused(413, "set_too_large", str(exc), more=more)
    if isinstance(exc, Backpressure):
        more = {"partner": exc.partner, "pending": exc.pending, "limit": exc.limit}
        return Refused(429, "backpressure", str(exc), {"retry-after": "1"}, more)
    if isinstance(exc, StreamDisabled):
        return Refused(409, "stream_disabled", str(exc), more={"partner": exc.partner})
    if isinstance(exc, StoreError):
        return Refused(503, "store_unavailable", str(exc), {"retry-after": "1"})
    if isinstance(exc, SETRejected):  # forward: not a SET we could read
        return Refused(400, "invalid_set", exc.description, more={"err": exc.err})
    if isinstance(exc, ValueError):
        return Refused(400, "invalid_request", str(exc))
    return None


def _answer(refused: Refused) -> Response:
    return JSONResponse(
        error_body(refused.error, refused.description) | refused.more,
        status_code=refused.status,
        headers=refused.headers,
    )


def create_local_app(node: LocalNode, *, closing: anyio.Event) -> Starlette:
    """The interface's app for ``node``; long polls end early once ``closing`` is set."""
    app = node.config.app
    digest = None if app.token_sha256 is None else bytes.fromhex(app.token_sha256)
    limit = max((p.limits.max_set_bytes for p in node.config.partners), default=65536)
    body_limit = limit + ENVELOPE_BYTES

    def route(handler: Handler) -> Handler:
        """``handler`` behind the token check, its refusals answered as errors."""

        async def guarded(request: Request) -> Response:
            try:
                if digest is not None:
                    _check_bearer(request, digest)
                mark_authenticated(request.scope)  # the application's: a long keep-alive
                return await handler(request)
            except Exception as exc:
                refused = refusal(exc)
                if refused is None:
                    log.exception("%s %s failed", request.method, request.url.path)
                    refused = Refused(500, "internal_error", "the node failed (see its log)")
                if refused.status >= 500 or refused.status == 401:
                    log.warning(
                        "%s %s refused: %s %s",
                        request.method,
                        request.url.path,
                        refused.status,
                        refused.description,
                    )
                return _answer(refused)

        return guarded

    async def publish(request: Request) -> Response:
        keys = ("to", "events", "sub_id", "txn", "toe", "jti")
        body = await json_object(request, limit=body_limit, keys=keys)
        to = required(body, "to", str)
        events = required(body, "events", dict)
        for uri, payload in events.items():
            if not isinstance(payload, dict):
                raise bad(f"events[{uri[:64]!r}] must be an object")
        jti = await node.publish(
            to,
            events,
            sub_id=optional(body, "sub_id", dict),
            txn=optional(body, "txn", str),
            toe=optional(body, "toe", (int, float)),
            jti=optional(body, "jti", str),
        )
        return JSONResponse({"jti": jti}, status_code=201)

    async def forward(request: Request) -> Response:
        body = await json_object(request, limit=body_limit, keys=("to", "set"))
        jti = await node.forward(required(body, "to", str), required(body, "set", str))
        return JSONResponse({"jti": jti}, status_code=201)

    async def received(request: Request) -> Response:
        params = query(request, ("after", "limit", "wait"))
        after = query_int(params, "after", 0, 0, MAX_SEQ)
        count = query_int(params, "limit", 100, 1, MAX_LIMIT)
        wait = query_number(params, "wait", 0.0, 0.0, MAX_WAIT)
        if app.deliver is not None:
            raise Refused(
                409,
                "webhook_configured",
                "[peer.app] deliver is set: received SETs are delivered to the webhook, not pulled",
            )
        deadline = anyio.current_time() + wait
        while True:
            woken = node.inbox_changed()
            rows = await node.inbox(after=after, limit=count)
            left = deadline - anyio.current_time()
            if rows or left <= 0 or closing.is_set():
                break
            with anyio.move_on_after(left):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_first_of, woken, tg.cancel_scope)
                    tg.start_soon(_first_of, closing, tg.cancel_scope)
        return JSONResponse({"received": [received_item(row) for row in rows]})

    async def done(request: Request) -> Response:
        body = await json_object(request, limit=64 * 1024, keys=("seq",))
        seqs = required(body, "seq", list)
        if len(seqs) > MAX_DONE:
            raise bad(f"at most {MAX_DONE} seq in one call")
        for seq in seqs:
            if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
                raise bad(f"seq must hold integers from 1 to {MAX_SEQ}")
        await node.mark_done(list(dict.fromkeys(seqs)))
        return Response(status_code=204)

    async def failures(request: Request) -> Response:
        params = query(request, ("since",))
        since = query_number(params, "since", 0.0, 0.0, 1e11)
        found = [
            dataclasses.asdict(f) for f in await node.failures() if since <= 0 or f.at >= since
        ]
        return JSONResponse({"failures": found})

    async def status(request: Request) -> Response:
        query(request, ())
        return JSONResponse(await node.status())

    async def about(request: Request) -> Response:
        # Who answers: a command that found a socket checks it is its own node's.
        query(request, ())
        config = node.config
        return JSONResponse(
            {"issuer": config.issuer, "partners": [p.name for p in config.partners]}
        )

    routes = [
        Route("/v1/publish", route(publish), methods=["POST"]),
        Route("/v1/forward", route(forward), methods=["POST"]),
        Route("/v1/received", route(received), methods=["GET"]),
        Route("/v1/done", route(done), methods=["POST"]),
        Route("/v1/failures", route(failures), methods=["GET"]),
        Route("/v1/status", route(status), methods=["GET"]),
        Route("/v1/node", route(about), methods=["GET"]),
    ]
    guard = Middleware(GuardMiddleware, body_timeout=node.config.limits.idle_timeout)
    return Starlette(
        routes=routes,
        middleware=[guard],
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )


async def _first_of(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _check_bearer(request: Request, digest: bytes) -> None:
    """Raises Refused (401) unless one ``Authorization: Bearer`` whose SHA-256 is
    ``digest`` (compared in constant time)."""
    presented = request.headers.getlist("authorization")
    scheme, _, token = (presented[0] if len(presented) == 1 else "").partition(" ")
    found = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(found, digest):
        raise Refused(
            401,
            "unauthorized",
            "the token is missing or wrong ([peer.app] token_sha256)",
            {"www-authenticate": 'Bearer realm="setpeer"'},
        )


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Unknown routes and methods answer in the interface's error shape too."""
    codes = {404: "not_found", 405: "method_not_allowed"}
    description = {404: "no such route", 405: f"{request.method} is not allowed here"}
    headers = dict(exc.headers or {})
    return JSONResponse(
        error_body(
            codes.get(exc.status_code, "invalid_request"),
            description.get(exc.status_code, str(exc.detail)),
        ),
        status_code=exc.status_code,
        headers=headers,
    )
