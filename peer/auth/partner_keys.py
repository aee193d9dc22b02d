"""A partner's verification keys from its ``jwks_uri``.

The JWK Set is fetched over HTTPS (the partner's ``ca`` trusted, no redirects, the
body bounded), kept in the partner's :class:`~peer.tokens.keys.KeyStore` and fetched
again every :data:`TTL` seconds. A SET signed with a ``kid`` we do not know makes
the Link ask for one refetch (:meth:`RemoteKeys.refetch`): concurrent asks share
it, and refetches are at least :data:`MIN_INTERVAL` apart, so a partner sending
random ``kid`` values cannot make us hammer its server — its SETs just wait. So a
partner that publishes a new key and then signs with it loses no SET. A document
that cannot be fetched or is not a usable JWK Set leaves the keys we have in use;
while we have none at all, the partner's SETs are refused with a retryable answer
(:class:`KeysUnavailable`), never with ``invalid_key``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

import anyio
import httpx

from ..errors import Overloaded
from .discovery import DiscoveryError, fetch_json
from .outbound import tls_context

if TYPE_CHECKING:
    from ..config import Partner
    from ..tokens.keys import KeyStore

__all__ = ["MAX_JWKS_BYTES", "MIN_INTERVAL", "TTL", "KeysUnavailable", "RemoteKeys"]

log = logging.getLogger("setpeer.keys")

TTL: Final = 300.0
"""Seconds a fetched JWK Set is used before it is fetched again."""
MIN_INTERVAL: Final = 2.0
"""Seconds between two fetches, however many unknown ``kid`` values arrive."""
MAX_JWKS_BYTES: Final = 256 * 1024
"""A JWK Set larger than this is refused (a few dozen RSA keys fit easily)."""


class KeysUnavailable(Overloaded):
    """The partner's keys could not be fetched: its SETs cannot be checked now.

    Refused whole and retryable (HTTP 503, WebSocket close 1013): nothing is stored
    or acknowledged, so the partner sends the SETs again later.
    """

    http_status = 503


class RemoteKeys:
    """Keeps ``keys`` filled from ``partner.jwks_uri``.

    Args:
        partner: the partner (its ``jwks_uri`` and ``ca``).
        keys: the store the partner's Verifier reads.
    """

    def __init__(self, partner: Partner, keys: KeyStore) -> None:
        assert partner.jwks_uri is not None
        self.url: str = partner.jwks_uri
        self.partner = partner
        self.keys = keys
        self.fetches = 0
        self._loaded = False
        self._last_attempt = -MIN_INTERVAL
        self._lock = anyio.Lock()
        self._client: httpx.AsyncClient | None = None

    @property
    def loaded(self) -> bool:
        """Whether a usable JWK Set was fetched at least once."""
        return self._loaded

    async def run(self) -> None:
        """Fetch now and every :data:`TTL` seconds (sooner while failing), until cancelled."""
        async with httpx.AsyncClient(
            verify=tls_context(self.partner), timeout=10.0, follow_redirects=False
        ) as client:
            self._client = client
            try:
                while True:
                    ok = await self.refetch()
                    await anyio.sleep(TTL if ok else MIN_INTERVAL)
            finally:
                self._client = None

    async def refetch(self) -> bool:
        """Fetch the JWK Set once more, no sooner than :data:`MIN_INTERVAL` after the
        last attempt; callers that arrive while a fetch runs share it.

        Returns:
            True if the keys now in use came from a fetch that succeeded (this one or,
            when the keys were fetched meanwhile, that one).
        """
        started = time.monotonic()
        async with self._lock:
            if self._last_attempt >= started:
                return self._loaded  # someone fetched while we waited for the lock
            wait = self._last_attempt + MIN_INTERVAL - time.monotonic()
            if wait > 0:
                await anyio.sleep(wait)
            self._last_attempt = time.monotonic()
            return await self._fetch()

    async def _fetch(self) -> bool:
        self.fetches += 1
        client = self._client
        if client is None:
            return self._loaded  # not running (the node is stopping)
        try:
            document = await fetch_json(
                client,
                self.url,
                what="jwks_uri",
                media_types=("application/json", "application/jwk-set+json"),
                max_bytes=MAX_JWKS_BYTES,
            )
            self.keys.replace(document)
        except (DiscoveryError, ValueError) as exc:
            # The keys we have stay in use; the next attempt comes after MIN_INTERVAL.
            log.warning("partner=%s cannot use its jwks_uri: %s", self.partner.name, exc)
            return self._loaded
        self._loaded = True
        log.info("partner=%s keys fetched from jwks_uri", self.partner.name)
        return True

    def require_loaded(self) -> None:
        """Raise :class:`KeysUnavailable` while no JWK Set was ever fetched."""
        if not self._loaded:
            raise KeysUnavailable("the partner's keys cannot be fetched yet", retry_after=2.0)
