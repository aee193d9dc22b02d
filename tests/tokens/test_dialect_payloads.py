"""Payloads and subjects of senders on the 2021 drafts, under each ``[partners.dialect]``
setting: ``payload_check`` strict (refused), warn (accepted, with what 1.0 refuses as
warnings), off (not looked at); ``legacy_subjects`` (a complex subject without
``format`` inside the event; under ``ssf``, no top-level ``sub_id``). Signature,
``iss``, ``aud``, ``typ`` and size are enforced whatever the setting (docs/dialects.md).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from peer.errors import SETRejected
from peer.tokens.jose import sign_bytes
from peer.tokens.keys import KeyStore, generate_private_jwks, public_jwks, signing_key
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import VerifiedSET, Verifier

ISS, AUD, NOW = "https://tx.example", "https://rx.example", 2000.0
KEYS = generate_private_jwks("ES256")
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
ASSURANCE = CAEP + "assurance-level-change"

# A complex subject the 2021 drafts' way: members only, no "format": "complex".
LEGACY_COMPLEX = {
    "user": {"format": "iss_sub", "iss": "https://idp.example/", "sub": "jane"},
    "device": {"format": "iss_sub", "iss": "https://idp.example/", "sub": "e9297990"},
    "tenant": {"format": "opaque", "id": "123456789"},
}
# CAEP as a 2021 sender writes it: a vendor's initiating_entity, reason_admin as a
# plain string, and a millisecond timestamp.
REVOKED_2021 = {
    "subject": LEGACY_COMPLEX,
    "initiating_entity": "acme policy",
    "reason_admin": "Landspeed policy violation",
    "event_timestamp": 1615304991643,
}
# Assurance level change before 1.0 made namespace REQUIRED; legacy subject_type.
ASSURANCE_2021 = {
    "subject": {"subject_type": "iss_sub", "iss": "https://idp.example/", "sub": "jane"},
    "current_level": "nist-aal2",
    "previous_level": "nist-aal1",
    "change_direction": "increase",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def untyped(claims: dict[str, Any]) -> str:
    """A SET signed with the partner's key whose header has no ``typ``."""
    key = signing_key(KEYS)
    header = json.dumps({"alg": key.alg, "kid": key.kid}).encode()
    data = f"{b64(header)}.{b64(json.dumps(claims).encode())}".encode()
    return f"{data.decode()}.{b64(sign_bytes(key.alg, key.private_key, data))}"


def verifier(**options: Any) -> Verifier:
    return Verifier(issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(KEYS)), **options)


def token(events: dict[str, Any], *, keys: dict[str, Any] = KEYS, **claims: Any) -> str:
    built = build_claims(iss=ISS, aud=AUD, events=events, iat=1000, jti="j1")
    built.update(claims)
    return Signer(keys).sign(built)


def accepted(tok: str, **options: Any) -> VerifiedSET:
    return verifier(**options).verify(tok, now=NOW)


def refused(tok: str, **options: Any) -> SETRejected:
    with pytest.raises(SETRejected) as info:
        verifier(**options).verify(tok, now=NOW)
    return info.value


def test_subject_without_format_says_format_is_missing() -> None:
    """SUBID-1, SSF-7: a complex subject inside the event written without ``format``
    is refused by default, and the message names the member that is missing,
    ``format`` (it once said ``subject_type``, the legacy name, which misled)."""
    exc = refused(token({SESSION_REVOKED: {"subject": LEGACY_COMPLEX}}))
    assert exc.err == "invalid_request"
    assert "subject: missing REQUIRED member format" in exc.description
    assert "subject_type" not in exc.description
    # A simple subject without format, and a complex member without one, alike.
    bare = {"subject": {"iss": "https://idp.example/", "sub": "jane"}}
    assert (
        "subject: missing REQUIRED member format"
        in refused(token({SESSION_REVOKED: bare})).description
    )
    member = {"subject": {"format": "complex", "user": {"iss": "https://i.example", "sub": "x"}}}
    exc = refused(token({SESSION_REVOKED: member}))
    assert "subject/user: missing REQUIRED member format" in exc.description


def test_strict_refuses_2021_payloads() -> None:
    """CAEP-1 and CAEP 3.4: by default a value outside the 1.0 enumerations and a
    missing ``namespace`` are refused, naming the member."""
    exc = refused(
        token({SESSION_REVOKED: {**REVOKED_2021, "subject": {"format": "opaque", "id": "s"}}})
    )
    assert "initiating_entity" in exc.description or "reason_admin" in exc.description
    exc = refused(token({ASSURANCE: ASSURANCE_2021}))
    assert "missing REQUIRED member namespace" in exc.description


