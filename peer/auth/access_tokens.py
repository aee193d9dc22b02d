"""Inbound OAuth 2.0: verify JWT access tokens (RFC 9068) issued by a partner's AS.

The authorization server's signing keys come from its metadata (RFC 8414, else OIDC
Discovery) and its ``jwks_uri``, fetched over verified HTTPS and cached for
:data:`JWKS_TTL` seconds. A token signed with a ``kid`` we do not know triggers one
early refetch (key rotation), at most every :data:`JWKS_MIN_REFETCH` seconds, so a
stream of forged ``kid`` values cannot turn us into a load generator for the AS.

Checks, in order (RFC 9068 §4): compact JWS form and size, and the header rules
every signed token we read meets (:mod:`peer.tokens.jws`, the SET verifier's own:
``alg`` among :data:`~peer.tokens.keys.ALGORITHMS`, never ``none``, never HMAC; no
embedded key headers; no ``crit``; ``b64`` absent or true; ``kid`` a string when
present; ``typ`` ``at+jwt`` when present); ``iss`` exactly the configured issuer
(before any key is looked up); the signature; ``exp`` (required), ``nbf``, ``iat``
with :data:`CLOCK_SKEW`, each a NumericDate within
:data:`~peer.tokens.jws.MAX_NUMERIC_DATE` (bounded before any arithmetic); ``aud``
one of our resource identifiers (RFC 8707, OPRM-27).
The client a token speaks for is :func:`token_client`'s one rule over ``sub`` and
``client_id``; which partner that client is, and its scope, are checked by the caller.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final

import anyio
import httpx

from ..errors import AuthenticationFailed
from ..tokens.jws import JWSError, JWSReader, is_numeric_date, json_segment, split
from ..tokens.keys import KeyStore, VerificationKey
from .discovery import DiscoveryError, fetch_as_metadata, fetch_json

__all__ = [
    "CLOCK_SKEW",
    "JWKS_MIN_REFETCH",
    "JWKS_TTL",
    "AccessTokenVerifier",
    "AuthorizationServerKeys",
    "TokenRejected",
    "token_client",
    "unverified_issuer",
]

log = logging.getLogger("setpeer.auth")

# Keys rotate over days; five minutes bounds how long a revoked key stays trusted.
JWKS_TTL: Final = 300.0
JWKS_MIN_REFETCH: Final = 10.0
# Clocks of two organisations' servers drift by seconds; a minute would let an
# expired token live a minute longer than its issuer meant.
CLOCK_SKEW: Final = 5.0
# RFC 9068 tokens are ~1 KiB; 8 KiB is nginx's default header buffer.
MAX_TOKEN_BYTES: Final = 8 * 1024
_MAX_DEPTH: Final = 8
_TYPE: Final = "at+jwt"  # RFC 9068 §4: distinguishes access tokens from ID tokens and SETs
_HTTP_TIMEOUT: Final = 10.0


class TokenRejected(AuthenticationFailed):
    """The access token is not valid for us: RFC 6750 §3.1 ``invalid_token``."""

    error_code = "invalid_token"


def _refused(exc: JWSError) -> TokenRejected:
    return TokenRejected(f"access token {exc.short}")


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a JWT claims, unverified: only to pick which issuer's keys to try.

    Returns:
        The string, or None when ``token`` is not a JWT with a string ``iss``.
    """
    try:
        _, payload, _ = split(token, MAX_TOKEN_BYTES)
        claims = json_segment(payload, "claims", max_bytes=MAX_TOKEN_BYTES, max_depth=_MAX_DEPTH)
    except JWSError:
        return None
    iss = claims.get("iss")
    return iss if isinstance(iss, str) else None


def _ssl_context(ca: Path | None) -> ssl.SSLContext:
    # OPRM-24/26: certificate and host name verified; the system store plus ``ca``.
    context = ssl.create_default_context()
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
    return context


