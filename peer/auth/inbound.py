"""Inbound authentication: every request or WebSocket handshake maps to one partner.

Three kinds of credential (docs/security.md, push-pull PP-20):

- a static bearer token, configured as its SHA-256 (``bearer_sha256``);
- a TLS client certificate (mTLS), configured as the SHA-256 of its DER form
  (``client_cert_sha256``); the TLS layer has already checked it chains to
  ``peer.tls.client_ca``, and ``peer/server/serve.py`` puts it in the ASGI ``tls`` extension;
- an OAuth 2.0 JWT access token (RFC 9068) from the partner's configured issuer,
  for its configured subject (``[partners.inbound.oauth]``).

Anything else is refused with 401 and ``WWW-Authenticate`` (decision 7) before any
body is read or any WebSocket accepted; with OAuth configured the challenge carries
RFC 9728's ``resource_metadata`` (OPRM-19). Credentials that name two different
partners are refused too: a session always speaks for exactly one partner.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from starlette.requests import HTTPConnection

from ..errors import AuthenticationFailed
from .access_tokens import (
    AccessTokenVerifier,
    AuthorizationServerKeys,
    TokenRejected,
    token_client,
    unverified_issuer,
)
from .discovery import resource_metadata_url
from .stream_bearers import StreamBearers, token_digest

if TYPE_CHECKING:
    from ..config import Partner

__all__ = [
    "RESOURCE_PATHS",
    "WWW_AUTHENTICATE",
    "InboundAuthenticator",
    "Unauthorized",
    "client_certificate",
]

WWW_AUTHENTICATE: Final = 'Bearer realm="setpeer"'
# Our protected resources (the push-pull and adapter routes); each is an RFC 9728 resource.
RESOURCE_PATHS: Final = ("/pushpull", "/events", "/multipush", "/poll")


class Unauthorized(AuthenticationFailed):
    """401 with the challenge to send in ``WWW-Authenticate`` (RFC 6750 §3, OPRM-19).

    Attributes:
        challenge: the header value.
    """

    def __init__(self, description: str, challenge: str) -> None:
        super().__init__(description)
        self.challenge = challenge


def client_certificate(scope: Mapping[str, Any]) -> bytes | None:
    """The DER client certificate of the connection, from the ASGI ``tls`` extension.

    The extension's ``client_cert_chain`` holds PEM strings, the client's own
    certificate first (ASGI TLS extension spec); absent or empty means none.
    """
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if isinstance(extensions, Mapping) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, Mapping) else None
    if not chain:
        return None
    first = next(iter(chain))
    try:
        return ssl.PEM_cert_to_DER_cert(first) if isinstance(first, str) else None
    except ValueError:
        return None


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string of ``value`` (our own text, bounded)."""
    clean = "".join(c for c in value[:200] if c.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HasPartner(Protocol):
    """Anything that names one partner (a Link)."""

    @property
    def partner(self) -> Partner: ...


Link = TypeVar("Link", bound=HasPartner)


class InboundAuthenticator(Generic[Link]):
    """Maps a presented credential to the one partner it belongs to.

    Static tokens and certificates are hashed and compared with every partner's
    digest in constant time, so neither which partner nearly matched nor how much
    leaks by timing.

    Args:
        links: every partner's Link.
        base_url: returns our public base URL (``PeerConfig.public_url``, else the
            bound URL); our resource identifiers are it plus :data:`RESOURCE_PATHS`.
        streams: the tokens we gave SSF transmitters with their streams; each one
            authenticates the partner it was given to.
    """

    def __init__(
        self,
        links: Iterable[Link],
        *,
        base_url: Callable[[], str] = str,
        streams: StreamBearers | None = None,
    ) -> None:
        self._base_url = base_url
        self._streams = streams
        self._by_name: dict[str, Link] = {}
        self._bearers: list[tuple[bytes, Link]] = []
        self._certs: list[tuple[bytes, Link]] = []
        self._oauth: dict[tuple[str, str], Link] = {}
        self._verifiers: dict[str, AccessTokenVerifier] = {}
        for link in links:
            self._by_name[link.partner.name] = link
            inbound = link.partner.inbound
            if inbound.bearer_sha256:
                self._bearers.append((bytes.fromhex(inbound.bearer_sha256), link))
            if inbound.client_cert_sha256:
                self._certs.append((bytes.fromhex(inbound.client_cert_sha256), link))
            oauth = inbound.oauth
            if oauth is not None:
                self._oauth[(oauth.issuer, oauth.subject)] = link
                if oauth.issuer not in self._verifiers:
                    keys = AuthorizationServerKeys(oauth.issuer, ca=oauth.ca)
                    self._verifiers[oauth.issuer] = AccessTokenVerifier(keys)

    @property
    def uses_oauth(self) -> bool:
        """Whether any partner authenticates with OAuth access tokens."""
        return bool(self._oauth)

    @property
    def authorization_servers(self) -> list[str]:
        """Issuers whose access tokens we accept, sorted (RFC 9728 metadata)."""
        return sorted(self._verifiers)

    @property
    def required_scopes(self) -> list[str]:
        """Every scope some partner's token must carry, sorted (``scopes_supported``)."""
        scopes: set[str] = set()
        for link in self._oauth.values():
            oauth = link.partner.inbound.oauth
            scopes.update((oauth.scope or "").split() if oauth is not None else ())
        return sorted(scopes)

    def resources(self) -> list[str]:
        """Our resource identifiers: the audiences access tokens must carry (OPRM-27)."""
        base = self._base_url().rstrip("/")
        return [base + path for path in RESOURCE_PATHS]

    def challenge(self, path: str, error: str | None = None, description: str = "") -> str:
        """The ``WWW-Authenticate`` value for a refusal on ``path``.

        Without credentials no error code is sent (RFC 6750 §3.1); a bad token gets
        ``invalid_token``. With OAuth configured, ``resource_metadata`` points at the
        metadata of the resource requested (RFC 9728 §5.1, OPRM-19).
        """
        parts = [WWW_AUTHENTICATE]
        if error is not None:
            parts.append(f"error={_quoted(error)}")
            if description:
                parts.append(f"error_description={_quoted(description)}")
        if self.uses_oauth:
            resource = self._base_url().rstrip("/") + path
            parts.append(f"resource_metadata={_quoted(resource_metadata_url(resource))}")
        return ", ".join(parts)

    async def authenticate(self, conn: HTTPConnection) -> Link:
        """The partner behind ``conn``'s credentials (a Request or a WebSocket).

        Raises:
            Unauthorized: no credentials, none that match a partner, credentials
                that name different partners, or two ``Authorization`` headers.
        """
        path = conn.url.path
        by_cert = self._by_certificate(conn.scope)
        presented = conn.headers.getlist("authorization")
        if len(presented) > 1:
            # Which one counts would be a guess, and intermediaries may pick another
            # than we do (RFC 9110 §5.3 does not allow the field twice).
            raise Unauthorized(
                "more than one Authorization header",
                self.challenge(path, "invalid_request", "one Authorization header only"),
            )
        authorization = presented[0] if presented else None
        if not authorization:
            if by_cert is not None:
                return by_cert
            raise Unauthorized("missing credentials", self.challenge(path))
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "expected a Bearer token", self.challenge(path, "invalid_request", "Bearer only")
            )
        try:
            by_token = await self._by_token(token)
        except TokenRejected as exc:
            raise Unauthorized(
                exc.description, self.challenge(path, "invalid_token", exc.description)
            ) from None
        if by_cert is not None and by_cert is not by_token:
            raise Unauthorized(
                "client certificate and token belong to different partners",
                self.challenge(path, "invalid_token", "credentials disagree"),
            )
        return by_token

    def _by_certificate(self, scope: Mapping[str, Any]) -> Link | None:
        der = client_certificate(scope)
        if der is None or not self._certs:
            return None
        presented = hashlib.sha256(der).digest()
        found: Link | None = None
        for digest, link in self._certs:
            if hmac.compare_digest(presented, digest):
                found = link
        return found

    async def _by_token(self, token: str) -> Link:
        presented = token_digest(token)
        found: Link | None = None
        for digest, link in self._bearers:
            if hmac.compare_digest(presented, digest):
                found = link
        if found is not None:
            return found
        if self._streams is not None:
            name = await self._streams.lookup(presented)
            if name is not None and (by_stream := self._by_name.get(name)) is not None:
                return by_stream
        issuer = unverified_issuer(token) if self._verifiers else None
        verifier = self._verifiers.get(issuer) if issuer is not None else None
        if verifier is None:
            raise TokenRejected("invalid bearer token")
        claims = await verifier.verify(token, audiences=self.resources())
        # One rule for sub and client_id (token_client): both name the same client.
        mapped = self._oauth.get((verifier.issuer, token_client(claims)))
        if mapped is None:
            raise TokenRejected("access token subject is not a known partner")
        oauth = mapped.partner.inbound.oauth
        required = set((oauth.scope or "").split()) if oauth is not None else set()
        granted = claims.get("scope")
        if required and not (isinstance(granted, str) and required <= set(granted.split())):
            raise TokenRejected("access token lacks the required scope")
        return mapped
