"""Signing and verifying SETs (spec/sets.md; the SSF SET profile of spec/ssf.md)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import orjson
import pytest
from joserfc import jws
from joserfc.jwk import import_key

from peer.errors import SETRejected
from peer.tokens.keys import ALGORITHMS, KeyStore, generate_private_jwks, public_jwks
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import Verifier, unverified_jti
from tests.tokens import examples

ISS = "https://tx.example"
AUD = "https://rx.example"
NOW = 1_700_000_000.0
EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

KEYS = {alg: generate_private_jwks(alg) for alg in ALGORITHMS}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
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
    return Signer(KEYS[alg]).sign(payload)


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join([b64(orjson.dumps(header)), b64(orjson.dumps(payload)), b64(signature)])


def rejected(token: object, v: Verifier | None = None, **kwargs: Any) -> SETRejected:
    with pytest.raises(SETRejected) as info:
        (v or verifier()).verify(token, now=NOW, **kwargs)
    return info.value


@pytest.mark.parametrize("alg", ALGORITHMS)
class TestAlgorithms:
    def test_sign_and_verify(self, alg: str) -> None:
        """SET-16, SET-23: every allowed algorithm signs and verifies."""
        verified = verifier(alg).verify(sign(claims(), alg), now=NOW)
        assert verified.jti == "j-1" and verified.iss == ISS

    def test_header_is_typ_and_kid(self, alg: str) -> None:
        """SET-14: header {alg, typ: secevent+jwt, kid}; the short typ form is used."""
        token = sign(claims(), alg)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header == {"alg": alg, "typ": "secevent+jwt", "kid": KEYS[alg]["keys"][0]["kid"]}

    @pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")
    def test_cross_check_with_joserfc(self, alg: str) -> None:
        """Our hot path agrees with joserfc both ways (decision: hand-written JOSE path)."""
        private = import_key(KEYS[alg]["keys"][0])
        public = import_key(public_jwks(KEYS[alg])["keys"][0])
        ours = sign(claims(), alg)
        assert (
            json.loads(jws.deserialize_compact(ours, public, algorithms=[alg]).payload) == claims()
        )
        theirs = jws.serialize_compact(
            {"alg": alg, "typ": "secevent+jwt", "kid": KEYS[alg]["keys"][0]["kid"]},
            orjson.dumps(claims()),
            private,
            algorithms=[alg],
        )
        assert verifier(alg).verify(theirs, now=NOW).claims == claims()

    def test_tampered_payload_fails(self, alg: str) -> None:
        """SET-23: the signature covers header and claims."""
        header, _, signature = sign(claims(), alg).split(".")
        token = ".".join([header, b64(orjson.dumps(claims(jti="other"))), signature])
        assert rejected(token, verifier(alg)).err == "invalid_key"


class TestRequiredClaims:
    @pytest.mark.parametrize(
        "claim, item",
        [
            ("iss", "SET-6"),
            ("iat", "SET-7"),
            ("jti", "SET-8"),
            ("aud", "SET-9"),
            ("events", "SET-1"),
        ],
    )
    def test_missing_required_claim(self, claim: str, item: str) -> None:
        """SET-1, SET-6..SET-9: iss, iat, jti, aud and events are required."""
        payload = claims()
        del payload[claim]
        err = rejected(sign(payload)).err
        expected = {"iss": "invalid_request", "aud": "invalid_audience"}.get(
            claim, "invalid_request"
        )
        assert err == expected, item

    @pytest.mark.parametrize(
        "claim, value",
        [
            ("iss", 5),
            ("iat", "1700000000"),
            ("iat", True),
            ("jti", ""),
            ("jti", 7),
            ("aud", 5),
            ("aud", []),
            ("aud", [1]),
            ("events", []),
            ("events", {}),
            ("events", {"not-a-uri": {}}),
            ("events", {EVENT: []}),
            ("events", {EVENT: "x"}),
            ("txn", 42),
            ("toe", "yesterday"),
            ("sub", 5),
        ],
    )
    def test_wrong_types(self, claim: str, value: Any) -> None:
        """SET-1, SET-7, SET-8, SET-13: claim types are checked."""
        assert rejected(sign(claims(**{claim: value}))).err in (
            "invalid_request",
            "invalid_audience",
        )

    def test_set1_events_payload_may_be_empty(self) -> None:
        """SET-1: an event with nothing to say uses {}."""
        assert verifier().verify(sign(claims(events={EVENT: {}})), now=NOW)

    def test_set2_duplicate_event_uri_rejected(self) -> None:
        """SET-2: the same event identifier twice is rejected at parse time."""
        payload = orjson.dumps(claims()).replace(
            b'"events":{', b'"events":{"' + EVENT.encode() + b'":{},', 1
        )
        header = b64(
            orjson.dumps(
                {"alg": "ES256", "typ": "secevent+jwt", "kid": KEYS["ES256"]["keys"][0]["kid"]}
            )
        )
        signer = Signer(KEYS["ES256"])
        from peer.tokens.jose import sign_bytes

        data = f"{header}.{b64(payload)}".encode()
        token = data.decode() + "." + b64(sign_bytes("ES256", signer.key.private_key, data))
        assert "duplicate" in rejected(token).description

    def test_set3_set4_several_event_uris_are_facets(self) -> None:
        """SET-3, SET-4: several URIs in one SET are accepted (facets of one event)."""
        assert verifier().verify(sign(examples.FIGURE_1 | {"iss": ISS, "aud": AUD}), now=NOW)

    def test_set5_unknown_claims_ignored(self) -> None:
        """SET-5: unknown claims are ignored, not rejected."""
        assert verifier().verify(sign(claims(private_claim={"x": 1})), now=NOW)

    def test_set13_txn_and_toe(self) -> None:
        """SET-13: txn string and toe NumericDate are accepted."""
        assert verifier().verify(sign(claims(txn="t-1", toe=NOW - 5)), now=NOW)


class TestIssuerAudience:
    def test_set6_wrong_issuer(self) -> None:
        """SET-6, PUSH-6: iss must be the partner's issuer."""
        assert rejected(sign(claims(iss="https://evil.example"))).err == "invalid_issuer"

    def test_set6_issuer_checked_before_key(self) -> None:
        """Impersonation: a valid signature under another key with another iss is invalid_issuer."""
        token = sign(claims(iss="https://other.example"), "EdDSA")
        assert rejected(token).err == "invalid_issuer"

    def test_set9_audience(self) -> None:
        """SET-9, PUSH-6: our audience must be in aud (string or array)."""
        assert verifier().verify(sign(claims(aud=[AUD, "https://x.example"])), now=NOW)
        assert rejected(sign(claims(aud="https://x.example"))).err == "invalid_audience"
        assert rejected(sign(claims(aud=["https://x.example"]))).err == "invalid_audience"


