"""Logging setup: readable text or JSON lines. Never SET contents, tokens or keys.

setpeer's own log calls name jti, iss, partner and event types only (docs/operations.md,
"Logs"). The libraries below it are less careful at DEBUG: websockets logs every
handshake header (``Authorization: Bearer ...``) and the start of every frame. So every
record from setpeer, websockets, uvicorn, httpx and httpcore passes :func:`redact` as it
is created (:func:`install_redaction`), whatever handler later receives it; an
application's own handlers and formatters need no change.

The same pass escapes control characters (:func:`escape_controls`): a partner's text
that reaches a log line (a WebSocket close reason, a header, an error description)
can neither start a new line, which a reader would take for a record of its own
(attributed to another partner), nor move a terminal's cursor or clear its screen.
A record is one line; only an exception's traceback follows it, every line indented.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["configure_logging", "escape_controls", "install_redaction", "redact"]

# Loggers whose records are redacted: ours and the libraries that see our traffic.
_REDACTED = ("setpeer", "websockets", "uvicorn", "httpx", "httpcore")
# A credential header or parameter, up to the end of its value.
_CREDENTIAL = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|client_secret|"
    r"client_assertion|access_token|refresh_token)(['\"]?\s*[:=]\s*['\"]?)[^\r\n'\",&]*"
)
# RFC 6750 §2.1 / RFC 7617 credentials; a challenge's quoted auth-params (realm="...")
# are not credentials and stay readable.
# "invalid bearer token" is words, not a credential: kept readable.
_BEARER = re.compile(r'(?i)\b(bearer|basic)\s+(?![A-Za-z_]+=")(?!tokens?\b)[A-Za-z0-9._~+/-]+=*')
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


# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``,
    ``\\x1b``, ``\\u2028``): printable, on one line, inert in a terminal."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


def _escape_arg(value: object) -> object:
    """A format argument whose text is escaped; numbers stay numbers (``%d``)."""
    if isinstance(value, str):
        return escape_controls(value)
    if value is None or isinstance(value, int | float):
        return value
    try:
        text = str(value)
    except Exception:
        return value
    return escape_controls(text) if _CONTROL.search(text) else value


def _escape_record(record: logging.LogRecord, message: str) -> None:
    """Escape ``record``'s message; the arguments stay separate where possible, for
    formatters that read them (uvicorn's access log unpacks ``record.args``)."""
    if not _CONTROL.search(message):
        return
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_escape_arg(arg) for arg in args)
    elif isinstance(args, Mapping):
        record.args = {key: _escape_arg(arg) for key, arg in args.items()}
    record.msg = escape_controls(str(record.msg))
    try:
        if not _CONTROL.search(record.getMessage()):
            return
    except Exception:
        pass
    record.msg, record.args = escape_controls(message), None


def _indented(text: str) -> str:
    """A traceback whose every line is indented and free of controls: nothing in an
    exception's message can pass for a record of its own."""
    return "\n".join("  " + escape_controls(line) for line in text.split("\n"))


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the caller's bug; keep the raw parts out
        message = str(record.msg)
        record.msg, record.args = message, None
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    _escape_record(record, cleaned)
    if record.exc_info and record.exc_info[0] is not None:
        # Formatted once here, so every handler prints the redacted text.
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = _indented(redact(text))
    if record.stack_info:
        record.stack_info = _indented(redact(record.stack_info))


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


# A LogRecord's own attributes; anything else on a record came through ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _field(value: object) -> object:
    """An extra field for JSON: numbers and booleans as they are, anything else as
    redacted text with its control characters escaped."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return escape_controls(redact(str(value)))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every field a log
    call passed with ``extra=`` as a key of its own (partner, session, jti, err,
    description, remote, ...), redacted and escaped like the message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = _field(value)
        if record.exc_info:
            # The redacted text the record factory prepared, when it did.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
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
