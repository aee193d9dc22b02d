"""SETs: build, sign and verify (RFC 8417), keys, subject identifiers, event schemas.

::

    from peer.tokens import KeyStore, Signer, Verifier, build_claims, generate_private_jwks

Names are imported lazily (as in ``peer/__init__.py``), so that importing one
submodule, e.g. ``peer.tokens.subjects``, does not load joserfc and the JSON Schemas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .keys import (
        ALGORITHMS,
        KeyStore,
        SigningKey,
        VerificationKey,
        generate_private_jwks,
        key_algorithm,
        load_private_jwks,
        public_jwks,
        save_private_jwks,
        signing_key,
    )
    from .sign import Signer, build_claims
    from .verify import VerifiedSET, Verifier, unverified_jti

__all__ = [
    "ALGORITHMS",
    "KeyStore",
    "Signer",
    "SigningKey",
    "VerificationKey",
    "VerifiedSET",
    "Verifier",
    "build_claims",
    "generate_private_jwks",
    "key_algorithm",
    "load_private_jwks",
    "public_jwks",
    "save_private_jwks",
    "signing_key",
    "unverified_jti",
]

_LAZY = {
    "ALGORITHMS": "keys",
    "KeyStore": "keys",
    "SigningKey": "keys",
    "VerificationKey": "keys",
    "generate_private_jwks": "keys",
    "key_algorithm": "keys",
    "load_private_jwks": "keys",
    "public_jwks": "keys",
    "save_private_jwks": "keys",
    "signing_key": "keys",
    "Signer": "sign",
    "build_claims": "sign",
    "VerifiedSET": "verify",
    "Verifier": "verify",
    "unverified_jti": "verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peer.tokens' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
