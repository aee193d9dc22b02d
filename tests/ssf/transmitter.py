"""A scripted SSF 1.0 transmitter: Starlette under uvicorn on 127.0.0.1.

Just enough of SSF 8 to manage one receiver's streams: metadata at the path-inserted
well-known URL, configuration (POST/GET/PATCH/DELETE), status, add/remove subject
and verification. Verification SETs are signed with the transmitter's own key and
pushed to the stream's ``endpoint_url`` with its ``authorization_header`` (SSF-19),
or queued for the receiver's RFC 8936 poll at ``/poll/<stream_id>``. Every
management request is checked for the receiver's bearer token (SSF-25) and kept,
with the answers the receiver gave to what we pushed or served.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from peer.protocol.ssf_receiver import (
    POLL_METHOD,
    PUSH_METHOD,
    PUSHPULL_METHOD,
    VERIFICATION_EVENT,
)
from peer.tokens.keys import generate_private_jwks, public_jwks
from peer.tokens.sign import Signer
from tests.timing import MS

__all__ = ["Pushed", "ScriptedTransmitter", "scripted_transmitter"]

PATH = "/tenant1"  # the issuer has a path: discovery must insert before it (SSF-22)


@dataclasses.dataclass(frozen=True, slots=True)
class Pushed:
    """A SET we pushed and the receiver's answer."""

    jti: str
    status: int
    body: bytes


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # pytest owns the process's signals


