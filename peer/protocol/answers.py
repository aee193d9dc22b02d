"""The answers we owe a partner for the SETs it sent us (PP-23, MP-7, POLL-15).

Every receipt of an inbound SET is answered after it, with an ack or a setErr. An
answer is owed, then handed out in a frame, then paid (``AcksSent``) once the last
frame carrying it is delivered, or owed again if that frame is lost.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

from .communication import CommunicationObject, SetErr
from .effects import AcksSent
from .framebytes import answer_bytes
from .vocabulary import SessionId

__all__ = ["Debt", "answered"]


class Debt:
    """Answers owed to the partner for SETs it sent us (PP-23, MP-7).

    ``_owed`` holds answers to hand out, oldest first; ``_sent`` those handed out in
    frames not yet settled, with how many such frames carry each jti. A jti's debt
    is paid (``AcksSent``) when its last frame is delivered and no newer receipt of
    it is owed; a lost frame's answers are owed again.

    ``_via`` pins an owed answer to the session its SET came on, while that session
    lives: any session may carry any answer (PP-22), but when the partner is several
    nodes sharing one store, the answer reaches the node that sent the SET.
    """

    __slots__ = ("_owed", "_sent", "_via")

    def __init__(self) -> None:
        self._owed: OrderedDict[str, SetErr | None] = OrderedDict()
        self._sent: dict[str, tuple[SetErr | None, int]] = {}
        self._via: dict[str, SessionId] = {}  # jti -> session, for owed answers only

    @property
    def count(self) -> int:
        return len(self._owed) + len(self._sent)

    def __contains__(self, jti: str) -> bool:
        return jti in self._owed or jti in self._sent

    def owe(self, jti: str, error: SetErr | None, via: SessionId | None = None) -> None:
        # A repeat receipt not yet answered keeps its place; the latest verdict and
        # session win.
        self._owed[jti] = error
        if via is None:
            self._via.pop(jti, None)
        else:
            self._via[jti] = via

    def take(
        self, limit: int | None, via: SessionId | None = None, max_bytes: int | None = None
    ) -> tuple[list[str], dict[str, SetErr]]:
        """Owed answers for one frame, oldest first: at most ``limit`` of them, those
        pinned to another session left owed, and within ``max_bytes`` of JSON (the
        first one always goes)."""
        count = len(self._owed) if limit is None else min(max(limit, 0), len(self._owed))
        budget = math.inf if max_bytes is None else max_bytes
        pins = self._via
        jtis: list[str] = []
        size = 0
        for jti, error in self._owed.items():
            if len(jtis) >= count:
                break
            if pins:
                pinned = pins.get(jti)
                if pinned is not None and pinned != via:
                    continue  # this session's answers, or any; others wait for theirs
            cost = answer_bytes(jti, error)
            if jtis and size + cost > budget:
                break
            size += cost
            jtis.append(jti)
        taken = [(jti, self._owed.pop(jti)) for jti in jtis]
        if pins:
            for jti in jtis:
                pins.pop(jti, None)
        ack: list[str] = []
        errs: dict[str, SetErr] = {}
        for jti, error in taken:
            self._sent[jti] = (error, self._sent.get(jti, (None, 0))[1] + 1)
            if error is None:
                ack.append(jti)
            else:
                errs[jti] = error
        return ack, errs

    def unpin(self, via: SessionId) -> None:
        """``via`` ended: its owed answers may go on any session."""
        if self._via:
            self._via = {jti: v for jti, v in self._via.items() if v != via}

    def _settle(self, answers: Mapping[str, SetErr | None] | None) -> dict[str, SetErr | None]:
        """Take one frame's answers (None: every frame's) off ``_sent``; return those
        that were handed out and not settled yet."""
        if answers is None:
            settled = {jti: error for jti, (error, _) in self._sent.items()}
            self._sent.clear()
            return settled
        done: dict[str, SetErr | None] = {}
        for jti, error in answers.items():
            entry = self._sent.get(jti)
            if entry is None:
                continue  # not ours to settle: settled already, or never handed out
            if entry[1] > 1:
                self._sent[jti] = (entry[0], entry[1] - 1)
            else:
                del self._sent[jti]
            done[jti] = error
        return done

    def delivered(self, answers: Mapping[str, SetErr | None] | None) -> AcksSent | None:
        # Paid once no other frame carries it and no newer receipt of it is owed.
        paid = tuple(
            jti for jti in self._settle(answers) if jti not in self._sent and jti not in self._owed
        )
        return AcksSent(paid) if paid else None

    def lost(self, answers: Mapping[str, SetErr | None] | None) -> None:
        # Owed again even if another frame still carries an answer: that one may
        # predate a later receipt. Ahead of newer answers, in their original order.
        for jti, error in reversed(self._settle(answers).items()):
            if jti not in self._owed:
                self._owed[jti] = error
                self._owed.move_to_end(jti, last=False)


def answered(frame: CommunicationObject) -> dict[str, SetErr | None]:
    """The answers ``frame`` carries: jti -> None (ack) or its setErr."""
    answers: dict[str, SetErr | None] = dict.fromkeys(frame.ack)
    answers.update(frame.set_errs)
    return answers
