"""Configuration: ``load_config(path) -> PeerConfig`` and the dataclasses it builds.

Every problem is collected with its key path (``partners[0].send_via``) and raised
together as one :class:`~peer.errors.ConfigError`; unknown keys are problems too, so
a typo never silently falls back to a default. Names follow API.md "Config (TOML)".
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .protocol.limits import FrameLimits

__all__ = [
    "InboundAuth",
    "Limits",
    "OutboundAuth",
    "Partner",
    "PeerConfig",
    "TLSConfig",
    "load_config",
    "resolve_secret",
]

SEND_VIA = ("pushpull", "push", "multipush", "poll")
RECEIVE_VIA = ("pushpull", "push", "multipush", "poll")
TRANSPORTS = ("websocket", "http")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits and timings (``[peer.limits]``, overridable in ``[partners.limits]``).

    Durations are seconds, sizes bytes. Each default has a reason:

    Attributes:
        max_frame_bytes: a WebSocket message or HTTP body (1 MiB: ~1,300 SETs).
        max_set_bytes: one SET (64 KiB: 80x a typical SET).
        max_sets_per_frame: SETs per object; the multi-push batch limit (413 beyond).
        window: SETs in flight per partner. Stop-and-wait caps a session at ~5-7k
            SETs/s on loopback (PERFORMANCE.md); 1,000 keeps the pipe full.
        ack_timeout: how long a sent SET waits for its ack before it counts as lost.
        retry_initial, retry_max: jittered exponential backoff between attempts.
        max_attempts: attempts before a SET fails with ``delivery_exhausted`` (PP-21).
        reconnect_initial, reconnect_max: backoff between session attempts; also how
            long the HTTP fallback runs before WebSocket is tried again.
        poll_redelivery: when an unacked polled SET is served again (POLL-15).
        long_poll_timeout: how long a long poll waits (below common proxy timeouts).
        handshake_timeout: TCP+TLS+upgrade, so slow clients cannot hold sockets.
        idle_timeout: an HTTP keep-alive connection with no request is closed.
    """

    max_frame_bytes: int = 1024 * 1024
    max_set_bytes: int = 64 * 1024
    max_sets_per_frame: int = 1000
    window: int = 1000
    ack_timeout: float = 10.0
    retry_initial: float = 1.0
    retry_max: float = 300.0
    max_attempts: int = 20
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    poll_redelivery: float = 30.0
    long_poll_timeout: float = 25.0
    handshake_timeout: float = 10.0
    idle_timeout: float = 60.0

    def frame_limits(self) -> FrameLimits:
        """The parse limits for the protocol core."""
        return FrameLimits(
            max_frame_bytes=self.max_frame_bytes,
            max_set_bytes=self.max_set_bytes,
            max_sets_per_frame=self.max_sets_per_frame,
        )


_INT_LIMITS = {"max_frame_bytes", "max_set_bytes", "max_sets_per_frame", "window", "max_attempts"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """Server TLS (``[peer.tls]``); ``client_ca`` turns on client certificates (mTLS)."""

    certfile: Path
    keyfile: Path
    client_ca: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutboundAuth:
    """How we authenticate to a partner (``[partners.auth]``): a secret reference."""

    bearer: str | None = None  # "env:NAME" or "file:PATH"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InboundAuth:
    """How a partner authenticates to us (``[partners.inbound]``)."""

    bearer_sha256: str | None = None
    client_cert_sha256: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Partner:
    """One partner peer (``[[partners]]``)."""

    name: str
    issuer: str
    audience: str
    jwks: Path | None = None
    jwks_uri: str | None = None
    endpoint: str | None = None
    initiate: bool = False
    transport: str = "websocket"
    send_via: str = "pushpull"
    receive_via: str = "pushpull"
    push_endpoint: str | None = None
    multipush_endpoint: str | None = None
    poll_endpoint: str | None = None
    auth: OutboundAuth = dataclasses.field(default_factory=OutboundAuth)
    inbound: InboundAuth = dataclasses.field(default_factory=InboundAuth)
    limits: Limits = dataclasses.field(default_factory=Limits)
    ssf: bool = False
    strict_subjects: bool = False
    ca: Path | None = None
    config_dir: Path = Path(".")

    @property
    def jwks_path(self) -> Path | None:
        return self.jwks

    @property
    def ca_path(self) -> Path | None:
        return self.ca

    @property
    def http_endpoint(self) -> str:
        """``endpoint`` for the HTTP binding: ``wss`` -> ``https``, ``ws`` -> ``http``."""
        endpoint = self.endpoint or ""
        if endpoint.startswith("wss://"):
            return "https://" + endpoint[6:]
        if endpoint.startswith("ws://"):
            return "http://" + endpoint[5:]
        return endpoint

    @property
    def inbound_bearer_sha256(self) -> str | None:
        return self.inbound.bearer_sha256

    def outbound_bearer(self) -> str | None:
        """The bearer token we present to this partner, resolved now (never logged)."""
        if self.auth.bearer is None:
            return None
        return resolve_secret(self.auth.bearer, self.config_dir)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """A node's whole configuration."""

    issuer: str
    listen: str = "127.0.0.1:8443"
    store: str = "sqlite:///setpeer.db"
    signing_keys: Path
    allow_insecure_loopback: bool = False
    tls: TLSConfig | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)
    partners: tuple[Partner, ...] = ()
    config_dir: Path = Path(".")

    @property
    def signing_keys_path(self) -> Path:
        return self.signing_keys

    @property
    def listen_host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def partner(self, name: str) -> Partner:
        """The partner called ``name``.

        Raises:
            UnknownPartner: none is.
        """
        from .errors import UnknownPartner

        for partner in self.partners:
            if partner.name == name:
                return partner
        raise UnknownPartner(f"no partner named {name!r}")

    def validate(self) -> None:
        """Check a config built in code the way ``load_config`` checks a file."""
        problems: list[tuple[str, str]] = []
        _check_semantics(self, problems)
        if problems:
            raise ConfigError(problems)


