"""``load_config(path)``: read a TOML file into a validated :class:`PeerConfig`.

The loader only checks the file's shape (tables where tables belong, no unknown keys:
a typo must never fall back to a default silently) and hands the values, unconverted,
to the dataclasses; ``config_problems`` then checks them, the same walk that serves
configs built in code. Every problem is collected before one ``ConfigError`` is raised.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigError
from .dialect import Dialect
from .limits import Limits
from .model import (
    DEFAULT_APP_LISTEN,
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

__all__ = ["MAX_CONFIG_BYTES", "load_config"]

# A config with a hundred partners is ~50 KiB; 1 MiB bounds the parse of a wrong or
# hostile file (tomllib holds it all in memory).
MAX_CONFIG_BYTES: Final = 1024 * 1024
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARTNER_INDEX: Final = re.compile(r"(?<=^partners)\[(\d+)\]")
_LIMIT_KEYS: Final = tuple(field.name for field in dataclasses.fields(Limits))

Problems = list[tuple[str, str]]


def _key_name(name: str) -> str:
    """``name`` as it appears in a key path: bare, or quoted and clipped."""
    if _BARE_KEY.fullmatch(name):
        return name
    quoted = json.dumps(name[:64])  # escapes control characters
    return quoted if len(name) <= 64 else quoted[:-1] + '..."'


class _Table:
    """One TOML table: hands out its values and reports the keys nobody asked for."""

    def __init__(self, data: dict[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def values(self, *names: str) -> dict[str, Any]:
        """The present keys among ``names``, raw (the dataclass checks them)."""
        self.used.update(names)
        return {name: self.data[name] for name in names if name in self.data}

    def value(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def table(self, name: str) -> _Table | None:
        """The sub-table ``name``, or None (absent, or not a table: a problem)."""
        self.used.add(name)
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, dict):
            self.problems.append((self.key(name), "must be a table"))
            return None
        return _Table(value, self.key(name), self.problems)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                self.problems.append((self.key(_key_name(name)), "unknown key"))


def _read_file(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {file}: {exc.strerror}")]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([("(file)", f"{file} is larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([("(file)", f"{file} is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position, never the text around it.
        raise ConfigError([("(file)", f"not valid TOML: {exc}")]) from None
    except (RecursionError, ValueError):
        # Arrays or inline tables nested ~1,000 deep, or an integer of >4,300 digits.
        message = "not valid TOML: nested too deeply or a number too long"
        raise ConfigError([("(file)", message)]) from None


def _limits(table: _Table | None, base: Limits) -> Limits:
    if table is None:
        return base
    limits = dataclasses.replace(base, **table.values(*_LIMIT_KEYS))
    table.finish()
    return limits


def _tls(table: _Table | None) -> TLSConfig | None:
    if table is None:
        return None
    values = table.values("certfile", "keyfile", "client_ca")
    table.finish()
    return TLSConfig(**{"certfile": None, "keyfile": None, **values})


def _metrics(table: _Table | None) -> MetricsConfig:
    if table is None:
        return MetricsConfig()
    values = table.values("listen", "token_sha256")
    table.finish()
    return MetricsConfig(**values)


def _app(table: _Table | None) -> AppConfig:
    if table is None:
        return AppConfig(listen=DEFAULT_APP_LISTEN, listen_defaulted=True)
    values = table.values("listen", "token_sha256", "deliver", "deliver_auth")
    table.finish()
    if "listen" in values:
        return AppConfig(**values)
    return AppConfig(**values, listen=DEFAULT_APP_LISTEN, listen_defaulted=True)


def _outbound(table: _Table | None) -> OutboundAuth:
    if table is None:
        return OutboundAuth()
    bearer = table.value("bearer")
    oauth = client_cert = None
    if (sub := table.table("oauth")) is not None:
        values = sub.values("client_id", "client_secret", "private_key_jwt", "scope")
        values.update(sub.values("token_endpoint", "issuer"))
        sub.finish()
        oauth = OAuthClient(**{"client_id": None, **values})
    if (sub := table.table("client_cert")) is not None:
        values = sub.values("certfile", "keyfile")
        sub.finish()
        client_cert = ClientCert(**{"certfile": None, "keyfile": None, **values})
    table.finish()
    return OutboundAuth(bearer=bearer, oauth=oauth, client_cert=client_cert)


def _inbound(table: _Table | None) -> InboundAuth:
    if table is None:
        return InboundAuth()
    values = table.values("bearer_sha256", "client_cert_sha256")
    oauth = None
    if (sub := table.table("oauth")) is not None:
        keys = sub.values("issuer", "subject", "scope", "ca")
        oauth = InboundOAuth(**{"issuer": None, "subject": None, **keys})
        sub.finish()
    table.finish()
    return InboundAuth(**values, oauth=oauth)


_PARTNER_KEYS: Final = (
    "name",
    "issuer",
    "audience",
    "jwks",
    "jwks_uri",
    "endpoint",
    "initiate",
    "transport",
    "send_via",
    "receive_via",
    "push_endpoint",
    "multipush_endpoint",
    "poll_endpoint",
    "ssf",
    "strict_subjects",
    "ca",
)


def _stream(table: _Table | None) -> StreamSettings:
    if table is None:
        return StreamSettings()
    values = table.values("delivery", "events_requested", "description")
    table.finish()
    events = values.get("events_requested")
    if isinstance(events, list):
        values["events_requested"] = tuple(events)
    return StreamSettings(**values)


def _dialect(table: _Table | None) -> Dialect:
    if table is None:
        return Dialect()
    values = table.values("poll_mode", "poll_interval", "ack_member", "payload_check")
    values.update(table.values("legacy_subjects"))
    table.finish()
    return Dialect(**values)


def _partner(table: _Table, peer_limits: Limits) -> Partner:
    values: dict[str, Any] = {"name": None, "issuer": None, "audience": None}
    values.update(table.values(*_PARTNER_KEYS))
    values["stream"] = _stream(table.table("stream"))
    values["auth"] = _outbound(table.table("auth"))
    values["inbound"] = _inbound(table.table("inbound"))
    values["dialect"] = _dialect(table.table("dialect"))
    if (limits := table.table("limits")) is not None:
        values["limits"] = _limits(limits, peer_limits)
    table.finish()
    return Partner(**values)


def load_config(path: str | os.PathLike[str]) -> PeerConfig:
    """Read and validate a TOML configuration file (keys: docs/configuration.md).

    Relative paths in it (``signing_keys``, ``jwks``, TLS files, ``file:`` secrets, a
    ``sqlite:///`` store) start at the file's folder.

    Args:
        path: the TOML file.

    Returns:
        The validated configuration; durations are floats.

    Raises:
        ConfigError: every problem found, each with its key path (``(file)`` when the
            file cannot be read or parsed at all).
    """
    file = Path(path)
    document = _read_file(file)
    problems: Problems = []
    root = _Table(document, "", problems)
    peer = root.table("peer") or _Table({}, "peer", problems)
    partner_items = root.value("partners")
    root.finish()

    values: dict[str, Any] = {"issuer": None, "signing_keys": None}
    values.update(
        peer.values(
            "issuer", "listen", "store", "signing_keys", "allow_insecure_loopback", "public_url"
        )
    )
    values["tls"] = _tls(peer.table("tls"))
    values["metrics"] = _metrics(peer.table("metrics"))
    values["app"] = _app(peer.table("app"))
    limits = values["limits"] = _limits(peer.table("limits"), Limits())
    peer.finish()

    partners: list[Partner] = []
    indices: list[int] = []  # file index of each partner built
    if partner_items is not None and not isinstance(partner_items, list):
        problems.append(("partners", "must be an array of tables ([[partners]])"))
    for index, item in enumerate(partner_items if isinstance(partner_items, list) else []):
        if not isinstance(item, dict):
            problems.append((f"partners[{index}]", "must be a table ([[partners]])"))
            continue
        partners.append(_partner(_Table(item, f"partners[{index}]", problems), limits))
        indices.append(index)

    config = PeerConfig(**values, partners=tuple(partners), config_dir=file.absolute().parent)
    for key, message in config.problems():
        # Entries that were not tables were skipped: report at the file's own index.
        problems.append((_PARTNER_INDEX.sub(lambda m: f"[{indices[int(m[1])]}]", key), message))
    if problems:
        raise ConfigError(problems)
    return _normalized(config)


def _normalized(config: PeerConfig) -> PeerConfig:
    """Durations as floats, now that they are known to be in range."""
    partners = tuple(
        dataclasses.replace(
            p,
            limits=p.limits.normalized(),
            dialect=dataclasses.replace(p.dialect, poll_interval=float(p.dialect.poll_interval)),
        )
        for p in config.partners
    )
    return dataclasses.replace(config, limits=config.limits.normalized(), partners=partners)
