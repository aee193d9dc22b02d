"""Build and sign SETs (RFC 8417): header exactly ``{alg, typ: secevent+jwt, kid}``.

Signing runs on the cached ``cryptography`` key (``jose.sign_bytes``), not through
joserfc per token: measured on this machine, joserfc's ``jws.serialize_compact`` costs
~86 µs per ES256 SET against ~50 µs here (it re-resolves the algorithm, re-encodes the
header and converts the key on every call). ``tests/tokens/test_sign_verify.py``
cross-checks every algorithm with joserfc both ways.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .jose import b64encode, sign_bytes
from .jws import is_numeric_date
from .keys import SigningKey, signing_key

__all__ = ["Signer", "build_claims"]


_VARIANT_MASK, _VARIANT = 0xC000 << 48, 0x8000 << 48  # RFC 4122 variant bits
_VERSION_MASK, _VERSION_4 = 0xF000 << 64, 0x4000 << 64  # version 4: random


def new_jti() -> str:
    """A random UUID4 in hex (``uuid.uuid4().hex``'s form, a quarter of its cost)."""
    n = int.from_bytes(os.urandom(16), "big")
    return f"{(n & ~_VARIANT_MASK & ~_VERSION_MASK) | _VARIANT | _VERSION_4:032x}"


def _is_uri(value: object) -> bool:
    # RFC 3986 §3: a scheme (letter first), then ":" and something (SET-1).
    if not isinstance(value, str):
        return False
    scheme, colon, rest = value.partition(":")
    return bool(
        colon
        and rest
        and scheme[:1].isascii()
        and scheme[:1].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "+.-") for c in scheme)
    )


def build_claims(
    *,
    iss: str,
    aud: str | Sequence[str],
    events: Mapping[str, Mapping[str, Any]],
    iat: int | float,
    jti: str | None = None,
    sub_id: Mapping[str, Any] | None = None,
    txn: str | None = None,
    toe: int | float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a SET (SET-1, SET-5..SET-13), holding only what is given (SET-26).

    Args:
        iss: our issuer (SET-6).
        aud: the partner's audience, a string or a list of strings (SET-9).
        events: event type URI -> payload object, at least one (SET-1); several URIs
            only as facets of one event (SET-3).
        iat: issue time, seconds since the epoch (SET-7); the caller's clock.
        jti: unique id; a random UUID4 in hex by default (SET-8).
        sub_id: subject identifier (RFC 9493 §4.1; SSF's primary subject, SSF-1).
        txn: transaction id (SET-13).
        toe: time of the event (SET-13).
        extra: further claims (SET-5), never overriding the ones above.

    Returns:
        A new claims dict, ready for :meth:`Signer.sign`.

    Raises:
        ValueError: a claim that would make the partner reject the SET (caller bug).
    """
    if not isinstance(iss, str) or not iss:
        raise ValueError("iss must be a non-empty string (SET-6)")
    if isinstance(aud, str):
        aud_value: str | list[str] = aud
    elif isinstance(aud, Sequence) and aud and all(isinstance(a, str) for a in aud):
        aud_value = list(aud)
    else:
        raise ValueError("aud must be a string or a non-empty list of strings (SET-9)")
    if not isinstance(events, Mapping) or not events:
        raise ValueError("events needs at least one event (SET-1)")
    for uri, payload in events.items():
        if not _is_uri(uri) or not isinstance(payload, Mapping):
            raise ValueError("events maps event-type URIs to payload objects (SET-1)")
    if not is_numeric_date(iat):
        raise ValueError("iat must be a NumericDate (SET-7)")
    if jti is not None and (not isinstance(jti, str) or not jti):
        raise ValueError("jti must be a non-empty string (SET-8)")
    if txn is not None and not isinstance(txn, str):
        raise ValueError("txn must be a string (SET-13)")
    if toe is not None and not is_numeric_date(toe):
        raise ValueError("toe must be a NumericDate (SET-13)")
    claims: dict[str, Any] = dict(extra or {})
    claims.update(
        iss=iss,
        iat=iat,
        jti=jti or new_jti(),
        aud=aud_value,
        events={uri: dict(payload) for uri, payload in events.items()},
    )
    if sub_id is not None:
        claims["sub_id"] = dict(sub_id)
    if txn is not None:
        claims["txn"] = txn
    if toe is not None:
        claims["toe"] = toe
    return claims


class Signer:
    """Signs claims with the first key of a private JWK Set.

    The key is imported once and the header segment encoded once; each token then
    costs one JSON encoding, one base64url pass and one signature.

    Args:
        jwks: a private JWK Set (``signing_keys``).

    Raises:
        ValueError: the set has no usable private first key.
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.key: SigningKey = signing_key(jwks)
        header = {"alg": self.key.alg, "typ": "secevent+jwt", "kid": self.key.kid}
        # SET-14: explicit typing in its short form; the kid names our public key.
        self._header = b64encode(orjson.dumps(header)) + b"."
        self._alg = self.key.alg
        self._private_key = self.key.private_key

    @property
    def kid(self) -> str:
        """The ``kid`` every SET we sign carries in its header."""
        return self.key.kid

    @property
    def alg(self) -> str:
        """The JWS algorithm of our signing key."""
        return self.key.alg

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims`` (SET-16, SET-23).

        Raises:
            TypeError: ``claims`` holds something JSON cannot encode (caller bug).
        """
        signing_input = self._header + b64encode(orjson.dumps(claims))
        signature = sign_bytes(self._alg, self._private_key, signing_input)
        return (signing_input + b"." + b64encode(signature)).decode("ascii")
