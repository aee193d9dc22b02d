"""The protocol core is sans-I/O: no event loop, socket, web stack, store or clock.

Time is an argument: the core never sleeps, awaits or reads a clock.
"""

from __future__ import annotations

import ast
import json
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import peer.protocol
from tests.timing import seconds

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
# A clock or a thread in the core would make its decisions untestable by replay.
FORBIDDEN_IMPORTS = {*FORBIDDEN, "time", "threading", "concurrent"}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter", "sleep"}

PACKAGE = pathlib.Path(peer.protocol.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]))


def test_import_peer_protocol_loads_no_io_modules() -> None:
    """`import peer.protocol` and every submodule, in a fresh interpreter, loads no I/O module."""
    code = (
        "import sys, json, pkgutil, importlib, peer.protocol\n"
        "for m in pkgutil.iter_modules(peer.protocol.__path__):\n"
        "    importlib.import_module('peer.protocol.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    loaded = set(json.loads(out.stdout))
    assert {"peer.protocol.ledger", "peer.protocol.retry"} <= loaded
    assert {f"peer.protocol.{name}" for name in MODULES} <= loaded
    assert [name for name in FORBIDDEN if name in loaded] == []


def _violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        else:
            names = []
        found += [
            f"line {node.lineno}: imports {name}" for name in names if name in FORBIDDEN_IMPORTS
        ]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        ):
            found.append(f"line {node.lineno}: calls .{node.func.attr}()")
        if isinstance(node, ast.AsyncFunctionDef | ast.Await):
            found.append(f"line {node.lineno}: async code")
    return found


# Modules allowed to read a clock: none.
_KNOWN: dict[str, str] = {}


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(m, marks=pytest.mark.xfail(reason=_KNOWN[m], strict=True))
        if m in _KNOWN
        else m
        for m in MODULES
    ],
)
def test_module_reads_no_clock(module: str) -> None:
    """No clock, sleep, thread or async code in the core: time comes in as `now`."""
    assert _violations(PACKAGE / f"{module}.py") == []
