"""Keys: our private JWK Set, its public half, and partners' public key sets.

Key parsing and generation go through joserfc; the hot path (``sign.py``,
``verify.py``) then uses the cached ``cryptography`` key objects directly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from ..errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "KeyStore",
    "SigningKey",
    "VerificationKey",
    "generate_private_jwks",
    "load_private_jwks",
    "public_jwks",
    "save_private_jwks",
]

# The only algorithms setpeer signs or accepts (issue 3): no "none", no HMAC.
ALGORITHMS = ("ES256", "ES384", "EdDSA", "RS256", "PS256")

# Public members per key type; anything else (d, p, q, dp, dq, qi, oth, k) is private
# or unknown and never leaves through public_jwks (built from this whitelist).
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
    "RSA": ("kty", "n", "e"),
}
_META_MEMBERS = ("kid", "alg", "use")
_CURVE_ALG = {"P-256": "ES256", "P-384": "ES384", "Ed25519": "EdDSA"}


def _infer_alg(jwk: Mapping[str, Any]) -> str:
    alg = jwk.get("alg")
    if isinstance(alg, str):
        return alg
    if jwk.get("kty") == "RSA":
        return "RS256"
    return _CURVE_ALG.get(str(jwk.get("crv")), "")


def generate_private_jwks(alg: str = "ES256", *, kid: str | None = None) -> dict[str, Any]:
    """A new private JWK Set with one key for ``alg``; ``kid`` defaults to the thumbprint.

    Raises:
        ValueError: ``alg`` is not one of :data:`ALGORITHMS`.
    """
    key: ECKey | OKPKey | RSAKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", auto_kid=True)
    elif alg == "ES384":
        key = ECKey.generate_key("P-384", auto_kid=True)
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", auto_kid=True)
    elif alg in ("RS256", "PS256"):
        key = RSAKey.generate_key(2048, auto_kid=True)
    else:
        raise ValueError(f"unsupported algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")
    jwk = dict(key.as_dict(private=True))
    jwk["kid"] = kid or key.thumbprint()
    jwk["alg"] = alg
    jwk["use"] = "sig"
    return {"keys": [jwk]}


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key ready to sign: its kid, alg and cached ``cryptography`` object."""

    kid: str
    alg: str
    private_key: Any


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key ready to verify: kid, alg and cached ``cryptography`` object."""

    kid: str | None
    alg: str
    public_key: Any


def _import(jwk: Any, where: str) -> tuple[Any, str]:
    if not isinstance(jwk, dict):
        raise ValueError(f"{where}: a key must be a JSON object")
    alg = _infer_alg(jwk)
    if alg not in ALGORITHMS:
        raise ValueError(f"{where}: algorithm {alg or '(unknown)'} is not allowed")
    try:
        key = import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where}: not a usable JWK ({type(exc).__name__})") from None
    _check_alg_matches(key.public_key, alg, where)
    return key, alg


def _check_alg_matches(public_key: Any, alg: str, where: str) -> None:
    ok = (
        (
            alg == "ES256"
            and isinstance(public_key, ec.EllipticCurvePublicKey)
            and public_key.curve.name == "secp256r1"
        )
        or (
            alg == "ES384"
            and isinstance(public_key, ec.EllipticCurvePublicKey)
            and public_key.curve.name == "secp384r1"
        )
        or (alg == "EdDSA" and isinstance(public_key, ed25519.Ed25519PublicKey))
        or (
            alg in ("RS256", "PS256")
            and isinstance(public_key, rsa.RSAPublicKey)
            and public_key.key_size >= 2048
        )
    )
    if not ok:
        raise ValueError(f"{where}: key type does not fit algorithm {alg}")


def load_private_jwks(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a private JWK Set file (``signing_keys``); the first key signs.

    Raises:
        ConfigError: unreadable, not a JWK Set, or a key without its private part.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError([("peer.signing_keys", f"cannot read a JWK Set: {exc}")]) from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError([("peer.signing_keys", "must be a JWK Set with at least one key")])
    for index, jwk in enumerate(keys):
        try:
            key, _ = _import(jwk, f"keys[{index}]")
        except ValueError as exc:
            raise ConfigError([("peer.signing_keys", str(exc))]) from None
        if not key.is_private:
            raise ConfigError([("peer.signing_keys", f"keys[{index}] has no private part")])
    return dict(data)


def save_private_jwks(jwks: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a private JWK Set readable by its owner only."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(jwks, file, indent=2)


def signing_key(jwks: Mapping[str, Any]) -> SigningKey:
    """The first key of a private JWK Set, ready to sign."""
    jwk = jwks["keys"][0]
    key, alg = _import(jwk, "keys[0]")
    kid = jwk.get("kid") or key.thumbprint()
    return SigningKey(str(kid), alg, key.private_key)


def public_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK Set: whitelisted public members only, never private ones."""
    keys = []
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict):
            continue
        members = _PUBLIC_MEMBERS.get(str(jwk.get("kty")))
        if members is None:
            continue  # e.g. "oct": symmetric keys have no public half
        public = {m: jwk[m] for m in members if m in jwk}
        for m in _META_MEMBERS:
            if isinstance(jwk.get(m), str):
                public[m] = jwk[m]
        public.setdefault("alg", _infer_alg(jwk))
        keys.append(public)
    return {"keys": keys}


class KeyStore:
    """A partner's verification keys by ``kid``.

    Lookups are dictionary hits only: a ``kid`` is never a path or a URL, so
    ``../../etc/passwd`` is just a miss. Private members in a partner's set are
    dropped (only the public half is imported). ``replace`` swaps the whole set
    atomically (for a JWKS refresh).
    """

    def __init__(self, jwks: Mapping[str, Any] | None = None) -> None:
        self._by_kid: dict[str, VerificationKey] = {}
        self._all: list[VerificationKey] = []
        if jwks is not None:
            self.replace(jwks)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> KeyStore:
        """Load a public JWK Set file; an absent path gives an empty store."""
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError([("partners.jwks", f"cannot read a JWK Set: {exc}")]) from None
        try:
            return cls(data)
        except ValueError as exc:
            raise ConfigError([("partners.jwks", str(exc))]) from None

    def replace(self, jwks: Mapping[str, Any]) -> None:
        """Use ``jwks`` from now on.

        Raises:
            ValueError: not a JWK Set, or a key that is not usable.
        """
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise ValueError("a JWK Set is an object with a keys array")
        by_kid: dict[str, VerificationKey] = {}
        all_keys: list[VerificationKey] = []
        for index, jwk in enumerate(jwks["keys"]):
            if not isinstance(jwk, Mapping):
                raise ValueError(f"keys[{index}]: a key must be a JSON object")
        for index, jwk in enumerate(public_jwks(jwks)["keys"]):
            if jwk.get("use") == "enc":
                continue  # an encryption key: not for verifying SETs
            key, alg = _import(jwk, f"keys[{index}]")
            kid = jwk.get("kid")
            entry = VerificationKey(kid, alg, key.public_key)
            all_keys.append(entry)
            if kid is not None:
                by_kid[kid] = entry
        self._by_kid, self._all = by_kid, all_keys

    def get(self, kid: str | None) -> VerificationKey | None:
        """The key for ``kid``; with no kid, the only key if there is exactly one."""
        if kid is None:
            return self._all[0] if len(self._all) == 1 else None
        return self._by_kid.get(kid)

    def __len__(self) -> int:
        return len(self._all)
