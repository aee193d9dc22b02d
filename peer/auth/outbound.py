"""Outbound authentication: the credentials a Link presents to its partner.

:class:`OutboundAuth` gives the headers for a request or WebSocket handshake
(:meth:`~OutboundAuth.headers`) and is told about a 401 (:meth:`~OutboundAuth.refresh`).
The configured ``[partners.auth]`` decides what it does:

- ``bearer``: a static token from ``env:``/``file:``, read again after a 401 (so a
  rotated secret is picked up) and never logged;
- ``client_cert``: no header at all: the certificate goes into the client TLS context
  (:func:`client_ssl_context`), alone or with either of the others;
- ``oauth``: client credentials (RFC 6749 §4.4). push-pull PP-19: the authorization
  server is found through the partner's RFC 9728 metadata at the path-inserted
  well-known URL of its endpoint, then the server's RFC 8414 (or OIDC) metadata
  (decision 12, OPRM-15, OPRM-28, OPRM-29); unless ``token_endpoint`` is configured.
  Tokens are cached, replaced a fifth of their life before they expire and after a
  401, one request at a time per partner (an anyio Lock).

Every failure is a :class:`~peer.errors.PeerError` naming what failed and where:
``DiscoveryError`` and ``TokenRequestError`` (both ``ConnectError``), or
``ConfigError`` for an unreadable secret or key.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import anyio
import httpx

from ..errors import PeerError
from .client_credentials import AccessToken, TokenRequestError, request_token
from .discovery import (
    DiscoveryError,
    MetadataAbsent,
    fetch_as_metadata,
    fetch_resource_metadata,
    https_url,
    resource_metadata_url,
)

if TYPE_CHECKING:
    from ..config import Partner

__all__ = [
    "DiscoveryError",
    "OutboundAuth",
    "TokenRequestError",
    "client_ssl_context",
    "tls_context",
]

log = logging.getLogger("setpeer.auth")

# A 401 right after a new token means the token is not the problem: do not ask the
# authorization server again at the partner's request rate.
MIN_REFRESH_INTERVAL: Final = 2.0
# Renewal attempts after a failure: soon, then backing off to this.
RENEW_RETRY: Final = (1.0, 30.0)
_HTTP_TIMEOUT: Final = 10.0


def client_ssl_context(partner: Partner) -> ssl.SSLContext | None:
    """TLS for talking to ``partner``: its certificate and host name verified (PP-18).

    The system store plus the partner's ``ca``; our client certificate when
    ``[partners.auth.client_cert]`` is set. None for a plain loopback endpoint.
    The same context verifies the partner's metadata and authorization server.
    """
    endpoint = partner.endpoint or ""
    if not endpoint.startswith(("wss:", "https:")):
        return None
    return tls_context(partner)


def tls_context(partner: Partner) -> ssl.SSLContext:
    """Client TLS toward any of ``partner``'s URLs: the system store plus its ``ca``,
    and our client certificate when configured (PUSH-23, MP-20, POLL-23)."""
    # BCP 195 / OPRM-24: Python's default context already refuses TLS < 1.2.
    context = ssl.create_default_context()
    if partner.ca_path is not None:
        context.load_verify_locations(cafile=str(partner.ca_path))
    cert = partner.auth.client_cert
    if cert is not None:
        context.load_cert_chain(certfile=str(cert.certfile), keyfile=str(cert.keyfile))
    return context


def _non_public(host: str) -> bool:
    """A literal IP address that is not globally routable (OPRM-29)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


