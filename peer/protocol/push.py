"""RFC 8935 push: one SET per POST, 202 on success, 400 ``{err, description}`` on error.

Both roles: :func:`parse_push_request` for the recipient, :func:`classify_push_response`
for the transmitter. No I/O: headers and bodies come in as values.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from ..errors import FrameTooLarge, MalformedFrame, UnsupportedMediaType, WireError
from .communication import COMPACT_JWS, SetErr
from .jsonio import dumps, loads_strict
from .limits import FrameLimits
from .media import SECEVENT_JWT, media_type

__all__ = [
    "ERROR_HEADERS",
    "Accepted",
    "PushOutcome",
    "Rejected",
    "Retry",
    "classify_push_response",
    "error_response_body",
    "parse_push_request",
    "parse_retry_after",
]

# PUSH-15, PUSH-16: error bodies are JSON with a Content-Language. Descriptions are
# English whatever Accept-Language asks (PUSH-17 allows it when no other is possible).
ERROR_HEADERS = {"content-type": "application/json", "content-language": "en"}


def parse_push_request(body: bytes, content_type: str | None, *, limits: FrameLimits) -> str:
    """Check an RFC 8935 push body and return the SET it carries.

    Args:
        body: the request body.
        content_type: the request's Content-Type header.
        limits: ``max_set_bytes`` bounds the body.

    Returns:
        The compact SET, trailing whitespace removed (PUSH-4; decision: tolerate a
        trailing CRLF some clients add, nothing else).

    Raises:
        UnsupportedMediaType: not ``application/secevent+jwt`` (PUSH-2).
        FrameTooLarge: over ``max_set_bytes`` (413).
        MalformedFrame: not a compact JWS (400 ``invalid_request``, PUSH-14).
    """
    if media_type(content_type) != SECEVENT_JWT:
        raise UnsupportedMediaType(f"Content-Type must be {SECEVENT_JWT}")
    if len(body) > limits.max_set_bytes:
        raise FrameTooLarge(f"SET exceeds {limits.max_set_bytes} bytes")
    try:
        token = body.decode("ascii").rstrip(" \t\r\n")
    except UnicodeDecodeError:
        raise MalformedFrame("body is not a JWS in compact form") from None
    if COMPACT_JWS.fullmatch(token) is None:
        raise MalformedFrame("body is not a JWS in compact form")
    return token


def error_response_body(error: WireError | SetErr) -> bytes:
    """The RFC 8935 §2.3 error body for a request or SET error (PUSH-15)."""
    if isinstance(error, SetErr):
        return dumps(error.to_json())
    return dumps(error.body())


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """The recipient took the SET (202, or any 2xx): it counts as acked (PUSH-12)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """The recipient refused the SET for good: 400 with an error code (PUSH-14).

    ``err`` is the partner's code verbatim; unknown codes are kept (PUSH-18).
    """

    err: str
    description: str


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Try again later: 5xx, 429, 408, a network failure or an unreadable answer.

    ``after`` is the partner's ``Retry-After`` in seconds when it sent one.
    ``reauthenticate`` asks for fresh credentials first (401, PUSH-21).
    """

    reason: str
    after: float | None = None
    reauthenticate: bool = False


PushOutcome = Accepted | Rejected | Retry


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or None.

    An HTTP-date needs the caller's clock (``now``; the core reads none): without it,
    only the delta-seconds form is understood.
    """
    if not value:
        return None
    value = value.strip()
    # isdigit() alone also accepts "²" and other digits int() refuses; RFC 9110 is ASCII.
    if value.isascii() and value.isdigit():
        return float(min(int(value[:9]), 86_400))
    try:
        # RFC 9110 §5.6.7: senders use IMF-fixdate. (email.utils would pull in socket.)
        when = datetime.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return None
    if now is None:
        return None
    return max(0.0, min(when.timestamp() - now, 86_400.0))


def _error_body(body: bytes) -> tuple[str, str] | None:
    """``(err, description)`` from an RFC 8935 error body or a problem+json body."""
    try:
        value = loads_strict(body, max_bytes=64 * 1024, max_depth=8)
    except WireError:
        return None
    if not isinstance(value, dict):
        return None
    err = value.get("err")
    if not isinstance(err, str) or not err:
        return None
    description = value.get("description", value.get("detail", ""))
    return err, description if isinstance(description, str) else ""


def classify_push_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> PushOutcome:
    """Decide what a transmitter does with the answer to one push (RFC 8935 §2.2-2.4).

    Args:
        status: HTTP status.
        headers: response headers, lower-case names.
        body: response body.
        now: wall-clock seconds, to read an HTTP-date ``Retry-After``.

    Returns:
        Accepted for 2xx; Rejected for a 400 (or 403) carrying an error code
        (``access_denied`` included: PUSH-21 says retry may help only after
        reconfiguration, so it is surfaced, not retried); Retry for everything a
        later attempt may fix (401 with reauthentication, 408, 429, 5xx, other 4xx
        without a code, an unreadable body).
    """
    if 200 <= status < 300:
        return Accepted()
    retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    if status == 401:
        return Retry("401 authentication failed", retry_after, reauthenticate=True)
    if status in (400, 403):
        parsed = _error_body(body)
        if parsed is not None:
            err, description = parsed
            if err == "authentication_failed":
                # RFC 8935's own example puts this in a 400 (decision 7): refresh, retry.
                return Retry("authentication_failed", retry_after, reauthenticate=True)
            return Rejected(err, description)
        if status == 400:
            return Rejected("invalid_request", "400 without an RFC 8935 error body")
    if status == 413:
        return Rejected("invalid_request", "413: the recipient refused the SET as too large")
    if status == 415:
        return Rejected("invalid_request", "415: the recipient refused the media type")
    return Retry(f"HTTP {status}", retry_after)
