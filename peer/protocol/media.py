"""Media types of the delivery protocols, compared as RFC 9110 §8.3.1 says."""

from __future__ import annotations

__all__ = [
    "JSON",
    "SECEVENT_JWT",
    "SECEVENTS_JSON",
    "media_type",
]

SECEVENT_JWT = "application/secevent+jwt"  # RFC 8417 §7.3, RFC 8935 §2.1
JSON = "application/json"
# Multi-set-push editor's copy (Oct 2026); accepted on receipt, never sent (decision 5).
SECEVENTS_JSON = "application/secevents+json"


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header: lower-case, parameters dropped."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()
