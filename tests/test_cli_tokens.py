"""`setpeer keygen` and `setpeer verify`, run as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from peer.tokens.keys import ALGORITHMS, KeyStore, public_jwks
from peer.tokens.sign import Signer, build_claims
from tests.timing import seconds

ISS, AUD = "https://a.example", "https://b.example"
EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def setpeer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )


def token(signer: Signer, **overrides: Any) -> str:
    claims = build_claims(iss=ISS, aud=AUD, events={EVENT: {}}, iat=int(time.time()))
    claims.update(overrides)
    return signer.sign(claims)


@pytest.fixture(scope="module")
def private() -> dict[str, Any]:
    out = setpeer("keygen")
    assert out.returncode == 0, out.stderr
    jwks: dict[str, Any] = json.loads(out.stdout)
    return jwks


@pytest.fixture
def verify_args(tmp_path: Path, private: dict[str, Any]) -> list[str]:
    (tmp_path / "pub.json").write_text(json.dumps(public_jwks(private)))
    return ["verify", "--jwks", str(tmp_path / "pub.json"), "--issuer", ISS, "--audience", AUD]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_keygen_gives_a_working_private_set(alg: str) -> None:
    """keygen --alg A --kid K: a private JWK Set whose key signs SETs its public half verifies."""
    out = setpeer("keygen", "--alg", alg, "--kid", "k1")
    assert out.returncode == 0
    jwks = json.loads(out.stdout)
    key = jwks["keys"][0]
    assert (key["alg"], key["kid"], key["use"]) == (alg, "k1", "sig") and "d" in key
    signer = Signer(jwks)
    assert signer.kid == "k1" and signer.alg == alg
    store = KeyStore(public_jwks(jwks))
    assert store.get("k1", alg) is not None


def test_keygen_defaults_to_es256_and_thumbprint_kid(private: dict[str, Any]) -> None:
    """ES256 by default (fastest to verify); kid = RFC 7638 thumbprint."""
    key = private["keys"][0]
    assert key["alg"] == "ES256" and len(key["kid"]) == 43


def test_keygen_refuses_hmac_and_none() -> None:
    for alg in ("HS256", "none"):
        out = setpeer("keygen", "--alg", alg)
        assert out.returncode == 2 and "invalid choice" in out.stderr


def test_verify_argument(verify_args: list[str], private: dict[str, Any]) -> None:
    """A valid SET as argument: its claims as one JSON line, exit 0."""
    good = token(Signer(private), jti="good", txn="t")
    out = setpeer(*verify_args, good)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 1
    claims = json.loads(out.stdout)
    assert claims["jti"] == "good" and claims["txn"] == "t" and claims["iss"] == ISS


def test_verify_one_json_line_per_stdin_token(
    verify_args: list[str], private: dict[str, Any]
) -> None:
    """Tokens on stdin, one per line (blank lines skipped): claims or {err, description},
    exit 1 if any failed; token contents never reach stderr."""
    signer = Signer(private)
    lines = [
        token(signer, jti="good"),
        "",
        token(signer, aud="https://c.example"),
        token(signer, iss="https://evil.example"),
        token(Signer(json.loads(setpeer("keygen").stdout))),
        "not-a-token",
        token(signer, iat=int(time.time()) + 3600),
    ]
    out = setpeer(*verify_args, stdin="\n".join(lines) + "\n")
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1
    assert results[0]["jti"] == "good"
    assert [r.get("err") for r in results[1:]] == [
        "invalid_audience",
        "invalid_issuer",
        "invalid_key",
        "invalid_request",
        "invalid_request",
    ]
    assert all(set(r) == {"err", "description"} for r in results[1:])
    assert lines[0] not in out.stderr


def test_verify_all_good_exits_zero(verify_args: list[str], private: dict[str, Any]) -> None:
    signer = Signer(private)
    out = setpeer(*verify_args, stdin=f"{token(signer)}\n{token(signer)}\n")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2


def test_verify_ssf_profile(verify_args: list[str], private: dict[str, Any]) -> None:
    """--ssf applies the SSF SET profile (SSF-1: sub_id required)."""
    signer = Signer(private)
    out = setpeer(*verify_args, "--ssf", token(signer))
    assert out.returncode == 1 and "sub_id" in json.loads(out.stdout)["description"]
    with_subject = token(signer, sub_id={"format": "opaque", "id": "u1"})
    assert setpeer(*verify_args, "--ssf", with_subject).returncode == 0


def test_verify_bad_key_file(tmp_path: Path) -> None:
    """An unusable --jwks is a usage problem: exit 2, message on stderr."""
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "hmac.json").write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    for name in ("bad.json", "hmac.json", "missing.json"):
        out = setpeer(
            "verify", "--jwks", str(tmp_path / name), "--issuer", "i", "--audience", "a", "x.y.z"
        )
        assert out.returncode == 2 and "--jwks" in out.stderr and out.stdout == ""
