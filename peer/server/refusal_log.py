"""Refused handshakes and requests, logged by us: who (the partner, when the
credentials named one), from where (the remote address), which route, the status,
the code and the reason.

uvicorn's own line for a refused WebSocket upgrade ("ASGI callable returned without
completing handshake") says none of that; :func:`quiet_uvicorn_handshake` drops it.
A stranger can be refused as often as it likes, so each (remote host or partner,
status, code, reason) is logged at most once per :data:`EVERY` seconds; the next line counts
those left out.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from starlette.requests import HTTPConnection

from ..errors import WireError

__all__ = ["EVERY", "RefusalLog", "quiet_uvicorn_handshake"]

log = logging.getLogger("setpeer.server")

EVERY: Final = 10.0
"""Seconds between two lines of one kind of refusal from one source."""

_MAX_KEYS: Final = 4096  # sources remembered; past it the memory starts over


class RefusalLog:
    """Logs refusals, at most one line per source and kind every :data:`EVERY` s."""

    def __init__(self, every: float = EVERY) -> None:
        self._every = every
        self._last: dict[tuple[str, int, str, str], tuple[float, int]] = {}

    def refused(self, conn: HTTPConnection, exc: WireError, partner: str | None = None) -> None:
        """``conn`` was refused with ``exc`` (``partner``: whose credentials it bore)."""
        client = conn.client
        remote = f"{client.host}:{client.port}" if client is not None else "-"
        source = partner if partner is not None else (client.host if client else "-")
        key = (source, exc.http_status, exc.err, exc.description[:100])
        now = time.monotonic()
        last, skipped = self._last.get(key, (-self._every, 0))
        if now - last < self._every:
            self._last[key] = (last, skipped + 1)
            return
        if len(self._last) >= _MAX_KEYS:
            self._last.clear()
        self._last[key] = (now, 0)
        kind = "WebSocket upgrade" if conn.scope.get("type") == "websocket" else "request"
        path = conn.scope.get("path", "")
        level = logging.WARNING if exc.http_status in (401, 403) else logging.INFO
        log.log(
            level,
            "%s %s refused: %s %s %r, partner=%s remote=%s%s",
            kind,
            path,
            exc.http_status,
            exc.err,
            exc.description[:200],
            partner or "unknown",
            remote,
            f" ({skipped} more like it left out)" if skipped else "",
            extra={
                "partner": partner,
                "remote": remote,
                "path": path,
                "status": exc.http_status,
                "err": exc.err,
                "description": exc.description[:200],
            },
        )


class _DropHandshakeLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("ASGI callable returned without completing")


_quiet = _DropHandshakeLine()


def quiet_uvicorn_handshake() -> None:
    """Drop uvicorn's reasonless line for a refused upgrade (ours says who and why)."""
    logger = logging.getLogger("uvicorn.error")
    if _quiet not in logger.filters:
        logger.addFilter(_quiet)