class AuthorizationServerKeys:
    """One authorization server's signing keys, fetched through its metadata.

    Args:
        issuer: the AS issuer identifier (RFC 8414), an https URL.
        ca: PEM CA bundle that verifies the AS (default: the system store).
    """

    def __init__(self, issuer: str, *, ca: Path | None = None) -> None:
        self.issuer = issuer
        self._ca = ca
        self._context: ssl.SSLContext | None = None
        self._keys: KeyStore | None = None
        self._fetched_at = -math.inf
        self._tried_at = -math.inf
        self._lock = anyio.Lock()

    async def key(self, kid: str | None, alg: str) -> VerificationKey | None:
        """The key for ``kid``/``alg``, refetching the set when stale or ``kid`` is new.

        Raises:
            TokenRejected: no keys could ever be fetched (the cause is logged).
        """
        now = time.monotonic()
        if self._keys is None or now - self._fetched_at > JWKS_TTL:
            await self._refresh(now)
        found = self._keys.get(kid, alg) if self._keys is not None else None
        if found is None and self._keys is not None:
            await self._refresh(now)  # a rotated key: look once more, rate-limited
            found = self._keys.get(kid, alg)
        if self._keys is None:
            raise TokenRejected("the authorization server's keys are unavailable")
        return found

    async def _refresh(self, started: float) -> None:
        """Fetch the keys, once for every caller waiting, at most every JWKS_MIN_REFETCH."""
        async with self._lock:
            if self._tried_at >= started:
                return  # fetched (or tried) while we waited for the lock
            if time.monotonic() - self._tried_at < JWKS_MIN_REFETCH:
                return  # rate limit: unknown kids and outages must not hammer the AS
            self._tried_at = time.monotonic()
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            except DiscoveryError as exc:
                # Stale keys stay in use until a fetch succeeds: an AS outage must
                # not lock every partner out at once.
                log.warning("issuer=%s cannot fetch signing keys: %s", self.issuer, exc)

    async def _fetch(self) -> KeyStore:
        if self._context is None:
            self._context = _ssl_context(self._ca)
        async with httpx.AsyncClient(verify=self._context, timeout=_HTTP_TIMEOUT) as client:
            metadata = await fetch_as_metadata(client, self.issuer)
            if metadata.jwks_uri is None:
                raise DiscoveryError(f"authorization server {self.issuer} has no jwks_uri")
            jwks = await fetch_json(
                client,
                metadata.jwks_uri,
                what="authorization server JWKS",
                media_types=("application/json", "application/jwk-set+json"),
            )
        try:
            return KeyStore(jwks)
        except ValueError as exc:
            raise DiscoveryError(f"authorization server JWKS: {exc}") from None


class AccessTokenVerifier:
    """Checks RFC 9068 JWT access tokens from one authorization server.

    Args:
        keys: the authorization server's keys (its ``issuer`` is the required ``iss``).
    """

    def __init__(self, keys: AuthorizationServerKeys) -> None:
        self.issuer = keys.issuer
        self._keys = keys
        self._reader = JWSReader(
            media_type=_TYPE,
            require_typ=False,
            max_token_bytes=MAX_TOKEN_BYTES,
            max_header_bytes=MAX_TOKEN_BYTES,
            max_depth=_MAX_DEPTH,
            what="access token",
        )

    async def verify(
        self, token: str, *, audiences: Collection[str], now: float | None = None
    ) -> dict[str, Any]:
        """The claims of ``token`` if it is a valid access token for one of ``audiences``.

        Args:
            token: the bearer token as presented.
            audiences: our resource identifiers; ``aud`` must contain one.
            now: the time to check against (default: the wall clock).

        Raises:
            TokenRejected: with the first problem found (never token contents).
        """
        when = time.time() if now is None else now
        try:
            jws = self._reader.read(token)
            claims = jws.claims(max_bytes=MAX_TOKEN_BYTES, max_depth=_MAX_DEPTH)
        except JWSError as exc:
            raise _refused(exc) from None
        if claims.get("iss") != self.issuer:
            raise TokenRejected("access token issuer is not trusted")
        key = await self._keys.key(jws.kid, jws.alg)
        if key is None:
            raise TokenRejected("access token signed with an unknown key")
        try:
            jws.verify(key)
        except JWSError as exc:
            raise _refused(exc) from None
        _check_times(claims, when)
        aud = claims.get("aud")
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(v, str) and v in audiences for v in values):
            # RFC 8707 / OPRM-27: a token for another resource is never accepted here.
            raise TokenRejected("access token audience is not this resource")
        return claims


def token_client(claims: dict[str, Any]) -> str:
    """The client a verified access token speaks for: one rule over two claims.

    RFC 9068 §2.2: ``client_id`` names the client; ``sub`` names the resource owner,
    which for client credentials is the client itself. Our partners are clients that
    authenticate as themselves, so both must name the same client: ``sub`` and
    ``client_id`` are each a string when present, at least one is present (some
    servers leave ``sub`` out), and when both are present they are equal. A token whose
    ``client_id`` is one partner and ``sub`` another (or a user's token, issued to a
    partner's client on someone's behalf) speaks for nobody here (docs/decisions.md).

    Raises:
        TokenRejected: neither claim, a claim that is not a string, or two clients.
    """
    named = [claims[name] for name in ("sub", "client_id") if name in claims]
    if not named:
        raise TokenRejected("access token names no client (sub, client_id)")
    if not all(isinstance(value, str) and value for value in named):
        raise TokenRejected("access token sub and client_id must be non-empty strings")
    if len(set(named)) != 1:
        raise TokenRejected("access token sub and client_id name different clients")
    client: str = named[0]
    return client


def _number(claims: dict[str, Any], name: str) -> int | float | None:
    value = claims.get(name)
    if value is None:
        return None
    # Bounded before any arithmetic: "exp": 10**400 is refused, never an OverflowError.
    if not is_numeric_date(value):
        raise TokenRejected(f"access token {name} is not a NumericDate")
    return value


def _check_times(claims: dict[str, Any], now: float) -> None:
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenRejected("access token has no exp")  # RFC 9068 §2.2: REQUIRED
    if exp <= now - CLOCK_SKEW:
        raise TokenRejected("access token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + CLOCK_SKEW:
        raise TokenRejected("access token not yet valid")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + CLOCK_SKEW:
        raise TokenRejected("access token issued in the future")
