"""`setpeer keygen` and `setpeer verify`, run as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peer.tokens.keys import public_jwks
from peer.tokens.sign import Signer, build_claims


def setpeer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "RS256", "PS256"])
def test_keygen(alg: str) -> None:
    out = setpeer("keygen", "--alg", alg, "--kid", "k1")
    assert out.returncode == 0
    key = json.loads(out.stdout)["keys"][0]
    assert key["alg"] == alg and key["kid"] == "k1" and ("d" in key)


def test_keygen_defaults_to_es256() -> None:
    assert json.loads(setpeer("keygen").stdout)["keys"][0]["alg"] == "ES256"


def test_keygen_refuses_hmac() -> None:
    assert setpeer("keygen", "--alg", "HS256").returncode == 2


def test_verify_one_json_line_per_token(tmp_path: Path) -> None:
    """verify prints claims or {err, description}; exit 1 if any failed."""
    private = json.loads(setpeer("keygen").stdout)
    (tmp_path / "pub.json").write_text(json.dumps(public_jwks(private)))
    signer = Signer(private)
    good = signer.sign(
        build_claims(
            iss="https://a.example",
            aud="https://b.example",
            events={"https://e.example/x": {}},
            iat=int(time.time()),
            jti="good",
        )
    )
    wrong_aud = signer.sign(
        build_claims(
            iss="https://a.example",
            aud="https://c.example",
            events={"https://e.example/x": {}},
            iat=int(time.time()),
        )
    )
    args = [
        "verify",
        "--jwks",
        str(tmp_path / "pub.json"),
        "--issuer",
        "https://a.example",
        "--audience",
        "https://b.example",
    ]
    out = setpeer(*args, good)
    assert out.returncode == 0 and json.loads(out.stdout)["jti"] == "good"
    out = setpeer(*args, stdin=f"{good}\n{wrong_aud}\nnot-a-token\n")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1
    assert lines[0]["jti"] == "good"
    assert lines[1]["err"] == "invalid_audience"
    assert lines[2]["err"] == "invalid_request"
    assert good not in out.stderr


def test_verify_ssf_profile(tmp_path: Path) -> None:
    private = json.loads(setpeer("keygen").stdout)
    (tmp_path / "pub.json").write_text(json.dumps(public_jwks(private)))
    token = Signer(private).sign(
        build_claims(
            iss="https://a.example",
            aud="https://b.example",
            events={"https://e.example/x": {}},
            iat=int(time.time()),
        )
    )
    out = setpeer(
        "verify",
        "--jwks",
        str(tmp_path / "pub.json"),
        "--issuer",
        "https://a.example",
        "--audience",
        "https://b.example",
        "--ssf",
        token,
    )
    assert out.returncode == 1 and "sub_id" in json.loads(out.stdout)["description"]


def test_verify_bad_key_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    out = setpeer(
        "verify", "--jwks", str(tmp_path / "bad.json"), "--issuer", "i", "--audience", "a", "x.y.z"
    )
    assert out.returncode == 2 and "--jwks" in out.stderr
