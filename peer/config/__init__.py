"""Configuration: ``load_config(path) -> PeerConfig`` and the dataclasses it builds.

Every key, default and rule is in docs/configuration.md. A config can also be built in
code; ``PeerConfig.validate()`` then reports the same problems, with the same key paths,
as ``load_config``.

Modules: ``limits`` (Limits and their bounds), ``model`` (the dataclasses),
``dialect`` (a partner's older-draft habits), ``secrets`` (``env:``/``file:``
references), ``rules`` (single-value rules: URLs and the loopback exception, files,
JWK Sets), ``checks`` (the walk over a whole config), ``loader`` (TOML).
"""

from __future__ import annotations

from .dialect import Dialect
from .limits import Limits
from .loader import load_config
from .model import (
    RECEIVE_VIA,
    SEND_VIA,
    TRANSPORTS,
    AppConfig,
    ClientCert,
    InboundAuth,
    InboundOAuth,
    MetricsConfig,
    OAuthClient,
    OutboundAuth,
    Partner,
    StreamSettings,
    TLSConfig,
)
from .peer_config import PeerConfig
from .rules import is_loopback
from .secrets import check_secrets, resolve_secret

__all__ = [
    "RECEIVE_VIA",
    "SEND_VIA",
    "TRANSPORTS",
    "ClientCert",
    "Dialect",
    "InboundAuth",
    "InboundOAuth",
    "Limits",
    "AppConfig",
    "MetricsConfig",
    "OAuthClient",
    "OutboundAuth",
    "Partner",
    "PeerConfig",
    "StreamSettings",
    "TLSConfig",
    "check_secrets",
    "is_loopback",
    "load_config",
    "resolve_secret",
]
