"""A real node under test and a plain HTTP client's view of it.

The node is ``b``; the client plays its partner ``a`` with a's bearer token and a's
signing key. Only ``tests.peers`` (configs) and ``peer.tokens`` (minting signed SETs)
come from setpeer; everything on the wire is httpx and JSON, as an outside
implementation would send it, so the tests check the node and not our own codecs.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from peer import Peer
from peer.tokens.keys import generate_private_jwks
from peer.tokens.sign import Signer, build_claims
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair, write_config
from tests.timing import MS, seconds

__all__ = [
    "FAST",
    "MS",
    "NODE_PARTNER",
    "REGISTERED_CODES",
    "SECEVENT_JWT",
    "SESSION_REVOKED",
    "Client",
    "assert_error",
    "jti_of",
    "running_node",
    "setpeer_status",
    "setpeer_status_table",
    "seconds",
    "wait_for",
]


SECEVENT_JWT = "application/secevent+jwt"

# PUSH-18: the IANA "Security Event Token Delivery Error Codes" registry (RFC 8935
# §2.4), written out here rather than imported, so the node is checked against the
# registry and not against its own table.
REGISTERED_CODES = frozenset(
    {
        "invalid_request",
        "invalid_key",
        "invalid_issuer",
        "invalid_audience",
        "authentication_failed",
        "access_denied",
    }
)

# b sends to a by poll (a polls b's /poll); a pushes to b (/events, /multipush).
NODE_PARTNER = 'send_via = "poll"\nreceive_via = "push"\n'

# Short timings (seconds) so a retry or a redelivery never stalls a test.
FAST: dict[str, float] = {
    "retry_initial": 0.05,
    "retry_max": 0.2,
    "max_attempts": 3,
    "ack_timeout": 0.5,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
    "poll_redelivery": 0.4,
    "long_poll_timeout": 1.0,
}


def jti_of(token: str) -> str:
    """The ``jti`` claim of a compact SET, read with nothing but base64 and JSON."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    jti = claims["jti"]
    assert isinstance(jti, str)
    return jti


class Client:
    """Partner ``a`` talking to node ``b`` over plain HTTP.

    Args:
        node: the running node ``b``.
        a: a's files (its key signs the SETs, its token authenticates).
        b: b's files (the audience of a's SETs).
        http: the HTTP client to use.
    """

    def __init__(self, node: Peer, a: NodeFiles, b: NodeFiles, http: httpx.AsyncClient) -> None:
        self.node = node
        self.a, self.b = a, b
        self.http = http
        self.auth = {"authorization": f"Bearer {a.token_out}"}
        self.signer = Signer(json.loads((a.folder / "a.jwks.json").read_text()))

    def url(self, path: str) -> str:
        """The node's URL for ``path``."""
        return self.node.url + path

    def claims(self, jti: str, **overrides: Any) -> dict[str, Any]:
        """Valid claims of a SET from a to b, then ``overrides`` applied."""
        claims = build_claims(
            iss=self.a.issuer,
            aud=self.b.issuer,
            events={SESSION_REVOKED: {}},
            iat=int(time.time()),
            jti=jti,
        )
        claims.update(overrides)
        return claims

    def token(self, jti: str, **overrides: Any) -> str:
        """A SET from a to b signed with a's key (``overrides`` change its claims)."""
        return self.signer.sign(self.claims(jti, **overrides))

    def foreign_token(self, jti: str) -> str:
        """A SET with valid claims signed by a key b does not know (``invalid_key``)."""
        return Signer(generate_private_jwks("ES256")).sign(self.claims(jti))

    async def post(
        self,
        path: str,
        body: bytes | str | Mapping[str, Any],
        *,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response:
        """POST ``body`` (a mapping is sent as JSON) with a's credentials unless told."""
        if isinstance(body, Mapping):
            content = json.dumps(body).encode()
        elif isinstance(body, str):
            content = body.encode()
        else:
            content = body
        sent: dict[str, str] = {"accept": "application/json"}
        if content_type is not None:
            sent["content-type"] = content_type
        if auth:
            sent.update(self.auth)
        sent.update(headers or {})
        return await self.http.post(
            self.url(path), content=content, headers=sent, timeout=timeout or 10_000 * MS
        )


def assert_error(response: httpx.Response, status: int, err: str) -> None:
    """An RFC 8935 §2.3 error: status, JSON body ``{err, description}``, Content-Language.

    PUSH-15 (JSON object with a registered ``err`` and a ``description``), PUSH-16
    (Content-Language), PUSH-18 (registered codes only).
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.headers.get("content-language") == "en", response.headers
    body = response.json()
    assert body["err"] == err, body
    assert err in REGISTERED_CODES
    assert isinstance(body["description"], str) and body["description"], body


async def wait_for(condition: Callable[[], object], timeout: float = 10_000 * MS) -> None:
    """Until ``condition()`` is true; fails after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - polling a node's public stats
            await anyio.sleep(10 * MS)


@asynccontextmanager
async def running_node(
    tmp: Path, *, limits: Mapping[str, float] | None = None
) -> AsyncIterator[tuple[Peer, Client]]:
    """Node ``b`` (partner ``a``: ``NODE_PARTNER``) serving on loopback, and a client."""
    a, b = make_pair(tmp)
    config = write_config(b, a, limits=dict(FAST | dict(limits or {})), extra_partner=NODE_PARTNER)
    async with Peer(config) as node, httpx.AsyncClient() as http:
        yield node, Client(node, a, b, http)


def _run_status(config: Path, *extra: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "peer", "status", "-c", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=seconds(60),
        check=True,
    )
    return out.stdout


async def setpeer_status(config: Path) -> dict[str, dict[str, Any]]:
    """``setpeer status -c CONFIG --json`` in a separate process, parsed."""
    out = await anyio.to_thread.run_sync(_run_status, config, "--json")
    parsed: dict[str, dict[str, Any]] = json.loads(out)
    return parsed


async def setpeer_status_table(config: Path) -> dict[str, dict[str, str]]:
    """``setpeer status -c CONFIG`` (the table, which also shows attempts), by partner."""
    out = await anyio.to_thread.run_sync(_run_status, config)
    node, *lines = out.splitlines()  # "node: running ..." first
    assert node.startswith("node: "), out
    header = lines[0].replace("next retry", "next_retry").split()
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        if line.startswith(("recent failures", "webhook:")):
            break  # the table ends there
        cells = line.replace("in ", "in_", 1).replace("down (not running)", "down", 1).split()
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows
