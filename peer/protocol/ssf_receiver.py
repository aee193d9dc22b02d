"""SSF 1.0 from the receiver's side, without I/O: what we read from a transmitter.

An SSF transmitter describes itself in a metadata document at a well-known URL
derived from its issuer (SSF-22), and answers stream management requests with
stream configurations and statuses (SSF 8). Everything it sends is checked here
field by field before use: the issuer must be the one we discovered (SSF-24,
SSF-26), stream ids and statuses must have their shapes, and a verification SET's
``state`` must be the one we asked for (SSF-34). Time is a parameter; nothing here
opens a socket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from .delivery_methods import (
    POLL,
    PUSH,
    PUSHPULL,
    SSF_DISCOVERY_PATH,
    normalise_method,
    well_known_url,
)
from .ssf_streams import STREAM_UPDATED_EVENT, VERIFICATION_EVENT

__all__ = [
    "DELIVERY_METHODS",
    "ENDPOINT_KEYS",
    "POLL_METHOD",
    "PUSHPULL_METHOD",
    "PUSH_METHOD",
    "STATUSES",
    "STREAM_UPDATED_EVENT",
    "VERIFICATION_EVENT",
    "WELL_KNOWN_SSF",
    "Delivery",
    "InvalidDocument",
    "StreamStatus",
    "TransmitterMetadata",
    "check_stream_config",
    "check_stream_status",
    "configuration_url",
    "delivery_method",
    "parse_metadata",
    "verification_state",
]

WELL_KNOWN_SSF: Final = SSF_DISCOVERY_PATH
PUSH_METHOD: Final = PUSH
POLL_METHOD: Final = POLL
PUSHPULL_METHOD: Final = PUSHPULL  # decisions.md "Delivery method URIs"

Delivery = Literal["push", "poll", "pushpull"]
"""How a stream's SETs reach us, as ``[partners.stream] delivery`` names it."""
DELIVERY_METHODS: Final[Mapping[str, str]] = {
    "push": PUSH_METHOD,
    "poll": POLL_METHOD,
    "pushpull": PUSHPULL_METHOD,
}
STATUSES: Final = ("enabled", "paused", "disabled")
ENDPOINT_KEYS: Final = (
    "configuration_endpoint",
    "status_endpoint",
    "add_subject_endpoint",
    "remove_subject_endpoint",
    "verification_endpoint",
)
_MAX_TEXT: Final = 2048
_MAX_STATE: Final = 256


class InvalidDocument(ValueError):
    """A transmitter's document cannot be used; the message says which field and why."""


def configuration_url(issuer: str) -> str:
    """Where ``issuer``'s SSF metadata is (SSF-22): see
    :func:`.delivery_methods.well_known_url`."""
    return well_known_url(issuer)


@dataclasses.dataclass(frozen=True, slots=True)
class TransmitterMetadata:
    """The fields of an SSF transmitter's metadata we use (SSF 7.1).

    Attributes:
        issuer: identical to the URL we discovered it from (SSF-24).
        jwks_uri: where its signing keys are, if it signs SETs.
        delivery_methods_supported: method URIs (empty when not advertised).
        endpoints: management endpoint name -> URL, only those advertised.
        spec_version: ``1_0`` for the final specification; ``1_0-ID1`` when absent.
        critical_subject_members: complex-subject members receivers MUST understand.
        document: the whole document as received (unknown claims kept, SSF-23).
    """

    issuer: str
    jwks_uri: str | None
    delivery_methods_supported: tuple[str, ...]
    endpoints: Mapping[str, str]
    spec_version: str
    critical_subject_members: tuple[str, ...]
    document: Mapping[str, Any]

    def endpoint(self, key: str) -> str | None:
        """The URL of the management endpoint ``key`` (``status_endpoint``...), if any."""
        return self.endpoints.get(key)

    def supports(self, method: str) -> bool:
        """Whether ``method`` is advertised, under its SSF 1.0 URI or a legacy RISC
        one; a document that lists none is taken to support push and poll, the two SSF
        defines."""
        return self.advertised(method) is not None

    def advertised(self, method: str) -> str | None:
        """The URI this transmitter advertises for ``method`` (an SSF 1.0 method URI):
        its own spelling, so a transmitter on the older drafts is asked for the RISC
        name it knows; None when not advertised."""
        if not self.delivery_methods_supported:
            return method if method in (PUSH_METHOD, POLL_METHOD) else None
        wanted = normalise_method(method)
        for uri in self.delivery_methods_supported:
            if uri == method:
                return uri
        for uri in self.delivery_methods_supported:
            if wanted is not None and normalise_method(uri) == wanted:
                return uri
        return None


def _strings(document: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = document.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, str) and 0 < len(v) <= _MAX_TEXT for v in value
    ):
        raise InvalidDocument(f"{key} must be an array of strings")
    return tuple(value)


