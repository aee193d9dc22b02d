"""Signing and verifying SETs (RFC 8417, SET-n; the SSF SET profile).

SET-21 and SET-22 (TLS, confidentiality in transit) belong to the transports and are
tested there, not here.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import orjson
import pytest
from joserfc import jws
from joserfc.jwk import import_key

from peer.errors import SETRejected
from peer.tokens.jose import sign_bytes
from peer.tokens.keys import ALGORITHMS, KeyStore, generate_private_jwks, public_jwks, signing_key
from peer.tokens.sign import Signer, build_claims, new_jti
from peer.tokens.verify import VerifiedSET, Verifier, unverified_jti
from tests.tokens import examples

ISS = "https://tx.example"
AUD = "https://rx.example"
NOW = 1_700_000_000.0
EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

KEYS = {alg: generate_private_jwks(alg) for alg in ALGORITHMS}
KID = {alg: KEYS[alg]["keys"][0]["kid"] for alg in ALGORITHMS}
SIGNERS = {alg: Signer(KEYS[alg]) for alg in ALGORITHMS}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims; an override of ``...`` removes the claim."""
    base = build_claims(
        iss=ISS,
        aud=AUD,
        events={EVENT: {}},
        iat=int(NOW),
        jti="j-1",
        sub_id={"format": "email", "email": "a@b.example"},
    )
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def verifier(alg: str = "ES256", **kwargs: Any) -> Verifier:
    return Verifier(issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(KEYS[alg])), **kwargs)


def sign(payload: dict[str, Any], alg: str = "ES256") -> str:
    return SIGNERS[alg].sign(payload)


def sign_raw(header: dict[str, Any], payload: bytes, key_alg: str = "ES256") -> str:
    """A token with any header and payload bytes, signed by our key for ``key_alg``."""
    key = signing_key(KEYS[key_alg])
    data = f"{b64(orjson.dumps(header))}.{b64(payload)}".encode()
    return data.decode() + "." + b64(sign_bytes(key.alg, key.private_key, data))


def sign_with_header(
    header: dict[str, Any], payload: dict[str, Any], key_alg: str = "ES256"
) -> str:
    return sign_raw(header, orjson.dumps(payload), key_alg)


def header(**members: Any) -> dict[str, Any]:
    base = {"alg": "ES256", "typ": "secevent+jwt", "kid": KID["ES256"]}
    base.update(members)
    return {k: v for k, v in base.items() if v is not ...}


