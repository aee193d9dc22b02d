"""Keys: our private JWK Set, its public half, and partners' public key sets.

Key parsing and generation go through joserfc; the hot path (``sign.py``,
``verify.py``) then uses the cached ``cryptography`` key objects directly.

Which algorithm a key serves comes from its ``alg`` member, else from its type:
P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA, RSA -> RS256 (an RSA key is used
for PS256 only when its ``alg`` says so). A key is bound to exactly one algorithm,
which is what stops key/algorithm confusion in the verifier.

A partner's set (``KeyStore``) is read for verification only: private members a
partner published by mistake are dropped before import (the set is rebuilt from the
public whitelist, like :func:`public_jwks`), never used, and never kept. Entries we
cannot use (``use: enc``, symmetric ``oct`` keys, algorithms outside
:data:`ALGORITHMS`) are skipped, so a partner's ``jwks_uri`` may list keys for other
purposes; a broken entry of a kind we would use, or a set with no usable key at all,
is an error.
"""

from __future__ import annotations

import base64
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
    "key_algorithm",
    "load_private_jwks",
    "public_jwks",
    "save_private_jwks",
    "signing_key",
]

# The only algorithms setpeer signs or accepts: no "none" (SET-15), no HMAC
# (a shared secret cannot prove which partner signed, and invites key confusion).
ALGORITHMS = ("ES256", "ES384", "EdDSA", "RS256", "PS256")

# Public members per key type; anything else (d, p, q, dp, dq, qi, oth, k, ...) is
# private or unknown and never leaves through public_jwks, which copies from this
# whitelist instead of deleting from a copy (a new private member cannot slip through).
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
    "RSA": ("kty", "n", "e"),
}
_META_MEMBERS = ("kid", "alg", "use")
_CURVE_ALG = {"P-256": "ES256", "P-384": "ES384", "Ed25519": "EdDSA"}
# RSA keys below 2048 bits are refused (RFC 7518 §3.3, §3.5).
_MIN_RSA_BITS = 2048


def key_algorithm(jwk: Mapping[str, Any]) -> str:
    """The JWS algorithm a JWK serves: its ``alg``, else inferred from its type.

    Returns:
        The algorithm name, or ``""`` when it can be neither read nor inferred.
    """
    alg = jwk.get("alg")
    if isinstance(alg, str):
        return alg
    if jwk.get("kty") == "RSA":
        return "RS256"
    crv = jwk.get("crv")
    return _CURVE_ALG.get(crv, "") if isinstance(crv, str) else ""


def generate_private_jwks(alg: str = "ES256", *, kid: str | None = None) -> dict[str, Any]:
    """A new private JWK Set with one signing key.

    Args:
        alg: one of :data:`ALGORITHMS`; ES256 is the fastest to verify here
            (measured: faster than EdDSA).
        kid: key id; the RFC 7638 thumbprint by default.

    Returns:
        ``{"keys": [jwk]}`` with ``kid``, ``alg`` and ``use: sig`` set.

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
        key = RSAKey.generate_key(_MIN_RSA_BITS, auto_kid=True)
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


def _import(jwk: object, where: str) -> tuple[Any, str]:
    """Import one JWK with joserfc and check that it fits its algorithm."""
    if not isinstance(jwk, Mapping):
        raise ValueError(f"{where}: a key must be a JSON object")
    alg = key_algorithm(jwk)
    if alg not in ALGORITHMS:
        raise ValueError(f"{where}: algorithm {alg or '(unknown)'} is not allowed")
    if jwk.get("kty") == "RSA" and _rsa_bits(jwk.get("n")) < _MIN_RSA_BITS:
        # Checked before joserfc, which would only warn about a weak key.
        raise ValueError(f"{where}: RSA keys need at least {_MIN_RSA_BITS} bits")
    try:
        key = import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{where}: not a usable JWK ({type(exc).__name__})") from None
    _check_alg_matches(key.public_key, alg, where)
    return key, alg


def _rsa_bits(n: object) -> int:
    """Bit length of a JWK's base64url modulus; 0 if it is not one."""
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:  # binascii.Error
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _fits(public_key: Any, alg: str) -> bool:
    if alg in ("ES256", "ES384"):
        curve = "secp256r1" if alg == "ES256" else "secp384r1"
        return isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == curve
    if alg == "EdDSA":
        return isinstance(public_key, ed25519.Ed25519PublicKey)
    return isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= _MIN_RSA_BITS