class TestTyping:
    @pytest.mark.parametrize("typ", ["secevent+jwt", "SecEvent+JWT", "application/secevent+jwt"])
    def test_set14_typ_forms(self, typ: str) -> None:
        """SET-14: typ compares case-insensitively; the application/ prefix is accepted."""
        header = {"alg": "ES256", "typ": typ, "kid": KEYS["ES256"]["keys"][0]["kid"]}
        token = _sign_with_header(header, claims())
        assert verifier().verify(token, now=NOW)

    @pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", 5])
    def test_set14_set20_wrong_or_missing_typ(self, typ: Any) -> None:
        """SET-14, SET-20, decision 9: typ is required by default; JWT/at+jwt refused."""
        header: dict[str, Any] = {"alg": "ES256", "kid": KEYS["ES256"]["keys"][0]["kid"]}
        if typ is not None:
            header["typ"] = typ
        assert rejected(_sign_with_header(header, claims())).err == "invalid_request"

    def test_typ_optional_when_policy_allows(self) -> None:
        """SET-14 (MAY): a partner may be configured to accept SETs without typ."""
        header = {"alg": "ES256", "kid": KEYS["ES256"]["keys"][0]["kid"]}
        assert verifier(require_typ=False).verify(_sign_with_header(header, claims()), now=NOW)


