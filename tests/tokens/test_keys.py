"""Key sets: generation, private load/save, public export, partner key stores."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings, strategies as st
from joserfc.jwk import import_key

from peer.errors import ConfigError
from peer.tokens.keys import (
    ALGORITHMS,
    KeyStore,
    generate_private_jwks,
    key_algorithm,
    load_private_jwks,
    public_jwks,
    save_private_jwks,
    signing_key,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PUBLIC_MEMBERS = {
    "EC": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "OKP": {"kty", "crv", "x", "kid", "alg", "use"},
    "RSA": {"kty", "n", "e", "kid", "alg", "use"},
}
KEYS = {alg: generate_private_jwks(alg) for alg in ALGORITHMS}


def weak_rsa_jwk(private: bool) -> dict[str, Any]:
    """A 1024-bit RSA JWK, built by hand (joserfc refuses to generate one)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = key.private_numbers()

    def b64int(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    jwk = {"kty": "RSA", "alg": "RS256", "n": b64int(numbers.public_numbers.n), "e": "AQAB"}
    if private:
        for name, value in [
            ("d", numbers.d),
            ("p", numbers.p),
            ("q", numbers.q),
            ("dp", numbers.dmp1),
            ("dq", numbers.dmq1),
            ("qi", numbers.iqmp),
        ]:
            jwk[name] = b64int(value)
    return jwk


def without(jwk: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k not in names}


class TestGenerate:
    @pytest.mark.parametrize("alg", ALGORITHMS)
    def test_generate_save_load(self, tmp_path: Path, alg: str) -> None:
        """A generated set has kid, alg, use: sig and survives a save/load round trip."""
        jwks = generate_private_jwks(alg, kid="k1")
        jwk = jwks["keys"][0]
        assert (jwk["kid"], jwk["alg"], jwk["use"]) == ("k1", alg, "sig")
        path = tmp_path / "keys.json"
        save_private_jwks(jwks, path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert load_private_jwks(path) == jwks
        assert signing_key(jwks).alg == alg and signing_key(jwks).kid == "k1"

    def test_save_tightens_an_existing_file(self, tmp_path: Path) -> None:
        """An existing world-readable file is rewritten with mode 0600."""
        path = tmp_path / "keys.json"
        path.write_text("{}")
        path.chmod(0o644)
        save_private_jwks(KEYS["ES256"], path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_default_kid_is_rfc7638_thumbprint(self) -> None:
        """kid defaults to the RFC 7638 thumbprint, computed here independently."""
        jwk = generate_private_jwks("ES256")["keys"][0]
        canonical = json.dumps(
            {m: jwk[m] for m in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
        )
        digest = hashlib.sha256(canonical.encode()).digest()
        assert jwk["kid"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert jwk["kid"] != generate_private_jwks("ES256")["keys"][0]["kid"]

    def test_rsa_keys_have_2048_bits(self) -> None:
        for alg in ("RS256", "PS256"):
            key = signing_key(KEYS[alg]).private_key
            assert isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048

    @pytest.mark.parametrize("alg", ["HS256", "none", "ES512", "RS512", ""])
    def test_unsupported_algorithm(self, alg: str) -> None:
        with pytest.raises(ValueError):
            generate_private_jwks(alg)


class TestAlgorithmInference:
    @pytest.mark.parametrize(
        "alg, expected",
        [("ES256", "ES256"), ("ES384", "ES384"), ("EdDSA", "EdDSA"), ("RS256", "RS256")],
    )
    def test_inferred_from_key_type(self, alg: str, expected: str) -> None:
        """Without alg: P-256 -> ES256, P-384 -> ES384, Ed25519 -> EdDSA, RSA -> RS256."""
        assert key_algorithm(without(KEYS[alg]["keys"][0], "alg")) == expected

    def test_alg_member_wins(self) -> None:
        assert key_algorithm(KEYS["PS256"]["keys"][0]) == "PS256"

    @pytest.mark.parametrize("jwk", [{}, {"kty": "EC", "crv": "P-521"}, {"kty": "oct"}, {"crv": 5}])
    def test_unknown(self, jwk: dict[str, Any]) -> None:
        assert key_algorithm(jwk) == ""


class TestPublicExport:
    @settings(max_examples=200, deadline=None)
    @given(
        alg=st.sampled_from(ALGORITHMS),
        extra=st.dictionaries(
            st.sampled_from(sorted(PRIVATE_MEMBERS) + ["x5c", "ext", "key_ops", "secret"]),
            st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=2),
            max_size=5,
        ),
        drop_alg=st.booleans(),
    )
    def test_public_export_never_has_private_members(
        self, alg: str, extra: dict[str, Any], drop_alg: bool
    ) -> None:
        """The public JWKS is built from a whitelist: no private member can slip through."""
        jwk = KEYS[alg]["keys"][0] | extra
        if drop_alg:
            jwk = without(jwk, "alg")
        jwks = {"keys": [jwk, {"kty": "oct", "k": "c2VjcmV0"}, "junk"]}
        public = public_jwks(jwks)
        assert len(public["keys"]) == 1
        exported = public["keys"][0]
        assert not PRIVATE_MEMBERS & set(exported)
        assert set(exported) <= PUBLIC_MEMBERS[jwk["kty"]]
        assert exported["alg"] == (key_algorithm(jwk))
        assert not import_key(exported).is_private

    @pytest.mark.parametrize("alg", ALGORITHMS)
    def test_public_half_matches_private_key(self, alg: str) -> None:
        """The exported key is the public half of the signing key."""
        exported = import_key(public_jwks(KEYS[alg])["keys"][0])
        private = import_key(KEYS[alg]["keys"][0])
        assert exported.thumbprint() == private.thumbprint()

    def test_malformed_input_gives_empty_set(self) -> None:
        assert public_jwks({"keys": "x"}) == {"keys": []}
        assert public_jwks({}) == {"keys": []}


class TestLoadPrivate:
    def test_load_refuses_public_or_broken_sets(self, tmp_path: Path) -> None:
        weak = weak_rsa_jwk(private=True)
        cases = {
            "public.json": json.dumps(public_jwks(KEYS["ES256"])),
            "empty.json": json.dumps({"keys": []}),
            "list.json": json.dumps([]),
            "notjson.json": "{",
            "hmac.json": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}),
            "mismatch.json": json.dumps({"keys": [KEYS["ES256"]["keys"][0] | {"alg": "RS256"}]}),
            "curve.json": json.dumps({"keys": [KEYS["ES384"]["keys"][0] | {"alg": "ES256"}]}),
            "weak-rsa.json": json.dumps({"keys": [weak]}),
            "broken.json": json.dumps({"keys": [KEYS["ES256"]["keys"][0] | {"x": "AAAA"}]}),
        }
        for name, text in cases.items():
            (tmp_path / name).write_text(text)
            with pytest.raises(ConfigError) as info:
                load_private_jwks(tmp_path / name)
            assert info.value.problems[0][0] == "peer.signing_keys", name
        with pytest.raises(ConfigError):
            load_private_jwks(tmp_path / "missing.json")

    def test_signing_key_refuses_public_sets(self) -> None:
        bad: dict[str, Any]
        for bad in (public_jwks(KEYS["ES256"]), {"keys": []}, {}):
            with pytest.raises(ValueError):
                signing_key(bad)


class TestKeyStore:
    def test_lookup_and_replace(self) -> None:
        """kid lookups are dictionary hits; replace swaps the whole set."""
        a, b = generate_private_jwks("ES256", kid="a"), generate_private_jwks("EdDSA", kid="b")
        store = KeyStore({"keys": public_jwks(a)["keys"] + public_jwks(b)["keys"]})
        assert len(store) == 2
        assert store.get("a") is not None and store.get("a", "ES256") is not None
        assert store.get("a", "EdDSA") is None  # a key serves one algorithm only
        assert store.get(None) is None  # two keys: a kid is needed
        for trick in ("../a", "a/", "A", " a", "a\x00"):
            assert store.get(trick) is None
        store.replace(public_jwks(b))
        assert store.get("a") is None and store.get(None, "EdDSA") is not None
        assert store.get(None, "ES256") is None

    def test_failed_replace_keeps_old_keys(self) -> None:
        store = KeyStore(public_jwks(KEYS["ES256"]))
        with pytest.raises(ValueError):
            store.replace({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})
        assert len(store) == 1 and store.get(None) is not None

    def test_strips_private_members_of_partner_sets(self) -> None:
        """A partner that publishes its private key by mistake: only the public half is used."""
        store = KeyStore(generate_private_jwks("ES256", kid="k"))
        key = store.get("k")
        assert key is not None and not hasattr(key.public_key, "private_numbers")

    def test_same_kid_for_two_algorithms(self) -> None:
        """One RSA key published for RS256 and PS256 under one kid stays usable for both."""
        rsa_jwk = public_jwks(KEYS["RS256"])["keys"][0] | {"kid": "r"}
        store = KeyStore({"keys": [rsa_jwk, rsa_jwk | {"alg": "PS256"}]})
        assert store.get("r", "RS256") is not None and store.get("r", "PS256") is not None

    def test_skips_keys_not_for_us(self) -> None:
        """Encryption keys, symmetric keys and other algorithms are skipped, not fatal."""
        ours = public_jwks(KEYS["ES256"])["keys"][0]
        store = KeyStore(
            {
                "keys": [
                    ours,
                    public_jwks(KEYS["RS256"])["keys"][0] | {"use": "enc", "kid": "enc"},
                    {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                    public_jwks(KEYS["RS256"])["keys"][0] | {"alg": "RS512", "kid": "rs512"},
                    {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
                ]
            }
        )
        assert len(store) == 1 and store.get(ours["kid"]) is not None
        for kid in ("enc", "hmac", "rs512", "p521"):
            assert store.get(kid) is None

    def test_refuses_weak_rsa(self) -> None:
        with pytest.raises(ValueError):
            KeyStore({"keys": [weak_rsa_jwk(private=False)]})

    @pytest.mark.parametrize(
        "bad",
        [
            [],
            {"keys": "x"},
            {"keys": [5]},
            {"keys": []},
            {"keys": [{"kty": "EC"}]},
            {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
            {"keys": [{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}]},
        ],
    )
    def test_refuses_malformed_sets(self, bad: object) -> None:
        with pytest.raises(ValueError):
            KeyStore(bad)  # type: ignore[arg-type]

    def test_from_file(self, tmp_path: Path) -> None:
        path = tmp_path / "pub.json"
        path.write_text(json.dumps(public_jwks(KEYS["EdDSA"])))
        assert len(KeyStore.from_file(path)) == 1
        assert len(KeyStore.from_file(None)) == 0
        path.write_text('{"keys": [1]}')
        with pytest.raises(ConfigError):
            KeyStore.from_file(path)
        with pytest.raises(ConfigError):
            KeyStore.from_file(tmp_path / "missing.json")