def _check_alg_matches(public_key: Any, alg: str, where: str) -> None:
    if not _fits(public_key, alg):
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
    """Write a private JWK Set readable by its owner only (mode 0600, also when replacing)."""
    fd = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    with os.fdopen(fd, "w") as file:
        json.dump(jwks, file, indent=2)


def signing_key(jwks: Mapping[str, Any]) -> SigningKey:
    """The first key of a private JWK Set, imported once and ready to sign.

    Raises:
        ValueError: no keys, the first key is not usable, or it has no private part.
    """
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("a private JWK Set needs at least one key")
    key, alg = _import(keys[0], "keys[0]")
    if not key.is_private:
        raise ValueError("keys[0] has no private part")
    kid = keys[0].get("kid") or key.thumbprint()
    return SigningKey(str(kid), alg, key.private_key)


def public_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The public half of a JWK Set: whitelisted public members only, never private ones.

    Keys without a public half (``oct``) and entries that are not objects are left out.
    """
    keys = []
    entries = jwks.get("keys")
    for jwk in entries if isinstance(entries, list) else ():
        if not isinstance(jwk, Mapping):
            continue
        kty = jwk.get("kty")
        # A hostile set may hold a list or an object here: no key type, not a crash.
        members = _PUBLIC_MEMBERS.get(kty) if isinstance(kty, str) else None
        if members is None:
            continue  # e.g. "oct": symmetric keys have no public half
        public = {m: jwk[m] for m in members if m in jwk}
        for m in _META_MEMBERS:
            if isinstance(jwk.get(m), str):
                public[m] = jwk[m]
        if "alg" not in public and (alg := key_algorithm(jwk)):
            public["alg"] = alg
        keys.append(public)
    return {"keys": keys}


class KeyStore:
    """A partner's verification keys by ``kid``.

    Lookups are dictionary hits only: a ``kid`` is never a path or a URL, so
    ``../../etc/passwd`` is just a miss. ``replace`` swaps the whole set at once
    (for a ``jwks_uri`` refresh); a set that fails to load leaves the old one in use.

    Args:
        jwks: the partner's JWK Set, or None for an empty store (keys to come).

    Raises:
        ValueError: see :meth:`replace`.
    """

    def __init__(self, jwks: Mapping[str, Any] | None = None) -> None:
        self._by_kid: dict[tuple[str | None, str], VerificationKey] = {}
        self._all: tuple[VerificationKey, ...] = ()
        if jwks is not None:
            self.replace(jwks)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> KeyStore:
        """Load a public JWK Set file; an absent path gives an empty store.

        Raises:
            ConfigError: unreadable, or not a usable JWK Set.
        """
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
            ValueError: not a JWK Set, an entry that is not an object, a broken key of
                a kind we use, or no usable key at all.
        """
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise ValueError("a JWK Set is an object with a keys array")
        for index, jwk in enumerate(jwks["keys"]):
            if not isinstance(jwk, Mapping):
                raise ValueError(f"keys[{index}]: a key must be a JSON object")
        by_kid: dict[tuple[str | None, str], VerificationKey] = {}
        all_keys: list[VerificationKey] = []
        for index, jwk in enumerate(public_jwks(jwks)["keys"]):
            if jwk.get("use", "sig") != "sig" or key_algorithm(jwk) not in ALGORITHMS:
                continue  # for encryption or another algorithm: not ours to use
            key, alg = _import(jwk, f"keys[{index}]")
            kid = jwk.get("kid")
            entry = VerificationKey(kid, alg, key.public_key)
            all_keys.append(entry)
            # RFC 7517 §4.5 wants distinct kids; one key published under two algs
            # (RS256 and PS256) stays usable because the lookup includes the alg.
            by_kid.setdefault((kid, alg), entry)
        if not all_keys:
            raise ValueError(f"no usable signature verification key ({', '.join(ALGORITHMS)})")
        self._by_kid, self._all = by_kid, tuple(all_keys)

    def get(self, kid: str | None, alg: str | None = None) -> VerificationKey | None:
        """The key for ``kid`` (and ``alg`` if given), or None.

        With no kid, the partner's only key if it has exactly one.
        """
        if kid is None:
            only = self._all[0] if len(self._all) == 1 else None
            return only if only is not None and alg in (None, only.alg) else None
        if alg is not None:
            return self._by_kid.get((kid, alg))
        for key in self._all:
            if key.kid == kid:
                return key
        return None

    def __len__(self) -> int:
        return len(self._all)