class TestDangerousHeaders:
    def test_set15_alg_none_rejected(self) -> None:
        """SET-15: an unsecured SET (RFC 8417 Figure 6) is refused."""
        assert rejected(examples.FIGURE_6).err == "invalid_key"
        token = forge({"alg": "none", "typ": "secevent+jwt"}, claims(), b"")
        assert rejected(token).err == "invalid_key"

    @pytest.mark.parametrize(
        "alg", ["HS256", "HS384", "HS512", "NONE", "None", "ES512", "RS512", "", None, 5]
    )
    def test_disallowed_algorithms(self, alg: Any) -> None:
        """No HMAC, nothing outside ES256/ES384/EdDSA/RS256/PS256."""
        assert rejected(forge({"alg": alg, "typ": "secevent+jwt"}, claims())).err == "invalid_key"

    def test_hs256_with_public_key_as_secret(self) -> None:
        """Key confusion: HS256 keyed with the RSA public key (PEM or JWK) is refused."""
        import hashlib
        import hmac

        for secret in (
            json.dumps(public_jwks(KEYS["RS256"])["keys"][0]).encode(),
            KEYS["RS256"]["keys"][0]["n"].encode(),
        ):
            header = b64(
                orjson.dumps(
                    {"alg": "HS256", "typ": "secevent+jwt", "kid": KEYS["RS256"]["keys"][0]["kid"]}
                )
            )
            data = f"{header}.{b64(orjson.dumps(claims()))}"
            mac = hmac.new(secret, data.encode(), hashlib.sha256).digest()
            assert rejected(f"{data}.{b64(mac)}", verifier("RS256")).err == "invalid_key"

    def test_rs256_token_against_ec_key(self) -> None:
        """No key/algorithm confusion: an RS256 header with the EC key's kid is refused."""
        header = {"alg": "RS256", "typ": "secevent+jwt", "kid": KEYS["ES256"]["keys"][0]["kid"]}
        token = _sign_with_header(header, claims(), key_alg="RS256")
        assert rejected(token).err == "invalid_key"

    @pytest.mark.parametrize(
        "name, value",
        [
            ("jwk", {"kty": "EC"}),
            ("jku", "https://evil.example/jwks"),
            ("x5u", "https://evil.example/cert"),
            ("x5c", ["MIIB"]),
        ],
    )
    def test_embedded_key_headers(self, name: str, value: Any) -> None:
        """Keys come only from the partner's configured set: jwk/jku/x5u/x5c refused."""
        header = {
            "alg": "ES256",
            "typ": "secevent+jwt",
            "kid": KEYS["ES256"]["keys"][0]["kid"],
            name: value,
        }
        assert rejected(_sign_with_header(header, claims())).err == "invalid_key"

    def test_unknown_crit(self) -> None:
        """RFC 7515 §4.1.11: crit naming anything we do not understand is refused."""
        header = {
            "alg": "ES256",
            "typ": "secevent+jwt",
            "kid": KEYS["ES256"]["keys"][0]["kid"],
            "crit": ["exp"],
            "exp": 1,
        }
        assert rejected(_sign_with_header(header, claims())).err == "invalid_request"

    @pytest.mark.parametrize(
        "kid",
        [
            "../../etc/passwd",
            "/dev/zero",
            "file:///etc/passwd",
            "https://evil.example/k",
            "\u0000",
            "x" * 4000,
            "",
        ],
    )
    def test_kid_tricks(self, kid: str) -> None:
        """A kid is a dictionary key, never a path or URL."""
        header = {"alg": "ES256", "typ": "secevent+jwt", "kid": kid}
        assert rejected(_sign_with_header(header, claims())).err in (
            "invalid_key",
            "invalid_request",
        )

    def test_kid_must_be_string(self) -> None:
        header = {"alg": "ES256", "typ": "secevent+jwt", "kid": 5}
        assert rejected(_sign_with_header(header, claims())).err == "invalid_request"

    def test_no_kid_with_one_key(self) -> None:
        """Without kid, the partner's only key is used."""
        header = {"alg": "ES256", "typ": "secevent+jwt"}
        assert verifier().verify(_sign_with_header(header, claims()), now=NOW)


class TestTime:
    def test_set24_old_sets_are_accepted(self) -> None:
        """SET-24, SET-25: SETs are never refused for age (late redelivery)."""
        assert verifier().verify(sign(claims(iat=1)), now=NOW)

    def test_future_iat_beyond_skew(self) -> None:
        """Decision: iat more than max_future_skew ahead is refused."""
        assert verifier().verify(sign(claims(iat=NOW + 200)), now=NOW)
        assert rejected(sign(claims(iat=NOW + 301))).err == "invalid_request"

    def test_set11_expired(self) -> None:
        """SET-11: exp is NOT RECOMMENDED; if present and past, the SET is refused."""
        assert verifier().verify(sign(claims(exp=NOW + 60)), now=NOW)
        assert rejected(sign(claims(exp=NOW - 3600))).err == "invalid_request"


