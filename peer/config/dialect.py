"""``Dialect``: how a partner that predates SSF 1.0 and RFC 8936 speaks (``[partners.dialect]``).

Many transmitters in service follow the 2021 drafts: they answer a long poll with an
error and serve only short polls, read acknowledgements from ``acks``, and send CAEP
payloads with values outside the 1.0 enumerations, or complex subjects without
``format``. Each setting here bends one of our rules for one partner; signature,
``iss``, ``aud``, ``typ`` and size rules are never bent. docs/dialects.md has the
reasons and the examples.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "ACK_MEMBERS",
    "MAX_POLL_INTERVAL",
    "PAYLOAD_CHECKS",
    "POLL_MODES",
    "AckMember",
    "Dialect",
    "PayloadCheck",
    "PollMode",
    "dialect_problems",
]

PollMode: TypeAlias = Literal["auto", "long", "short"]
"""How we poll: long polls, short polls, or long until the partner refuses them."""
AckMember: TypeAlias = Literal["ack", "acks"]
"""The member our poll requests carry acknowledgements in."""
PayloadCheck: TypeAlias = Literal["strict", "warn", "off"]
"""What a CAEP/RISC/SSF payload that breaks its 1.0 schema meets: refusal, a logged
warning, or nothing."""

POLL_MODES: Final = get_args(PollMode)
ACK_MEMBERS: Final = get_args(AckMember)
PAYLOAD_CHECKS: Final = get_args(PayloadCheck)
MAX_POLL_INTERVAL: Final = 86400.0
"""A day: a longer pause between short polls is a unit mistake."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """A partner's older-draft habits and what we do about them.

    Attributes:
        poll_mode: ``receive_via = "poll"`` only. ``"long"``: every poll asks to be
            held (``returnImmediately: false``) until SETs come. ``"short"``: empty
            polls ask to be answered at once and the next one waits
            ``poll_interval``. ``"auto"``: long, until the partner answers a long
            poll with 400 or 404 (what older transmitters say to it); then short for
            as long as the node runs.
        poll_interval: seconds between two short polls that found nothing.
        ack_member: ``"acks"`` for a transmitter that reads acknowledgements from
            that member (older drafts) instead of RFC 8936's ``ack``.
        payload_check: ``"strict"`` refuses a known event's payload that breaks the
            1.0 schema; ``"warn"`` accepts it and logs what was wrong (at a bounded
            rate); ``"off"`` does not look at payloads. ``warn`` and ``off`` also
            mean ``legacy_subjects``.
        legacy_subjects: accept a complex subject inside an event written without
            ``format`` (the 2021 drafts' shape), and, under ``ssf = true``, a SET
            without a top-level ``sub_id`` whose event carries a ``subject``.
    """

    poll_mode: PollMode = "auto"
    poll_interval: float = 5.0
    ack_member: AckMember = "ack"
    payload_check: PayloadCheck = "strict"
    legacy_subjects: bool = False

    @property
    def lax_subjects(self) -> bool:
        """Whether the older subject shapes are accepted (see ``legacy_subjects``)."""
        return self.legacy_subjects is True or self.payload_check in ("warn", "off")


def dialect_problems(dialect: object, path: str) -> list[tuple[str, str]]:
    """Every problem with ``dialect``, each with its key path under ``path``."""
    if not isinstance(dialect, Dialect):
        return [(path, "must be a [partners.dialect] table (Dialect)")]
    problems: list[tuple[str, str]] = []
    for key, allowed in (
        ("poll_mode", POLL_MODES),
        ("ack_member", ACK_MEMBERS),
        ("payload_check", PAYLOAD_CHECKS),
    ):
        if getattr(dialect, key) not in allowed:
            problems.append((f"{path}.{key}", f"must be one of {', '.join(allowed)}"))
    interval = dialect.poll_interval
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or not 0 < interval <= MAX_POLL_INTERVAL
    ):
        problems.append(
            (
                f"{path}.poll_interval",
                f"must be seconds, greater than 0 and at most {MAX_POLL_INTERVAL:g}",
            )
        )
    if not isinstance(dialect.legacy_subjects, bool):
        problems.append((f"{path}.legacy_subjects", "must be true or false"))
    return problems
