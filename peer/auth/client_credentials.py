"""OAuth 2.0 client credentials grant (RFC 6749 §4.4) with RFC 7523 client assertions.

One function, :func:`request_token`, does one token request; discovery, caching and
refresh live in ``outbound.py``. Client authentication is either
``client_secret_basic`` (RFC 6749 §2.3.1) or ``private_key_jwt`` (RFC 7523 §2.2,
OIDC Core §9): a short-lived JWT signed with our configured key, its audience the
authorization server's issuer identifier (draft-ietf-oauth-rfc7523bis: the issuer,
not the token endpoint, so the assertion is useless at any other server). The
request names the resource (RFC 8707, OPRM-27) so the token's audience is that
partner endpoint alone.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from ..config import OAuthClient, resolve_secret
from ..errors import ConfigError, ConnectError, WireError
from ..protocol.jsonio import loads_strict
from ..tokens.jose import b64encode, sign_bytes
from ..tokens.keys import SigningKey, signing_key
from .bounded_read import ResponseCut, bounded_request
from .discovery import FETCH_DEADLINE

__all__ = [
    "ASSERTION_TYPE",
    "AccessToken",
    "TokenRequestError",
    "client_assertion",
    "load_assertion_key",
    "request_token",
]

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# An assertion is used once, right away; a minute covers clock drift to the AS.
ASSERTION_LIFETIME: Final = 60
# A token response is a few hundred bytes (a JWT access token ~1 KiB).
MAX_RESPONSE_BYTES: Final = 64 * 1024
# RFC 6749 §5.1: expires_in is only RECOMMENDED; without it, assume a short life.
DEFAULT_LIFETIME: Final = 300.0


class TokenRequestError(ConnectError):
    """The authorization server did not give us an access token."""


@dataclasses.dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token and how long it lives (``time.monotonic`` seconds).

    Attributes:
        value: the token (never logged).
        obtained_at: when the response arrived.
        lifetime: ``expires_in`` from the response, or :data:`DEFAULT_LIFETIME`.
    """

    value: str = dataclasses.field(repr=False)
    obtained_at: float
    lifetime: float

    @property
    def expires_at(self) -> float:
        """When the authorization server says it stops working."""
        return self.obtained_at + self.lifetime

    @property
    def refresh_at(self) -> float:
        """When to get a new one: a fifth of its life (at most a minute) before expiry."""
        return self.expires_at - min(60.0, self.lifetime / 5)


def load_assertion_key(path: Path, *, key: str) -> SigningKey:
    """The first key of the private JWK Set at ``path`` (``private_key_jwt``).

    Raises:
        ConfigError: unreadable, not a JWK Set, or no private key first.
    """
    try:
        return signing_key(json.loads(path.read_text()))
    except OSError as exc:
        raise ConfigError([(key, f"cannot read {path}: {exc.strerror}")]) from None
    except ValueError as exc:
        # Never the parser's excerpt: it could be private key material.
        message = str(exc) if "keys[" in str(exc) else f"{path} is not a private JWK Set"
        raise ConfigError([(key, message)]) from None


def client_assertion(key: SigningKey, *, client_id: str, audience: str, now: float) -> str:
    """A signed RFC 7523 client assertion for one token request."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,  # RFC 7523 §3: the AS may refuse a replayed jti
        "iat": int(now),
        "exp": int(now) + ASSERTION_LIFETIME,
    }
    signing_input = b64encode(orjson.dumps(header)) + b"." + b64encode(orjson.dumps(claims))
    signature = b64encode(sign_bytes(key.alg, key.private_key, signing_input))
    return (signing_input + b"." + signature).decode("ascii")


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: each part form-urlencoded before base64.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _printable(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text[:limit] if c.isprintable())


async def request_token(
    client: httpx.AsyncClient,
    *,
    token_endpoint: str,
    audience: str,
    oauth: OAuthClient,
    resource: str,
    config_dir: Path,
    key_path: str = "auth.oauth",
) -> AccessToken:
    """Ask ``token_endpoint`` for an access token for ``resource``.

    Args:
        client: the HTTP client (its TLS context verifies the server).
        token_endpoint: the authorization server's token endpoint (https).
        audience: the ``aud`` of our client assertion: the AS issuer identifier,
            or the token endpoint when the issuer is unknown.
        oauth: our client configuration.
        resource: the partner endpoint the token is for (RFC 8707 ``resource``).
        config_dir: where a relative ``file:`` secret starts.
        key_path: the config key path used in error messages.

    Returns:
        The token.

    Raises:
        TokenRequestError: network or TLS failure, an error response, or a
            response without a usable Bearer token.
        ConfigError: the client secret or key cannot be read.
    """
    form = {"grant_type": "client_credentials", "resource": resource}
    if oauth.scope:
        form["scope"] = oauth.scope  # OPRM-25: only what we were configured to need
    headers = {"accept": "application/json"}
    if oauth.private_key_jwt is not None:
        key = load_assertion_key(oauth.private_key_jwt, key=f"{key_path}.private_key_jwt")
        form["client_id"] = oauth.client_id
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = client_assertion(
            key, client_id=oauth.client_id, audience=audience, now=time.time()
        )
    elif oauth.client_secret is not None:
        secret_key = f"{key_path}.client_secret"
        secret = resolve_secret(oauth.client_secret, config_dir, key=secret_key)
        headers["authorization"] = _basic(oauth.client_id, secret)
    else:
        raise ConfigError([(key_path, "give client_secret or private_key_jwt")])
    where = f"token endpoint {token_endpoint}"
    try:
        response = await bounded_request(
            client,
            "POST",
            token_endpoint,
            data=form,
            headers=headers,
            max_bytes=MAX_RESPONSE_BYTES,
            deadline=FETCH_DEADLINE,
        )
    except ResponseCut as exc:
        raise TokenRequestError(f"{where}: {exc}") from None
    except httpx.HTTPError as exc:
        raise TokenRequestError(f"{where}: {type(exc).__name__}: {exc}") from exc
    body = response.content
    obtained_at = time.monotonic()
    document = _json(body)
    if response.status_code != 200:
        # RFC 6749 §5.2: error and error_description say why (invalid_client, ...).
        error = _printable(document.get("error")) or "no error code"
        description = _printable(document.get("error_description"))
        detail = f"{error}: {description}" if description else error
        raise TokenRequestError(f"{where}: HTTP {response.status_code} {detail}")
    token = document.get("access_token")
    token_type = document.get("token_type")
    if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable():
        raise TokenRequestError(f"{where}: response has no usable access_token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        # DPoP-bound tokens (RFC 9449) would need proofs we do not make.
        raise TokenRequestError(f"{where}: token_type is not Bearer")
    expires_in = document.get("expires_in")
    lifetime = DEFAULT_LIFETIME
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        # min() first: float(10**400) would raise; a day is longer than any real token.
        lifetime = float(min(expires_in, 86_400))
    return AccessToken(value=token, obtained_at=obtained_at, lifetime=lifetime)


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = loads_strict(body, max_bytes=MAX_RESPONSE_BYTES, max_depth=8)
    except WireError:
        return {}
    return document if isinstance(document, dict) else {}
