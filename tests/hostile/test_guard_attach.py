"""The connection guards refuse to start on a uvicorn they cannot hook completely.

The guards subclass uvicorn's protocol classes and read attributes its ``__init__``
sets; a release that renamed one would switch the header deadline or the idle guard
off without a word. Stand-in protocol classes play such a release here.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

import peer.server.serve as serve_module
from peer.errors import PeerError
from peer.server.guards import (
    SUPPORTED_UVICORN,
    ConnectionGuard,
    UnsupportedUvicorn,
    check_attachable,
    guarded_protocols,
)
from peer.server.serve import HTTPServer

ROOT = Path(__file__).resolve().parents[2]


class StandInHTTP(asyncio.Protocol):
    """Shaped like uvicorn's HttpToolsProtocol, as far as the guards look."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.loop = _loop
        self.connections = server_state.connections
        self.cycle = None
        self.pipeline: list[Any] = []
        self.flow = None
        self.timeout_keep_alive = 5

    def connection_made(self, transport: Any) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def on_message_begin(self) -> None: ...
    def on_headers_complete(self) -> None: ...
    def on_message_complete(self) -> None: ...
    def on_response_complete(self) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class RenamedCallback(StandInHTTP):
    """A release that renamed the httptools callback the header deadline ends on."""

    on_headers_complete = None  # type: ignore[assignment]


class NoConnections(StandInHTTP):
    """A release that keeps its open connections somewhere else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.connections


class NewConstructor(StandInHTTP):
    """A release whose protocol classes are built differently."""

    def __init__(self, config: Any) -> None:  # type: ignore[override]
        pass


class StandInWS(asyncio.Protocol):
    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.loop = _loop

    def connection_made(self, transport: Any) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def handle_text(self, event: Any) -> None: ...
    def handle_bytes(self, event: Any) -> None: ...


class WSWithoutLoop(StandInWS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.loop


class WSRenamedText(StandInWS):
    handle_text = None  # type: ignore[assignment]  # a release that renamed it


def test_the_installed_uvicorn_passes() -> None:
    check_attachable(AutoHTTPProtocol, AutoWebSocketsProtocol)
    http, ws = guarded_protocols(AutoHTTPProtocol, AutoWebSocketsProtocol, _guard())
    assert issubclass(http, AutoHTTPProtocol)
    assert ws is not None and issubclass(ws, AutoWebSocketsProtocol)  # type: ignore[arg-type]


def test_the_stand_ins_pass() -> None:
    check_attachable(StandInHTTP, StandInWS)


@pytest.mark.parametrize(
    ("http", "ws", "missing"),
    [
        (RenamedCallback, StandInWS, "'on_headers_complete'"),
        (NoConnections, StandInWS, "'connections'"),
        (NewConstructor, StandInWS, "__init__(config, server_state, app_state, _loop)"),
        (StandInHTTP, WSWithoutLoop, "'loop'"),
        (StandInHTTP, WSRenamedText, "'handle_text'"),
    ],
)
def test_a_class_lacking_a_hook_is_refused(http: type[Any], ws: type[Any], missing: str) -> None:
    with pytest.raises(UnsupportedUvicorn) as caught:
        check_attachable(http, ws)
    message = str(caught.value)
    assert message.startswith(f"uvicorn {uvicorn.__version__} is not supported: its ")
    assert f"lacks {missing}" in message
    assert message.endswith(f"setpeer needs uvicorn[standard] {SUPPORTED_UVICORN}")
    assert isinstance(caught.value, PeerError)


def test_h11_alone_is_refused_rather_than_served_without_header_deadline() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    with pytest.raises(UnsupportedUvicorn, match="its H11Protocol lacks 'on_message_begin'"):
        check_attachable(H11Protocol, None)


def test_the_server_refuses_to_build_with_a_guard_that_cannot_attach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve_module, "AutoHTTPProtocol", RenamedCallback)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError

    with pytest.raises(UnsupportedUvicorn, match="RenamedCallback lacks 'on_headers_complete'"):
        HTTPServer(app, host="127.0.0.1", port=0, max_frame_bytes=1024, guard=_guard())
    # Without guards nothing is hooked, so nothing is checked.
    HTTPServer(app, host="127.0.0.1", port=0, max_frame_bytes=1024)


def test_pyproject_pins_the_tested_range_and_it_holds_the_installed_uvicorn() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"uvicorn[standard]{SUPPORTED_UVICORN}" in project["dependencies"]
    low, high = re.fullmatch(r">=([\d.]+),<([\d.]+)", SUPPORTED_UVICORN).groups()  # type: ignore[union-attr]
    version = tuple(int(part) for part in uvicorn.__version__.split(".")[:2])
    assert _parts(low) <= version < _parts(high)


def _parts(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _guard() -> ConnectionGuard:
    return ConnectionGuard(max_connections=10, handshake_timeout=5.0, idle_timeout=30.0)