def test_legacy_subjects_accept_the_older_complex_shape_only() -> None:
    """``legacy_subjects``: the older complex subject is checked as ``"format":
    "complex"`` (each member still checked) and accepted with a warning; the claims
    handed on are exactly as sent. Payload rules stay strict."""
    sent = {SESSION_REVOKED: {"subject": copy.deepcopy(LEGACY_COMPLEX)}}
    verified = accepted(token(sent), legacy_subjects=True)
    assert verified.claims["events"] == sent  # nothing injected into what is stored
    assert verified.warnings == (
        f"event {SESSION_REVOKED}: subject: a complex subject without format",
    )
    broken = {"user": {"format": "email", "email": "not-an-address"}}
    exc = refused(token({SESSION_REVOKED: {"subject": broken}}), legacy_subjects=True)
    assert "subject/user/email" in exc.description
    exc = refused(token({SESSION_REVOKED: REVOKED_2021}), legacy_subjects=True)
    assert "initiating_entity" in exc.description or "reason_admin" in exc.description
    # A subject that is not an object of objects is no legacy complex subject.
    for odd in ({"user": "jane"}, {}):
        refused(token({SESSION_REVOKED: {"subject": odd}}), legacy_subjects=True)


def test_warn_accepts_and_reports_what_1_0_refuses() -> None:
    """``payload_check = "warn"``: the 2021 payloads are accepted, each with a
    warning that says what 1.0 would have refused (warn implies legacy subjects)."""
    verified = accepted(token({SESSION_REVOKED: REVOKED_2021}), payload_check="warn")
    assert verified.claims["events"][SESSION_REVOKED] == REVOKED_2021
    assert verified.warnings[0].endswith("subject: a complex subject without format")
    assert any("initiating_entity" in w or "reason_admin" in w for w in verified.warnings[1:]), (
        verified.warnings
    )
    verified = accepted(token({ASSURANCE: ASSURANCE_2021}), payload_check="warn")
    assert verified.warnings == (
        f"event {ASSURANCE}: (payload): missing REQUIRED member namespace",
    )
    # A conforming SET carries no warning.
    assert accepted(token({SESSION_REVOKED: {}}), payload_check="warn").warnings == ()


def test_off_skips_payload_checks() -> None:
    """``payload_check = "off"``: known payloads are not looked at, even absurd ones."""
    for payload in (REVOKED_2021, ASSURANCE_2021, {"subject": 5, "claims": []}):
        verified = accepted(
            token({SESSION_REVOKED: payload, ASSURANCE: payload}), payload_check="off"
        )
        assert verified.warnings == ()
    assert accepted(token({ASSURANCE: ASSURANCE_2021}), check_payloads=False).warnings == ()
    with pytest.raises(ValueError):
        verifier(payload_check="lenient")


def test_ssf_profile_without_sub_id_under_legacy_subjects() -> None:
    """SSF-1: ``ssf`` refuses a SET without top-level ``sub_id``; with a lax subject
    setting one whose event names a ``subject`` is accepted (warned), one naming no
    subject anywhere is still refused. SSF-11 (no ``sub``) and SSF-13 (no ``exp``)
    are never relaxed."""
    legacy = token({SESSION_REVOKED: {"subject": LEGACY_COMPLEX}})
    assert "(SSF-1)" in refused(legacy, ssf=True).description
    for options in ({"legacy_subjects": True}, {"payload_check": "warn"}, {"payload_check": "off"}):
        verified = accepted(legacy, ssf=True, **options)
        assert "no top-level sub_id (SSF-1); the event's subject names it" in verified.warnings
        assert "(SSF-1)" in refused(token({SESSION_REVOKED: {}}), ssf=True, **options).description
        subject = {"subject": {"format": "opaque", "id": "x"}}
        assert (
            "(SSF-11)"
            in refused(token({SESSION_REVOKED: subject}, sub="x"), ssf=True, **options).description
        )
        assert (
            "(SSF-13"
            in refused(token({SESSION_REVOKED: subject}, exp=9999), ssf=True, **options).description
        )


@pytest.mark.parametrize("payload_check", ["strict", "warn", "off"])
def test_signature_iss_aud_typ_and_size_always_enforced(payload_check: str) -> None:
    """Whatever the payload setting: a foreign signature, another issuer, another
    audience, a header without ``typ`` and an oversized SET are refused with their
    codes (SET-6, SET-9, SET-14)."""
    options = {"payload_check": payload_check, "legacy_subjects": True, "ssf": True}
    events = {SESSION_REVOKED: REVOKED_2021}
    assert (
        refused(token(events, keys=generate_private_jwks("ES256")), **options).err == "invalid_key"
    )
    assert refused(token(events, iss="https://other.example"), **options).err == "invalid_issuer"
    assert refused(token(events, aud="https://other.example"), **options).err == "invalid_audience"
    claims = build_claims(iss=ISS, aud=AUD, events=events, iat=1000, jti="j1")
    exc = refused(untyped(claims), **options)
    assert (exc.err, "typ" in exc.description) == ("invalid_request", True)
    big = token({SESSION_REVOKED: {**REVOKED_2021, "pad": "x" * 5000}})
    assert refused(big, max_token_bytes=4096, **options).err == "invalid_request"
