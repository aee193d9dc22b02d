"""LocalNode: what the local interface needs of the node (``peer.node.Peer`` is one).

The routes are written against this Protocol, never against the node itself: the
node sits a layer above them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol

import anyio

from ..config import PeerConfig
from ..link import Failure
from ..store.base import InboxRow

__all__ = ["LocalNode"]


class LocalNode(Protocol):
    """The node, as the local application interface sees it."""

    @property
    def config(self) -> PeerConfig: ...

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
        """Sign and commit a SET for ``partner``; its jti once durable."""
        ...

    async def forward(self, partner: str, token: str) -> str:
        """Queue a SET signed elsewhere; its jti once durable."""
        ...

    async def inbox(self, *, after: int, limit: int) -> Sequence[InboxRow]:
        """Received SETs not yet done with ``seq > after``, in inbox order."""
        ...

    def inbox_changed(self) -> anyio.Event:
        """Set when a SET is stored after this call (take it before :meth:`inbox`)."""
        ...

    async def mark_done(self, seqs: Sequence[int]) -> None:
        """These inbox rows are handled: never handed out again; idempotent."""
        ...

    def failures(self) -> Awaitable[list[Failure]]:
        """SETs that ended in error, oldest first."""
        ...

    async def status(self) -> dict[str, Any]:
        """What ``setpeer status --json`` prints."""
        ...
