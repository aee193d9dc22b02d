"""The Ledger's effects for one partner as one plan every backend applies alike.

``Store.apply`` receives effects in the order the Ledger made them (``Sent``,
``Acked``, ``Failed``, ``AcksSent``: ``peer/protocol/effects.py``). They are
checked and folded here, once, into what changes; a backend only turns the plan
into its statements (or dict updates), in this order, so every backend ends in the
same state:

1. ``sent``: attempts never fall; the last retry time wins. A row acked in the
   same call gets no attempt count first (one row write instead of two: the usual
   case when a frame's ack comes quickly).
2. ``acked``: the row is finished.
3. ``failed``: the row is finished with the partner's error (or ours); the first
   verdict for a jti wins, and an ack applied before it leaves nothing to fail.
4. ``paid``: the answers we owed for these inbound jtis went out.

Only unfinished rows change: a late ``Sent`` never reopens an acked SET (MP-9). An
effect naming a jti no row can hold (not text) matches nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..protocol.effects import Acked, AcksSent, Effect, Failed, Sent
from .checks import InvalidValue, check_text, is_text

__all__ = ["EffectPlan", "plan_effects"]


@dataclasses.dataclass(frozen=True, slots=True)
class EffectPlan:
    """What one ``apply`` call changes for ``partner`` (see the module doc)."""

    partner: str
    sent: dict[str, tuple[int, float | None]]  # jti -> (most attempts, retry time)
    acked: list[str]
    failed: dict[str, tuple[str, str]]  # jti -> (err, description)
    paid: list[str]


def plan_effects(partner: str, effects: Sequence[Effect]) -> EffectPlan:
    """Check ``effects`` and fold them into an :class:`EffectPlan`.

    Raises:
        InvalidValue: ``partner``, an ``err`` or a ``description`` is not text, or a
            Sent's attempts or retry time is not a number. Nothing is applied then.
    """
    name = check_text(partner, "partner")
    sent: dict[str, tuple[int, float | None]] = {}
    acked: list[str] = []
    failed: dict[str, tuple[str, str]] = {}
    paid: list[str] = []
    for e in effects:
        if isinstance(e, Failed):
            verdict = (check_text(e.err, "err"), check_text(e.description, "description"))
            if is_text(e.jti):
                failed.setdefault(e.jti, verdict)
        elif isinstance(e, Sent):
            if is_text(e.jti):
                before = sent.get(e.jti, (0, None))[0]
                sent[e.jti] = (max(before, _attempts(e.attempts)), _retry_at(e.retry_at))
        elif isinstance(e, Acked):
            if is_text(e.jti):
                acked.append(e.jti)
        elif isinstance(e, AcksSent):
            paid += [jti for jti in e.jtis if is_text(jti)]
    for jti in acked:
        sent.pop(jti, None)
    return EffectPlan(name, sent, acked, failed, paid)


def _retry_at(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidValue(f"retry_at must be a number of seconds, not {type(value).__name__}")


def _attempts(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise InvalidValue(f"attempts must be an integer in [0, 2**63-1], got {value!r}")
