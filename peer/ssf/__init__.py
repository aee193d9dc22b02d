"""SSF 1.0 stream management: partners that are SSF receivers manage their stream
with us (:mod:`.transmitter`, :mod:`.routes`); docs/ssf.md."""

from __future__ import annotations

from .routes import ssf_routes
from .transmitter import StreamError, Transmitter

__all__ = ["StreamError", "Transmitter", "ssf_routes"]
