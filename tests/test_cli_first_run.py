"""An operator's first commands: ``init``, ``keygen --public``, ``token``, ``--version``,
and ``--help`` that describes every command with an example."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import pytest

from peer.cli import COMMANDS, build_parser
from peer.config import load_config
from peer.tokens.keys import KeyStore
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import Verifier
from tests.cli import setpeer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_two_nodes_that_check_config_accepts(tmp_path: Path) -> None:
    """init DIR: two commented configs on loopback (a dials b on PORT + 1), private
    files 0600, each token's digest in the other config; check-config accepts both
    (secrets resolved); the next steps are printed; a second init refuses (exit 2)."""
    out = setpeer("init", str(tmp_path / "qs"), "--port", "18600")
    assert out.returncode == 0, out.stderr
    assert "setpeer run -c b.toml" in out.stdout and "setpeer send -c a.toml" in out.stdout
    folder = tmp_path / "qs"
    for name in ("a.jwks.json", "b.jwks.json", "a-to-b.token", "b-to-a.token"):
        assert mode(folder / name) == 0o600, name
    a, b = load_config(folder / "a.toml"), load_config(folder / "b.toml")
    assert (a.listen, b.listen) == ("127.0.0.1:18600", "127.0.0.1:18601")
    assert a.partners[0].endpoint == "ws://127.0.0.1:18601/pushpull" and a.partners[0].initiate
    assert a.app.listen != b.app.listen
    token = (folder / "a-to-b.token").read_text()
    assert b.partners[0].inbound.bearer_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert "# the only iss b may use" in (folder / "a.toml").read_text()
    for config in ("a.toml", "b.toml"):
        check = setpeer("check-config", "-c", str(folder / config))
        assert (check.returncode, check.stdout, check.stderr) == (0, "ok: 1 partners\n", "")
    again = setpeer("init", str(folder))
    assert again.returncode == 2 and "a.toml" in again.stderr and "--force" in again.stderr
    assert (folder / "a-to-b.token").read_text() == token


def test_keygen_public_and_token(tmp_path: Path) -> None:
    """keygen --public: the public half (no private member, mode 0644) verifies what the
    private key signs; token: a fresh token and its digest, labelled or as JSON; -o
    writes the token alone (0600, no line break) and prints only the digest."""
    private, public = tmp_path / "k.json", tmp_path / "k.public.json"
    assert setpeer("keygen", "-o", str(private), "--public", str(public)).returncode == 0
    assert mode(private) == 0o600 and mode(public) & 0o044
    assert all("d" not in key for key in json.loads(public.read_text())["keys"])
    claims = build_claims(iss="https://a", aud="https://b", events={"urn:x": {}}, iat=1)
    token = Signer(json.loads(private.read_text())).sign(claims)
    verifier = Verifier(issuer="https://a", audience="https://b", keys=KeyStore.from_file(public))
    assert verifier.verify(token, now=2).jti == claims["jti"]
    again = setpeer("keygen", "-o", str(tmp_path / "new.json"), "--public", str(public))
    assert again.returncode == 1 and "exists" in again.stderr
    assert not (tmp_path / "new.json").exists()  # nothing half written

    lines = setpeer("token").stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["token", "bearer_sha256"]
    secret, digest = (line.split(": ")[1] for line in lines)
    assert hashlib.sha256(secret.encode()).hexdigest() == digest and len(secret) >= 43
    shown = json.loads(setpeer("token", "--json").stdout)
    assert set(shown) == {"token", "bearer_sha256"} and shown["token"] != secret
    written = setpeer("token", "-o", str(tmp_path / "t"))
    saved = (tmp_path / "t").read_text()
    assert mode(tmp_path / "t") == 0o600 and "\n" not in saved
    assert f"bearer_sha256: {hashlib.sha256(saved.encode()).hexdigest()}" in written.stdout
    assert saved not in written.stdout


def test_version() -> None:
    out = setpeer("--version")
    assert out.returncode == 0 and re.fullmatch(r"setpeer \d+\.\d+\S*\n", out.stdout), out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_a_description_and_an_example(name: str) -> None:
    """``setpeer NAME --help``: a one-line description, and an example that runs NAME."""
    parser = build_parser(name)
    sub = parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
    text = sub.format_help()
    assert sub.description and "\n" not in sub.description.strip(), name
    example = text.split("example", 1)[1]
    assert f"setpeer {name}" in example, text
    assert name in parser.format_help()
