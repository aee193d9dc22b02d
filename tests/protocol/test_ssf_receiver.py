"""The receiver's checks of what an SSF transmitter sends (SSF 7, 8), without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from peer.protocol.ssf_receiver import (
    VERIFICATION_EVENT,
    InvalidDocument,
    check_stream_config,
    check_stream_status,
    configuration_url,
    parse_metadata,
    verification_state,
)

ISS = "https://tr.example.com/issuer1"
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


def https(url: str) -> bool:
    return url.startswith("https://")


def test_configuration_url_examples() -> None:
    """SSF-22: inserted between host and path; a terminating / removed first."""
    expected = "https://tr.example.com/.well-known/ssf-configuration/issuer1"
    assert configuration_url(ISS) == expected
    assert configuration_url(ISS + "/") == expected
    assert configuration_url("https://tr.example.com") == (
        "https://tr.example.com/.well-known/ssf-configuration"
    )
    assert configuration_url("https://tr.example.com/") == (
        "https://tr.example.com/.well-known/ssf-configuration"
    )


@given(st.lists(segment, max_size=4), st.booleans())
def test_configuration_url_keeps_the_path(parts: list[str], slash: bool) -> None:
    path = "".join("/" + p for p in parts)
    issuer = "https://h.example" + path + ("/" if slash else "")
    assert configuration_url(issuer) == "https://h.example/.well-known/ssf-configuration" + path


def test_metadata_issuer_must_be_identical() -> None:
    """SSF-24: any other issuer (a trailing slash included) aborts its use."""
    for other in (ISS + "/", ISS.upper(), "https://evil.example/issuer1", None, 7):
        with pytest.raises(InvalidDocument, match="issuer"):
            parse_metadata({"issuer": other}, issuer=ISS, url_ok=https)
    found = parse_metadata({"issuer": ISS, "x-unknown": [1]}, issuer=ISS, url_ok=https)
    assert found.spec_version == "1_0-ID1" and found.endpoints == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"jwks_uri": "http://tr.example.com/jwks"},
        {"configuration_endpoint": "javascript:alert(1)"},
        {"status_endpoint": ["https://x"]},
        {"verification_endpoint": "https://" + "a" * 3000},
        {"delivery_methods_supported": "urn:ietf:rfc:8935"},
        {"delivery_methods_supported": [1]},
        {"critical_subject_members": [""]},
        {"spec_version": 1},
    ],
)
def test_metadata_hostile_fields_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidDocument):
        parse_metadata({"issuer": ISS, **bad}, issuer=ISS, url_ok=https)
    with pytest.raises(InvalidDocument):
        parse_metadata([ISS], issuer=ISS, url_ok=https)


GOOD = {"stream_id": "s1", "iss": ISS, "aud": "https://r.example", "delivery": {"method": "m"}}


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://other.example"},  # SSF-26
        {"stream_id": ""},
        {"stream_id": 5},
        {"aud": 5},
        {"aud": ["a", 1]},
        {"delivery": None},
        {"delivery": {"endpoint_url": "x"}},
        {"delivery": {"method": "m", "endpoint_url": 5}},
        {"events_delivered": "all"},
    ],
)
def test_stream_config_checked(change: dict[str, Any]) -> None:
    assert check_stream_config(GOOD, issuer=ISS) == GOOD
    with pytest.raises(InvalidDocument):
        check_stream_config({**GOOD, **change}, issuer=ISS)
    with pytest.raises(InvalidDocument, match="not the stream"):
        check_stream_config(GOOD, issuer=ISS, stream_id="s2")


def test_stream_status_checked() -> None:
    assert check_stream_status({"stream_id": "s", "status": "paused"}, stream_id="s").status == (
        "paused"
    )
    for bad in ({"stream_id": "s", "status": "off"}, {"stream_id": "t", "status": "enabled"}, []):
        with pytest.raises(InvalidDocument):
            check_stream_status(bad, stream_id="s")


@given(st.one_of(st.none(), st.text(max_size=300)), st.one_of(st.none(), st.text(max_size=20)))
def test_verification_state(state: str | None, stream: str | None) -> None:
    """SSF-34: the state and the stream of a verification SET; None for other SETs."""
    payload = {} if state is None else {"state": state}
    claims = {"sub_id": {"format": "opaque", "id": stream}, "events": {VERIFICATION_EVENT: payload}}
    found = verification_state(claims)
    assert found is not None
    assert found[0] == stream
    assert found[1] == (state if state is not None and len(state) <= 256 else None)
    assert verification_state({"events": {"urn:x": {}}}) is None
    assert verification_state({"events": "junk"}) is None
