"""Authentication of sessions: who is calling us, and how we present ourselves.

Inbound, every request or WebSocket handshake maps to exactly one partner or is
refused with 401 and ``WWW-Authenticate`` (decision 7), before any body is read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import AuthenticationFailed

if TYPE_CHECKING:
    from ..link import Link

__all__ = ["InboundAuthenticator", "WWW_AUTHENTICATE"]

WWW_AUTHENTICATE = 'Bearer realm="setpeer"'


class InboundAuthenticator:
    """Maps a presented credential to the one partner it belongs to.

    Static bearer tokens are configured as their SHA-256 (``bearer_sha256``): the
    presented token is hashed and compared with every partner's hash in constant
    time, so neither the token nor which partner it nearly matched leaks by timing.
    """

    def __init__(self, links: Iterable[Link]) -> None:
        self._bearers: list[tuple[bytes, Link]] = []
        for link in links:
            digest = link.partner.inbound_bearer_sha256
            if digest:
                self._bearers.append((bytes.fromhex(digest), link))

    def authenticate(self, headers: Mapping[str, str]) -> Link:
        """The partner behind ``headers``' credentials.

        Raises:
            AuthenticationFailed: no credentials, or none that match a partner.
        """
        authorization = headers.get("authorization")
        if not authorization:
            raise AuthenticationFailed("missing credentials")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("expected a Bearer token")
        presented = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Link | None = None
        for digest, link in self._bearers:
            if hmac.compare_digest(presented, digest):
                found = link
        if found is None:
            raise AuthenticationFailed("invalid bearer token")
        return found
