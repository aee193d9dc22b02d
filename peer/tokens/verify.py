"""Verify SETs as a receiver: the one verifier the node and ``setpeer verify`` share.

Every failure is a :class:`~peer.errors.SETRejected` with an RFC 8935 §2.4 code,
never another exception:

==================  ===========================================================
``invalid_request`` not a compact JWS, bad header or claims JSON, wrong ``typ``,
                    missing or mistyped claims, ``crit``, ``iat`` in the future,
                    key/jti mismatch, subject or event payload invalid
``invalid_key``     disallowed ``alg`` (``none``, HMAC, anything not listed),
                    embedded key headers (``jwk``, ``jku``, ``x5u``, ``x5c``),
                    unknown ``kid``, key/alg mismatch, bad signature
``invalid_issuer``  ``iss`` is not the partner's issuer (checked before the key,
                    so another partner's valid signature cannot speak for it)
``invalid_audience`` our audience is not in ``aud``
==================  ===========================================================
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from ..errors import SETRejected, WireError
from ..protocol.communication import COMPACT_JWS
from ..protocol.jsonio import loads_strict
from .jose import verify_bytes
from .keys import ALGORITHMS, KeyStore

__all__ = ["Verifier", "VerifiedSET", "unverified_jti"]

_KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")
_MAX_HEADER = 4096
_MAX_TOKEN = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedSET:
    """A SET that passed every check."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def iss(self) -> str:
        return str(self.claims["iss"])

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


def _reject(err: str, description: str) -> SETRejected:
    return SETRejected(err, description)


def _split(token: object, max_bytes: int) -> tuple[str, str, str]:
    if not isinstance(token, str):
        raise _reject("invalid_request", "SET must be a string")
    if len(token) > max_bytes:
        raise _reject("invalid_request", f"SET exceeds {max_bytes} bytes")
    if COMPACT_JWS.fullmatch(token) is None:
        raise _reject("invalid_request", "SET is not a JWS in compact serialization")
    header, payload, signature = token.split(".")
    return header, payload, signature


def _segment_bytes(segment: str) -> bytes:
    """base64url of a segment already matched by COMPACT_JWS (alphabet checked)."""
    if len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(segment: str, what: str, max_bytes: int) -> dict[str, Any]:
    try:
        raw = _segment_bytes(segment)
        value = loads_strict(raw, max_bytes=max_bytes, max_depth=32)
    except ValueError:
        raise _reject("invalid_request", f"{what} is not base64url") from None
    except WireError as exc:
        raise _reject("invalid_request", f"{what}: {exc.description}") from None
    if not isinstance(value, dict):
        raise _reject("invalid_request", f"{what} must be a JSON object")
    return value


def unverified_jti(token: str) -> str:
    """The ``jti`` of a token we only forward (never trusted for anything else).

    Raises:
        SETRejected: not a SET with a string ``jti``.
    """
    _, payload, _ = _split(token, _MAX_TOKEN)
    jti = _json_segment(payload, "claims", _MAX_TOKEN).get("jti")
    if not isinstance(jti, str) or not jti:
        raise _reject("invalid_request", "jti must be a non-empty string")
    return jti


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.+", re.DOTALL)


def _is_uri(value: str) -> bool:
    """An absolute URI: a scheme, a colon, something after it (RFC 3986 §3)."""
    return _URI.fullmatch(value) is not None


