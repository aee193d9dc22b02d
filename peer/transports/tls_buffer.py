"""asyncio's TLS read buffer, sized for many idle sessions.

Python's asyncio TLS layer (``asyncio.sslproto.SSLProtocol``, 3.11+) gives every TLS
connection a read buffer of ``max_size`` bytes, 256 KiB, allocated zero-filled when
the connection opens, so resident whether or not anything is read. A node holding
1,000 idle ``wss://`` sessions kept ~250 MB of them: 308 KB per session measured,
70 KB with a 16 KiB buffer (docs/decisions.md, "TLS read buffer"). A TLS record holds
at most 16 KiB of data, so a 16 KiB buffer reads up to one record per call; a 1 MiB
frame takes 64 reads instead of 4: 0.2-0.3 ms more CPU per MiB (measured), where
verifying the SETs of that MiB takes ~130 ms.

The size is a class attribute: setting it applies to every asyncio TLS connection the
process opens from then on, served or dialed (uvicorn's and websockets'), not only
the node's. It is only ever lowered.
"""

from __future__ import annotations

import asyncio.sslproto
from typing import Final

__all__ = ["TLS_READ_BUFFER", "shrink_tls_read_buffer"]

TLS_READ_BUFFER: Final = 16 * 1024
"""Bytes asyncio reads from a TLS socket at once: one TLS record's worth."""


def shrink_tls_read_buffer() -> None:
    """Lower asyncio's per-connection TLS read buffer to :data:`TLS_READ_BUFFER` (a
    Python without that attribute is left as it is)."""
    protocol = asyncio.sslproto.SSLProtocol
    size = getattr(protocol, "max_size", None)
    if isinstance(size, int) and size > TLS_READ_BUFFER:
        protocol.max_size = TLS_READ_BUFFER
