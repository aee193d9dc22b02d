"""Compact JWS (RFC 7515): the one reader of signed tokens, SETs and access tokens alike.

:class:`JWSReader` splits a compact token and decodes and checks its JOSE header
(once per distinct header segment: a partner or an authorization server uses one or
two); :meth:`CompactJWS.verify` checks the signature with the key the caller found in
its key store. What the claims must hold stays with each caller: ``verify.py`` for
SETs, ``peer/auth/access_tokens.py`` for OAuth access tokens.

Header rules, in order (RFC 8725 §3.1, §3.10, §3.11):

- ``alg`` one of :data:`~peer.tokens.keys.ALGORITHMS`: never ``none``, never HMAC
  (``invalid_key``);
- no embedded key (``jwk``, ``jku``, ``x5u``, ``x5c``): keys come only from the
  configured key set (``invalid_key``);
- no ``crit``: we understand no extension (RFC 7515 §4.1.11);
- ``b64`` absent or true: RFC 7797 unencoded payloads exist only under ``crit``;
- ``kid`` absent or a string (``null`` is no kid either);
- ``typ``, when present or required, the expected media type, compared
  case-insensitively with the ``application/`` prefix optional (RFC 7515 §4.1.9).

Each refusal is a :class:`JWSError` with the RFC 8935 code and description a SET
receiver answers with, and a short phrase for callers that word their own errors.
"""

from __future__ import annotations

import base64
from typing import Any, Final, Literal, TypeGuard

from ..errors import WireError
from ..protocol.communication import COMPACT_JWS
from ..protocol.jsonio import loads_strict
from .jose import verify_bytes
from .keys import ALGORITHMS, VerificationKey

__all__ = [
    "MAX_NUMERIC_DATE",
    "CompactJWS",
    "JWSError",
    "JWSReader",
    "is_numeric_date",
    "json_segment",
    "segment_bytes",
    "split",
]

