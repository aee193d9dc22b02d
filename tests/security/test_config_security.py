"""Config rules of the security stance: each refusal is a ConfigError naming its key."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from peer import ConfigError
from peer.auth.discovery import as_metadata_urls, resource_metadata_url
from peer.auth.outbound import OutboundAuth as OutboundAuthenticator
from peer.config import InboundAuth, InboundOAuth, OAuthClient, OutboundAuth, load_config
from tests.peers import make_pair, write_config

from .helpers import node_config


def _problems(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(exc.value.problems)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("ws://10.0.0.5:8443/pushpull", "only to a literal loopback address"),
        ("ws://b.example/pushpull", "only to a literal loopback address"),
        ("http://192.168.1.2/pushpull", "only to a literal loopback address"),
    ],
)
def test_plain_endpoint_to_non_loopback_host_is_a_config_error(
    tmp_path: Path, endpoint: str, message: str
) -> None:
    """Security stance: ws:// and http:// only to 127.0.0.0/8 or ::1."""
    a, b = make_pair(tmp_path)
    with pytest.raises(ConfigError) as caught:
        write_config(a, b, endpoint=endpoint)
    assert message in _problems(caught)["partners[0].endpoint"]


def test_plain_loopback_endpoint_needs_the_flag(tmp_path: Path) -> None:
    """ws://127.0.0.1 without allow_insecure_loopback = true: ConfigError naming the key."""
    a, b = make_pair(tmp_path)
    write_config(a, b, endpoint="ws://127.0.0.1:9/pushpull")  # with the flag: fine
    path = tmp_path / "a.toml"
    text = path.read_text().replace("allow_insecure_loopback = true", "")
    text = text.replace("[peer.limits]", f'[peer.tls]\ncertfile = "{path}"\nkeyfile = "{path}"\n')
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = _problems(caught)
    assert problems["partners[0].endpoint"] == "ws:// needs peer.allow_insecure_loopback = true"


def test_oauth_keys_are_checked(tmp_path: Path) -> None:
    """OPRM-28 and RFC 8414: issuers are https URLs; files exist; public_url has no path."""
    a, b = make_pair(tmp_path)
    config = write_config(a, b, endpoint="wss://b.example/pushpull")
    partner = config.partners[0]
    bad = dataclasses.replace(
        partner,
        auth=OutboundAuth(
            oauth=OAuthClient(client_id="a", client_secret="env:X", issuer="http://as.example")
        ),
        inbound=InboundAuth(
            oauth=InboundOAuth(
                issuer="http://127.0.0.1:1", subject="a", ca=tmp_path / "missing.pem"
            )
        ),
    )
    broken = dataclasses.replace(config, partners=(bad,), public_url="https://a.example/base")
    problems = dict(broken.problems())
    assert "https://" in problems["partners[0].auth.oauth.issuer"]
    assert "https://" in problems["partners[0].inbound.oauth.issuer"]
    assert "file not found" in problems["partners[0].inbound.oauth.ca"]
    assert "no path" in problems["peer.public_url"]


def test_metadata_urls_are_path_inserted() -> None:
    """OPRM-9/OPRM-11 and RFC 8414 §3: the well-known string goes before the path."""
    assert (
        resource_metadata_url("https://b.example/pushpull")
        == "https://b.example/.well-known/oauth-protected-resource/pushpull"
    )
    assert (
        resource_metadata_url("https://resource.example.com/")
        == "https://resource.example.com/.well-known/oauth-protected-resource"
    )
    assert (
        resource_metadata_url("https://r.example:8443/a/b?x=1")
        == "https://r.example:8443/.well-known/oauth-protected-resource/a/b?x=1"
    )
    assert as_metadata_urls("https://as.example/tenant") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant",
        "https://as.example/tenant/.well-known/openid-configuration",
    )


async def test_static_bearer_is_reread_after_401(tmp_path: Path) -> None:
    """A rotated env: secret is picked up on refresh(); the token never shows in repr."""
    a, b = make_pair(tmp_path)
    config = node_config(
        a,
        [
            (
                b,
                {
                    "endpoint": "wss://b.example/pushpull",
                    "auth": OutboundAuth(bearer="env:SETPEER_TEST_ROTATING"),
                },
            )
        ],
    )
    os.environ["SETPEER_TEST_ROTATING"] = "first-token"
    try:
        auth = OutboundAuthenticator(config.partners[0])
        assert await auth.headers() == {"authorization": "Bearer first-token"}
        os.environ["SETPEER_TEST_ROTATING"] = "second-token"
        assert auth.current_headers() == {"authorization": "Bearer first-token"}
        await auth.refresh()
        assert await auth.headers() == {"authorization": "Bearer second-token"}
        del os.environ["SETPEER_TEST_ROTATING"]
        await auth.refresh()
        with pytest.raises(ConfigError) as caught:
            auth.current_headers()
        assert "second-token" not in str(caught.value)
        assert "SETPEER_TEST_ROTATING is not set" in str(caught.value)
    finally:
        os.environ.pop("SETPEER_TEST_ROTATING", None)