def resolve_secret(ref: str, base_dir: Path) -> str:
    """The secret behind ``env:NAME`` or ``file:PATH`` (relative to the config folder).

    Raises:
        ConfigError: the reference cannot be resolved (the secret is never echoed).
    """
    kind, _, value = ref.partition(":")
    if kind == "env":
        secret = os.environ.get(value)
        if secret is None:
            raise ConfigError([("secret", f"environment variable {value} is not set")])
        return secret
    if kind == "file":
        try:
            return (base_dir / value).read_text().strip()
        except OSError as exc:
            raise ConfigError([("secret", f"cannot read {value}: {exc.strerror}")]) from None
    raise ConfigError([("secret", "secrets are given as env:NAME or file:PATH")])


# -- loading -------------------------------------------------------------------------


class _Reader:
    """Reads typed values out of a TOML table, recording problems with key paths."""

    def __init__(self, table: Mapping[str, Any], path: str, problems: list[tuple[str, str]]):
        self.table = table
        self.path = path
        self.problems = problems
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        self.problems.append((self.key(name), message))

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                self.problem(name, "is required")
            return default
        value = self.table[name]
        if (
            isinstance(value, bool)
            and kind is not bool
            and bool not in (kind if isinstance(kind, tuple) else (kind,))
        ):
            self.problem(name, f"must be {_kind_name(kind)}, not a boolean")
            return default
        if not isinstance(value, kind):
            self.problem(name, f"must be {_kind_name(kind)}")
            return default
        return value

    def finish(self) -> None:
        for name in self.table:
            if name not in self.used:
                self.problems.append((self.key(name), "unknown key"))


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        dict: "a table",
        list: "an array",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _read_limits(table: Any, path: str, base: Limits, problems: list[tuple[str, str]]) -> Limits:
    if table is None:
        return base
    reader = _Reader(table, path, problems)
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(Limits):
        kind: type | tuple[type, ...] = int if field.name in _INT_LIMITS else (int, float)
        value = reader.get(field.name, kind)
        if value is None:
            continue
        if value <= 0 or value > 10**12:
            reader.problem(field.name, "must be a positive number within range")
            continue
        changes[field.name] = value if field.name in _INT_LIMITS else float(value)
    reader.finish()
    limits = dataclasses.replace(base, **changes)
    if limits.retry_initial > limits.retry_max:
        problems.append((f"{path}.retry_initial", "must not exceed retry_max"))
    if limits.reconnect_initial > limits.reconnect_max:
        problems.append((f"{path}.reconnect_initial", "must not exceed reconnect_max"))
    if limits.max_set_bytes > limits.max_frame_bytes:
        problems.append((f"{path}.max_set_bytes", "must not exceed max_frame_bytes"))
    return limits


def _path(value: str | None, base_dir: Path) -> Path | None:
    return None if value is None else (base_dir / value)


def _secret_ref(reader: _Reader, name: str) -> str | None:
    value: str | None = reader.get(name, str)
    if value is not None and not value.startswith(("env:", "file:")):
        # Never echo the value: it may be the secret itself.
        reader.problem(name, "secrets are given as env:NAME or file:PATH, never inline")
        return None
    return value


