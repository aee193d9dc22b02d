"""Run the real oidc-provider authorization server (``oidc/server.mjs``) for a test.

``npm install`` runs once, into ``tests/security/oidc/node_modules`` (gitignored),
if ``scripts/test`` has not done it already. Tests skip only when node or npm is
missing; a failed install is an error, not a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from .helpers import MS, Pki, seconds

__all__ = ["AuthorizationServer", "authorization_server", "require_node"]

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