def forge(hdr: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join([b64(orjson.dumps(hdr)), b64(orjson.dumps(payload)), b64(signature)])


def rejected(token: object, v: Verifier | None = None, **kwargs: Any) -> SETRejected:
    with pytest.raises(SETRejected) as info:
        (v or verifier()).verify(token, now=NOW, **kwargs)
    return info.value


@pytest.mark.parametrize("alg", ALGORITHMS)
class TestAlgorithms:
    def test_set16_set23_sign_and_verify(self, alg: str) -> None:
        """SET-16, SET-23: every allowed algorithm signs and verifies."""
        verified = verifier(alg).verify(sign(claims(), alg), now=NOW)
        assert isinstance(verified, VerifiedSET)
        assert (verified.jti, verified.iss, verified.claims) == ("j-1", ISS, claims())
        assert verified.header == {"alg": alg, "typ": "secevent+jwt", "kid": KID[alg]}

    def test_set14_header_is_exactly_alg_typ_kid(self, alg: str) -> None:
        """SET-14: header {alg, typ: secevent+jwt, kid}; the short typ form is used."""
        token = sign(claims(), alg)
        hdr = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert hdr == {"alg": alg, "typ": "secevent+jwt", "kid": KID[alg]}

    @pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")
    def test_cross_check_with_joserfc(self, alg: str) -> None:
        """Our hand-written JWS path agrees with joserfc both ways (decision: jose.py)."""
        private = import_key(KEYS[alg]["keys"][0])
        public = import_key(public_jwks(KEYS[alg])["keys"][0])
        ours = sign(claims(), alg)
        decoded = jws.deserialize_compact(ours, public, algorithms=[alg])
        assert json.loads(decoded.payload) == claims()
        assert decoded.protected == {"alg": alg, "typ": "secevent+jwt", "kid": KID[alg]}
        # joserfc orders the header members its own way: we verify what was sent.
        theirs = jws.serialize_compact(
            {"kid": KID[alg], "typ": "secevent+jwt", "alg": alg},
            orjson.dumps(claims()),
            private,
            algorithms=[alg],
        )
        assert verifier(alg).verify(theirs, now=NOW).claims == claims()

    def test_set23_tampered_payload_fails(self, alg: str) -> None:
        """SET-23: the signature covers header and claims."""
        hdr, _, signature = sign(claims(), alg).split(".")
        token = ".".join([hdr, b64(orjson.dumps(claims(jti="other"))), signature])
        assert rejected(token, verifier(alg)).err == "invalid_key"

    def test_signature_from_another_key_fails(self, alg: str) -> None:
        """A valid signature by a key the partner does not hold is invalid_key."""
        other = Signer(generate_private_jwks(alg, kid=KID[alg]))
        assert rejected(other.sign(claims()), verifier(alg)).err == "invalid_key"


@pytest.mark.parametrize("key_alg", ALGORITHMS)
@pytest.mark.parametrize("token_alg", ALGORITHMS)
def test_no_key_algorithm_confusion(token_alg: str, key_alg: str) -> None:
    """A key serves only its own algorithm: every cross pairing is invalid_key."""
    if token_alg == key_alg:
        return
    # Header claims token_alg and names the partner's key_alg key; signed as token_alg.
    token = sign_with_header(
        {"alg": token_alg, "typ": "secevent+jwt", "kid": KID[key_alg]}, claims(), token_alg
    )
    assert rejected(token, verifier(key_alg)).err == "invalid_key"


class TestRequiredClaims:
    @pytest.mark.parametrize(
        "claim, err",
        [
            ("iss", "invalid_request"),  # SET-6
            ("iat", "invalid_request"),  # SET-7
            ("jti", "invalid_request"),  # SET-8
            ("aud", "invalid_audience"),  # SET-9: no aud names no recipient
            ("events", "invalid_request"),  # SET-1
        ],
    )
    def test_set1_set6_set7_set8_set9_missing(self, claim: str, err: str) -> None:
        """SET-1, SET-6..SET-9: iss, iat, jti, aud and events are required."""
        assert rejected(sign(claims(**{claim: ...}))).err == err

    @pytest.mark.parametrize(
        "claim, value",
        [
            ("iss", 5),
            ("iss", ["https://tx.example"]),
            ("iat", "1700000000"),
            ("iat", True),
            ("iat", None),
            ("iat", [1]),
            ("jti", ""),
            ("jti", 7),
            ("jti", None),
            ("aud", 5),
            ("aud", [1]),
            ("aud", {"a": AUD}),
            ("aud", [AUD, None]),
            ("events", []),
            ("events", {}),
            ("events", "x"),
            ("events", {"not-a-uri": {}}),
            ("events", {":no-scheme": {}}),
            ("events", {"https:": {}}),
            ("events", {EVENT: []}),
            ("events", {EVENT: "x"}),
            ("events", {EVENT: None}),
            ("txn", 42),
            ("txn", None),
            ("toe", "yesterday"),
            ("toe", False),
            ("sub", 5),
            ("exp", "soon"),
            ("nbf", "later"),
        ],
    )
    def test_set1_set7_set8_set10_set13_wrong_types(self, claim: str, value: Any) -> None:
        """SET-1, SET-6..SET-10, SET-13: claim types are checked; a mistyped claim is
        invalid_request."""
        assert rejected(sign(claims(**{claim: value}))).err == "invalid_request"

    def test_set1_events_payload_may_be_empty(self) -> None:
        """SET-1: an event with nothing to say uses {}."""
        assert verifier().verify(sign(claims(events={EVENT: {}})), now=NOW)

    def test_set2_duplicate_event_uri_rejected(self) -> None:
        """SET-2: the same event identifier twice is rejected at parse time."""
        payload = orjson.dumps(claims()).replace(
            b'"events":{', b'"events":{"' + EVENT.encode() + b'":{},', 1
        )
        err = rejected(sign_raw(header(), payload))
        assert err.err == "invalid_request" and "duplicate" in err.description

    def test_duplicate_claim_rejected(self) -> None:
        """Strict parsing: a duplicated iss cannot smuggle a second issuer."""
        payload = orjson.dumps(claims()).replace(b"{", b'{"iss":"https://evil.example",', 1)
        assert rejected(sign_raw(header(), payload)).err == "invalid_request"

    def test_set3_set4_several_event_uris_are_facets(self) -> None:
        """SET-3, SET-4, SSF-16: several URIs are accepted as facets of one event, in both
        profiles (a receiver cannot tell facets from a batch; SSF only says SHOULD)."""
        token = sign(claims(events={EVENT: {}, "https://example.com/ext": {"x": 1}}))
        assert len(verifier().verify(token, now=NOW).claims["events"]) == 2
        assert verifier(ssf=True).verify(token, now=NOW)

    def test_set5_unknown_claims_ignored(self) -> None:
        """SET-5, SSF-17: unknown claims are ignored, not rejected."""
        assert verifier(ssf=True).verify(sign(claims(private_claim={"x": 1})), now=NOW)

    def test_set12_urn_event_identifiers(self) -> None:
        """SET-12: stable URIs of any scheme (urn:, https:) name events."""
        token = sign(claims(events={"urn:ietf:params:scim:event:create": {"ref": "x"}}))
        assert verifier().verify(token, now=NOW)

    def test_set13_txn_and_toe(self) -> None:
        """SET-13: txn string and toe NumericDate (int or float) are accepted."""
        assert verifier().verify(sign(claims(txn="t-1", toe=NOW - 5.5)), now=NOW)

    def test_float_iat(self) -> None:
        """SET-7: NumericDate may carry fractions of a second."""
        assert verifier().verify(sign(claims(iat=NOW - 0.25)), now=NOW)


class TestIssuerAudience:
    def test_set6_wrong_issuer(self) -> None:
        """SET-6, SSF-12: iss must be the partner's issuer."""
        assert rejected(sign(claims(iss="https://evil.example"))).err == "invalid_issuer"
        assert rejected(sign(claims(iss=ISS + "/"))).err == "invalid_issuer"

    def test_set6_issuer_checked_before_key(self) -> None:
        """Impersonation: a valid signature under another key with another iss is
        invalid_issuer."""
        token = sign(claims(iss="https://other.example"), "EdDSA")
        assert rejected(token).err == "invalid_issuer"

    def test_set6_payload_iss_is_not_the_set_issuer(self) -> None:
        """SET-6: an iss inside an event payload (RFC 8417 Figure 3) is not checked."""
        token = sign(claims(events={EVENT: {"iss": "https://elsewhere.example"}}))
        assert verifier().verify(token, now=NOW)

    def test_set9_audience(self) -> None:
        """SET-9: our audience must be in aud (string or array)."""
        assert verifier().verify(sign(claims(aud=[AUD, "https://x.example"])), now=NOW)
        assert rejected(sign(claims(aud="https://x.example"))).err == "invalid_audience"
        assert rejected(sign(claims(aud=["https://x.example"]))).err == "invalid_audience"
        assert rejected(sign(claims(aud=[]))).err == "invalid_audience"

    def test_set9_several_audiences_of_ours(self) -> None:
        """A receiver known by several audience values accepts any of them."""
        v = Verifier(
            issuer=ISS,
            audience=[AUD, "https://rx2.example"],
            keys=KeyStore(public_jwks(KEYS["ES256"])),
        )
        assert v.verify(sign(claims(aud="https://rx2.example")), now=NOW)


class TestTyping:
    @pytest.mark.parametrize("typ", ["secevent+jwt", "SecEvent+JWT", "application/secevent+jwt"])
    def test_set14_typ_forms(self, typ: str) -> None:
        """SET-14: typ compares case-insensitively; the application/ prefix is accepted
        (RFC 7515 §4.1.9)."""
        assert verifier().verify(sign_with_header(header(typ=typ), claims()), now=NOW)

    @pytest.mark.parametrize(
        "typ", [..., None, "JWT", "at+jwt", "secevent+jwt; x=1", "app/secevent+jwt", 5, [], ""]
    )
    def test_set14_set20_wrong_or_missing_typ(self, typ: Any) -> None:
        """SET-14, SET-20, decision 9: typ is required by default; JWT/at+jwt refused."""
        token = sign_with_header(header(typ=typ), claims())
        assert rejected(token).err == "invalid_request"

    def test_set14_typ_optional_when_policy_allows(self) -> None:
        """SET-14 (MAY): a partner may be allowed to omit typ; a present typ is still checked."""
        relaxed = verifier(require_typ=False)
        assert relaxed.verify(sign_with_header(header(typ=...), claims()), now=NOW)
        assert rejected(sign_with_header(header(typ="JWT"), claims()), relaxed)


class TestDangerousHeaders:
    def test_set15_alg_none_rejected(self) -> None:
        """SET-15: an unsecured SET (RFC 8417 Figure 6) is refused."""
        assert rejected(examples.FIGURE_6).err == "invalid_key"
        token = forge({"alg": "none", "typ": "secevent+jwt"}, claims(), b"")
        assert rejected(token).err == "invalid_key"

    @pytest.mark.parametrize(
        "alg", ["HS256", "HS384", "HS512", "none", "NONE", "None", "ES512", "RS512", "es256", ""]
    )
    def test_disallowed_algorithms(self, alg: Any) -> None:
        """No HMAC, nothing outside ES256/ES384/EdDSA/RS256/PS256, no case games."""
        assert rejected(forge(header(alg=alg), claims())).err == "invalid_key"

    @pytest.mark.parametrize("alg", [None, 5, ["ES256"], {"alg": "ES256"}, ...])
    def test_alg_missing_or_not_a_string(self, alg: Any) -> None:
        assert rejected(forge(header(alg=alg), claims())).err == "invalid_key"

    def test_hs256_with_public_key_as_secret(self) -> None:
        """Key confusion: HS256 keyed with the RSA public key (PEM, JWK or n) is refused."""
        import hashlib
        import hmac

        from cryptography.hazmat.primitives import serialization

        public_key = signing_key(KEYS["RS256"]).private_key.public_key()
        pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for secret in (
            pem,
            json.dumps(public_jwks(KEYS["RS256"])["keys"][0]).encode(),
            KEYS["RS256"]["keys"][0]["n"].encode(),
        ):
            hdr = b64(orjson.dumps({"alg": "HS256", "typ": "secevent+jwt", "kid": KID["RS256"]}))
            data = f"{hdr}.{b64(orjson.dumps(claims()))}"
            mac = hmac.new(secret, data.encode(), hashlib.sha256).digest()
            assert rejected(f"{data}.{b64(mac)}", verifier("RS256")).err == "invalid_key"

    def test_rs256_token_against_ec_key_set(self) -> None:
        """An RS256 token (valid under its own RSA key) against an EC-only key set."""
        token = sign(claims(), "RS256")
        assert rejected(token, verifier("ES256")).err == "invalid_key"

    @pytest.mark.parametrize(
        "name, value",
        [
            ("jwk", public_jwks(KEYS["ES256"])["keys"][0]),
            ("jku", "https://evil.example/jwks"),
            ("x5u", "https://evil.example/cert"),
            ("x5c", ["MIIB"]),
        ],
    )
    def test_embedded_key_headers(self, name: str, value: Any) -> None:
        """Keys come only from the partner's configured set: jwk/jku/x5u/x5c refused,
        even when the embedded key is the right one."""
        assert rejected(sign_with_header(header(**{name: value}), claims())).err == "invalid_key"

    @pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x", None])
    def test_any_crit_refused(self, crit: Any) -> None:
        """RFC 7515 §4.1.11: we understand no extension, so any crit is refused."""
        token = sign_with_header(header(crit=crit, exp=1, b64=True), claims())
        assert rejected(token).err == "invalid_request"

    def test_unencoded_payload_refused(self) -> None:
        """RFC 7797 b64: false changes what is signed; refused (it needs crit anyway)."""
        token = sign_with_header(header(b64=False), claims())
        assert rejected(token).err == "invalid_request"

    @pytest.mark.parametrize(
        "kid",
        [
            "../../etc/passwd",
            "/dev/zero",
            "file:///etc/passwd",
            "https://evil.example/k",
            "' OR '1'='1",
            "\u0000",
            "x" * 3000,
            "",
        ],
    )
    def test_kid_tricks(self, kid: str) -> None:
        """A kid is a dictionary key, never a path, URL or query; nor echoed back."""
        err = rejected(sign_with_header(header(kid=kid), claims()))
        assert err.err == "invalid_key" and (not kid or kid not in err.description)

    @pytest.mark.parametrize("kid", [5, None, ["k"], {"k": 1}])
    def test_kid_must_be_string(self, kid: Any) -> None:
        assert rejected(sign_with_header(header(kid=kid), claims())).err == "invalid_request"

    def test_no_kid_with_one_key(self) -> None:
        """Without kid, the partner's only key is used."""
        assert verifier().verify(sign_with_header(header(kid=...), claims()), now=NOW)

    def test_no_kid_with_two_keys(self) -> None:
        """Without kid and with two keys there is no guessing: invalid_key."""
        both = public_jwks(KEYS["ES256"])["keys"] + public_jwks(KEYS["EdDSA"])["keys"]
        v = Verifier(issuer=ISS, audience=AUD, keys=KeyStore({"keys": both}))
        assert v.verify(sign(claims()), now=NOW)
        assert rejected(sign_with_header(header(kid=...), claims()), v).err == "invalid_key"

    def test_rotated_keys_apply_to_cached_headers(self) -> None:
        """The header cache never caches a key: after KeyStore.replace the old key fails."""
        v = verifier()
        token = sign(claims())
        assert v.verify(token, now=NOW)
        v.keys.replace(public_jwks(KEYS["EdDSA"]))
        assert rejected(token, v).err == "invalid_key"
        v.keys.replace(public_jwks(KEYS["ES256"]))
        assert v.verify(token, now=NOW)

    def test_rejected_headers_stay_rejected(self) -> None:
        """Only headers that passed are cached: a bad header fails every time."""
        v = verifier()
        token = sign_with_header(header(typ="JWT"), claims())
        for _ in range(3):
            assert rejected(token, v).err == "invalid_request"


class TestTime:
    def test_set24_set25_old_sets_are_accepted(self) -> None:
        """SET-24, SET-25: SETs are never refused for age (late redelivery)."""
        assert verifier().verify(sign(claims(iat=1)), now=NOW)

    def test_future_iat_beyond_skew(self) -> None:
        """Decision: iat up to max_future_skew (300 s) ahead passes; beyond, invalid_request."""
        assert verifier().verify(sign(claims(iat=NOW + 300)), now=NOW)
        assert rejected(sign(claims(iat=NOW + 301))).err == "invalid_request"
        assert verifier(max_future_skew=3600).verify(sign(claims(iat=NOW + 3000)), now=NOW)

    def test_set11_exp_honoured_outside_ssf(self) -> None:
        """SET-11: exp is NOT RECOMMENDED; if present and past (beyond skew) it is honoured."""
        assert verifier().verify(sign(claims(exp=NOW + 60)), now=NOW)
        assert rejected(sign(claims(exp=NOW - 3600))).err == "invalid_request"

    def test_nbf_in_the_future(self) -> None:
        """RFC 7519 §4.1.5 (validation per SET-16): nbf beyond the skew is refused."""
        assert verifier().verify(sign(claims(nbf=NOW + 10)), now=NOW)
        assert rejected(sign(claims(nbf=NOW + 3600))).err == "invalid_request"


class TestSSFProfile:
    def test_ssf1_sub_id_required(self) -> None:
        """SSF-1, SET-17: the SSF profile requires a top-level sub_id."""
        token = sign(claims(sub_id=...))
        assert "sub_id" in rejected(token, verifier(ssf=True)).description
        assert verifier().verify(token, now=NOW)  # RFC 8417 alone: fine

    def test_ssf11_set10_set18_no_sub(self) -> None:
        """SSF-11, SET-10, SET-18: SSF SETs carry no sub; plain RFC 8417 allows it."""
        token = sign(claims(sub="user-1"))
        assert rejected(token, verifier(ssf=True)).err == "invalid_request"
        assert verifier().verify(token, now=NOW)

    def test_ssf13_set19_no_exp(self) -> None:
        """SSF-13, SET-19: the SSF profile forbids exp, even a future one."""
        assert rejected(sign(claims(exp=NOW + 60)), verifier(ssf=True)).err == "invalid_request"

    def test_ssf10_typ_required(self) -> None:
        """SSF-10: explicit typing is a MUST even if the partner relaxed it."""
        v = verifier(ssf=True, require_typ=False)
        assert rejected(sign_with_header(header(typ=...), claims()), v).err == "invalid_request"

    def test_sub_id_checked(self) -> None:
        """SUBID (RFC 9493 §4.1): sub_id holds a valid subject identifier."""
        for bad in ({"format": "email"}, "a@b.example", {"format": "email", "email": 5}):
            assert rejected(sign(claims(sub_id=bad))).err == "invalid_request"

    def test_strict_subjects(self) -> None:
        """Decision 11: extra members pass when lax, fail with strict_subjects."""
        token = sign(claims(sub_id={"format": "email", "email": "a@b.example", "x": 1}))
        assert verifier().verify(token, now=NOW)
        assert rejected(token, verifier(strict_subjects=True)).err == "invalid_request"


class TestExamples:
    @pytest.mark.parametrize("name", sorted(examples.FIGURES))
    def test_rfc8417_figures_1_to_4_verify_when_signed(self, name: str) -> None:
        """RFC 8417 §2.1 Figures 1-4, re-signed by our key, verify unchanged."""
        payload = examples.FIGURES[name]
        aud = payload["aud"] if isinstance(payload["aud"], str) else payload["aud"][0]
        v = Verifier(issuer=payload["iss"], audience=aud, keys=KeyStore(public_jwks(KEYS["ES256"])))
        assert v.verify(sign(payload), now=NOW).claims == payload

    def test_rfc8417_figure_5_verifies_when_signed(self) -> None:
        """RFC 8417 §2.4 Figure 5 (the claims inside Figure 6), signed instead of alg none."""
        payload = json.loads(base64.urlsafe_b64decode(examples.FIGURE_6.split(".")[1] + "=="))
        assert payload["events"]["urn:ietf:params:scim:event:create"]["ref"]
        v = Verifier(
            issuer=payload["iss"],
            audience=payload["aud"][1],
            keys=KeyStore(public_jwks(KEYS["EdDSA"])),
        )
        assert v.verify(sign(payload, "EdDSA"), now=NOW).claims == payload

    @pytest.mark.parametrize(
        "name, payload", examples.PUBLISHED_SETS, ids=[n for n, _ in examples.PUBLISHED_SETS]
    )
    def test_published_ssf_caep_risc_sets_verify_when_signed(
        self, name: str, payload: dict[str, Any]
    ) -> None:
        """The SSF/CAEP/RISC example SETs, re-signed, pass the whole verifier."""
        aud = payload["aud"] if isinstance(payload["aud"], str) else payload["aud"][0]
        v = Verifier(issuer=payload["iss"], audience=aud, keys=KeyStore(public_jwks(KEYS["ES256"])))
        # One CAEP example has an iat in the 25th century (a typo kept as published).
        now = max(NOW, payload["iat"])
        assert v.verify(sign(payload), now=now).claims == payload

    @pytest.mark.parametrize("uri, payload", examples.INVALID_EVENT_PAYLOADS[:8])
    def test_invalid_payloads_rejected(self, uri: str, payload: dict[str, Any]) -> None:
        """A known event whose payload breaks its schema is invalid_request."""
        err = rejected(sign(claims(events={uri: payload})))
        assert err.err == "invalid_request" and uri in err.description

    def test_payload_checks_can_be_off(self) -> None:
        uri, payload = examples.INVALID_EVENT_PAYLOADS[0]
        assert verifier(check_payloads=False).verify(sign(claims(events={uri: payload})), now=NOW)


def test_expected_jti_mismatch() -> None:
    """Decision 10: the sets key must equal the SET's jti."""
    assert verifier().verify(sign(claims()), now=NOW, expected_jti="j-1")
    assert rejected(sign(claims()), expected_jti="other").err == "invalid_request"


def test_unverified_jti_for_forwarding() -> None:
    assert unverified_jti(sign(claims())) == "j-1"
    for bad in ("a.b.c", sign(claims(jti=5)), forge({}, [])):  # type: ignore[arg-type]
        with pytest.raises(SETRejected):
            unverified_jti(bad)


class TestBuildClaims:
    def test_set8_set26_defaults(self) -> None:
        """SET-8: a fresh random jti (UUID4 hex) per SET; SET-26: nothing we were not given."""
        one = build_claims(iss=ISS, aud=AUD, events={EVENT: {}}, iat=5)
        two = build_claims(iss=ISS, aud=AUD, events={EVENT: {}}, iat=5)
        assert one["jti"] != two["jti"] and uuid.UUID(hex=one["jti"]).version == 4
        assert len(one["jti"]) == 32 and one["iat"] == 5
        assert set(one) == {"iss", "iat", "jti", "aud", "events"}

    def test_optional_claims_and_extra(self) -> None:
        """SET-5, SET-13: txn/toe/sub_id when given; extra never overrides our claims."""
        built = build_claims(
            iss=ISS,
            aud=[AUD],
            events={EVENT: {}},
            iat=5,
            jti="j",
            sub_id={"format": "opaque", "id": "1"},
            txn="t",
            toe=4.5,
            extra={"iss": "https://evil.example", "sid": "s"},
        )
        assert built["iss"] == ISS and built["sid"] == "s" and built["aud"] == [AUD]
        assert (built["txn"], built["toe"], built["sub_id"]["id"]) == ("t", 4.5, "1")

    @pytest.mark.parametrize(
        "overrides",
        [
            {"iss": ""},
            {"aud": []},
            {"aud": [5]},
            {"events": {}},
            {"events": {"no-uri": {}}},
            {"events": {EVENT: "x"}},
            {"iat": "now"},
            {"iat": float("nan")},
            {"jti": ""},
            {"txn": 5},
            {"toe": True},
        ],
    )
    def test_caller_mistakes_raise_at_once(self, overrides: dict[str, Any]) -> None:
        """A SET the partner would reject is a caller bug: ValueError before signing."""
        kwargs: dict[str, Any] = {"iss": ISS, "aud": AUD, "events": {EVENT: {}}, "iat": 5}
        with pytest.raises(ValueError):
            build_claims(**(kwargs | overrides))

    def test_signer_refuses_unencodable_claims(self) -> None:
        with pytest.raises(TypeError):
            sign({"x": object()})


def test_default_jti_is_a_random_uuid4_in_hex() -> None:
    """SET-8: a unique jti by default, in ``uuid.uuid4().hex``'s form (version 4, the
    RFC 4122 variant, 32 lowercase hex digits), never the same twice."""
    seen = {new_jti() for _ in range(2000)}
    assert len(seen) == 2000
    for jti in seen:
        parsed = uuid.UUID(hex=jti)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, jti)