class TestSSFProfile:
    def test_ssf1_sub_id_required(self) -> None:
        """SSF-1: the SSF profile requires a top-level sub_id."""
        payload = claims()
        del payload["sub_id"]
        assert rejected(sign(payload), verifier(ssf=True)).err == "invalid_request"
        assert verifier().verify(sign(payload), now=NOW)  # RFC 8417 alone: fine

    def test_ssf11_no_sub(self) -> None:
        """SSF-11, SET-10, SET-18: SSF SETs carry no sub; plain RFC 8417 allows it."""
        token = sign(claims(sub="user-1"))
        assert rejected(token, verifier(ssf=True)).err == "invalid_request"
        assert verifier().verify(token, now=NOW)

    def test_ssf13_set19_no_exp(self) -> None:
        """SSF-13, SET-19: the SSF profile forbids exp."""
        assert rejected(sign(claims(exp=NOW + 60)), verifier(ssf=True)).err == "invalid_request"

    def test_ssf10_typ_required(self) -> None:
        """SSF-10: explicit typing is a MUST even if the partner relaxed it."""
        header = {"alg": "ES256", "kid": KEYS["ES256"]["keys"][0]["kid"]}
        v = verifier(ssf=True, require_typ=False)
        assert rejected(_sign_with_header(header, claims()), v).err == "invalid_request"

    def test_sub_id_checked(self) -> None:
        """SUBID-18: sub_id holds a valid subject identifier."""
        token = sign(claims(sub_id={"format": "email"}))
        assert rejected(token).err == "invalid_request"


class TestExamples:
    @pytest.mark.parametrize("name", sorted(examples.FIGURES))
    def test_rfc8417_figures_verify_when_signed(self, name: str) -> None:
        """RFC 8417 §2.1 Figures 1-4, re-signed by our key, verify."""
        payload = dict(examples.FIGURES[name])
        aud = payload["aud"] if isinstance(payload["aud"], str) else payload["aud"][0]
        v = Verifier(issuer=payload["iss"], audience=aud, keys=KeyStore(public_jwks(KEYS["ES256"])))
        assert v.verify(sign(payload), now=NOW).claims == payload

    @pytest.mark.parametrize("uri, payload", examples.EVENT_PAYLOADS)
    def test_caep_risc_examples_verify(self, uri: str, payload: dict[str, Any]) -> None:
        """CAEP/RISC/SSF example payloads pass the schema check inside verify."""
        assert verifier(ssf=True).verify(sign(claims(events={uri: payload})), now=NOW)

    @pytest.mark.parametrize("uri, payload", examples.INVALID_EVENT_PAYLOADS)
    def test_invalid_payloads_rejected(self, uri: str, payload: dict[str, Any]) -> None:
        """A known event whose payload breaks its schema is invalid_request."""
        err = rejected(sign(claims(events={uri: payload})))
        assert err.err == "invalid_request" and uri in err.description


def test_expected_jti_mismatch() -> None:
    """Decision 10: the sets key must equal the SET's jti."""
    assert verifier().verify(sign(claims()), now=NOW, expected_jti="j-1")
    assert rejected(sign(claims()), expected_jti="other").err == "invalid_request"


def test_unverified_jti_for_forwarding() -> None:
    assert unverified_jti(sign(claims())) == "j-1"
    with pytest.raises(SETRejected):
        unverified_jti("a.b.c")


def test_build_claims_defaults() -> None:
    """SET-8: a fresh random jti per SET; iat as given."""
    one = build_claims(iss=ISS, aud=AUD, events={EVENT: {}}, iat=5)
    two = build_claims(iss=ISS, aud=AUD, events={EVENT: {}}, iat=5)
    assert one["jti"] != two["jti"] and one["iat"] == 5
    assert set(one) == {"iss", "iat", "jti", "aud", "events"}


def test_signing_is_fast_enough_to_matter() -> None:
    """Smoke: 200 sign+verify round trips complete (speed targets live in scripts/bench)."""
    signer, v = Signer(KEYS["ES256"]), verifier()
    started = time.perf_counter()
    for i in range(200):
        v.verify(signer.sign(claims(jti=f"j{i}")), now=NOW)
    assert time.perf_counter() - started < 30


def _sign_with_header(
    header: dict[str, Any], payload: dict[str, Any], key_alg: str | None = None
) -> str:
    from peer.tokens.jose import sign_bytes
    from peer.tokens.keys import signing_key

    key = signing_key(KEYS[key_alg or "ES256"])
    data = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(payload))}".encode()
    return data.decode() + "." + b64(sign_bytes(key.alg, key.private_key, data))