class Verifier:
    """Checks SETs from one partner.

    Args:
        issuer: the only ``iss`` this partner may use.
        audience: our audience value(s); ``aud`` must contain one.
        keys: the partner's verification keys.
        ssf: apply the SSF 1.0 SET profile (typ MUST, ``sub_id`` required, no
            ``sub``, no ``exp``).
        require_typ: require ``typ: secevent+jwt`` (decision 9; always in SSF mode).
        max_future_skew: seconds ``iat`` may lie in the future. SETs are never
            refused for age: they may be redelivered late.
        strict_subjects: RFC 9493's rule against extra members (decision 11).
        check_payloads: validate known event payloads against ``schemas/``.
        max_token_bytes: longest SET accepted.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        keys: KeyStore,
        ssf: bool = False,
        require_typ: bool = True,
        max_future_skew: float = 300.0,
        strict_subjects: bool = False,
        check_payloads: bool = True,
        max_token_bytes: int = 64 * 1024,
    ) -> None:
        self.issuer = issuer
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        self.keys = keys
        self.ssf = ssf
        self.require_typ = require_typ or ssf
        self.max_future_skew = max_future_skew
        self.strict_subjects = strict_subjects
        self.max_token_bytes = max_token_bytes
        self._schemas = None
        if check_payloads:
            from .schemas import EventSchemas

            self._schemas = EventSchemas.default()

    def verify(self, token: object, *, now: float, expected_jti: str | None = None) -> VerifiedSET:
        """Check ``token`` completely.

        Args:
            token: the compact SET.
            now: the current time (seconds since the epoch).
            expected_jti: the key the SET arrived under in a ``sets`` map (decision 10).

        Raises:
            SETRejected: with the RFC 8935 code of the first problem found.
        """
        header_b64, payload_b64, signature_b64 = _split(token, self.max_token_bytes)
        header = _json_segment(header_b64, "JOSE header", _MAX_HEADER)
        alg = self._check_header(header)
        claims = _json_segment(payload_b64, "claims", self.max_token_bytes)
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise _reject("invalid_request", "iss must be a string")
        if iss != self.issuer:
            raise _reject("invalid_issuer", "iss is not the issuer of the authenticated partner")
        kid = header.get("kid")
        key = self.keys.get(kid)
        if key is None:
            raise _reject("invalid_key", "no key with this kid" if kid else "kid required")
        if key.alg != alg:
            raise _reject("invalid_key", f"key {kid!r} is not a {alg} key")
        try:
            signature = _segment_bytes(signature_b64)
        except ValueError:
            raise _reject("invalid_request", "signature is not base64url") from None
        signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        if not verify_bytes(alg, key.public_key, signing_input, signature):
            raise _reject("invalid_key", "signature does not verify")
        self._check_claims(claims, now=now, expected_jti=expected_jti)
        return VerifiedSET(header, claims)

    def _check_header(self, header: Mapping[str, Any]) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            # "none" and every HMAC fall here (SET-15, no key confusion).
            raise _reject("invalid_key", f"algorithm {str(alg)[:16]!r} is not accepted")
        for name in _KEY_HEADERS:
            if name in header:
                raise _reject(
                    "invalid_key",
                    f"header {name} is not accepted: keys come from "
                    "the partner's configured key set",
                )
        if "crit" in header:
            raise _reject(
                "invalid_request",
                "crit names extensions this receiver does not understand (RFC 7515 §4.1.11)",
            )
        if "kid" in header and not isinstance(header["kid"], str):
            raise _reject("invalid_request", "kid must be a string")
        typ = header.get("typ")
        if typ is not None or self.require_typ:
            if not isinstance(typ, str):
                raise _reject("invalid_request", "typ secevent+jwt is required (SET-14)")
            media = typ.lower()
            if media.startswith("application/"):
                media = media[len("application/") :]
            if media != "secevent+jwt":
                raise _reject("invalid_request", "typ is not secevent+jwt (SET-14, SET-20)")
        return alg

    def _check_claims(
        self, claims: Mapping[str, Any], *, now: float, expected_jti: str | None
    ) -> None:
        iat = claims.get("iat")
        if not _is_number(iat):
            raise _reject("invalid_request", "iat must be a NumericDate (SET-7)")
        if iat > now + self.max_future_skew:
            raise _reject("invalid_request", "iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _reject("invalid_request", "jti must be a non-empty string (SET-8)")
        if expected_jti is not None and jti != expected_jti:
            raise _reject("invalid_request", "the sets key is not the SET's jti")
        aud = claims.get("aud")
        if isinstance(aud, str):
            audiences = {aud}
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            audiences = set(aud)
        else:
            raise _reject("invalid_audience", "aud must name this recipient (SET-9)")
        if not audiences & self.audiences:
            raise _reject("invalid_audience", "aud does not name this recipient")
        events = claims.get("events")
        if not isinstance(events, dict) or not events:
            raise _reject("invalid_request", "events must be an object with a member (SET-1)")
        for uri, payload in events.items():
            if not _is_uri(uri):
                raise _reject("invalid_request", "event identifiers must be URIs (SET-1)")
            if not isinstance(payload, dict):
                raise _reject("invalid_request", "event payloads must be objects (SET-1)")
        if "txn" in claims and not isinstance(claims["txn"], str):
            raise _reject("invalid_request", "txn must be a string (SET-13)")
        if "toe" in claims and not _is_number(claims["toe"]):
            raise _reject("invalid_request", "toe must be a NumericDate (SET-13)")
        if "exp" in claims:
            if self.ssf:
                raise _reject("invalid_request", "SSF SETs carry no exp (SSF-13)")
            if not _is_number(claims["exp"]):
                raise _reject("invalid_request", "exp must be a NumericDate")
            if claims["exp"] + self.max_future_skew < now:
                raise _reject("invalid_request", "the SET expired (exp)")
        if self.ssf:
            if "sub" in claims:
                raise _reject("invalid_request", "SSF SETs carry no sub claim (SSF-11)")
            if "sub_id" not in claims:
                raise _reject("invalid_request", "SSF SETs need a top-level sub_id (SSF-1)")
        if "sub" in claims and not isinstance(claims["sub"], str):
            raise _reject("invalid_request", "sub must be a string (SET-10)")
        if "sub_id" in claims:
            from .subjects import check_subject_id

            check_subject_id(claims["sub_id"], strict=self.strict_subjects, path="sub_id")
        if self._schemas is not None:
            self._schemas.check_events(events)