class OutboundAuth:
    """What we present to one partner, kept fresh.

    Args:
        partner: the partner's configuration.
        ssl_context: the TLS context for the partner (default: built with
            :func:`client_ssl_context` on first use).
    """

    def __init__(self, partner: Partner, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.partner = partner
        self._context = ssl_context
        self._bearer: str | None = None
        self._token: AccessToken | None = None
        self._token_endpoint: tuple[str, str] | None = None  # (endpoint, assertion aud)
        self._lock = anyio.Lock()
        self.tokens_obtained = 0

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context for this partner (None for a plain loopback endpoint)."""
        if self._context is None:
            self._context = client_ssl_context(self.partner)
        return self._context

    @property
    def uses_oauth(self) -> bool:
        """Whether access tokens are fetched from an authorization server."""
        return self.partner.auth.oauth is not None

    @property
    def refresh_at(self) -> float | None:
        """When the current access token is due for replacement (``time.monotonic``)."""
        return None if self._token is None else self._token.refresh_at

    @property
    def resource(self) -> str:
        """The resource we ask tokens for: the partner endpoint in https form (PP-19)."""
        return self.partner.http_endpoint

    def current_headers(self) -> dict[str, str]:
        """The headers as they stand, without waiting (the HTTP binding's hot path).

        The dialer calls :meth:`headers` before each session and keeps tokens fresh,
        so this is current. A static bearer that cannot be read raises ConfigError.
        """
        if self._token is not None:
            return {"authorization": f"Bearer {self._token.value}"}
        if self.partner.auth.bearer is not None:
            if self._bearer is None:
                self._bearer = self.partner.outbound_bearer()
            return {"authorization": f"Bearer {self._bearer}"} if self._bearer else {}
        return {}

    async def headers(self) -> dict[str, str]:
        """Headers for the next request or handshake, fetching a token if due.

        Raises:
            DiscoveryError: the partner's or authorization server's metadata.
            TokenRequestError: the token request failed.
            ConfigError: a secret or key cannot be read.
        """
        if self.uses_oauth:
            token = self._token
            if token is None or time.monotonic() >= token.refresh_at:
                async with self._lock:
                    await self._renew(due_only=True)
        return self.current_headers()

    async def refresh(self) -> None:
        """The partner answered 401: read the secret again, or get a new token.

        OPRM-20: metadata is discovered again as well. A token obtained less than
        :data:`MIN_REFRESH_INTERVAL` ago is kept (a concurrent refresh, or a 401 the
        token cannot fix).

        Raises:
            DiscoveryError, TokenRequestError, ConfigError: as :meth:`headers`.
        """
        async with self._lock:
            self._bearer = None
            if not self.uses_oauth:
                return
            token = self._token
            if token is not None and time.monotonic() - token.obtained_at < MIN_REFRESH_INTERVAL:
                return
            self._token_endpoint = None
            await self._renew(due_only=False)

    async def keep_fresh(self) -> None:
        """Renew the access token before it expires, until cancelled (OAuth only).

        Run it beside any sender that uses :meth:`current_headers` (the HTTP
        binding, push, multi-push, poll) so every request carries a valid token.
        Failures are logged and retried with backoff; a token still valid is kept.
        """
        if not self.uses_oauth:
            return
        delay = RENEW_RETRY[0]
        while True:
            try:
                await self.headers()
            except PeerError as exc:
                log.warning("partner=%s cannot renew access token: %s", self.name, exc)
            due = self.refresh_at
            now = time.monotonic()
            if due is None or due <= now:
                # Failed (a still-valid token may have been kept): back off.
                await anyio.sleep(delay)
                delay = min(delay * 2, RENEW_RETRY[1])
            else:
                delay = RENEW_RETRY[0]
                await anyio.sleep(due - now)

    async def _renew(self, *, due_only: bool) -> None:
        """Get a new token (the lock is held). A failure keeps a still-valid token."""
        old = self._token
        now = time.monotonic()
        if due_only and old is not None and now < old.refresh_at:
            return  # another task renewed it while we waited for the lock
        try:
            self._token = await self._obtain()
        except PeerError:
            if old is not None and now < old.expires_at:
                log.warning("partner=%s token renewal failed; old token still valid", self.name)
                self._token = old
                return
            self._token = None
            raise
        self.tokens_obtained += 1
        log.info(
            "partner=%s access token obtained (expires in %.0fs)", self.name, self._token.lifetime
        )

    @property
    def name(self) -> str:
        return self.partner.name

    async def _obtain(self) -> AccessToken:
        oauth = self.partner.auth.oauth
        assert oauth is not None
        context = self.ssl_context
        async with httpx.AsyncClient(
            verify=context if context is not None else True,
            timeout=_HTTP_TIMEOUT,
            follow_redirects=False,
        ) as client:
            if self._token_endpoint is None:
                self._token_endpoint = await self._discover(client)
            endpoint, audience = self._token_endpoint
            return await request_token(
                client,
                token_endpoint=endpoint,
                audience=audience,
                oauth=oauth,
                resource=self.resource,
                config_dir=self.partner.config_dir or Path.cwd(),
                key_path=f"partners[name={self.name!r}].auth.oauth",
            )

    async def _discover(self, client: httpx.AsyncClient) -> tuple[str, str]:
        """``(token endpoint, client assertion audience)`` for this partner."""
        oauth = self.partner.auth.oauth
        assert oauth is not None
        if oauth.token_endpoint is not None:
            return oauth.token_endpoint, oauth.issuer or oauth.token_endpoint
        resource = https_url(self.resource, f"partner {self.name} endpoint (OAuth needs https)")
        try:
            metadata = await fetch_resource_metadata(client, resource)
        except MetadataAbsent:
            raise DiscoveryError(
                f"partner {self.name} publishes no RFC 9728 metadata at "
                f"{resource_metadata_url(resource)}, and auth.oauth.token_endpoint is not set"
            ) from None
        servers = metadata.authorization_servers
        if oauth.issuer is not None:
            if oauth.issuer not in servers:
                # OPRM-28: the partner's document cannot send us to another server.
                raise DiscoveryError(
                    f"partner {self.name} metadata does not list the configured "
                    f"authorization server {oauth.issuer}"
                )
            issuer = oauth.issuer
        elif servers:
            issuer = servers[0]
            as_host = urlsplit(issuer).hostname or ""
            if _non_public(as_host) and as_host != urlsplit(resource).hostname:
                # OPRM-29: metadata must not point us at internal addresses; set
                # auth.oauth.issuer to trust one explicitly.
                raise DiscoveryError(
                    f"partner {self.name} metadata names an authorization server on a "
                    "non-public address; set auth.oauth.issuer to trust it"
                )
        else:
            raise DiscoveryError(f"partner {self.name} metadata lists no authorization_servers")
        server = await fetch_as_metadata(client, issuer)
        if server.token_endpoint is None:
            raise DiscoveryError(f"authorization server {issuer} has no token_endpoint")
        method = "private_key_jwt" if oauth.private_key_jwt is not None else "client_secret_basic"
        methods = server.token_endpoint_auth_methods
        # RFC 8414 §2: absent means client_secret_basic only.
        if method not in (methods if methods is not None else ("client_secret_basic",)):
            raise DiscoveryError(f"authorization server {issuer} does not support {method}")
        return server.token_endpoint, issuer
