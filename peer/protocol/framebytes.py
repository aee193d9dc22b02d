"""How many bytes SETs and answers take in a frame, to fill one within a byte budget.

A frame the partner refuses as too large would be sent again and again and hold
every SET behind it, so the Ledger fills a frame (a Communication Object, a
multi-push body, a poll response) up to the partner's limit, answers counted first.
"""

from __future__ import annotations

from collections.abc import Mapping

from .communication import SetErr
from .jsonio import dumps

__all__ = ["ENVELOPE_BYTES", "answer_bytes", "answers_bytes", "member_bytes"]

# Bytes of a Communication Object around its members ({"sets":{},"ack":[],...}) and of
# the other bodies SETs go in (multi-push, a poll response), with room to spare.
ENVELOPE_BYTES = 256


def member_bytes(jti: str, token: str) -> int:
    """Bytes of ``"jti":"token",`` in compact JSON (a compact JWS needs no escapes)."""
    return len(dumps(jti)) + len(token) + 4


def answer_bytes(jti: str, error: SetErr | None) -> int:
    """Bytes one answer takes: ``"jti",`` in ``ack``, or ``"jti":{...},`` in ``setErrs``."""
    if error is None:
        return len(dumps(jti)) + 1
    return len(dumps(jti)) + len(dumps(error.to_json())) + 2


def answers_bytes(ack: list[str], errs: Mapping[str, SetErr]) -> int:
    """Bytes the answers take in a Communication Object, members and separators."""
    size = sum(answer_bytes(jti, None) for jti in ack)
    for jti, error in errs.items():
        size += answer_bytes(jti, error)
    return size
