"""setpeer: a Security Event Token peer.

The public facade (API.md "Python facade"); every other module may change.
"""

from __future__ import annotations

from .errors import ConfigError, PeerError

__all__ = ["ConfigError", "PeerError"]
