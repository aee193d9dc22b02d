"""Received: a verified SET from a partner, as the application sees it.

Both facades hand these out: :class:`peer.Peer` reads them from its store,
:class:`peer.Client` from the node's local interface. Only ``done`` differs: how the
SET is marked handled is a callable each facade supplies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["Received", "subject_of"]


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A verified SET from a partner.

    Call :meth:`done` once it is handled: until then a restart hands it out again
    (locally — it never travels the wire twice).

    Attributes:
        partner: the configured partner it came from.
        jti: its jti.
        claims: its verified claims.
        token: the compact SET as the partner signed it.
        seq: its place in the node's inbox (``done`` names it).
    """

    partner: str
    jti: str
    claims: Mapping[str, Any]
    token: str
    seq: int
    _done: Callable[[], Awaitable[None]] = dataclasses.field(repr=False, compare=False)

    async def done(self) -> None:
        """Mark handled: never handed to the application again."""
        await self._done()

    @property
    def events(self) -> tuple[str, ...]:
        """The event type URIs of its ``events`` claim, in the SET's order."""
        events = self.claims.get("events")
        return tuple(events) if isinstance(events, Mapping) else ()

    @property
    def subject(self) -> Mapping[str, Any] | None:
        """Whom it is about: see :func:`subject_of`."""
        return subject_of(self.claims)


def subject_of(claims: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The subject of a SET: its top-level ``sub_id`` (RFC 9493, as SSF has it), else
    the ``subject`` member of its first event's payload (older senders), else None."""
    sub_id = claims.get("sub_id")
    if isinstance(sub_id, Mapping):
        return sub_id
    events = claims.get("events")
    if isinstance(events, Mapping):
        for payload in events.values():
            subject = payload.get("subject") if isinstance(payload, Mapping) else None
            return subject if isinstance(subject, Mapping) else None
    return None
