"""A received SET as the local side shows it: ``{"seq", "partner", "jti", "claims",
"token"}`` — in ``GET /v1/received``, in each webhook POST and in each line of
``setpeer receive`` (one shape, written in one place)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["InboxItem", "received_item"]


class InboxItem(Protocol):
    """An inbox row (``peer.store.base.InboxRow``) or a :class:`peer.Received`."""

    @property
    def seq(self) -> int: ...

    @property
    def partner(self) -> str: ...

    @property
    def jti(self) -> str: ...

    @property
    def claims(self) -> Mapping[str, Any]: ...

    @property
    def token(self) -> str: ...


def received_item(item: InboxItem) -> dict[str, Any]:
    """The JSON object of one received SET."""
    return {
        "seq": item.seq,
        "partner": item.partner,
        "jti": item.jti,
        "claims": dict(item.claims),
        "token": item.token,
    }
