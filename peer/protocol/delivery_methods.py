"""Delivery-method URIs and transmitter discovery locations, old and new.

SSF 1.0 names a stream's delivery method by URI (SSF-18, SSF-19): RFC 8935 push is
``urn:ietf:rfc:8935``, RFC 8936 poll ``urn:ietf:rfc:8936``. Transmitters on the older
drafts (the RISC profile and the 2021 SSE framework drafts) name the same two methods
``https://schemas.openid.net/secevent/risc/delivery-method/push`` and ``.../poll``,
and publish their metadata at ``/.well-known/risc-configuration`` instead of
``/.well-known/ssf-configuration`` (SSF 7.2: MAY for existing RISC transmitters).
Push-pull and multi-push have no registered URI; the drafts' addresses stand in for
them (docs/decisions.md, 14).

Everything that reads a method URI maps it with :func:`normalise_method`, so the
legacy names are understood wherever the current ones are. Pure: no I/O.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "LEGACY_DISCOVERY_PATH",
    "METHODS",
    "MULTIPUSH",
    "Method",
    "POLL",
    "PUSH",
    "PUSHPULL",
    "RISC_POLL",
    "RISC_PUSH",
    "SSF_DISCOVERY_PATH",
    "discovery_urls",
    "method_uri",
    "normalise_method",
    "well_known_url",
]

Method: TypeAlias = Literal["push", "poll", "pushpull", "multipush"]
"""A delivery method as setpeer's ``send_via`` / ``receive_via`` name it."""

PUSH: Final = "urn:ietf:rfc:8935"
"""RFC 8935 push (SSF 6.1.1)."""
POLL: Final = "urn:ietf:rfc:8936"
"""RFC 8936 poll (SSF 6.1.2)."""
RISC_PUSH: Final = "https://schemas.openid.net/secevent/risc/delivery-method/push"
"""The RISC profile's and the 2021 drafts' name for RFC 8935 push."""
RISC_POLL: Final = "https://schemas.openid.net/secevent/risc/delivery-method/poll"
"""The RISC profile's and the 2021 drafts' name for RFC 8936 poll."""
PUSHPULL: Final = "https://datatracker.ietf.org/doc/draft-tulshibagwale-saag-pushpull-delivery"
"""Push-pull: no registered URI; the draft's address (docs/decisions.md, 14)."""
MULTIPUSH: Final = "https://datatracker.ietf.org/doc/draft-deshpande-secevent-http-multi-set-push"
"""Multi-push: no registered URI; the draft's address (docs/decisions.md, 14)."""

METHODS: Final[dict[str, Method]] = {
    PUSH: "push",
    POLL: "poll",
    RISC_PUSH: "push",
    RISC_POLL: "poll",
    PUSHPULL: "pushpull",
    MULTIPUSH: "multipush",
}
"""Every method URI understood, legacy names included, and what it means."""

_CURRENT: Final[dict[Method, str]] = {"push": PUSH, "poll": POLL}
_CURRENT_PRIVATE: Final[dict[Method, str]] = {"pushpull": PUSHPULL, "multipush": MULTIPUSH}

SSF_DISCOVERY_PATH: Final = "/.well-known/ssf-configuration"
"""Where an SSF 1.0 transmitter publishes its metadata (SSF 7.2, SSF-20)."""
LEGACY_DISCOVERY_PATH: Final = "/.well-known/risc-configuration"
"""Where RISC and 2021-draft transmitters publish theirs (SSF 7.2: legacy)."""


def normalise_method(uri: object) -> Method | None:
    """The delivery method a method URI names, or None for one we do not know.

    Matching is exact (URIs are compared as strings, SSF 6), except that the legacy
    RISC names map to the methods they always meant.

    Args:
        uri: a ``delivery.method`` value from a stream configuration or a
            ``delivery_methods_supported`` entry, as decoded from JSON.
    """
    if not isinstance(uri, str):
        return None
    return METHODS.get(uri)


def method_uri(method: Method, *, legacy: bool = False) -> str:
    """The URI that names ``method``: SSF 1.0's, or (``legacy``) the RISC name.

    Push-pull and multi-push have only their drafts' addresses.
    """
    if method in _CURRENT:
        return (RISC_PUSH if method == "push" else RISC_POLL) if legacy else _CURRENT[method]
    return _CURRENT_PRIVATE[method]


def well_known_url(issuer: str, path: str = SSF_DISCOVERY_PATH) -> str:
    """The metadata URL of ``issuer``: the well-known ``path`` inserted between its
    host and its path, a terminating ``/`` of the path removed first (SSF 7.2.1,
    SSF-22); the issuer's query and fragment are dropped (an issuer has none, SSF 7.1).

    ``https://tr.example.com/issuer1`` -> ``https://tr.example.com/.well-known/
    ssf-configuration/issuer1``.
    """
    parts = urlsplit(issuer)
    rest = parts.path.removesuffix("/")
    return urlunsplit((parts.scheme, parts.netloc, path + rest, "", ""))


def discovery_urls(issuer: str) -> tuple[str, str]:
    """Where to look for ``issuer``'s metadata, in order: the SSF 1.0 location, then
    the legacy RISC location that transmitters on the older drafts serve."""
    return well_known_url(issuer), well_known_url(issuer, LEGACY_DISCOVERY_PATH)
