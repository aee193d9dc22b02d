"""Hostile tokens into the verifier: always SETRejected, never anything else, quickly.

Most cases are signed with the partner's real key, so that they get past the signature
and exercise the header and claim checks, not just the signature check.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.errors import SETRejected
from peer.tokens.jose import sign_bytes
from peer.tokens.keys import KeyStore, generate_private_jwks, public_jwks, signing_key
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import VerifiedSET, Verifier
from tests.timing import seconds

ISS, AUD, NOW = "https://tx.example", "https://rx.example", 2000.0
KEYS = generate_private_jwks("ES256")
KEY = signing_key(KEYS)
VERIFIER = Verifier(issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(KEYS)))
SSF_VERIFIER = Verifier(
    issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(KEYS)), ssf=True, strict_subjects=True
)
CLAIMS = build_claims(
    iss=ISS,
    aud=AUD,
    events={"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}},
    iat=1000,
    sub_id={"format": "email", "email": "a@b.example"},
)
VALID = Signer(KEYS).sign(CLAIMS)
HEADER = {"alg": "ES256", "typ": "secevent+jwt", "kid": KEY.kid}
# Each hostile case must end within this (the depth and size checks run before parsing).
FAST = seconds(1)

common = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def dumps(value: Any) -> bytes:
    # stdlib json: unlike orjson it encodes integers beyond 64 bits, which partners may send.
    return json.dumps(value, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header_json: bytes, payload_json: bytes) -> str:
    """A token whose signature is valid under the partner's key, whatever it holds."""
    data = f"{b64(header_json)}.{b64(payload_json)}".encode()
    return data.decode() + "." + b64(sign_bytes("ES256", KEY.private_key, data))


def survive(token: object, verifier: Verifier = VERIFIER) -> VerifiedSET | SETRejected:
    """Verify; the outcome is a VerifiedSET or a SETRejected, within FAST seconds."""
    started = time.perf_counter()
    try:
        outcome: VerifiedSET | SETRejected = verifier.verify(token, now=NOW)
    except SETRejected as exc:
        assert exc.err in ("invalid_request", "invalid_key", "invalid_issuer", "invalid_audience")
        assert isinstance(exc.description, str) and len(exc.description) < 400
        outcome = exc
    assert time.perf_counter() - started < FAST
    return outcome


def refused(token: object, verifier: Verifier = VERIFIER) -> SETRejected:
    outcome = survive(token, verifier)
    assert isinstance(outcome, SETRejected), "expected a rejection"
    return outcome


@common
@given(token=st.text(max_size=600))
def test_random_strings(token: str) -> None:
    refused(token)


@common
@given(token=st.binary(max_size=600))
def test_random_bytes(token: bytes) -> None:
    """Bytes are not a token; their latin-1 reading is no valid SET either."""
    refused(token)
    refused(token.decode("latin-1"))


@common
@given(token=st.from_regex(r"[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,300}\.[A-Za-z0-9_-]{0,90}"))
def test_random_compact_shapes(token: str) -> None:
    """Strings in the compact alphabet: bad base64 lengths, garbage JSON, bad signatures."""
    refused(token)


