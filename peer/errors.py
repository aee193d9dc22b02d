"""Errors raised by setpeer, each knowing how it looks on the wire.

::

    PeerError
    ├── ConfigError            .problems: list of (key path, message)
    ├── UnknownPartner         also LookupError: a caller named no configured partner
    ├── WireError              a partner's fault, answered on the wire
    │   ├── ProtocolError      the request or frame breaks the delivery contract
    │   │   ├── MalformedFrame     not UTF-8, not JSON, wrong shape      400 / 1007
    │   │   ├── FrameTooLarge      body, frame or batch over a limit     413 / 1009
    │   │   ├── UnsupportedMediaType  wrong Content-Type                 415
    │   │   └── RequestTimeout     the body did not arrive in time       408
    │   ├── AuthenticationFailed  missing or bad credentials             401 / 1008
    │   ├── AccessDenied       authenticated, but not allowed            403 / 1008
    │   └── Overloaded         over a session, rate or inbox limit:     429 / 1013
    │                          retry later (.retry_after); nothing taken
    ├── Backpressure           publish refused: the partner's outbox is full
    ├── NotAuthorized          the node's local interface refused the Client's token
    ├── NodeUnavailable        the node's local interface did not answer the Client
    ├── SETRejected            one SET is invalid: .err is its RFC 8935 code (setErrs entry)
    ├── SETTooLarge            also ValueError: a SET over the partner's max_set_bytes
    ├── TransportError         network trouble talking to a partner
    │   ├── ConnectError
    │   └── SessionClosed      .code, .reason
    ├── StoreError             the store failed or refused a write
    │   └── DuplicateJti       also ValueError: a jti reused for one partner
    └── WebhookConfigured      receive() refused: received SETs go to [peer.app] deliver

A :class:`WireError` carries its whole wire form: the RFC 8935 error code
(``err``), the HTTP status and the WebSocket close code, so transports keep no
table of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "Backpressure",
    "StreamDisabled",
    "ConfigError",
    "ConnectError",
    "DuplicateJti",
    "FrameTooLarge",
    "MalformedFrame",
    "NodeUnavailable",
    "NotAuthorized",
    "Overloaded",
    "PeerError",
    "ProtocolError",
    "RequestTimeout",
    "SETRejected",
    "SETTooLarge",
    "SessionClosed",
    "StoreError",
    "TransportError",
    "UnknownPartner",
    "UnsupportedMediaType",
    "WebhookConfigured",
    "WireError",
]

# RFC 6455 §7.4.1 close codes used by setpeer.
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
# IANA WebSocket close code registry: "Try Again Later" (a temporary condition).
CLOSE_TRY_AGAIN_LATER = 1013


class PeerError(Exception):
    """Root of every error setpeer raises on purpose."""


class ConfigError(PeerError):
    """The configuration is invalid.

    Attributes:
        problems: every problem found, as ``(key_path, message)`` pairs, e.g.
            ``("partners[0].send_via", "must be one of ...")``.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {path}: {message}" for path, message in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{lines}")


class UnknownPartner(PeerError, LookupError):
    """The caller named a partner that is not configured."""


class WireError(PeerError):
    """A partner's request or frame was refused; knows its answer on the wire.

    Attributes:
        err: RFC 8935 §2.4 error code for the ``{"err", "description"}`` body.
        description: human-readable reason, safe to send (never token contents).
        http_status: status of the HTTP error response.
        close_code: WebSocket close code (RFC 6455 §7.4.1).
    """

    err = "invalid_request"
    http_status = 400
    close_code = CLOSE_INVALID_DATA

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)

    def body(self) -> dict[str, str]:
        """The RFC 8935 §2.3 error body."""
        return {"err": self.err, "description": self.description}

    def response_headers(self) -> dict[str, str]:
        """Extra HTTP headers of the error response (``Retry-After`` for 429)."""
        return {}

    @property
    def close_reason(self) -> str:
        """Close reason: RFC 6455 §5.5 caps a control frame at 125 bytes (2 for the code)."""
        return self.description.encode()[:123].decode(errors="ignore")


class ProtocolError(WireError):
    """The request or frame breaks the delivery contract."""


class MalformedFrame(ProtocolError):
    """Not UTF-8, not JSON, duplicate member names, or the wrong shape."""


class FrameTooLarge(ProtocolError):
    """A body, frame, SET or batch is over its limit (HTTP 413, WebSocket 1009)."""

    http_status = 413
    close_code = CLOSE_TOO_BIG


class AuthenticationFailed(WireError):
    """Missing or bad credentials: 401 with ``WWW-Authenticate`` (decision 7)."""

    err = "authentication_failed"
    http_status = 401
    close_code = CLOSE_POLICY_VIOLATION


class AccessDenied(WireError):
    """The authenticated partner may not do this."""

    err = "access_denied"
    http_status = 403
    close_code = CLOSE_POLICY_VIOLATION


class SETRejected(PeerError):
    """One SET failed validation; it is answered in ``setErrs``, never by a close.

    Attributes:
        err: RFC 8935 §2.4 error code (``invalid_request``, ``invalid_key``,
            ``invalid_issuer``, ``invalid_audience``, ``access_denied``, ...).
        description: why, safe to send to the partner.
    """

    def __init__(self, err: str, description: str) -> None:
        self.err = err
        self.description = description
        super().__init__(f"{err}: {description}")


