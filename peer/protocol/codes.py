"""RFC 8935 §2.4 Security Event Token Delivery Error Codes, kept as data."""

from __future__ import annotations

import re

__all__ = ["ERROR_CODES", "is_error_code", "is_registered"]

# code -> when to use it (RFC 8935 §2.4; invalid_state from OpenID SSF 1.0 §11).
ERROR_CODES: dict[str, str] = {
    "invalid_request": "the request body cannot be parsed as a SET, or a payload is invalid",
    "invalid_key": "a key used to sign or encrypt the SET is invalid or unacceptable",
    "invalid_issuer": "the SET's issuer is not valid for this recipient",
    "invalid_audience": "the SET's audience does not name this recipient",
    "authentication_failed": "the recipient could not authenticate the transmitter",
    "access_denied": "the transmitter is not allowed to send this SET to this recipient",
    "invalid_state": "verification state mismatch (OpenID SSF 1.0 §8.1.4.1)",
}

# RFC 8935 §7.1.1: code names are ASCII letters, digits and "_".
_CODE_SYNTAX = re.compile(r"[A-Za-z0-9_]{1,64}")


def is_registered(code: str) -> bool:
    """True for codes we may emit (PUSH-18)."""
    return code in ERROR_CODES


def is_error_code(value: str) -> bool:
    """True if ``value`` has the syntax of an error code; unknown codes are kept verbatim."""
    return _CODE_SYNTAX.fullmatch(value) is not None
