"""Authorization servers for tests: the real oidc-provider, and a signing key of our own.

:func:`authorization_server` runs oidc-provider (``oidc/server.mjs``). ``npm install``
runs once, into ``tests/security/oidc/node_modules`` (gitignored), if ``scripts/test``
has not done it already. Tests skip only when node or npm is missing; a failed install
is an error, not a skip.

:func:`signing_authorization_server` serves RFC 8414 metadata and a JWKS over real
HTTPS like any AS, and mints access tokens with whatever claims a test names: the
tokens a correct AS never issues (``client_id`` of one client, ``sub`` of another;
``exp`` of ``10**400``), which a node must refuse all the same.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from peer.tokens.jose import sign_bytes
from peer.tokens.keys import generate_private_jwks, public_jwks, signing_key

from .helpers import MS, Pki, seconds

__all__ = [
    "AuthorizationServer",
    "SigningAuthorizationServer",
    "authorization_server",
    "require_node",
    "signing_authorization_server",
]

OIDC_DIR = Path(__file__).parent / "oidc"


def require_node() -> str:
    """The node executable, after ``npm install`` if needed; skips without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the oidc-provider authorization server")
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            check=True,
            timeout=seconds(600),
            stdout=subprocess.DEVNULL,
        )
    return node


@dataclass(frozen=True)
class AuthorizationServer:
    """A running oidc-provider: its issuer identifier (``https://127.0.0.1:PORT``)."""

    issuer: str
    port: int


@contextlib.asynccontextmanager
async def authorization_server(
    folder: Path,
    pki: Pki,
    clients: Mapping[str, Mapping[str, Any]],
    *,
    scope: str = "",
    ttl: float = 300,
) -> AsyncIterator[AuthorizationServer]:
    """Start ``server.mjs`` with ``clients`` (client_id -> public JWK Set) until exit.

    Args:
        folder: where its config, certificate and log go.
        pki: the CA that issues its HTTPS certificate (for 127.0.0.1).
        clients: ``private_key_jwt`` clients it knows.
        scope: the scope its access tokens may carry.
        ttl: access token lifetime in seconds.
    """
    node = require_node()
    certfile, keyfile = pki.issue("as", "127.0.0.1")
    config = folder / "as.json"
    config.write_text(
        json.dumps(
            {
                "certfile": str(certfile),
                "keyfile": str(keyfile),
                "clients": [{"client_id": k, "jwks": v} for k, v in clients.items()],
                "scope": scope,
            }
        )
    )
    env = {**os.environ, "SETPEER_TEST_AT_TTL": str(int(ttl))}
    with (folder / "as.log").open("wb") as log:
        process = await anyio.open_process(
            [node, str(OIDC_DIR / "server.mjs"), str(config)], stderr=log, env=env
        )
        async with process:
            try:
                assert process.stdout is not None
                line = b""
                with anyio.fail_after(20_000 * MS):
                    while not line.endswith(b"\n"):
                        line += await process.stdout.receive()
                info = json.loads(line)
                yield AuthorizationServer(issuer=info["issuer"], port=info["port"])
            finally:
                process.terminate()
                with anyio.move_on_after(seconds(5)), contextlib.suppress(Exception):
                    await process.wait()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningAuthorizationServer:
    """An AS that publishes its metadata and keys over HTTPS and signs what it is told.

    Attributes:
        issuer: ``https://127.0.0.1:PORT``.
        jwks: its private JWK Set (ES256).
    """

    issuer: str
    jwks: dict[str, Any]

    def token(self, audience: str, **claims: Any) -> str:
        """An RFC 9068 access token (``typ`` at+jwt) for ``audience``, valid five
        minutes, with ``claims`` added or overriding. stdlib json: any int size."""
        key = signing_key(self.jwks)
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + 300}
        body |= {"jti": f"at-{time.monotonic_ns()}"} | claims
        header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
        data = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        return data + "." + _b64(sign_bytes(key.alg, key.private_key, data.encode()))


@contextlib.contextmanager
def signing_authorization_server(pki: Pki) -> Iterator[SigningAuthorizationServer]:
    """Serve ``/.well-known/oauth-authorization-server`` and ``/jwks`` on 127.0.0.1."""
    private = generate_private_jwks("ES256", kid="test-as")
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    certfile, keyfile = pki.issue("signing-as", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certfile), str(keyfile))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    issuer = f"https://127.0.0.1:{server.server_address[1]}"
    documents["/.well-known/oauth-authorization-server"] = json.dumps(
        {"issuer": issuer, "jwks_uri": issuer + "/jwks", "token_endpoint": issuer + "/token"}
    ).encode()
    documents["/jwks"] = json.dumps(public_jwks(private)).encode()
    # shutdown() waits for the loop to look at its flag: every 0.5 s by default, which
    # was half a second of each test using this server.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield SigningAuthorizationServer(issuer=issuer, jwks=private)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(seconds(5))
