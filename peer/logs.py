"""Logging setup: readable text or JSON lines. Never SET contents, tokens or keys.

setpeer's own log calls name jti, iss, partner and event types only (docs/operations.md,
"Logs"). The libraries below it are less careful at DEBUG: websockets logs every
handshake header (``Authorization: Bearer ...``) and the start of every frame. So every
record from setpeer, websockets, uvicorn, httpx and httpcore passes :func:`redact` as it
is created (:func:`install_redaction`), whatever handler later receives it; an
application's own handlers and formatters need no change.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["configure_logging", "install_redaction", "redact"]

# Loggers whose records are redacted: ours and the libraries that see our traffic.
_REDACTED = ("setpeer", "websockets", "uvicorn", "httpx", "httpcore")
# A credential header or parameter, up to the end of its value.
_CREDENTIAL = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|client_secret|"
    r"client_assertion|access_token|refresh_token)(['\"]?\s*[:=]\s*['\"]?)[^\r\n'\",&]*"
)
# RFC 6750 §2.1 / RFC 7617 credentials; a challenge's quoted auth-params (realm="...")
# are not credentials and stay readable.
_BEARER = re.compile(r'(?i)\b(bearer|basic)\s+(?![A-Za-z_]+=")[A-Za-z0-9._~+/-]+=*')
# A compact JWS/JWT (three base64url parts; the first is a JSON header, so "eyJ").
_JWS = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A JWK's private or symmetric members: d, p, q, dp, dq, qi, k.
_JWK_SECRET = re.compile(r"""(['"](?:d|p|q|dp|dq|qi|k)['"]\s*:\s*['"])[A-Za-z0-9_-]+""")


def redact(text: str) -> str:
    """``text`` with credentials, compact JWS and private key members replaced."""
    if not text:
        return text
    text = _CREDENTIAL.sub(r"\1\2<redacted>", text)
    text = _BEARER.sub(r"\1 <redacted>", text)
    text = _JWS.sub("<jws>", text)
    return _JWK_SECRET.sub(r"\1<redacted>", text)


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the caller's bug; keep the raw parts out
        message = str(record.msg)
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None:
        # Formatted once here, so every handler prints the redacted text.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


_installed = False


def install_redaction() -> None:
    """Redact every record from setpeer and its network libraries (idempotent).

    Wraps the process's log record factory, so the redaction happens however logging
    is configured (pytest's capture, an application's handlers, ``configure_logging``).
    """
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_REDACTED):
            _scrub(record)
        return record

    logging.setLogRecordFactory(factory)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send setpeer's logs to stderr as text or JSON lines (redacted, see the module)."""
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("setpeer")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
