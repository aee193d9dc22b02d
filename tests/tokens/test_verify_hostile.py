"""Hostile tokens into the verifier: always SETRejected, never anything else, quickly."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.errors import SETRejected
from peer.tokens.keys import KeyStore, generate_private_jwks, public_jwks
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import Verifier

KEYS = generate_private_jwks("ES256")
VERIFIER = Verifier(
    issuer="https://tx.example", audience="https://rx.example", keys=KeyStore(public_jwks(KEYS))
)
VALID = Signer(KEYS).sign(
    build_claims(
        iss="https://tx.example",
        aud="https://rx.example",
        events={"https://e.example/x": {}},
        iat=1000,
    )
)
common = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def survive(token: object) -> None:
    started = time.perf_counter()
    try:
        VERIFIER.verify(token, now=2000)
    except SETRejected:
        pass
    assert time.perf_counter() - started < 1.0


@common
@given(token=st.text(max_size=500))
def test_random_strings(token: str) -> None:
    survive(token)


@common
@given(cut=st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_valid_token(cut: int) -> None:
    with pytest.raises(SETRejected):
        VERIFIER.verify(VALID[:cut], now=2000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "alg",
                    "typ",
                    "kid",
                    "crit",
                    "jwk",
                    "iss",
                    "iat",
                    "jti",
                    "aud",
                    "events",
                    "sub_id",
                    "txn",
                    "toe",
                    "exp",
                    "sub",
                ]
            ),
            c,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@common
@given(header=json_values, payload=json_values, signature=st.binary(max_size=100))
def test_type_confused_segments(header: Any, payload: Any, signature: bytes) -> None:
    token = ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )
    with pytest.raises(SETRejected):
        VERIFIER.verify(token, now=2000)


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
        "====.====.====",
        b64(b"[" * 10_000 + b"]" * 10_000) + "." + b64(b"{}") + ".AA",
        b64(b'{"alg":"ES256"}') + "." + b64(b'{"a":' * 10_000 + b"1" + b"}" * 10_000) + ".AA",
        "a" * 300_000 + ".b.c",
        b64(b'{"alg":"ES256","typ":"secevent+jwt"}') + "." + b64(b"\xff\xfe") + ".AA",
        b64(b'{"alg":"ES256","alg":"none"}') + ".e30.AA",
    ],
    ids=[
        "none",
        "int",
        "bytes",
        "list",
        "empty",
        "dots",
        "four",
        "two",
        "padding",
        "deep-header",
        "deep-payload",
        "huge",
        "bad-utf8",
        "dup-alg",
    ],
)
def test_named_hostile_tokens(token: object) -> None:
    """10,000-level nesting, oversized, wrong types, duplicate header members."""
    with pytest.raises(SETRejected):
        VERIFIER.verify(token, now=2000)
