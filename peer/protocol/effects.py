"""What the Ledger decides, for the Link to persist: persist, then send.

The Link hands a batch of these to ``Store.apply`` in one transaction.
"""

from __future__ import annotations

import dataclasses

__all__ = ["AcksSent", "Acked", "Effect", "Failed", "Sent"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sent:
    """An outbound SET went out (again); retried at ``retry_at`` unless answered."""

    jti: str
    attempts: int
    retry_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Acked:
    """The partner acknowledged an outbound SET; it is never sent again (PP-25, MP-9)."""

    jti: str


@dataclasses.dataclass(frozen=True, slots=True)
class Failed:
    """An outbound SET ended in error: the partner's ``setErrs`` code or ours.

    ``err`` is the partner's RFC 8935 code, kept verbatim, or ``delivery_exhausted``
    when the attempt cap was reached (PP-21).
    """

    jti: str
    err: str
    description: str


@dataclasses.dataclass(frozen=True, slots=True)
class AcksSent:
    """Acks/setErrs we owed for these inbound jtis went out; the debt is paid."""

    jtis: tuple[str, ...]


Effect = Sent | Acked | Failed | AcksSent
