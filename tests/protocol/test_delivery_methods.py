"""Delivery-method URIs old and new, and where a transmitter's metadata is found
(SSF-18, SSF-19, SSF-20, SSF-22; the RISC names of the older drafts), and ``acks``
read as ``ack`` by the poll codec (decision 2)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame
from peer.protocol import delivery_methods as dm
from peer.protocol.limits import FrameLimits
from peer.protocol.poll import PollRequest


def test_method_uris_current_and_legacy() -> None:
    """SSF 6.1: ``urn:ietf:rfc:8935`` is push, ``urn:ietf:rfc:8936`` poll; the RISC
    delivery-method URIs of the older drafts mean the same; push-pull and multi-push
    have the drafts' addresses (decision 14)."""
    assert dm.normalise_method("urn:ietf:rfc:8935") == "push"
    assert dm.normalise_method("urn:ietf:rfc:8936") == "poll"
    risc = "https://schemas.openid.net/secevent/risc/delivery-method/"
    assert dm.normalise_method(risc + "push") == "push"
    assert dm.normalise_method(risc + "poll") == "poll"
    assert dm.normalise_method(dm.PUSHPULL) == "pushpull"
    assert dm.normalise_method(dm.MULTIPUSH) == "multipush"
    for method in ("push", "poll", "pushpull", "multipush"):
        assert dm.normalise_method(dm.method_uri(method)) == method
        assert dm.normalise_method(dm.method_uri(method, legacy=True)) == method
    assert dm.method_uri("push", legacy=True) == risc + "push"


@given(st.one_of(st.text(max_size=80), st.none(), st.integers(), st.lists(st.text())))
def test_unknown_methods_are_none(value: object) -> None:
    """Matching is exact: anything but a listed URI (case, whitespace, a trailing
    slash, a non-string) is an unknown method."""
    if isinstance(value, str) and value in dm.METHODS:
        return
    assert dm.normalise_method(value) is None
    for uri in dm.METHODS:
        for variant in (uri.upper(), uri + "/", " " + uri, uri + " "):
            assert dm.normalise_method(variant) is None


def test_discovery_urls() -> None:
    """SSF-20, SSF-22: the well-known path goes between host and path, a terminating
    ``/`` removed first; the legacy RISC location comes second."""
    assert dm.discovery_urls("https://tr.example.com/issuer1") == (
        "https://tr.example.com/.well-known/ssf-configuration/issuer1",
        "https://tr.example.com/.well-known/risc-configuration/issuer1",
    )
    assert dm.well_known_url("https://tr.example.com/") == (
        "https://tr.example.com/.well-known/ssf-configuration"
    )
    assert dm.well_known_url("https://tr.example.com") == (
        "https://tr.example.com/.well-known/ssf-configuration"
    )
    assert dm.well_known_url("https://tr.example.com:8443/a/b/") == (
        "https://tr.example.com:8443/.well-known/ssf-configuration/a/b"
    )


@given(
    st.sampled_from(["https", "http"]),
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}(:[1-9][0-9]{0,4})?", fullmatch=True),
    st.lists(st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True), max_size=4),
    st.booleans(),
)
def test_discovery_url_keeps_host_and_path(
    scheme: str, netloc: str, segments: list[str], slash: bool
) -> None:
    """For any issuer: same scheme and authority, the path is the well-known path
    followed by the issuer's path without its terminating ``/`` (SSF-22)."""
    path = "".join("/" + s for s in segments) + ("/" if slash else "")
    issuer = f"{scheme}://{netloc}{path}"
    for url, well_known in zip(
        dm.discovery_urls(issuer), (dm.SSF_DISCOVERY_PATH, dm.LEGACY_DISCOVERY_PATH), strict=True
    ):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (scheme, netloc)
        assert parts.path == well_known + path.removesuffix("/")
        assert not parts.query and not parts.fragment


LIMITS = FrameLimits()


def test_acks_read_as_ack() -> None:
    """Decision 2: on a poll request ``acks`` is read as ``ack``; both together count
    each jti once; an ``acks`` that is not an array of jtis is a 400 naming it, and
    the two together stay within the ack limit."""
    parsed = PollRequest.parse(b'{"acks": ["a", "b"], "ack": ["b", "c"]}', limits=LIMITS)
    assert sorted(parsed.ack) == ["a", "b", "c"] and len(parsed.ack) == 3
    assert PollRequest.parse(b'{"acks": ["a"]}', limits=LIMITS).ack == ("a",)
    with pytest.raises(MalformedFrame, match="^acks"):
        PollRequest.parse(b'{"acks": "a"}', limits=LIMITS)
    with pytest.raises(MalformedFrame, match="^acks"):
        PollRequest.parse(b'{"acks": [1]}', limits=LIMITS)
    small = FrameLimits(max_acks_per_frame=3)
    with pytest.raises(FrameTooLarge):
        PollRequest.parse(b'{"ack": ["a", "b"], "acks": ["c", "d"]}', limits=small)
    assert len(PollRequest.parse(b'{"ack": ["a", "b"], "acks": ["b", "a"]}', limits=small).ack) == 2


def test_ack_member_on_the_wire() -> None:
    """Our poll request names the acknowledgements as the partner reads them."""
    assert PollRequest(ack=("x",)).to_json() == {"returnImmediately": False, "ack": ["x"]}
    assert PollRequest(ack=("x",), ack_member="acks").to_json() == {
        "returnImmediately": False,
        "acks": ["x"],
    }