def _read_partner(
    table: Any, index: int, peer_limits: Limits, base_dir: Path, problems: list[tuple[str, str]]
) -> Partner | None:
    path = f"partners[{index}]"
    if not isinstance(table, dict):
        problems.append((path, "must be a table"))
        return None
    r = _Reader(table, path, problems)
    name = r.get("name", str, required=True)
    issuer = r.get("issuer", str, required=True)
    audience = r.get("audience", str, required=True)
    jwks = r.get("jwks", str)
    jwks_uri = r.get("jwks_uri", str)
    endpoint = r.get("endpoint", str)
    initiate = r.get("initiate", bool, False)
    transport = r.get("transport", str, "websocket")
    send_via = r.get("send_via", str, "pushpull")
    receive_via = r.get("receive_via", str, "pushpull")
    push_endpoint = r.get("push_endpoint", str)
    multipush_endpoint = r.get("multipush_endpoint", str)
    poll_endpoint = r.get("poll_endpoint", str)
    ssf = r.get("ssf", bool, False)
    strict_subjects = r.get("strict_subjects", bool, False)
    ca = r.get("ca", str)
    auth_table = r.get("auth", dict, {})
    inbound_table = r.get("inbound", dict, {})
    limits = _read_limits(r.get("limits", dict), f"{path}.limits", peer_limits, problems)
    r.finish()
    if transport not in TRANSPORTS:
        problems.append((f"{path}.transport", f"must be one of {', '.join(TRANSPORTS)}"))
    if send_via not in SEND_VIA:
        problems.append((f"{path}.send_via", f"must be one of {', '.join(SEND_VIA)}"))
    if receive_via not in RECEIVE_VIA:
        problems.append((f"{path}.receive_via", f"must be one of {', '.join(RECEIVE_VIA)}"))
    a = _Reader(auth_table, f"{path}.auth", problems)
    auth = OutboundAuth(bearer=_secret_ref(a, "bearer"))
    a.finish()
    i = _Reader(inbound_table, f"{path}.inbound", problems)
    inbound = InboundAuth(
        bearer_sha256=i.get("bearer_sha256", str),
        client_cert_sha256=i.get("client_cert_sha256", str),
    )
    i.finish()
    for key, value in (
        ("bearer_sha256", inbound.bearer_sha256),
        ("client_cert_sha256", inbound.client_cert_sha256),
    ):
        if value is not None and not _HEX64.fullmatch(value):
            problems.append((f"{path}.inbound.{key}", "must be 64 lowercase hex digits"))
    if name is None or issuer is None or audience is None:
        return None
    return Partner(
        name=name,
        issuer=issuer,
        audience=audience,
        jwks=_path(jwks, base_dir),
        jwks_uri=jwks_uri,
        endpoint=endpoint,
        initiate=initiate,
        transport=transport,
        send_via=send_via,
        receive_via=receive_via,
        push_endpoint=push_endpoint,
        multipush_endpoint=multipush_endpoint,
        poll_endpoint=poll_endpoint,
        auth=auth,
        inbound=inbound,
        limits=limits,
        ssf=ssf,
        strict_subjects=strict_subjects,
        ca=_path(ca, base_dir),
        config_dir=base_dir,
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(
    url: str | None,
    key: str,
    secure: tuple[str, ...],
    insecure: tuple[str, ...],
    allow_insecure: bool,
    problems: list[tuple[str, str]],
) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme in secure and parts.hostname:
        return
    if parts.scheme in insecure and parts.hostname:
        if not _is_loopback(parts.hostname):
            problems.append((key, f"{parts.scheme}:// is allowed only to a loopback address"))
        elif not allow_insecure:
            problems.append((key, f"{parts.scheme}:// needs peer.allow_insecure_loopback = true"))
        return
    problems.append((key, f"must be a {' or '.join(s + '://' for s in secure)} URL"))


def _check_semantics(config: PeerConfig, problems: list[tuple[str, str]]) -> None:
    from .tokens.keys import KeyStore, load_private_jwks

    insecure = config.allow_insecure_loopback
    if not config.signing_keys.is_file():
        problems.append(("peer.signing_keys", f"file not found: {config.signing_keys}"))
    else:
        try:
            load_private_jwks(config.signing_keys)  # must be able to sign, not just parse
        except ConfigError as exc:
            problems.extend(exc.problems)
    store = config.store
    if not (
        store == "memory://" or store.startswith(("sqlite:///", "postgresql://", "postgres://"))
    ):
        problems.append(("peer.store", "must be memory://, sqlite:///PATH or postgresql://..."))
    host, sep, port = config.listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or not host:
        problems.append(("peer.listen", "must be HOST:PORT (port 0 = ephemeral)"))
    if config.tls is not None:
        for key in ("certfile", "keyfile", "client_ca"):
            value = getattr(config.tls, key)
            if value is not None and not value.is_file():
                problems.append((f"peer.tls.{key}", f"file not found: {value}"))
    names: set[str] = set()
    issuers: set[str] = set()
    for index, p in enumerate(config.partners):
        path = f"partners[{index}]"
        if p.name in names:
            problems.append((f"{path}.name", f"duplicate partner name {p.name!r}"))
        names.add(p.name)
        if p.issuer in issuers:
            problems.append((f"{path}.issuer", "another partner has the same issuer"))
        issuers.add(p.issuer)
        if (p.jwks is None) == (p.jwks_uri is None):
            problems.append((f"{path}.jwks", "give exactly one of jwks or jwks_uri"))
        if p.jwks is not None and not p.jwks.is_file():
            problems.append((f"{path}.jwks", f"file not found: {p.jwks}"))
        elif p.jwks is not None:
            try:
                KeyStore.from_file(p.jwks)
            except ConfigError as exc:
                problems.extend((f"{path}.jwks", message) for _, message in exc.problems)
        _check_url(p.jwks_uri, f"{path}.jwks_uri", ("https",), ("http",), insecure, problems)
        _check_url(
            p.endpoint, f"{path}.endpoint", ("wss", "https"), ("ws", "http"), insecure, problems
        )
        for key in ("push_endpoint", "multipush_endpoint", "poll_endpoint"):
            _check_url(getattr(p, key), f"{path}.{key}", ("https",), ("http",), insecure, problems)
        if p.initiate and p.endpoint is None:
            problems.append((f"{path}.endpoint", "is required when initiate = true"))
        if p.send_via == "push" and p.push_endpoint is None:
            problems.append((f"{path}.push_endpoint", 'is required when send_via = "push"'))
        if p.send_via == "multipush" and p.multipush_endpoint is None:
            problems.append(
                (f"{path}.multipush_endpoint", 'is required when send_via = "multipush"')
            )
        if p.receive_via == "poll" and p.poll_endpoint is None:
            problems.append((f"{path}.poll_endpoint", 'is required when receive_via = "poll"'))


def load_config(path: str | os.PathLike[str]) -> PeerConfig:
    """Read and validate a TOML configuration file.

    Relative paths in it (keys, TLS files, a SQLite store) are relative to the
    file's folder.

    Raises:
        ConfigError: every problem found, each with its key path.
    """
    file = Path(path)
    base_dir = file.resolve().parent
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {file}: {exc.strerror}")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([("(file)", f"not valid TOML: {exc}")]) from None
    problems: list[tuple[str, str]] = []
    top = _Reader(data, "", problems)
    peer_table = top.get("peer", dict, required=True) or {}
    partner_tables = top.get("partners", list, [])
    top.finish()
    r = _Reader(peer_table, "peer", problems)
    issuer = r.get("issuer", str, required=True)
    listen = r.get("listen", str, "127.0.0.1:8443")
    store = r.get("store", str, "sqlite:///setpeer.db")
    signing_keys = r.get("signing_keys", str, required=True)
    allow_insecure = r.get("allow_insecure_loopback", bool, False)
    tls_table = r.get("tls", dict)
    limits = _read_limits(r.get("limits", dict), "peer.limits", Limits(), problems)
    r.finish()
    tls = None
    if tls_table is not None:
        t = _Reader(tls_table, "peer.tls", problems)
        certfile = t.get("certfile", str, required=True)
        keyfile = t.get("keyfile", str, required=True)
        client_ca = t.get("client_ca", str)
        t.finish()
        if certfile and keyfile:
            tls = TLSConfig(
                certfile=base_dir / certfile,
                keyfile=base_dir / keyfile,
                client_ca=_path(client_ca, base_dir),
            )
    partners = []
    for index, table in enumerate(partner_tables):
        partner = _read_partner(table, index, limits, base_dir, problems)
        if partner is not None:
            partners.append(partner)
    if issuer is None or signing_keys is None:
        raise ConfigError(problems)
    config = PeerConfig(
        issuer=issuer,
        listen=listen,
        store=store,
        signing_keys=base_dir / signing_keys,
        allow_insecure_loopback=allow_insecure,
        tls=tls,
        limits=limits,
        partners=tuple(partners),
        config_dir=base_dir,
    )
    _check_semantics(config, problems)
    if problems:
        raise ConfigError(problems)
    return config
