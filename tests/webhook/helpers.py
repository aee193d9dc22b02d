"""A node with a webhook, its partners' clients, and a receiver that can go away."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import anyio
import httpx
import uvicorn

from peer import Peer, load_config
from peer.store import open_store
from peer.tokens.sign import Signer
from tests.adapters.fake_partner import Call, FakePartner, Script, _Server
from tests.adapters.wire import SECEVENT_JWT, Client
from tests.peers import NodeFiles
from tests.timing import MS

__all__ = [
    "FAST",
    "HOOK_TOKEN",
    "Receiver",
    "delivered",
    "hooked_node",
    "push",
    "receiver",
    "undone",
    "write_hooked_config",
]

# Short backoff and deadlines, so that a retry never stalls a test.
FAST: dict[str, float] = {
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "handshake_timeout": 0.3,
    "ack_timeout": 0.3,
}

HOOK_TOKEN = "SETPEER_TEST_HOOK_TOKEN"
"""The environment variable ``deliver_auth`` names in these tests."""


class Receiver:
    """A :class:`FakePartner` serving on a fixed loopback port; :meth:`stop` takes it
    away (gracefully: requests being answered are answered), :meth:`start` brings it
    back on the same port.

    Attributes:
        fake: the scripted endpoint (``calls`` records every request).
        url: the webhook URL (``/events`` of the fake; any path of it would do).
    """

    def __init__(self, script: Script, tg: anyio.abc.TaskGroup) -> None:
        self.fake = FakePartner(script)
        self._tg = tg
        self._server: _Server | None = None
        self._sock: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}/events"

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            self.fake.asgi(),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = _Server(config)
        done = anyio.Event()

        async def serve() -> None:
            try:
                await server.serve([sock])
            finally:
                sock.close()
                done.set()

        self._server, self._done = server, done
        self._tg.start_soon(serve)
        with anyio.fail_after(5_000 * MS):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(5 * MS)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.should_exit = True
        with anyio.fail_after(5_000 * MS):
            await self._done.wait()
        self._server = None

    def answered(self) -> list[Call]:
        """The calls made to the webhook URL."""
        return self.fake.paths("/events")


@contextlib.asynccontextmanager
async def receiver(script: Script) -> AsyncIterator[Receiver]:
    """A running :class:`Receiver` until the block ends."""
    async with anyio.create_task_group() as tg:
        hook = Receiver(script, tg)
        await hook.start()
        try:
            yield hook
        finally:
            if hook._server is not None:
                await hook.stop()


def write_hooked_config(
    me: NodeFiles,
    partners: Sequence[NodeFiles],
    deliver: str,
    *,
    deliver_auth: str | None = None,
    limits: Mapping[str, float] | None = None,
) -> Path:
    """``me``'s TOML: partners that push to it, and ``[peer.app] deliver``."""
    lines = [
        "[peer]",
        f'issuer = "{me.issuer}"',
        'listen = "127.0.0.1:0"',
        f'store = "sqlite:///{me.name}.db"',
        f'signing_keys = "{me.name}.jwks.json"',
        "allow_insecure_loopback = true",
        "",
        "[peer.app]",
        f'deliver = "{deliver}"',
    ]
    if deliver_auth is not None:
        lines.append(f'deliver_auth = "{deliver_auth}"')
    lines += ["", "[peer.limits]", *(f"{k} = {v}" for k, v in (limits or FAST).items())]
    for other in partners:
        digest = hashlib.sha256(other.token_out.encode()).hexdigest()
        lines += [
            "",
            "[[partners]]",
            f'name = "{other.name}"',
            f'issuer = "{other.issuer}"',
            f'audience = "{other.issuer}"',
            f'jwks = "{other.name}.public.json"',
            "initiate = false",
            'send_via = "poll"',
            'receive_via = "push"',
            "[partners.auth]",
            f'bearer = "env:SETPEER_TEST_TOKEN_{me.name.upper()}"',
            "[partners.inbound]",
            f'bearer_sha256 = "{digest}"',
        ]
    path = me.folder / f"{me.name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.asynccontextmanager
async def hooked_node(
    folder: Path, deliver: str, names: Sequence[str] = ("a",), **options: object
) -> AsyncIterator[tuple[Peer, dict[str, Client]]]:
    """Node ``b`` delivering to ``deliver``, and a push client per partner in ``names``."""
    b = NodeFiles("b", folder)
    b.make_keys()
    partners = [NodeFiles(name, folder) for name in names]
    for partner in partners:
        partner.make_keys()
    path = write_hooked_config(b, partners, deliver, **options)  # type: ignore[arg-type]
    async with Peer(load_config(path)) as node, httpx.AsyncClient() as http:
        clients = {}
        for partner in partners:
            client = clients[partner.name] = Client(node, partner, b, http)
            key = json.loads((folder / f"{partner.name}.jwks.json").read_text())
            client.signer = Signer(key)
        yield node, clients


async def push(client: Client, jti: str) -> None:
    """The partner pushes one SET to the node (RFC 8935): stored once it answers 202."""
    response = await client.post("/events", client.token(jti), content_type=SECEVENT_JWT)
    assert response.status_code == 202, response.text


def delivered(calls: Sequence[Call]) -> list[tuple[str, str]]:
    """``(partner, jti)`` of each call, in arrival order."""
    return [(call.json()["partner"], call.json()["jti"]) for call in calls]


async def undone(config: Path) -> list[int]:
    """Seqs of the inbox rows not marked done, read from the store afresh."""
    loaded = load_config(config)
    store = await open_store(loaded.store, base_dir=loaded.config_dir)
    try:
        return [row.seq for row in await store.fetch_inbox(after_seq=0, limit=10_000)]
    finally:
        await store.aclose()
