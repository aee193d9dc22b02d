"""The compact-JWS hot path: base64url and the five allowed algorithms on cached keys.

Why not joserfc per token: measured here, ``jws.serialize_compact`` ran at ~2.2x the
raw ``cryptography`` cost for ES256 signing (it re-resolves the algorithm, re-encodes
the header and converts the key per call). Keys are parsed and checked with joserfc
once (``keys.py``); each token then costs one hash-and-sign. ``tests/tokens`` cross-
check every algorithm against joserfc both ways.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = ["b64decode", "b64encode", "sign_bytes", "verify_bytes"]

_EC = {"ES256": (hashes.SHA256, 32), "ES384": (hashes.SHA384, 48)}


def b64encode(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64decode(data: str | bytes) -> bytes:
    """Strict base64url without padding.

    Raises:
        ValueError: characters outside the alphabet, padding, or an impossible length.
    """
    raw = data.encode("ascii") if isinstance(data, str) else data
    if b"=" in raw or len(raw) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def sign_bytes(alg: str, private_key: Any, data: bytes) -> bytes:
    """The JWS signature of ``data`` (RFC 7518 §3)."""
    if alg in _EC:
        hash_cls, size = _EC[alg]
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hash_cls())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return bytes(private_key.sign(data))
    if alg == "RS256":
        return bytes(private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return bytes(private_key.sign(data, pss, hashes.SHA256()))
    raise ValueError(f"algorithm {alg} is not allowed")


def verify_bytes(alg: str, public_key: Any, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` is a valid ``alg`` signature of ``data``."""
    try:
        if alg in _EC:
            hash_cls, size = _EC[alg]
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
        elif alg == "EdDSA":
            public_key.verify(signature, data)
        elif alg == "RS256":
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            public_key.verify(signature, data, pss, hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
