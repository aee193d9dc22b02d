"""Two in-process nodes, ``a`` dialing ``b``, each with its local interface."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from peer import Peer
from peer.tokens.keys import load_private_jwks
from peer.tokens.sign import Signer
from tests.peers import NodeFiles, make_pair, write_config
from tests.timing import MS

__all__ = ["FAST", "foreign_set", "running_pair"]

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.3, "retry_initial": 0.05}


@asynccontextmanager
async def running_pair(
    folder: Path,
    *,
    b_app: str | None = None,
    b_token_sha256: str | None = None,
    limits: dict[str, float] | None = None,
) -> AsyncIterator[tuple[Peer, Peer]]:
    """``a`` and ``b`` connected over WebSocket; ``b``'s interface on ``b_app``."""
    a_files, b_files = make_pair(folder)
    b_config = write_config(
        b_files,
        a_files,
        app=b_app,
        app_token_sha256=b_token_sha256,
        limits=FAST | (limits or {}),
    )
    async with Peer(b_config) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        a_config = write_config(a_files, b_files, endpoint=endpoint, limits=FAST)
        async with Peer(a_config) as a:
            with anyio.fail_after(10_000 * MS):
                while a.stats()["b"]["session"] == "down":  # noqa: ASYNC110
                    await anyio.sleep(10 * MS)
            yield a, b


def foreign_set(signer: NodeFiles, jti: str, **claims: Any) -> str:
    """A SET signed with ``signer``'s real key, its claims overridden by ``claims``."""
    keys = load_private_jwks(signer.folder / f"{signer.name}.jwks.json")
    base = {
        "iss": signer.issuer,
        "aud": "https://a.test.example",
        "jti": jti,
        "iat": int(time.time()),
        "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}},
    }
    return Signer(keys).sign(base | claims)
