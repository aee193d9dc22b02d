"""The protocol core is sans-I/O: importing it loads no event loop, socket or web stack."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = [
    "asyncio",
    "socket",
    "ssl",
    "httpx",
    "httpcore",
    "websockets",
    "starlette",
    "uvicorn",
    "anyio",
    "sqlite3",
    "selectors",
]


def test_import_peer_protocol_loads_no_io_modules() -> None:
    """`import peer.protocol` (every submodule) pulls in no I/O module."""
    code = (
        "import sys, json, pkgutil, importlib, peer.protocol\n"
        "for m in pkgutil.iter_modules(peer.protocol.__path__):\n"
        "    importlib.import_module('peer.protocol.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(json.loads(out.stdout))
    assert "peer.protocol.ledger" in loaded
    assert [name for name in FORBIDDEN if name in loaded] == []
