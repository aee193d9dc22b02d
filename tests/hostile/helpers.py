"""Hostile clients against real nodes: raw sockets, `setpeer run` processes, RSS, JOSE tricks.

Nothing here imitates a node: the node under attack is always a real ``Peer`` (in
process) or a real ``setpeer run`` (in a subprocess, so its RSS can be measured).
"""

from __future__ import annotations

import base64
import json
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect

from peer.tokens.jose import sign_bytes
from peer.tokens.keys import signing_key
from peer.tokens.sign import Signer, build_claims
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair, write_config
from tests.timing import MS, seconds

__all__ = [
    "Attacker",
    "NodeProcess",
    "b64",
    "raise_fd_limit",
    "raw_http",
    "read_until_closed",
    "run_node",
]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class Attacker:
    """Partner ``a``'s credentials and keys, pointed at node ``b``'s URLs."""

    def __init__(self, base_url: str, a_files: NodeFiles, b_files: NodeFiles) -> None:
        self.base = base_url
        self.http = base_url + "/pushpull"
        self.ws = base_url.replace("http://", "ws://") + "/pushpull"
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port = int(port)
        self.bearer = a_files.token_out
        self.auth = {"authorization": f"Bearer {a_files.token_out}"}
        self.a_files, self.b_files = a_files, b_files
        self.private = json.loads((a_files.folder / "a.jwks.json").read_text())
        self.signer = Signer(self.private)
        self.key = signing_key(self.private)

    def claims(self, jti: str) -> dict[str, Any]:
        return build_claims(
            iss=self.a_files.issuer,
            aud=self.b_files.issuer,
            events={SESSION_REVOKED: {}},
            iat=int(time.time()),
            jti=jti,
        )

    def set_token(self, jti: str) -> str:
        return self.signer.sign(self.claims(jti))

    def signed_with_header(self, jti: str, header: dict[str, Any]) -> str:
        """A SET for ``jti`` signed by a's real key under an arbitrary header."""
        data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(self.claims(jti)).encode())}"
        signature = sign_bytes("ES256", self.key.private_key, data.encode())
        return data + "." + b64(signature)

    async def session(self, **kwargs: Any) -> ClientConnection:
        return await connect(
            self.ws,
            additional_headers=self.auth,
            subprotocols=["pushpull"],  # type: ignore[list-item]
            compression=None,
            max_size=None,
            **kwargs,
        )

    async def acked_over_websocket(self, jti: str) -> None:
        """A fresh session delivers one valid SET and gets its ack (the node still works)."""
        async with await self.session() as ws:
            await ws.send(json.dumps({"sets": {jti: self.set_token(jti)}}))
            with anyio.fail_after(10_000 * MS):
                while True:
                    reply = json.loads(await ws.recv())
                    if jti in reply.get("ack", []):
                        return


def raw_http(
    host: str, port: int, data: bytes = b"", timeout: float | None = None
) -> socket.socket:
    """A plain TCP connection to the node, ``data`` already sent (socket timeout: 5 s
    scaled, unless given)."""
    sock = socket.create_connection(
        (host, port), timeout=seconds(5) if timeout is None else timeout
    )
    if data:
        sock.sendall(data)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the node sends until it closes the connection; TimeoutError if it does not."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks)
        except TimeoutError:
            raise TimeoutError("the node kept the connection open") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def process_rss(pid: int) -> int:
    """Resident set size of process ``pid``, bytes (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class NodeProcess:
    """``setpeer run`` for node ``b`` in a subprocess, with ``a``'s credentials to attack it."""

    def __init__(self, folder: Path, limits: dict[str, float]) -> None:
        self.a_files, self.b_files = make_pair(folder)
        write_config(self.b_files, self.a_files, limits=limits)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "peer", "run", "-c", str(folder / "b.toml")],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("setpeer listening on "), line
        self.url = line.split()[-1]
        self.attacker = Attacker(self.url, self.a_files, self.b_files)

    def rss(self) -> int:
        """Resident set size of the node process, bytes."""
        return process_rss(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=seconds(30))
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


@contextmanager
def run_node(folder: Path, limits: dict[str, float]) -> Iterator[NodeProcess]:
    """A ``setpeer run`` node for the duration of the block; it must exit 0 afterwards."""
    node = NodeProcess(folder, limits)
    try:
        yield node
    finally:
        assert node.stop() == 0