@common
@given(cut=st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_valid_token(cut: int) -> None:
    refused(VALID[:cut])


@common
@given(position=st.integers(min_value=0, max_value=len(VALID) - 1), char=st.characters())
def test_one_character_changed(position: int, char: str) -> None:
    """Any change to a valid token either keeps the same bytes or is refused."""
    token = VALID[:position] + char + VALID[position + 1 :]
    outcome = survive(token)
    if isinstance(outcome, VerifiedSET):
        # Only the unused low bits of the last base64 character can change harmlessly.
        assert outcome.claims == CLAIMS


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["alg", "typ", "kid", "crit", "jwk", "b64", "iss", "iat", "jti", "aud"]
                + ["events", "sub_id", "txn", "toe", "exp", "nbf", "sub", "format", "email"]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@pytest.mark.slow
@common
@given(header=json_values, payload=json_values)
def test_type_confused_segments_signed(header: Any, payload: Any) -> None:
    """Random JSON in both segments, validly signed: refused at the first bad member."""
    refused(signed(dumps(header), dumps(payload)))


@pytest.mark.slow
@common
@given(
    header_changes=st.dictionaries(st.sampled_from(sorted(HEADER)), json_values, max_size=2),
    claim_changes=st.dictionaries(
        st.sampled_from(["iss", "iat", "jti", "aud", "events", "sub_id", "txn", "toe"]),
        json_values,
        min_size=1,
        max_size=3,
    ),
    ssf=st.booleans(),
)
def test_valid_token_with_type_confused_members(
    header_changes: dict[str, Any], claim_changes: dict[str, Any], ssf: bool
) -> None:
    """A valid SET with a few members replaced by random JSON: accepted only when the
    replacements happen to be valid, otherwise SETRejected."""
    header = HEADER | header_changes
    claims = CLAIMS | claim_changes
    outcome = survive(signed(dumps(header), dumps(claims)), SSF_VERIFIER if ssf else VERIFIER)
    if isinstance(outcome, VerifiedSET):
        assert outcome.iss == ISS and isinstance(outcome.jti, str) and outcome.jti
        assert isinstance(outcome.claims["events"], dict) and outcome.claims["events"]


@pytest.mark.slow
@common
@given(events=json_values, sub_id=json_values)
def test_hostile_events_and_subjects(events: Any, sub_id: Any) -> None:
    """The subject and event-schema checks only ever answer with SETRejected."""
    claims = CLAIMS | {"events": events, "sub_id": sub_id}
    survive(signed(dumps(HEADER), dumps(claims)))


def nested(depth: int) -> bytes:
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return orjson.dumps(CLAIMS)[:-1] + b',"x":' + inner + b"}"


@pytest.mark.parametrize(
    "token",
    [
        None,
        5,
        b"bytes",
        ["a"],
        "",
        "..",
        "a.b.c.d",
        "a.b",
        " " + VALID,
        VALID + "\n",
        VALID.replace(".", "..", 1),
        "====.====.====",
        "a+b/.c.d",
        b64(b"[" * 10_000 + b"]" * 10_000) + "." + b64(b"{}") + ".AA",
        b64(b'{"alg":"ES256"}') + "." + b64(b'{"a":' * 10_000 + b"1" + b"}" * 10_000) + ".AA",
        signed(orjson.dumps(HEADER), nested(10_000)),
        signed(orjson.dumps(HEADER), nested(40)),
        signed(orjson.dumps(HEADER), b"[" * 100_000),
        signed(orjson.dumps(HEADER), orjson.dumps(CLAIMS | {"pad": "x" * 70_000})),
        "a" * 300_000 + ".b.c",
        signed(b'{"alg":"ES256","typ":"secevent+jwt","x":"' + b"y" * 5000 + b'"}', b"{}"),
        b64(b'{"alg":"ES256","typ":"secevent+jwt"}') + "." + b64(b"\xff\xfe") + ".AA",
        signed(orjson.dumps(HEADER), b'{"iss":"\\ud800"}'),
        signed(orjson.dumps(HEADER), orjson.dumps(CLAIMS)[:-1] + b',"iat":1e999}'),
        signed(orjson.dumps(HEADER), orjson.dumps(CLAIMS)[:-1] + b',"n":NaN}'),
        signed(orjson.dumps(HEADER), orjson.dumps(CLAIMS) + b"garbage"),
        signed(b'{"alg":"ES256","alg":"none"}', orjson.dumps(CLAIMS)),
        signed(b'{"alg":"ES256","typ":"secevent+jwt","typ":"JWT"}', orjson.dumps(CLAIMS)),
        signed(orjson.dumps(HEADER), b"null"),
        signed(orjson.dumps(HEADER), b'"a string"'),
        VALID.rsplit(".", 1)[0] + "." + "A" * 86,
        VALID.rsplit(".", 1)[0] + ".",
        VALID.rsplit(".", 1)[0] + "." + "A",
        VALID.rsplit(".", 1)[0] + "." + VALID.rsplit(".", 1)[1] * 2,
    ],
    ids=[
        "none",
        "int",
        "bytes",
        "list",
        "empty",
        "dots",
        "four-parts",
        "two-parts",
        "leading-space",
        "trailing-newline",
        "double-dot",
        "padding",
        "std-alphabet",
        "deep-header",
        "deep-payload",
        "deep-payload-signed",
        "depth-40-signed",
        "unclosed-brackets",
        "oversized-payload",
        "huge",
        "huge-header",
        "bad-utf8",
        "lone-surrogate",
        "overflowing-number",
        "nan",
        "trailing-garbage",
        "dup-alg",
        "dup-typ",
        "null-claims",
        "string-claims",
        "zero-signature",
        "empty-signature",
        "impossible-b64-length",
        "doubled-signature",
    ],
)
def test_named_hostile_tokens(token: object) -> None:
    """10,000-level nesting, oversized, wrong types, duplicate header members, lax JSON."""
    refused(token)


def test_descriptions_never_quote_claims() -> None:
    """Error descriptions go to the partner and logs: no claim values in them."""
    secret = "jane.doe@private.example"
    for claims in (
        CLAIMS | {"aud": secret},
        CLAIMS | {"iss": secret},
        CLAIMS | {"events": {secret: {}}},
        CLAIMS | {"jti": secret, "iat": 1e12},
    ):
        err = refused(signed(orjson.dumps(HEADER), orjson.dumps(claims)))
        assert secret not in err.description and secret not in str(err)


def test_header_cache_is_bounded() -> None:
    """Many distinct headers (e.g. a kid per SET) do not grow memory without bound."""
    v = Verifier(issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(KEYS)))
    for i in range(500):
        header = json.dumps(HEADER | {"x": i}).encode()
        assert isinstance(survive(signed(header, orjson.dumps(CLAIMS)), v), VerifiedSET)
    assert len(v.reader._headers) <= 64
