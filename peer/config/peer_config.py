"""PeerConfig: a node's whole configuration, and its checks.

Its parts (partners, TLS, credentials) are in :mod:`.model`; the rules every
configuration must meet, with each problem's key path, in :mod:`.checks`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownPartner
from .checks import config_problems
from .limits import Limits
from .model import (
    INHERIT_LIMITS,
    AppConfig,
    MetricsConfig,
    Partner,
    TLSConfig,
    as_path,
    resolve_paths,
)

__all__ = ["PeerConfig"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """A node's whole configuration (``[peer]`` and every ``[[partners]]``).

    Attributes:
        issuer: our ``iss``; the audience partners put on SETs for us.
        listen: ``HOST:PORT`` to serve on (``[::1]:8443`` for IPv6; port 0 = ephemeral).
        store: ``memory://``, ``sqlite:///rel.db``, ``sqlite:////abs.db`` or
            ``postgresql://...``; a relative SQLite path starts at ``config_dir``.
        signing_keys: our private JWK Set; its first key signs.
        allow_insecure_loopback: permit plain ``http``/``ws`` to, and plain HTTP on,
            literal loopback addresses (127.0.0.0/8, ::1). For tests and demos.
        tls: server TLS; None serves plain HTTP (loopback only, with the flag above).
        public_url: the base URL partners reach us at (``https://b.example``): our
            RFC 9728 resource identifiers (``<public_url>/pushpull``) and the audience
            OAuth access tokens must carry. Default: the URL actually bound.
        metrics: where ``GET /metrics`` is served and its credential (``[peer.metrics]``).
        app: the local application interface and webhook (``[peer.app]``).
        limits: the peer's limits, inherited by partners that do not override them.
        partners: every partner, in file order.
        config_dir: the folder relative paths start from (the TOML file's folder; the
            working folder at construction for configs built in code).
    """

    issuer: str
    listen: str = "127.0.0.1:8443"
    store: str = "sqlite:///setpeer.db"
    signing_keys: Path
    allow_insecure_loopback: bool = False
    tls: TLSConfig | None = None
    public_url: str | None = None
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    app: AppConfig = dataclasses.field(default_factory=AppConfig)
    limits: Limits = dataclasses.field(default_factory=Limits)
    partners: tuple[Partner, ...] = ()
    config_dir: Path = dataclasses.field(default_factory=Path.cwd)

    def __post_init__(self) -> None:
        base = self.config_dir if isinstance(self.config_dir, Path) else None
        resolve_paths(self, ("signing_keys",), base)
        if isinstance(self.tls, TLSConfig) and base is not None:
            tls = self.tls
            object.__setattr__(
                self,
                "tls",
                dataclasses.replace(
                    tls,
                    certfile=as_path(tls.certfile, base),
                    keyfile=as_path(tls.keyfile, base),
                    client_ca=None if tls.client_ca is None else as_path(tls.client_ca, base),
                ),
            )
        if isinstance(self.partners, list | tuple):
            partners = tuple(self._adopt(p) for p in self.partners)
            object.__setattr__(self, "partners", partners)

    def _adopt(self, partner: object) -> object:
        """A partner with the peer's folder and limits where it gave none."""
        if not isinstance(partner, Partner):
            return partner
        changes: dict[str, Any] = {}
        if partner.config_dir is None:
            changes["config_dir"] = self.config_dir
        if partner.limits is INHERIT_LIMITS:
            changes["limits"] = self.limits
        return dataclasses.replace(partner, **changes) if changes else partner

    @property
    def signing_keys_path(self) -> Path:
        """Our private JWK Set file."""
        return self.signing_keys

    @property
    def listen_host(self) -> str:
        """The host part of ``listen``, brackets removed."""
        host, _, _ = self.listen.rpartition(":")
        return host.removeprefix("[").removesuffix("]")

    @property
    def listen_port(self) -> int:
        """The port part of ``listen`` (0: any free port)."""
        return int(self.listen.rpartition(":")[2])

    @property
    def app_socket(self) -> Path | None:
        """The Unix socket ``[peer.app] listen`` names (relative to ``config_dir``), or
        None when the local interface is off or on TCP."""
        listen = self.app.listen
        if listen is None or not listen.startswith("unix:"):
            return None
        return self.config_dir / listen.removeprefix("unix:")

    @property
    def store_path(self) -> Path | None:
        """The SQLite file the store URL names (relative to ``config_dir``), else None."""
        prefix = "sqlite:///"
        if not self.store.startswith(prefix) or len(self.store) == len(prefix):
            return None
        return self.config_dir / self.store[len(prefix) :]

    def partner(self, name: str) -> Partner:
        """The partner called ``name``.

        Raises:
            UnknownPartner: none is.
        """
        for partner in self.partners:
            if partner.name == name:
                return partner
        raise UnknownPartner(f"no partner named {name!r}")

    def problems(self) -> list[tuple[str, str]]:
        """Every problem with this configuration, as ``(key_path, message)`` pairs."""
        return config_problems(self)

    def validate(self) -> None:
        """Check this configuration the way ``load_config`` checks a file.

        Raises:
            ConfigError: every problem found, each with its key path.
        """
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
