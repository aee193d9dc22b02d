"""SSF 1.0 stream management, the I/O-free part: names, validation, matching.

What both roles of SSF stream management (OpenID Shared Signals Framework 1.0 §7,
§8) decide without a socket or a clock: where the transmitter configuration
metadata lives (SSF-22), which members of a stream configuration a receiver may
set and whether they are well formed (§8.1.1), which events a stream delivers
(``events_delivered``, a subset of supported and requested), and whether a
subject added to a stream matches a SET's subject (SSF-29).

Delivery method URIs: SSF knows RFC 8935 push and RFC 8936 poll; push-pull and
multi-push have no registered URI, so setpeer names them by their drafts'
datatracker URLs (docs/decisions.md, "Delivery method URIs").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from .delivery_methods import (
    MULTIPUSH,
    POLL,
    PUSH,
    PUSHPULL,
    RISC_POLL,
    RISC_PUSH,
    SSF_DISCOVERY_PATH,
    well_known_url,
)
from .vocabulary import DeliveryMode

__all__ = [
    "CONFIGURATION_PATH",
    "METHODS",
    "MULTIPUSH_METHOD",
    "POLL_METHOD",
    "PUSHPULL_METHOD",
    "PUSH_METHOD",
    "STATUSES",
    "STREAM_UPDATED_EVENT",
    "VERIFICATION_EVENT",
    "StreamConfigError",
    "configuration_url",
    "events_delivered",
    "merge_receiver_fields",
    "receiver_fields",
    "subject_matches",
    "wanted",
]

CONFIGURATION_PATH: Final = SSF_DISCOVERY_PATH
PUSH_METHOD: Final = PUSH
POLL_METHOD: Final = POLL
PUSHPULL_METHOD: Final = PUSHPULL
MULTIPUSH_METHOD: Final = MULTIPUSH

METHODS: Final[Mapping[str, DeliveryMode]] = {
    PUSH_METHOD: "push",
    POLL_METHOD: "poll",
    PUSHPULL_METHOD: "pushpull",
    MULTIPUSH_METHOD: "multipush",
    RISC_PUSH: "push",  # receivers on the older drafts name push and poll so
    RISC_POLL: "poll",
}
"""Delivery method URI -> the ``send_via`` it means (the RISC names included)."""

STATUSES: Final = ("enabled", "paused", "disabled")

_EVENTS = "https://schemas.openid.net/secevent/ssf/event-type/"
VERIFICATION_EVENT: Final = _EVENTS + "verification"
STREAM_UPDATED_EVENT: Final = _EVENTS + "stream-updated"

MAX_EVENTS_REQUESTED: Final = 256
MAX_TEXT: Final = 2048
"""Longest event type URI, description, endpoint URL or authorization header we keep."""


class StreamConfigError(ValueError):
    """A stream configuration member a receiver sent is not acceptable (400).

    Attributes:
        description: what is wrong, for the answer's ``description``.
    """

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def configuration_url(issuer: str) -> str:
    """Where ``issuer``'s transmitter metadata is (SSF-22): see
    :func:`.delivery_methods.well_known_url`."""
    return well_known_url(issuer)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise StreamConfigError(f"{what} must be a non-empty string of at most {MAX_TEXT}")
    return value


def _endpoint(value: object, insecure_ok: Callable[[str], bool]) -> str:
    url = _text(value, "delivery.endpoint_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise StreamConfigError("delivery.endpoint_url is not a URL") from None
    if (
        not host
        or parts.fragment
        or (parts.scheme != "https" and not (parts.scheme == "http" and insecure_ok(host)))
    ):
        raise StreamConfigError("delivery.endpoint_url must be an https:// URL without fragment")
    return url


def _delivery(value: object, insecure_ok: Callable[[str], bool]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StreamConfigError("delivery must be an object")
    method = value.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise StreamConfigError(f"delivery.method must be one of {', '.join(METHODS)}")
    delivery: dict[str, Any] = {"method": method}
    if METHODS[method] in ("push", "multipush"):
        # The receiver supplies its endpoint (SSF 6.1.1) and, if it needs one, the
        # Authorization value we send with every request (SSF-19).
        delivery["endpoint_url"] = _endpoint(value.get("endpoint_url"), insecure_ok)
        header = value.get("authorization_header")
        if header is not None:
            header = _text(header, "delivery.authorization_header")
            if any(c in header for c in "\r\n\x00"):
                raise StreamConfigError("delivery.authorization_header holds a line break")
            delivery["authorization_header"] = header
    # Poll and push-pull: the endpoint is ours; one the receiver sent is ignored.
    return delivery


def receiver_fields(
    body: Mapping[str, Any], insecure_ok: Callable[[str], bool] = lambda host: False
) -> dict[str, Any]:
    """The receiver-supplied members of ``body`` (``events_requested``,
    ``description``, ``delivery``), checked; others are ignored (SSF-17): the
    transmitter-supplied ones are ours to set.

    Args:
        body: a create, update or replace request's JSON object.
        insecure_ok: whether a plain ``http://`` endpoint on this host is allowed.

    Raises:
        StreamConfigError: a member is malformed.
    """
    fields: dict[str, Any] = {}
    if "events_requested" in body:
        requested = body["events_requested"]
        if not isinstance(requested, list) or len(requested) > MAX_EVENTS_REQUESTED:
            raise StreamConfigError(
                f"events_requested must be an array of at most {MAX_EVENTS_REQUESTED} URIs"
            )
        fields["events_requested"] = list(
            dict.fromkeys(_text(uri, "events_requested[]") for uri in requested)
        )
    if "description" in body:
        fields["description"] = _text(body["description"], "description")
    if "delivery" in body:
        fields["delivery"] = _delivery(body["delivery"], insecure_ok)
    return fields


def merge_receiver_fields(
    current: Mapping[str, Any], fields: Mapping[str, Any], *, replace: bool
) -> dict[str, Any]:
    """The receiver-supplied members after an update (PATCH: ``fields`` change only
    what they name) or a replace (PUT: members left out are deleted, SSF 8.1.1.4).

    Raises:
        StreamConfigError: a replace without ``delivery`` (it is REQUIRED).
    """
    if replace:
        if "delivery" not in fields:
            raise StreamConfigError("delivery is required in a replace")
        return dict(fields)
    return {**current, **fields}


def events_delivered(supported: Iterable[str], requested: Sequence[str] | None) -> list[str]:
    """The events a stream delivers: supported and requested, in supported order;
    every supported event when nothing was requested."""
    if requested is None:
        return list(supported)
    wanted_set = set(requested)
    return [uri for uri in supported if uri in wanted_set]


def subject_matches(added: Mapping[str, Any], subject: Mapping[str, Any]) -> bool:
    """SSF-29: does a SET about ``subject`` concern the ``added`` subject?

    Simple subjects match only if identical. Complex subjects (``"format":
    "complex"``) match if, for every member, one side lacks it or both are identical.
    """
    complex_a = added.get("format") == "complex"
    complex_s = subject.get("format") == "complex"
    if not (complex_a and complex_s):
        return dict(added) == dict(subject)
    for name in set(added) | set(subject):
        if name in added and name in subject and added[name] != subject[name]:
            return False
    return True


def wanted(subjects: Sequence[Mapping[str, Any]], sub_id: Mapping[str, Any] | None) -> bool:
    """Whether a SET about ``sub_id`` goes to a stream with these added subjects:
    every SET when none were added (we advertise ``default_subjects`` ``"ALL"``);
    otherwise only one whose subject matches an added one (a SET without a subject
    matches none)."""
    if not subjects:
        return True
    if sub_id is None:
        return False
    return any(subject_matches(added, sub_id) for added in subjects)
