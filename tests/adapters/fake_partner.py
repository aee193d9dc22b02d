"""A scripted partner endpoint: a small Starlette app under uvicorn on 127.0.0.1.

It plays the *other* side of the outbound loops (a push or multi-push recipient, a
poll transmitter) and answers each request as a test's script says: a status with
headers and body, a hang (no answer until the client gives up), a dropped
connection (the transport closed without a byte of answer), or a body that streams
(huge, or a byte at a time forever) until the client hangs up. Every request is
recorded with its arrival time, so tests can check what was sent and when.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from peer import Peer
from tests.peers import NodeFiles, make_pair, write_config

from .wire import FAST, MS, jti_of

__all__ = [
    "Answer",
    "Call",
    "Drop",
    "FakePartner",
    "Hang",
    "SenderNode",
    "Stream",
    "by_jti",
    "fake_partner",
    "sender_node",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One request the fake partner received.

    Attributes:
        path: the request path.
        headers: request headers, lower-case names.
        body: the raw body.
        at: ``time.monotonic()`` when it arrived.
    """

    path: str
    headers: Mapping[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def sets(self) -> dict[str, str]:
        """The SETs the request carries: a push body, or a multi-push ``sets`` object."""
        if self.headers.get("content-type", "").startswith("application/secevent+jwt"):
            token = self.body.decode()
            return {jti_of(token): token}
        sets: dict[str, str] = self.json().get("sets", {})
        return sets


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """Answer with ``status`` after ``delay`` seconds; a mapping or list body is JSON."""

    status: int
    body: bytes | Mapping[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0

    def response(self) -> Response:
        headers = dict(self.headers)
        body = self.body
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        return Response(body, status_code=self.status, headers=headers)


@dataclasses.dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: hold the request until the client gives up and disconnects."""


@dataclasses.dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering."""


@dataclasses.dataclass(frozen=True, slots=True)
class Stream:
    """Answer ``status`` with a chunked body: ``size`` bytes as fast as the client
    reads, or (``size`` None) one byte every ``every`` seconds, never ending. When the
    client stops reading, the time goes to :attr:`FakePartner.cut_at`."""

    size: int | None = None
    every: float = 0.1
    status: int = 200


Action = Answer | Hang | Drop | Stream
Script = Callable[[Call], Action]


def by_jti(
    plans: Mapping[str, list[Action]], then: Callable[[Call], Action]
) -> Callable[[Call], Action]:
    """A push script: each SET's requests take the next action of its plan, then ``then``."""
    remaining = {jti: list(actions) for jti, actions in plans.items()}

    def script(call: Call) -> Action:
        [jti] = call.sets()
        plan = remaining.get(jti)
        return plan.pop(0) if plan else then(call)

    return script


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # pytest owns the process's signals; the fake must not take SIGINT over.
        yield


class FakePartner:
    """The partner's endpoints (``/events``, ``/multipush``, ``/poll``), all scripted.

    Args:
        script: called for each request in arrival order; its action is the answer.

    Attributes:
        calls: every request so far, in arrival order.
        url: the base URL, set once serving.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[Call] = []
        self.cut_at: list[float] = []
        self.url = ""

    def paths(self, path: str) -> list[Call]:
        """The calls made to ``path``."""
        return [call for call in self.calls if call.path == path]

    def asgi(self) -> Callable[..., Any]:
        routes = [
            Route(path, self._endpoint, methods=["POST"])
            for path in ("/events", "/multipush", "/poll", "/pushpull")
        ]
        routes.append(Route("/jwks", self._endpoint, methods=["GET"]))
        routes.append(Route("/.well-known/{name:path}", self._endpoint, methods=["GET"]))
        app = Starlette(routes=routes)

        async def outer(scope: Any, receive: Any, send: Any) -> None:
            # The server's own ``send``, before Starlette wraps it: Drop needs its
            # transport (uvicorn's request cycle object keeps it as ``transport``).
            scope["fake.send"] = send
            await app(scope, receive, send)

        return outer

    async def _endpoint(self, request: Request) -> Response:
        call = Call(
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            at=time.monotonic(),
        )
        self.calls.append(call)
        action = self.script(call)
        if isinstance(action, Answer):
            await anyio.sleep(action.delay)
            return action.response()
        if isinstance(action, Stream):
            return StreamingResponse(
                self._stream(request, action), action.status, media_type="application/json"
            )
        if isinstance(action, Drop):
            cycle: Any = request.scope["fake.send"].__self__
            cycle.transport.close()
        # Hang (or a dropped connection): wait for the client to go away. Whatever is
        # returned afterwards is never written (uvicorn drops output after a disconnect).
        with anyio.move_on_after(60_000 * MS):
            while (await request.receive())["type"] != "http.disconnect":
                pass
        return Response(status_code=500)

    async def _stream(self, request: Request, action: Stream) -> AsyncIterator[bytes]:
        chunk = b" " * 65536  # one object, sent again and again: the fake holds nothing
        sent = 0
        try:
            while action.size is None or sent < action.size:
                if await request.is_disconnected():
                    break
                if action.size is None:
                    await anyio.sleep(action.every)
                    yield b" "
                else:
                    yield chunk
                    sent += len(chunk)
        finally:
            self.cut_at.append(time.monotonic())


@contextlib.asynccontextmanager
async def fake_partner(script: Script) -> AsyncIterator[FakePartner]:
    """Serve a :class:`FakePartner` on an ephemeral loopback port until the block ends."""
    partner = FakePartner(script)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        partner.asgi(),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(5_000 * MS):
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                    await anyio.sleep(5 * MS)
            partner.url = f"http://127.0.0.1:{port}"
            try:
                yield partner
            finally:
                server.should_exit = True
    finally:
        sock.close()


@dataclasses.dataclass(frozen=True, slots=True)
class SenderNode:
    """Node ``a`` under test, whose partner ``b`` is the fake.

    Attributes:
        node: the running node.
        config: its TOML file (for ``setpeer status``).
        a: a's files (a's token is what the fake should see as ``Authorization``).
        b: b's files (b's key signs the SETs a poll endpoint serves).
    """

    node: Peer
    config: Path
    a: NodeFiles
    b: NodeFiles

    @property
    def bearer(self) -> str:
        """The ``Authorization`` header a sends to its partner."""
        return f"Bearer {self.a.token_out}"


@contextlib.asynccontextmanager
async def sender_node(
    tmp: Path,
    fake: FakePartner,
    *,
    send_via: str = "poll",
    receive_via: str = "push",
    limits: Mapping[str, float] | None = None,
    extra: str = "",
    inbound: bool = True,
) -> AsyncIterator[SenderNode]:
    """Run node ``a`` with the fake as partner ``b`` (its endpoints under ``fake.url``);
    ``extra`` is TOML appended to the partner's keys (more keys, then tables)."""
    a, b = make_pair(tmp)
    lines = [
        f'send_via = "{send_via}"',
        f'receive_via = "{receive_via}"',
        f'push_endpoint = "{fake.url}/events"',
        f'multipush_endpoint = "{fake.url}/multipush"',
        f'poll_endpoint = "{fake.url}/poll"',
    ]
    config = write_config(
        a,
        b,
        limits=dict(FAST | dict(limits or {})),
        extra_partner="\n".join(lines) + "\n" + extra,
        inbound=inbound,
    )
    async with Peer(config) as node:
        yield SenderNode(node, tmp / "a.toml", a, b)
