"""A partner's flood, in its own process: ``python -m tests.hostile.flooder MODE ...``.

Run apart from the test so that the flood's own CPU never slows the partner being
timed. Modes (each over ``CONNECTIONS`` WebSockets, for ``SECONDS`` seconds):

- ``junk``: frames of 1,000 ``"a.b.c"`` SETs with unique 900-byte jtis, answers never read;
- ``empty``: ``{}`` messages as fast as the node takes them;
- ``badsig``: frames of 7 SETs (verified inline) with a's key id and a forged
  signature, so each one costs ``b`` a full signature check before it is refused;
- ``brackets``: 1 MiB messages of ``[[[...`` (each closes the session; reconnects at
  once, and again at once when the upgrade is refused);
- ``brackets-http``: the same bodies POSTed to ``/pushpull``, one request after another
  on each connection.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from peer.tokens.sign import Signer, build_claims
from tests.peers import SESSION_REVOKED


async def _session(url: str, token: str, **kwargs: object) -> ClientConnection:
    return await connect(
        url,
        additional_headers={"authorization": f"Bearer {token}"},
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
        close_timeout=0.5,  # the flood is over: no need to wait for the node to agree
        **kwargs,  # type: ignore[arg-type]
    )


async def _drain(ws: ClientConnection) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


async def _flood(mode: str, url: str, token: str, folder: Path, until: float) -> None:
    prefix = secrets.token_hex(4)
    if mode == "junk":
        ws = await _session(url, token, max_queue=1)  # stops reading at once
        for f in range(1_000_000):
            sets = {f"{prefix}-{f}-{i}-" + "j" * 900: "a.b.c" for i in range(1000)}
            with anyio.move_on_after(until - time.monotonic()):
                await ws.send(json.dumps(sets and {"sets": sets}))
            if time.monotonic() >= until:
                return
    elif mode == "empty":
        async with await _session(url, token) as ws:
            while time.monotonic() < until:
                for _ in range(100):
                    await ws.send("{}")
    elif mode == "badsig":
        # a's own key (its kid is known to b), then the signature forged: b pays a
        # whole verification for each SET. A key b does not know is refused cheaply.
        signer = Signer(json.loads((folder / "a.jwks.json").read_text()))
        tokens = []
        for i in range(64):
            claims = build_claims(
                iss="https://a.test.example",
                aud="https://b.test.example",
                events={SESSION_REVOKED: {}},
                iat=int(time.time()),
                jti=f"x{i}",
            )
            head, body, signature = signer.sign(claims).split(".")
            forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
            tokens.append(f"{head}.{body}.{forged}")
        async with await _session(url, token) as ws, anyio.create_task_group() as tg:
            tg.start_soon(_drain, ws)
            n = 0
            while time.monotonic() < until:
                sets = {f"{prefix}-{n}-{i}": tokens[(n + i) % 64] for i in range(7)}
                await ws.send(json.dumps({"sets": sets}))
                n += 1
            tg.cancel_scope.cancel()
    elif mode == "brackets":
        body = "[" * (1024 * 1024 - 16)
        while time.monotonic() < until:
            try:
                async with await _session(url, token) as ws:
                    await ws.send(body)
                    await _drain(ws)
            except (ConnectionClosed, InvalidHandshake, OSError):
                await anyio.sleep(0.001)  # refused (429 after a hold): at once again
    elif mode == "brackets-http":
        body = b"[" * (1024 * 1024 - 16)
        post = url.replace("ws://", "http://", 1)
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        async with httpx.AsyncClient(timeout=30) as client:
            while time.monotonic() < until:
                try:
                    await client.post(post, content=body, headers=headers)
                except httpx.HTTPError:
                    await anyio.sleep(0.001)
    else:
        raise SystemExit(f"unknown mode {mode}")


async def main(
    mode: str, url: str, token: str, folder: str, duration: str, connections: str
) -> None:
    until = time.monotonic() + float(duration)
    # Every mode ends at ``until``, even in a send the busy node does not read yet: the
    # badsig flood ran ~4 s past its duration, its sends blocked on the node's backlog.
    with anyio.move_on_after(float(duration)):
        async with anyio.create_task_group() as tg:
            for _ in range(int(connections)):
                tg.start_soon(_flood, mode, url, token, Path(folder), until)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
