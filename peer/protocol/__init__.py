"""The sans-I/O protocol core: wire codecs, limits and the delivery Ledger.

Nothing here opens a socket, awaits, sleeps or reads a clock: time is a parameter.
``tests/protocol/test_no_io.py`` checks that importing this package loads no
asyncio, socket, httpx, websockets or starlette module.
"""

from __future__ import annotations

from .communication import CommunicationObject, SetErr
from .effects import Acked, AcksSent, Effect, Failed, Sent
from .limits import FrameLimits

__all__ = [
    "Acked",
    "AcksSent",
    "CommunicationObject",
    "Effect",
    "Failed",
    "FrameLimits",
    "Sent",
    "SetErr",
]
