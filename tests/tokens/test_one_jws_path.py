"""SETs and OAuth access tokens pass through one JWS reader: the same header rules.

The access-token verifier used to parse compact JWS itself and skipped the SET
verifier's ``b64`` rule (RFC 7797 unencoded payloads exist only under ``crit``), and
took ``"kid": null`` for "no kid". A token signed with the authorization server's
real key but breaking either rule is refused now.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from peer.auth.access_tokens import AccessTokenVerifier, AuthorizationServerKeys, TokenRejected
from peer.errors import SETRejected
from peer.tokens.jose import sign_bytes
from peer.tokens.keys import (
    KeyStore,
    VerificationKey,
    generate_private_jwks,
    public_jwks,
    signing_key,
)
from peer.tokens.sign import Signer, build_claims
from peer.tokens.verify import Verifier

ISSUER = "https://as.example"
RESOURCE = "https://b.example/pushpull"
JWKS = generate_private_jwks("ES256", kid="as-1")
KEY = signing_key(JWKS)
NOW = 1_800_000_000.0


class LocalKeys(AuthorizationServerKeys):
    """The authorization server's keys without the network: what a fetch would return."""

    def __init__(self) -> None:
        super().__init__(ISSUER)
        self.store = KeyStore(public_jwks(JWKS))

    async def key(self, kid: str | None, alg: str) -> VerificationKey | None:
        return self.store.get(kid, alg)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token validly signed with the real key, whatever its header says."""
    data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{data}.{b64(sign_bytes(KEY.alg, KEY.private_key, data.encode()))}"


def access_token(**header: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "a",
        "client_id": "a",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
    }
    base: dict[str, Any] = {"alg": KEY.alg, "typ": "at+jwt", "kid": KEY.kid}
    return signed({k: v for k, v in (base | header).items() if v is not ...}, claims)


async def verify_access_token(token: str) -> dict[str, Any]:
    return await AccessTokenVerifier(LocalKeys()).verify(token, audiences=[RESOURCE], now=NOW)


async def test_a_valid_access_token_passes() -> None:
    claims = await verify_access_token(access_token())
    assert claims["client_id"] == "a"
    # Without kid, the only key of the algorithm serves (as for SETs).
    assert (await verify_access_token(access_token(kid=...)))["sub"] == "a"


async def test_an_access_token_with_b64_false_is_refused() -> None:
    """The rule the access-token path used to skip: ``b64`` must be absent or true."""
    with pytest.raises(TokenRejected, match="access token b64 is not true"):
        await verify_access_token(access_token(b64=False))


async def test_an_access_token_with_a_null_kid_is_refused() -> None:
    with pytest.raises(TokenRejected, match="access token kid is not a string"):
        await verify_access_token(access_token(kid=None))


# Header members each verifier must refuse, whatever the token carries.
BAD_HEADERS: dict[str, dict[str, Any]] = {
    "alg none": {"alg": "none"},
    "alg HS256": {"alg": "HS256"},
    "alg missing": {"alg": ...},
    "jwk": {"jwk": {"kty": "EC"}},
    "jku": {"jku": "https://evil.example/jwks"},
    "x5u": {"x5u": "https://evil.example/cert"},
    "x5c": {"x5c": ["MIIB"]},
    "crit": {"crit": ["exp"]},
    "b64 false": {"b64": False},
    "b64 string": {"b64": "true"},
    "kid null": {"kid": None},
    "kid number": {"kid": 5},
    "typ number": {"typ": 5},
}


@pytest.mark.parametrize("change", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
async def test_sets_and_access_tokens_refuse_the_same_headers(change: dict[str, Any]) -> None:
    with pytest.raises(TokenRejected):
        await verify_access_token(access_token(**change))
    claims = build_claims(
        iss=ISSUER,
        aud=RESOURCE,
        events={"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}},
        iat=int(NOW),
        sub_id={"format": "email", "email": "a@b.example"},
    )
    base: dict[str, Any] = {"alg": KEY.alg, "typ": "secevent+jwt", "kid": KEY.kid}
    header = {k: v for k, v in (base | change).items() if v is not ...}
    verifier = Verifier(issuer=ISSUER, audience=RESOURCE, keys=KeyStore(public_jwks(JWKS)))
    assert verifier.verify(Signer(JWKS).sign(claims), now=NOW).iss == ISSUER  # the baseline
    with pytest.raises(SETRejected):
        verifier.verify(signed(header, claims), now=NOW)


def test_the_typ_of_one_kind_is_refused_by_the_other() -> None:
    """An access token is no SET (RFC 8725 §3.11): typ keeps them apart both ways."""
    claims = build_claims(
        iss=ISSUER,
        aud=RESOURCE,
        events={"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}},
        iat=int(time.time()),
    )
    verifier = Verifier(issuer=ISSUER, audience=RESOURCE, keys=KeyStore(public_jwks(JWKS)))
    as_access_token = signed({"alg": KEY.alg, "typ": "at+jwt", "kid": KEY.kid}, claims)
    with pytest.raises(SETRejected, match="typ is not secevent"):
        verifier.verify(as_access_token, now=time.time())


async def test_a_set_is_not_an_access_token() -> None:
    with pytest.raises(TokenRejected, match="access token typ is not at\\+jwt"):
        await verify_access_token(access_token(typ="secevent+jwt"))
