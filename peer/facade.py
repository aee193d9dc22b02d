"""Facade: what :class:`peer.Peer` and :class:`peer.Client` both offer an application.

Code written against ``Facade`` runs in the node's process (``Peer``) or beside a
running ``setpeer run`` (``Client``, over the local interface)::

    async def drain(node: Facade) -> None:
        async for rx in node.receive():
            ...
            await rx.done()
        page = await node.received(after=0, wait=5)  # or a page at a time,
        await node.done([rx.seq for rx in page])  # done in one commit
        failures = await node.failures()  # works with both

``Peer.failures()`` and ``Peer.stats()`` answer at once and stay usable without
``await`` (their results are a list and a dict that may also be awaited);
``Client``'s must be awaited. ``await node.failures()`` works with both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Generator, Mapping, Sequence
from typing import Any, Protocol, Self, TypeVar

from .link import Failure, PartnerStats
from .received import Received

__all__ = ["Facade", "Failures", "Stats"]

T = TypeVar("T")


class Failures(list[Failure]):
    """``Peer.failures()``: a list of :class:`Failure` that may also be awaited."""

    def __await__(self) -> Generator[Any, Any, Self]:
        return _itself(self).__await__()


class Stats(dict[str, PartnerStats]):
    """``Peer.stats()``: a dict of :class:`PartnerStats` that may also be awaited."""

    def __await__(self) -> Generator[Any, Any, Self]:
        return _itself(self).__await__()


async def _itself(value: T) -> T:
    return value


class Facade(Protocol):
    """The facade both :class:`peer.Peer` and :class:`peer.Client` satisfy.

    Each method means what ``Peer``'s does, and raises the same exception classes.
    """

    async def publish(
        self,
        partner: str,
        events: Mapping[str, Mapping[str, Any]],
        *,
        sub_id: Mapping[str, Any] | None = None,
        txn: str | None = None,
        toe: int | float | None = None,
        jti: str | None = None,
    ) -> str:
        """Sign a SET for ``partner`` and commit it; its jti, once durable."""
        ...

    async def forward(self, partner: str, token: str) -> str:
        """Queue a SET signed elsewhere for ``partner``; its jti."""
        ...

    def receive(self) -> AsyncIterator[Received]:
        """Verified inbound SETs, in inbox order, until cancelled."""
        ...

    async def received(
        self, *, after: int = 0, limit: int = ..., wait: float = 0.0
    ) -> list[Received]:
        """One page of received SETs not yet done, inbox order, after row ``after``;
        waits up to ``wait`` seconds for the first."""
        ...

    async def done(self, seqs: Sequence[int]) -> None:
        """Mark these inbox rows handled, many at once; idempotent."""
        ...

    def failures(self) -> Awaitable[list[Failure]]:
        """SETs that ended in error, oldest first (``await`` it)."""
        ...

    def stats(self) -> Awaitable[dict[str, PartnerStats]]:
        """Per partner: session, pending, inflight, acked, failed, received."""
        ...

    async def flush(self, timeout: float = 30) -> None:
        """Wait until nothing is pending or in flight to any partner."""
        ...
