"""Credentials handed out with SSF streams: each one names the partner it was given to.

When we create a push stream at an SSF transmitter, we give it a fresh bearer token
(the delivery's ``authorization_header``, SSF-19) and keep only the token's SHA-256.
The token then authenticates that partner on ``/events`` like its configured
``[partners.inbound]`` credential. Streams may be created by another process (the
``setpeer stream`` command) while the node runs: a token we do not know makes the
book be read again from the store, at most once per :data:`RELOAD_INTERVAL`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import anyio

from ..errors import PeerError

__all__ = ["RELOAD_INTERVAL", "StreamBearers", "token_digest"]

RELOAD_INTERVAL: Final = 1.0
"""Seconds between two reloads of the book asked for by unknown tokens."""


def token_digest(token: str) -> bytes:
    """The SHA-256 of a bearer token as presented (what the book keeps)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class StreamBearers:
    """Partner by token digest, for the tokens our SSF streams were given.

    Args:
        load: reads every ``(partner, digest)`` from the store; None: the book holds
            only what :meth:`put` adds.
        clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[Iterable[tuple[str, bytes]]]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: list[tuple[bytes, str]] = []
        self._load = load
        self._clock = clock
        self._loaded_at = -RELOAD_INTERVAL
        self._lock = anyio.Lock()

    def put(self, partner: str, digest: bytes) -> None:
        """Accept the token of ``digest`` as ``partner``'s from now on."""
        if (digest, partner) not in self._entries:
            self._entries.append((digest, partner))

    def replace(self, entries: Iterable[tuple[str, bytes]]) -> None:
        """Hold exactly these ``(partner, digest)`` pairs."""
        self._entries = [(digest, partner) for partner, digest in entries]

    def match(self, digest: bytes) -> str | None:
        """The partner whose stream token has ``digest``; compared in constant time
        with every entry, so timing tells nothing of near matches."""
        found: str | None = None
        for known, partner in self._entries:
            if hmac.compare_digest(known, digest):
                found = partner
        return found

    async def lookup(self, digest: bytes) -> str | None:
        """:meth:`match`, reading the book again from the store first when the digest
        is unknown and the last reading is older than :data:`RELOAD_INTERVAL`."""
        found = self.match(digest)
        if found is not None or self._load is None:
            return found
        async with self._lock:
            if self._clock() - self._loaded_at >= RELOAD_INTERVAL:
                self._loaded_at = self._clock()
                try:
                    self.replace(await self._load())
                except PeerError:
                    pass  # the store is away: the tokens known so far still count
        return self.match(digest)