Code = Literal["invalid_request", "invalid_key"]
_KEY_HEADERS: Final = ("jwk", "jku", "x5u", "x5c")
_APPLICATION: Final = "application/"
_PARTS: Final = {"header": "JOSE header", "claims": "claims"}
# The largest NumericDate we accept: I-JSON's integer range (RFC 7493 §2.2), about
# 285 million years. Python's JSON reader returns integers of any size; 10**400 would
# make float() and every int/float sum raise OverflowError.
MAX_NUMERIC_DATE: Final = 2**53 - 1


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """A NumericDate (RFC 7519 §2) within ±:data:`MAX_NUMERIC_DATE`: bool is not one.

    The bound is checked without converting to float (exact for integers of any size;
    NaN and infinities compare false), so arithmetic on the value afterwards with a
    clock reading and a skew cannot raise.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE


class JWSError(Exception):
    """A token refused by a JWS rule.

    Attributes:
        code: the RFC 8935 error code (``invalid_request`` or ``invalid_key``).
        description: the SET receiver's wording.
        short: a phrase to follow the token's name (``"algorithm is not allowed"``).
    """

    def __init__(self, code: Code, description: str, short: str) -> None:
        super().__init__(description)
        self.code: Code = code
        self.description = description
        self.short = short


def split(token: object, max_bytes: int, what: str = "token") -> tuple[str, str, str]:
    """The three segments of a compact JWS of at most ``max_bytes``.

    Raises:
        JWSError: not a string, too long, or not three base64url segments.
    """
    if not isinstance(token, str):
        raise JWSError("invalid_request", f"{what} must be a string", "is not a JWT")
    if len(token) > max_bytes:
        raise JWSError("invalid_request", f"{what} exceeds {max_bytes} bytes", "is not a JWT")
    if COMPACT_JWS.fullmatch(token) is None:
        raise JWSError(
            "invalid_request", f"{what} is not a JWS in compact serialization", "is not a JWT"
        )
    header, payload, signature = token.split(".")
    return header, payload, signature


def segment_bytes(segment: str) -> bytes:
    """base64url of a segment already matched by COMPACT_JWS (alphabet checked).

    Raises:
        ValueError: a length no base64 encoding has.
    """
    if len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def json_segment(
    segment: str, part: Literal["header", "claims"], *, max_bytes: int, max_depth: int
) -> dict[str, Any]:
    """The JSON object a segment encodes (strict JSON: no duplicate member names).

    Raises:
        JWSError: not base64url, not strict JSON within the limits, not an object.
    """
    what = _PARTS[part]
    try:
        value = loads_strict(segment_bytes(segment), max_bytes=max_bytes, max_depth=max_depth)
    except WireError as exc:
        raise JWSError(
            "invalid_request", f"{what}: {exc.description}", f"{part} is not base64url JSON"
        ) from None
    except ValueError:  # binascii.Error is a ValueError
        raise JWSError(
            "invalid_request", f"{what} is not base64url", f"{part} is not base64url JSON"
        ) from None
    if not isinstance(value, dict):
        raise JWSError(
            "invalid_request", f"{what} must be a JSON object", f"{part} is not a JSON object"
        )
    return value


class CompactJWS:
    """A compact JWS whose form and header passed; its signature is not checked yet.

    Attributes:
        header: the decoded JOSE header (shared between tokens: do not modify).
        alg: the header's algorithm, one of ALGORITHMS.
        kid: the header's key id, or None.
    """

    __slots__ = ("alg", "header", "header_b64", "kid", "payload_b64", "signature_b64")

    def __init__(
        self, segments: tuple[str, str, str], checked: tuple[dict[str, Any], str, str | None]
    ) -> None:
        self.header_b64, self.payload_b64, self.signature_b64 = segments
        self.header, self.alg, self.kid = checked

    def claims(self, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
        """The payload as a JSON object (unverified until :meth:`verify` passed).

        Raises:
            JWSError: the payload is not a strict JSON object within the limits.
        """
        return json_segment(self.payload_b64, "claims", max_bytes=max_bytes, max_depth=max_depth)

    def verify(self, key: VerificationKey) -> None:
        """Check the signature with ``key`` (found by ``kid`` and ``alg``).

        Raises:
            JWSError: the signature is not base64url, or does not verify.
        """
        try:
            signature = segment_bytes(self.signature_b64)
        except ValueError:
            raise JWSError(
                "invalid_request", "signature is not base64url", "signature is not base64url"
            ) from None
        # The signing input is the token up to the second dot, as received (RFC 7515 §5.2).
        signing_input = f"{self.header_b64}.{self.payload_b64}".encode("ascii")
        if not verify_bytes(self.alg, key.public_key, signing_input, signature):
            raise JWSError("invalid_key", "signature does not verify", "signature does not verify")


class JWSReader:
    """Reads compact tokens of one kind: form, size and the header rules above.

    Args:
        media_type: the ``typ`` this kind of token carries, without ``application/``.
        require_typ: refuse a header without ``typ`` (a present one is always checked).
        max_token_bytes: longest token accepted.
        max_header_bytes: longest decoded header accepted.
        max_depth: JSON nesting limit of header (and claims, for the caller).
        what: the token's name in descriptions (``"SET"``).
        cache_size: distinct header segments remembered (only headers that passed).
    """

    def __init__(
        self,
        *,
        media_type: str,
        require_typ: bool,
        max_token_bytes: int,
        max_header_bytes: int,
        max_depth: int,
        what: str = "token",
        cache_size: int = 32,
    ) -> None:
        self.media_type = media_type.lower()
        self.require_typ = require_typ
        self.max_token_bytes = max_token_bytes
        self.max_header_bytes = max_header_bytes
        self.max_depth = max_depth
        self.what = what
        self._cache_size = cache_size
        self._headers: dict[str, tuple[dict[str, Any], str, str | None]] = {}

    def read(self, token: object) -> CompactJWS:
        """Split ``token`` and check its header.

        Raises:
            JWSError: with the first rule the token breaks.
        """
        segments = split(token, self.max_token_bytes, self.what)
        checked = self._headers.get(segments[0])
        if checked is None:
            checked = self._check_header(segments[0])
        return CompactJWS(segments, checked)

    def _check_header(self, header_b64: str) -> tuple[dict[str, Any], str, str | None]:
        """Decode and check a header segment once; remember it if it passed."""
        header = json_segment(
            header_b64, "header", max_bytes=self.max_header_bytes, max_depth=self.max_depth
        )
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            # "none" (SET-15) and every HMAC fall here: no key confusion possible.
            raise JWSError(
                "invalid_key",
                f"algorithm not accepted (only {', '.join(ALGORITHMS)})",
                "algorithm is not allowed",
            )
        _check_extensions(header)
        kid = header.get("kid")
        if "kid" in header and not isinstance(kid, str):  # null is no kid either
            raise JWSError("invalid_request", "kid must be a string", "kid is not a string")
        self._check_typ(header.get("typ"))
        if len(self._headers) >= self._cache_size:
            self._headers.clear()  # a sender cycling headers only loses the cache
        entry = (header, alg, kid)
        self._headers[header_b64] = entry
        return entry

    def _check_typ(self, typ: object) -> None:
        if typ is None and not self.require_typ:
            return
        wanted = self.media_type
        if not isinstance(typ, str):
            raise JWSError(
                "invalid_request", f"typ {wanted} is required (SET-14)", f"typ is not {wanted}"
            )
        # RFC 7515 §4.1.9: media types compare case-insensitively, prefix optional.
        media = typ.lower()
        if media.startswith(_APPLICATION):
            media = media[len(_APPLICATION) :]
        if media != wanted:
            raise JWSError(
                "invalid_request", f"typ is not {wanted} (SET-14, SET-20)", f"typ is not {wanted}"
            )


def _check_extensions(header: dict[str, Any]) -> None:
    """No embedded keys, no ``crit``, no unencoded payload."""
    for name in _KEY_HEADERS:
        if name in header:
            raise JWSError(
                "invalid_key",
                f"header {name} is not accepted: keys come from the partner's key set",
                "header carries keys or crit",
            )
    if "crit" in header:
        raise JWSError(
            "invalid_request",
            "crit names extensions this receiver does not understand (RFC 7515 §4.1.11)",
            "header carries keys or crit",
        )
    if header.get("b64", True) is not True:
        # RFC 7797 unencoded payloads only exist under crit, which we refuse.
        raise JWSError("invalid_request", "b64 must be absent or true", "b64 is not true")
