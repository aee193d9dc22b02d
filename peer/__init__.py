"""setpeer: a Security Event Token peer.

The public facade: the names in ``__all__``; every other module may change::

    from peer import Peer, load_config

Names are imported lazily, so that ``import peer.protocol`` stays free of I/O
modules (the sans-I/O core must not pull in asyncio, sockets or web frameworks).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    Backpressure,
    ConfigError,
    DuplicateJti,
    NodeUnavailable,
    NotAuthorized,
    PeerError,
    SETTooLarge,
    StoreError,
    StreamDisabled,
    UnknownPartner,
    WebhookConfigured,
)

if TYPE_CHECKING:
    from .client import Client
    from .config import Limits, Partner, PeerConfig, load_config
    from .facade import Facade
    from .link import Failure, PartnerStats
    from .node import Peer
    from .received import Received

__all__ = [
    "Backpressure",
    "Client",
    "ConfigError",
    "DuplicateJti",
    "Facade",
    "Failure",
    "Limits",
    "NodeUnavailable",
    "NotAuthorized",
    "Partner",
    "Peer",
    "PeerConfig",
    "PeerError",
    "PartnerStats",
    "Received",
    "SETTooLarge",
    "StoreError",
    "StreamDisabled",
    "UnknownPartner",
    "WebhookConfigured",
    "load_config",
]

_LAZY = {
    "Client": "client",
    "Facade": "facade",
    "Peer": "node",
    "Received": "received",
    "Failure": "link",
    "PartnerStats": "link",
    "Limits": "config",
    "Partner": "config",
    "PeerConfig": "config",
    "load_config": "config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