class TransportError(PeerError):
    """Talking to a partner failed (mapped from websockets/httpx errors)."""


class ConnectError(TransportError):
    """The partner could not be reached, or refused the handshake."""


class SessionClosed(TransportError):
    """A session closed; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"session closed: {code} {reason}".rstrip())


class StoreError(PeerError):
    """The store could not complete an operation (unreachable, full, corrupt).

    From ``publish`` or ``forward`` it does not always mean the SET was not stored:
    a connection lost while the commit was on its way leaves that unknown. Retry with
    the same ``jti=``; :class:`DuplicateJti` then says the first one was stored.
    """


class DuplicateJti(StoreError, ValueError):
    """A jti was enqueued twice for one partner: a jti is never reused (PP-25, MP-9).

    The whole ``enqueue`` call is refused; other callers' SETs in the same group
    commit are not affected. From ``publish(..., jti=...)`` or ``forward``: a SET with
    this jti is in the partner's outbox already (sent, or being sent), so a retry
    after an uncertain failure can never send one event twice.
    """

    @classmethod
    def of_set(cls, partner: str, jti: str) -> DuplicateJti:
        """The refusal of one SET, naming its partner and jti (the store's own
        message cannot: it refuses a whole group of SETs)."""
        return cls(
            f"partner {partner!r} already has a SET with jti {jti!r}"
            " (a jti is never reused for one partner)"
        )


class UnsupportedMediaType(ProtocolError):
    """The request's Content-Type is not one this route accepts (HTTP 415)."""

    http_status = 415


class RequestTimeout(ProtocolError):
    """The request body did not arrive within its time (HTTP 408): a slow sender
    cannot hold a connection and a task open for free."""

    http_status = 408
    close_code = CLOSE_POLICY_VIOLATION


class Overloaded(WireError):
    """We take nothing more from this partner for now: too many sessions, SETs too
    fast, or too many SETs the application has not handled yet.

    The refused request or frame is neither stored nor acknowledged, so the partner
    keeps its SETs and sends them again later: HTTP 429 with ``Retry-After``, or a
    WebSocket close 1013 (Try Again Later) with a reason.

    Attributes:
        retry_after: seconds the partner should wait before trying again.
    """

    http_status = 429
    close_code = CLOSE_TRY_AGAIN_LATER

    def __init__(self, description: str, *, retry_after: float = 1.0) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        """``Retry-After`` in whole seconds, at least 1 (RFC 9110 §10.2.3)."""
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class SETTooLarge(PeerError, ValueError):
    """``publish``, ``forward`` or ``setpeer send`` refused a SET larger than the
    partner's ``max_set_bytes``: nothing was stored. A partner refuses such a SET, and
    a frame too large for it would be sent again and again, holding every SET behind
    it.

    Attributes:
        partner: the partner's name.
        size: the compact SET's length in bytes.
        limit: the partner's ``max_set_bytes``.
    """

    def __init__(self, partner: str, size: int, limit: int) -> None:
        self.partner = partner
        self.size = size
        self.limit = limit
        super().__init__(
            f"the SET for partner {partner!r} is {size} bytes, over its max_set_bytes"
            f" ({limit}); not stored"
        )


class Backpressure(PeerError):
    """``publish`` or ``forward`` refused: the partner's outbox already holds
    ``max_pending`` SETs not yet acknowledged or failed.

    Nothing was stored; try again once the partner catches up (``flush`` or
    ``stats()["pending"]`` shows when).

    Attributes:
        partner: the partner's name.
        pending: SETs in its outbox now.
        limit: its ``max_pending``.
    """

    def __init__(self, partner: str, pending: int, limit: int) -> None:
        self.partner = partner
        self.pending = pending
        self.limit = limit
        super().__init__(
            f"partner {partner!r} has {pending} SETs pending (max_pending {limit}); "
            "try again when it catches up"
        )


class StreamDisabled(PeerError):
    """``publish`` or ``forward`` refused: the partner (an SSF receiver) disabled its
    stream, and a disabled stream holds nothing (SSF 8.1.2). Nothing was stored;
    SETs go again once the stream is enabled or paused.

    Attributes:
        partner: the partner's name.
    """

    def __init__(self, partner: str) -> None:
        self.partner = partner
        super().__init__(f"partner {partner!r} disabled its SSF stream: nothing is sent or kept")


class WebhookConfigured(PeerError):
    """Received SETs were asked for by pulling (``Peer.receive()``) while the node
    delivers them to a webhook (``[peer.app] deliver``): one consumer, not two
    racing for each SET. A fact of the configuration, not a passing state."""


class NotAuthorized(PeerError):
    """:class:`peer.Client`: the node's local interface refused the token (401): none
    given, or not the one whose SHA-256 is ``[peer.app] token_sha256``."""


class NodeUnavailable(PeerError):
    """:class:`peer.Client`: the node's local interface did not answer — the node is
    not running (or restarting), or the socket path or address is wrong."""
