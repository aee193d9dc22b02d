"""A real ``setpeer run``: applications publish through its Unix socket and through
loopback TCP with a bearer token (a missing or wrong one is 401), and the partner gets
every SET."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import anyio
import httpx
import pytest

from peer import Client, NotAuthorized, Peer
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.test_crash import start_run, stop
from tests.timing import seconds

TOKEN = "a-local-token"
FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2, "retry_initial": 0.05}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize("where", ["unix", "tcp"])
async def test_publish_through_the_local_interface_of_setpeer_run(
    tmp_path: Path, where: str
) -> None:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        if where == "unix":
            url, token = f"unix:{tmp_path / 'a.sock'}", None
            app = {}
        else:
            url, token = f"http://127.0.0.1:{_free_port()}", TOKEN
            digest = hashlib.sha256(TOKEN.encode()).hexdigest()
            app = {"app": url.removeprefix("http://"), "app_token_sha256": digest}
        write_config(a_files, b_files, endpoint=endpoint, limits=FAST, **app)
        run = await anyio.to_thread.run_sync(start_run, tmp_path / "a.toml")
        try:
            if where == "tcp":
                async with httpx.AsyncClient(base_url=url) as raw:
                    body = {"to": "b", "events": {SESSION_REVOKED: {}}}
                    for headers in ({}, {"authorization": "Bearer not-it"}):
                        answer = await raw.post("/v1/publish", json=body, headers=headers)
                        assert answer.status_code == 401
                        assert answer.json()["error"] == "unauthorized"
                async with Client(url, token="not-it") as wrong:
                    with pytest.raises(NotAuthorized):
                        await wrong.publish("b", {SESSION_REVOKED: {}})
            async with Client(url, token=token) as node:
                sent = [await node.publish("b", {SESSION_REVOKED: {}}) for _ in range(5)]
                await node.flush(timeout=seconds(10))
            got = []
            with anyio.fail_after(seconds(10)):
                async for rx in b.receive():
                    got.append(rx.jti)
                    await rx.done()
                    if len(got) == len(sent):
                        break
            assert got == sent
        finally:
            assert await anyio.to_thread.run_sync(stop, run) == 0