class ScriptedTransmitter:
    """The transmitter's state; tests read and change it directly.

    Attributes:
        base: ``http://127.0.0.1:PORT``, set once serving.
        token: the bearer token the receiver must present.
        audience: the receiver's issuer (the SETs' ``aud``).
        streams: stream id -> configuration (with ``status``, ``reason``).
        subjects: stream id -> subjects added.
        requests: ``(method, path)`` of every management request.
        pushed: what we pushed and the answers.
        poll_answers: the ``ack``/``setErrs`` bodies of the receiver's polls.
        issuer_override: announce this ``issuer`` instead (a mismatch test).
        state_override: send this ``state`` in verification SETs instead.
        methods: ``delivery_methods_supported``.
        legacy: serve the metadata only at the older drafts' ``risc-configuration``.
    """

    def __init__(self, token: str, audience: str) -> None:
        self.base = ""
        self.token = token
        self.audience = audience
        self.private = generate_private_jwks("RS256")
        self.signer = Signer(self.private)
        self.streams: dict[str, dict[str, Any]] = {}
        self.subjects: dict[str, list[Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.pushed: list[Pushed] = []
        self.queued: dict[str, dict[str, str]] = {}
        self.poll_answers: list[dict[str, Any]] = []
        self.issuer_override: str | None = None
        self.state_override: str | None = None
        self.methods = [PUSH_METHOD, POLL_METHOD, PUSHPULL_METHOD]
        self.changed = anyio.Event()
        self.legacy = False

    @property
    def issuer(self) -> str:
        return self.base + PATH

    def metadata(self) -> dict[str, Any]:
        base = self.base
        return {
            "spec_version": "1_0",
            "issuer": self.issuer_override or self.issuer,
            "jwks_uri": f"{base}/jwks",
            "delivery_methods_supported": self.methods,
            "configuration_endpoint": f"{base}/ssf/streams",
            "status_endpoint": f"{base}/ssf/status",
            "add_subject_endpoint": f"{base}/ssf/subjects:add",
            "remove_subject_endpoint": f"{base}/ssf/subjects:remove",
            "verification_endpoint": f"{base}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        }

    def _touch(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def asgi(self) -> Starlette:
        every = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[
                Route(f"/.well-known/ssf-configuration{PATH}", self._metadata),
                Route(f"/.well-known/risc-configuration{PATH}", self._legacy_metadata),
                Route("/jwks", self._jwks),
                Route("/ssf/streams", self._streams, methods=every),
                Route("/ssf/status", self._status, methods=["GET", "POST"]),
                Route("/ssf/subjects:add", self._add, methods=["POST"]),
                Route("/ssf/subjects:remove", self._remove, methods=["POST"]),
                Route("/ssf/verify", self._verify, methods=["POST"]),
                Route("/poll/{stream_id}", self._poll, methods=["POST"]),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        if self.legacy:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(self.metadata())

    async def _legacy_metadata(self, request: Request) -> Response:
        if not self.legacy:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(self.metadata())

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(public_jwks(self.private))

    def _denied(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    def _stream(self, stream_id: object) -> dict[str, Any] | None:
        return self.streams.get(stream_id) if isinstance(stream_id, str) else None

    @staticmethod
    def _public(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k not in ("status", "reason")}

    async def _streams(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        if request.method == "POST":
            if self.streams:
                return JSONResponse({"error": "one stream per receiver"}, status_code=409)
            body = await request.json()
            delivery = dict(body.get("delivery") or {"method": POLL_METHOD})
            stream_id = uuid.uuid4().hex
            if delivery["method"] == POLL_METHOD:
                delivery["endpoint_url"] = f"{self.base}/poll/{stream_id}"
            requested = body.get("events_requested", [])
            config = {
                "stream_id": stream_id,
                "iss": self.issuer,
                "aud": self.audience,
                "events_supported": requested,
                "events_requested": requested,
                "events_delivered": requested,
                "delivery": delivery,
                "description": body.get("description"),
                "status": "enabled",
                "reason": None,
            }
            self.streams[stream_id] = config
            self.queued[stream_id] = {}
            self._touch()
            return JSONResponse(self._public(config), status_code=201)
        stream_id = request.query_params.get("stream_id")
        if request.method == "GET" and stream_id is None:
            return JSONResponse([self._public(c) for c in self.streams.values()])
        if request.method == "PATCH":
            body = await request.json()
            stream_id = body.get("stream_id")
        config = self._stream(stream_id)
        if config is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if request.method == "GET":
            return JSONResponse(self._public(config))
        if request.method == "PATCH":
            for key in ("events_requested", "description"):
                if key in body:
                    config[key] = body[key]
            config["events_delivered"] = config["events_requested"]
            return JSONResponse(self._public(config))
        if request.method == "DELETE":
            del self.streams[config["stream_id"]]
            self._touch()
            return Response(status_code=204)
        return Response(status_code=405)

    async def _status(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        if request.method == "GET":
            config = self._stream(request.query_params.get("stream_id"))
        else:
            body = await request.json()
            config = self._stream(body.get("stream_id"))
            if config is not None:
                if body.get("status") not in ("enabled", "paused", "disabled"):
                    return JSONResponse({"error": "bad status"}, status_code=400)
                config["status"], config["reason"] = body["status"], body.get("reason")
        if config is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        answer = {"stream_id": config["stream_id"], "status": config["status"]}
        if config["reason"] is not None:
            answer["reason"] = config["reason"]
        return JSONResponse(answer)

    async def _add(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        if self._stream(body.get("stream_id")) is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if not isinstance(body.get("subject"), dict):
            return JSONResponse({"error": "bad subject"}, status_code=400)
        self.subjects.setdefault(body["stream_id"], []).append(body["subject"])
        return Response(status_code=200)

    async def _remove(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        if self._stream(body.get("stream_id")) is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        with contextlib.suppress(ValueError):
            self.subjects.get(body["stream_id"], []).remove(body.get("subject"))
        return Response(status_code=204)

    async def _verify(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        config = self._stream(body.get("stream_id"))
        if config is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        state = self.state_override or body.get("state")
        token, jti = self.verification_set(config["stream_id"], state)
        delivery = config["delivery"]
        if delivery["method"] == POLL_METHOD:
            self.queued[config["stream_id"]][jti] = token
        else:
            # After the answer, as a real transmitter would (SSF-35): not synchronous.
            request.app.state.later.append((delivery, jti, token))
        self._touch()
        return Response(status_code=204)

    def verification_set(self, stream_id: str, state: str | None) -> tuple[str, str]:
        jti = uuid.uuid4().hex
        payload = {} if state is None else {"state": state}
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "jti": jti,
            "iat": int(time.time()),
            "sub_id": {"format": "opaque", "id": stream_id},
            "events": {VERIFICATION_EVENT: payload},
        }
        return self.signer.sign(claims), jti

    async def push(self, delivery: dict[str, Any], jti: str, token: str) -> None:
        headers = {"content-type": "application/secevent+jwt", "accept": "application/json"}
        if "authorization_header" in delivery:
            headers["authorization"] = delivery["authorization_header"]
        try:
            async with httpx.AsyncClient() as client:
                url = delivery["endpoint_url"]
                answer = await client.post(url, content=token, headers=headers)
        except httpx.HTTPError as exc:
            self.pushed.append(Pushed(jti, 0, str(exc).encode()))
        else:
            self.pushed.append(Pushed(jti, answer.status_code, answer.content))
        self._touch()

    async def _poll(self, request: Request) -> Response:
        stream_id = request.path_params["stream_id"]
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        queue = self.queued.get(stream_id, {})
        for jti in body.get("ack", []):
            queue.pop(jti, None)
        for jti in body.get("setErrs", {}):
            queue.pop(jti, None)
        if body.get("ack") or body.get("setErrs"):
            self.poll_answers.append(body)
            self._touch()
        if not queue and not body.get("returnImmediately", False):
            with anyio.move_on_after(200 * MS):
                while not queue:  # noqa: ASYNC110 - a short long poll for tests
                    await anyio.sleep(10 * MS)
        return JSONResponse({"sets": dict(queue), "moreAvailable": False})

    async def wait_for(self, predicate: Any, timeout: float) -> None:
        """Until ``predicate()`` is true, within ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            while not predicate():
                with anyio.move_on_after(20 * MS):
                    await self.changed.wait()


@contextlib.asynccontextmanager
async def scripted_transmitter(token: str, audience: str) -> AsyncIterator[ScriptedTransmitter]:
    """Serve a :class:`ScriptedTransmitter` on an ephemeral loopback port."""
    transmitter = ScriptedTransmitter(token, audience)
    app = transmitter.asgi()
    later: list[tuple[dict[str, Any], str, str]] = []
    app.state.later = later
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = _Server(config)

    async def pusher() -> None:
        while True:
            while later:
                await transmitter.push(*later.pop(0))
            await anyio.sleep(10 * MS)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(5_000 * MS):
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                    await anyio.sleep(5 * MS)
            transmitter.base = f"http://127.0.0.1:{port}"
            tg.start_soon(pusher)
            try:
                yield transmitter
            finally:
                server.should_exit = True
                tg.cancel_scope.cancel()
    finally:
        sock.close()
