"""Build and sign SETs (RFC 8417): header ``{alg, typ: secevent+jwt, kid}``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .jose import b64encode, sign_bytes
from .keys import signing_key

__all__ = ["Signer", "build_claims"]


def build_claims(
    *,
    iss: str,
    aud: str | list[str],
    events: Mapping[str, Mapping[str, Any]],
    iat: int | float,
    jti: str | None = None,
    sub_id: Mapping[str, Any] | None = None,
    txn: str | None = None,
    toe: int | float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a SET (SET-6..SET-13).

    Args:
        iss: our issuer.
        aud: the partner's audience.
        events: event type URI -> payload object (SET-1).
        iat: issue time, seconds since the epoch.
        jti: unique id; a random UUID by default (SET-8).
        sub_id: subject identifier (RFC 9493 §4.1; SSF's primary subject).
        txn: transaction id (SET-13).
        toe: time of the event (SET-13).
        extra: further claims (SET-5), never overriding the ones above.
    """
    claims: dict[str, Any] = dict(extra or {})
    claims.update(
        iss=iss,
        iat=iat,
        jti=jti or str(uuid.uuid4()),
        aud=aud,
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

    The header segment is encoded once; each token costs one JSON encoding and
    one signature.

    Args:
        jwks: a private JWK Set (``signing_keys``).
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.key = signing_key(jwks)
        header = {"alg": self.key.alg, "typ": "secevent+jwt", "kid": self.key.kid}
        self._header = b64encode(orjson.dumps(header)) + b"."

    @property
    def kid(self) -> str:
        return self.key.kid

    @property
    def alg(self) -> str:
        return self.key.alg

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims``."""
        signing_input = self._header + b64encode(orjson.dumps(claims))
        signature = sign_bytes(self.key.alg, self.key.private_key, signing_input)
        return (signing_input + b"." + b64encode(signature)).decode("ascii")
