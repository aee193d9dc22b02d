"""``[peer.app]``: the local application interface's listener, token and webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peer.config import AppConfig, PeerConfig

from .test_config import DIGEST, base, folder, keys, load, mutate, problems

__all__ = ["folder"]  # the fixture, re-used


def test_default_is_a_unix_socket_beside_the_config(folder: Path) -> None:
    config = load(folder, base())
    assert config.app == AppConfig(listen="unix:app.sock")
    assert config.app_socket == folder / "app.sock"


def test_config_built_in_code_has_no_local_interface(folder: Path) -> None:
    config = PeerConfig(issuer="https://a.example", signing_keys=folder / "a.jwks.json")
    assert config.app.listen is None
    assert config.app_socket is None


def test_unix_path_relative_and_absolute(folder: Path) -> None:
    config = load(folder, mutate(base(), "peer.app.listen", "unix:run/x.sock"))
    assert config.app_socket == folder / "run" / "x.sock"
    config = load(folder, mutate(base(), "peer.app.listen", "unix:/run/setpeer/app.sock"))
    assert config.app_socket == Path("/run/setpeer/app.sock")


def test_tcp_needs_a_token_and_loopback(folder: Path) -> None:
    document = mutate(base(), "peer.app.listen", "127.0.0.1:8444")
    assert keys(problems(folder, document)) == ["peer.app.token_sha256"]
    config = load(folder, mutate(document, "peer.app.token_sha256", DIGEST))
    assert config.app.listen == "127.0.0.1:8444"
    assert config.app_socket is None
    found = problems(folder, mutate(document, "peer.app.listen", "0.0.0.0:8444"))
    assert "peer.app.listen" in keys(found)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("peer.app.listen", "unix:"),
        ("peer.app.listen", "nonsense"),
        ("peer.app.listen", 8444),
        ("peer.app.listen", "[::1]:99999"),
        ("peer.app.token_sha256", "ABC"),
        ("peer.app.deliver", "ftp://127.0.0.1/x"),
        ("peer.app.deliver", "http://hooks.example/x"),  # plain HTTP off loopback
        ("peer.app.deliver_auth", "inline-secret"),
        ("peer.app.surprise", 1),
    ],
)
def test_each_bad_value_names_its_key(folder: Path, key: str, value: Any) -> None:
    document = mutate(base(), "peer.app.deliver", "http://127.0.0.1:8080/hook")
    found = problems(folder, mutate(document, key, value))
    assert key in keys(found)
    assert all("inline-secret" not in message for _, message in found)


def test_webhook_with_bearer(folder: Path) -> None:
    document = mutate(base(), "peer.app.deliver", "http://127.0.0.1:8080/hook")
    config = load(folder, mutate(document, "peer.app.deliver_auth", "env:HOOK_TOKEN"))
    assert config.app.deliver == "http://127.0.0.1:8080/hook"
    assert config.app.deliver_auth == "env:HOOK_TOKEN"
    found = problems(folder, mutate(base(), "peer.app.deliver_auth", "env:HOOK_TOKEN"))
    assert keys(found) == ["peer.app.deliver_auth"]
