"""Key sets: generation, private load/save, public export, partner key stores."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import ConfigError
from peer.tokens.keys import (
    ALGORITHMS,
    KeyStore,
    generate_private_jwks,
    load_private_jwks,
    public_jwks,
    save_private_jwks,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_generate_save_load(tmp_path: Path, alg: str) -> None:
    jwks = generate_private_jwks(alg, kid="k1")
    assert jwks["keys"][0]["kid"] == "k1" and jwks["keys"][0]["alg"] == alg
    path = tmp_path / "keys.json"
    save_private_jwks(jwks, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_private_jwks(path) == jwks


def test_default_kid_is_thumbprint() -> None:
    one, two = generate_private_jwks("ES256"), generate_private_jwks("ES256")
    assert len(one["keys"][0]["kid"]) == 43 and one["keys"][0]["kid"] != two["keys"][0]["kid"]


def test_unsupported_algorithm() -> None:
    with pytest.raises(ValueError):
        generate_private_jwks("HS256")


@settings(max_examples=30, deadline=None)
@given(
    alg=st.sampled_from(ALGORITHMS),
    extra=st.dictionaries(
        st.sampled_from(sorted(PRIVATE_MEMBERS) + ["x5c", "ext"]), st.text(max_size=5), max_size=4
    ),
)
def test_public_export_never_has_private_members(alg: str, extra: dict[str, str]) -> None:
    """The public JWKS is built from a whitelist: no private member can slip through."""
    jwks = generate_private_jwks(alg)
    jwks["keys"][0].update(extra)
    jwks["keys"].append({"kty": "oct", "k": "c2VjcmV0"})
    public = public_jwks(jwks)
    assert len(public["keys"]) == 1
    assert not PRIVATE_MEMBERS & set(public["keys"][0])
    assert public["keys"][0]["alg"] == alg


def test_load_refuses_public_or_broken_sets(tmp_path: Path) -> None:
    cases = {
        "public.json": json.dumps(public_jwks(generate_private_jwks("ES256"))),
        "empty.json": json.dumps({"keys": []}),
        "notjson.json": "{",
        "hmac.json": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}),
        "mismatch.json": json.dumps(
            {"keys": [generate_private_jwks("ES256")["keys"][0] | {"alg": "RS256"}]}
        ),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError):
            load_private_jwks(tmp_path / name)


def test_keystore_lookup_and_replace() -> None:
    a, b = generate_private_jwks("ES256", kid="a"), generate_private_jwks("EdDSA", kid="b")
    store = KeyStore({"keys": public_jwks(a)["keys"] + public_jwks(b)["keys"]})
    assert store.get("a") is not None and store.get("b") is not None and len(store) == 2
    assert store.get(None) is None  # two keys: a kid is needed
    assert store.get("../a") is None
    store.replace(public_jwks(b))
    assert store.get("a") is None and store.get(None) is not None


def test_keystore_strips_private_members_of_partner_sets() -> None:
    """A partner that publishes its private key by mistake: only the public half is used."""
    private = generate_private_jwks("ES256", kid="k")
    store = KeyStore(private)
    key = store.get("k")
    assert key is not None and not hasattr(key.public_key, "private_numbers")


@pytest.mark.parametrize("bad", [[], {"keys": "x"}, {"keys": [5]}, {"keys": [{"kty": "EC"}]}])
def test_keystore_refuses_malformed_sets(bad: object) -> None:
    with pytest.raises(ValueError):
        KeyStore(bad)  # type: ignore[arg-type]