def parse_metadata(
    document: object, *, issuer: str, url_ok: Callable[[str], bool]
) -> TransmitterMetadata:
    """Check an SSF metadata document discovered from ``issuer`` (SSF-23, SSF-24).

    Args:
        document: the parsed JSON body.
        issuer: the issuer the document was discovered from; ``issuer`` in the
            document must be identical to it.
        url_ok: whether a URL the document gives may be used (``https``, or plain
            HTTP to loopback where the operator allows it; SSF-21).

    Raises:
        InvalidDocument: any check failed; nothing of the document is used (SSF-24).
    """
    if not isinstance(document, dict):
        raise InvalidDocument("the document must be a JSON object")
    if document.get("issuer") != issuer:
        raise InvalidDocument(f"issuer must be {issuer!r}, the URL it was discovered from")

    def url(key: str) -> str | None:
        value = document.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > _MAX_TEXT or not url_ok(value):
            raise InvalidDocument(f"{key} must be an https URL")
        return value

    endpoints = {key: found for key in ENDPOINT_KEYS if (found := url(key)) is not None}
    version = document.get("spec_version", "1_0-ID1")
    if not isinstance(version, str) or len(version) > 64:
        raise InvalidDocument("spec_version must be a string")
    return TransmitterMetadata(
        issuer=issuer,
        jwks_uri=url("jwks_uri"),
        delivery_methods_supported=_strings(document, "delivery_methods_supported"),
        endpoints=endpoints,
        spec_version=version,
        critical_subject_members=_strings(document, "critical_subject_members"),
        document=document,
    )


def _stream_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise InvalidDocument(f"{what} must be a non-empty string")
    return value


def check_stream_config(
    document: object, *, issuer: str, stream_id: str | None = None
) -> dict[str, Any]:
    """A stream configuration returned by the transmitter, checked (SSF 8.1.1).

    Args:
        document: the parsed JSON body.
        issuer: the discovered issuer; the configuration's ``iss`` must equal it (SSF-26).
        stream_id: the stream we asked about, when we named one.

    Returns:
        The configuration, as given.

    Raises:
        InvalidDocument: it is not a usable stream configuration.
    """
    if not isinstance(document, dict):
        raise InvalidDocument("a stream configuration must be a JSON object")
    found = _stream_id(document.get("stream_id"), "stream_id")
    if stream_id is not None and found != stream_id:
        raise InvalidDocument(f"stream_id is {found!r}, not the stream asked about")
    if document.get("iss") != issuer:
        raise InvalidDocument(f"iss must be {issuer!r}, the discovered issuer")
    aud = document.get("aud")
    strings = isinstance(aud, list) and all(isinstance(a, str) for a in aud)
    if not (isinstance(aud, str) or strings):
        raise InvalidDocument("aud must be a string or an array of strings")
    delivery = document.get("delivery")
    if not isinstance(delivery, dict) or not isinstance(delivery.get("method"), str):
        raise InvalidDocument("delivery must be an object with a method")
    endpoint = delivery.get("endpoint_url")
    if endpoint is not None and not isinstance(endpoint, str):
        raise InvalidDocument("delivery.endpoint_url must be a string")
    for key in ("events_supported", "events_requested", "events_delivered"):
        value = document.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InvalidDocument(f"{key} must be an array of strings")
    return document


def delivery_method(config: Mapping[str, Any]) -> str | None:
    """The delivery method URI of a checked stream configuration."""
    delivery = config.get("delivery")
    method = delivery.get("method") if isinstance(delivery, Mapping) else None
    return method if isinstance(method, str) else None


@dataclasses.dataclass(frozen=True, slots=True)
class StreamStatus:
    """A stream's status as the transmitter reports it (SSF 8.1.2)."""

    stream_id: str
    status: str
    reason: str | None = None


def check_stream_status(document: object, *, stream_id: str) -> StreamStatus:
    """A status object returned by the transmitter, for ``stream_id``.

    Raises:
        InvalidDocument: not a status of that stream, or an unknown status value.
    """
    if not isinstance(document, dict):
        raise InvalidDocument("a stream status must be a JSON object")
    found = _stream_id(document.get("stream_id"), "stream_id")
    if found != stream_id:
        raise InvalidDocument(f"stream_id is {found!r}, not the stream asked about")
    status = document.get("status")
    if status not in STATUSES:
        raise InvalidDocument(f"status must be one of {', '.join(STATUSES)}")
    reason = document.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > _MAX_TEXT):
        raise InvalidDocument("reason must be a string")
    return StreamStatus(found, str(status), reason)


def verification_state(claims: Mapping[str, Any]) -> tuple[str | None, str | None] | None:
    """``(stream_id, state)`` of a verification SET (SSF 8.1.4), or None for other SETs.

    The stream is the ``id`` of the opaque top-level ``sub_id``; either part is None
    when absent or not a string of reasonable size.
    """
    events = claims.get("events")
    if not isinstance(events, Mapping) or VERIFICATION_EVENT not in events:
        return None
    payload = events[VERIFICATION_EVENT]
    state = payload.get("state") if isinstance(payload, Mapping) else None
    sub_id = claims.get("sub_id")
    stream = sub_id.get("id") if isinstance(sub_id, Mapping) else None
    return (
        stream if isinstance(stream, str) and len(stream) <= _MAX_TEXT else None,
        state if isinstance(state, str) and len(state) <= _MAX_STATE else None,
    )
