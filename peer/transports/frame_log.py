"""DEBUG lines for the frames a session reads and writes: their size and what they
carry (SETs, acks, errors), numbered per session and direction. Counts only: a SET's
token never reaches a log line.

``debug.on`` is read before a frame is described, so a node logging at INFO pays one
attribute lookup per frame.
"""

from __future__ import annotations

import logging
from typing import Final

from ..protocol.communication import CommunicationObject
from ..protocol.vocabulary import SessionId

__all__ = ["FrameLog", "debug"]

log = logging.getLogger("setpeer.frames")

_MAX_SESSIONS: Final = 10_000  # sessions numbered at once; past it the numbering restarts


class FrameLog:
    """Numbers each session's frames and logs one DEBUG line per frame."""

    def __init__(self) -> None:
        self._counts: dict[tuple[SessionId, str], int] = {}

    @property
    def on(self) -> bool:
        """Whether frame lines are logged (``setpeer.frames`` at DEBUG)."""
        return log.isEnabledFor(logging.DEBUG)

    def frame(
        self, partner: str, session: SessionId, way: str, size: int, frame: CommunicationObject
    ) -> None:
        """One frame of ``size`` bytes, ``way`` "in" or "out" on ``session``."""
        key = (session, way)
        if key not in self._counts and len(self._counts) >= _MAX_SESSIONS:
            self._counts.clear()
        number = self._counts[key] = self._counts.get(key, 0) + 1
        sets, acks = len(frame.sets) + len(frame.rejected), len(frame.ack)
        errors = len(frame.set_errs)
        log.debug(
            "partner=%s session=%d frame %s #%d: %d bytes, %d SETs, %d acks, %d setErrs",
            partner,
            session,
            way,
            number,
            size,
            sets,
            acks,
            errors,
            extra={"partner": partner, "session": session, "frame": number, "way": way}
            | {"bytes": size, "sets": sets, "acks": acks, "set_errs": errors},
        )

    def ended(self, session: SessionId) -> None:
        """Forget ``session``'s numbers."""
        self._counts.pop((session, "in"), None)
        self._counts.pop((session, "out"), None)


debug = FrameLog()
"""The process's frame log (sessions are numbered process-wide)."""
