"""The I/O-free part of SSF stream management: discovery URL (SSF-22), receiver
members (SSF 8.1.1), events_delivered, and subject matching (SSF-29)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from peer.protocol.ssf_streams import (
    POLL_METHOD,
    PUSH_METHOD,
    StreamConfigError,
    configuration_url,
    events_delivered,
    merge_receiver_fields,
    receiver_fields,
    subject_matches,
    wanted,
)


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        ("https://tr.example.com", "https://tr.example.com/.well-known/ssf-configuration"),
        ("https://tr.example.com/", "https://tr.example.com/.well-known/ssf-configuration"),
        (
            "https://tr.example.com/issuer1",
            "https://tr.example.com/.well-known/ssf-configuration/issuer1",
        ),
        (
            "https://tr.example.com:8443/a/b/",
            "https://tr.example.com:8443/.well-known/ssf-configuration/a/b",
        ),
    ],
)
def test_configuration_url(issuer: str, url: str) -> None:
    """SSF-22: the well-known path goes between host and path; a trailing / goes."""
    assert configuration_url(issuer) == url


def test_receiver_fields_keep_only_theirs() -> None:
    """SSF-17: transmitter members and unknown ones are ignored; poll needs no URL."""
    body = {
        "stream_id": "mine",
        "iss": "https://evil",
        "events_requested": ["a", "b", "a"],
        "delivery": {"method": POLL_METHOD, "endpoint_url": "https://ignored"},
        "x": 1,
    }
    assert receiver_fields(body) == {
        "events_requested": ["a", "b"],
        "delivery": {"method": POLL_METHOD},
    }


def test_push_endpoint_rules() -> None:
    """Push needs an https endpoint; plain http only where the caller allows it."""
    push = {"method": PUSH_METHOD, "endpoint_url": "http://127.0.0.1:9/e"}
    with pytest.raises(StreamConfigError, match="https"):
        receiver_fields({"delivery": push})
    assert receiver_fields({"delivery": push}, lambda host: host == "127.0.0.1") == {
        "delivery": push
    }
    for url in ("https://", "https://[::1", "ftp://x/e", ""):
        with pytest.raises(StreamConfigError):
            receiver_fields({"delivery": {"method": PUSH_METHOD, "endpoint_url": url}})


def test_merge_update_and_replace() -> None:
    """PATCH changes what it names; PUT deletes what it leaves out and needs delivery."""
    current = {"description": "d", "delivery": {"method": POLL_METHOD}}
    assert merge_receiver_fields(current, {"description": "e"}, replace=False) == {
        "description": "e",
        "delivery": {"method": POLL_METHOD},
    }
    new = {"delivery": {"method": POLL_METHOD}}
    assert merge_receiver_fields(current, new, replace=True) == new
    with pytest.raises(StreamConfigError):
        merge_receiver_fields(current, {"description": "e"}, replace=True)


@given(st.lists(st.text(max_size=3), unique=True), st.none() | st.lists(st.text(max_size=3)))
def test_events_delivered_is_supported_and_requested(
    supported: list[str], requested: list[str] | None
) -> None:
    """A subset of supported, in its order; of requested too when given."""
    delivered = events_delivered(supported, requested)
    assert [e for e in supported if e in delivered] == delivered
    if requested is None:
        assert delivered == supported
    else:
        assert set(delivered) == set(supported) & set(requested)


simple = st.fixed_dictionaries(
    {"format": st.sampled_from(["email", "opaque"]), "id": st.text(max_size=2)}
)
complex_subjects = st.dictionaries(
    st.sampled_from(["user", "device", "session", "tenant"]), simple, max_size=4
).map(lambda members: {"format": "complex", **members})


@given(st.one_of(simple, complex_subjects), st.one_of(simple, complex_subjects))
def test_matching_is_symmetric(a: dict[str, Any], b: dict[str, Any]) -> None:
    """SSF-29's rule reads the same from either side, and a subject matches itself."""
    assert subject_matches(a, b) == subject_matches(b, a)
    assert subject_matches(a, a)


@given(complex_subjects, complex_subjects)
def test_complex_matching_rule(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Complex subjects match iff no member both have differs."""
    differs = any(a[k] != b[k] for k in set(a) & set(b))
    assert subject_matches(a, b) is not differs


def test_matching_examples() -> None:
    """Simple only if identical; complex with a member missing on one side matches."""
    user = {"format": "email", "email": "u@example.com"}
    device = {"format": "opaque", "id": "d1"}
    assert subject_matches(user, dict(user))
    assert not subject_matches(user, {"format": "email", "email": "v@example.com"})
    assert subject_matches(
        {"format": "complex", "user": user}, {"format": "complex", "user": user, "device": device}
    )
    assert not subject_matches({"format": "complex", "user": user}, user)  # simple vs complex
    assert wanted([], None) and wanted([], user)  # no subjects: everything goes
    assert not wanted([user], None) and wanted([device, user], user)
