"""Numbers in time claims never raise: bounded before any arithmetic.

JSON numbers reach the verifiers as Python ints of any size (``10**400`` parses) or
floats (``1e400`` does not: the strict reader refuses what a double cannot hold). A
NumericDate outside ±MAX_NUMERIC_DATE is refused like any other bad claim: the SET
with ``invalid_request``, the OAuth access token with ``invalid_token``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.auth.access_tokens import AccessTokenVerifier, TokenRejected
from peer.errors import MalformedFrame, SETRejected
from peer.protocol.jsonio import loads_strict
from peer.tokens.jws import MAX_NUMERIC_DATE, is_numeric_date
from peer.tokens.sign import build_claims

from .test_one_jws_path import ISSUER, KEY, NOW, RESOURCE, LocalKeys, signed
from .test_verify_hostile import (
    AUD,
    CLAIMS,
    HEADER,
    ISS,
    b64,
    dumps,
    signed as set_signed,
    survive,
)

TIME_CLAIMS = ("iat", "exp", "nbf", "toe")
HUGE = 10**400

common = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON number Python's reader can return: small, near the bound, beyond 64 bits,
# hundreds of digits (int_max_str_digits allows 4300), and floats of any exponent.
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**600), max_value=10**600),
    st.integers(min_value=0, max_value=4000).map(lambda e: 10**e),
    st.integers(min_value=0, max_value=4000).map(lambda e: -(10**e)),
    st.integers(min_value=-4, max_value=4).map(lambda d: MAX_NUMERIC_DATE + d),
    st.floats(allow_nan=False, allow_infinity=False),
)


def set_with(claim: str, value: Any) -> str:
    return set_signed(dumps(HEADER), dumps(CLAIMS | {claim: value}))


@pytest.mark.parametrize("claim", TIME_CLAIMS)
@pytest.mark.parametrize("value", [HUGE, -HUGE, 2**64, MAX_NUMERIC_DATE + 1, 1e300, -1e300])
def test_out_of_range_time_claim_refused(claim: str, value: int | float) -> None:
    outcome = survive(set_with(claim, value))
    assert isinstance(outcome, SETRejected)
    assert outcome.err == "invalid_request"
    assert claim in outcome.description


def test_numbers_within_the_bound_still_pass() -> None:
    """exp far in the future (the bound itself) and a float iat are accepted as before."""
    assert not isinstance(survive(set_with("exp", MAX_NUMERIC_DATE)), SETRejected)
    assert not isinstance(survive(set_with("iat", 1000.5)), SETRejected)
    assert not isinstance(survive(set_with("toe", -MAX_NUMERIC_DATE)), SETRejected)


@common
@given(claim=st.sampled_from(TIME_CLAIMS), value=numbers)
def test_any_number_in_any_time_claim(claim: str, value: int | float) -> None:
    """Verified or SETRejected, never OverflowError; accepted only within the bound."""
    outcome = survive(set_with(claim, value))
    if not isinstance(outcome, SETRejected):
        assert is_numeric_date(value) and -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE


@common
@given(
    values=st.dictionaries(st.sampled_from(TIME_CLAIMS), numbers, min_size=1, max_size=4),
    payload_number=numbers,
)
def test_numbers_everywhere(values: dict[str, int | float], payload_number: int | float) -> None:
    """Huge numbers in several time claims and inside an event payload at once."""
    event = next(iter(CLAIMS["events"]))
    claims = CLAIMS | values | {"events": {event: {"n": payload_number}}}
    survive(set_signed(dumps(HEADER), dumps(claims)))


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1E+999", "123456789e999"])
def test_float_overflow_is_malformed_json(text: str) -> None:
    """Our JSON reader refuses a float a double cannot hold (it would parse to inf)."""
    with pytest.raises(MalformedFrame):
        loads_strict(f'{{"iat": {text}}}', max_bytes=100, max_depth=4)
    raw = dumps(CLAIMS).replace(b'"iat":1000', f'"iat":{text}'.encode())
    assert text.encode() in raw
    data = f"{b64(dumps(HEADER))}.{b64(raw)}"
    outcome = survive(data + "." + set_signed(dumps(HEADER), raw).split(".")[2])
    assert isinstance(outcome, SETRejected) and outcome.err == "invalid_request"


@pytest.mark.parametrize("claim", ["toe", "iat"])
def test_signer_refuses_huge_numbers_with_value_error(claim: str) -> None:
    kwargs: dict[str, Any] = {"iat": 1000} | {claim: HUGE}
    with pytest.raises(ValueError, match="NumericDate"):
        build_claims(iss=ISS, aud=AUD, events=CLAIMS["events"], **kwargs)


def access_token(**claims: Any) -> str:
    base = {"iss": ISSUER, "aud": RESOURCE, "sub": "a", "client_id": "a", "iat": int(NOW)}
    header = {"alg": KEY.alg, "typ": "at+jwt", "kid": KEY.kid}
    return signed(header, base | {"exp": int(NOW) + 300} | claims)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [HUGE, -HUGE, 1e300])
async def test_access_token_huge_time_claim_refused(claim: str, value: int | float) -> None:
    """An OAuth access token with exp = 10**400: TokenRejected (invalid_token)."""
    token = access_token(**{claim: value})
    with pytest.raises(TokenRejected, match="not a NumericDate") as caught:
        await AccessTokenVerifier(LocalKeys()).verify(token, audiences=[RESOURCE], now=NOW)
    assert caught.value.error_code == "invalid_token"


@common
@given(claim=st.sampled_from(["exp", "nbf", "iat"]), value=numbers)
async def test_access_token_any_number(claim: str, value: int | float) -> None:
    token = access_token(**{claim: value})
    try:
        await AccessTokenVerifier(LocalKeys()).verify(token, audiences=[RESOURCE], now=NOW)
    except TokenRejected:
        return
    assert -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE
