"""The configuration's frozen dataclasses: ``PeerConfig``, ``Partner`` and their parts.

They can be built in code as well as by :func:`~peer.config.load_config`; either way
``validate()`` reports the same problems with the same key paths. Paths may be given as
``str`` or ``Path``: at construction they become ``Path`` objects, and relative ones are
joined to the config folder (``PeerConfig.config_dir``, the TOML file's folder), so the
rest of the node never has to know where the file was.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, get_args

from ..protocol.vocabulary import DeliveryMode, ReceiveMode, Transport
from .dialect import Dialect
from .limits import Limits
from .secrets import resolve_secret

__all__ = [
    "DEFAULT_APP_LISTEN",
    "RECEIVE_VIA",
    "SEND_VIA",
    "SSF_SETTINGS",
    "SSF_ROLES",
    "STREAM_DELIVERY",
    "TRANSPORTS",
    "AppConfig",
    "ClientCert",
    "InboundAuth",
    "InboundOAuth",
    "MetricsConfig",
    "OAuthClient",
    "OutboundAuth",
    "Partner",
    "SSFSetting",
    "StreamSettings",
    "TLSConfig",
]

TRANSPORTS: Final = get_args(Transport)
SEND_VIA: Final = get_args(DeliveryMode)
RECEIVE_VIA: Final = get_args(ReceiveMode)
SSF_ROLES: Final = ("transmitter", "receiver")
"""``ssf`` values besides true/false: the role the partner plays in SSF 1.0."""
STREAM_DELIVERY: Final = ("push", "poll", "pushpull")
"""``[partners.stream] delivery``: how our stream at an SSF transmitter reaches us."""

SSFSetting: TypeAlias = bool | Literal["receiver", "transmitter"]
"""A partner's ``ssf``: false; true (the SET profile, stream set up out of band);
``"receiver"`` (the partner is an SSF receiver and manages its stream with us);
``"transmitter"`` (it is an SSF transmitter; we manage our stream there)."""

SSF_SETTINGS: Final = (False, True, "receiver", "transmitter")

# A Partner built without limits inherits the PeerConfig's; this default marks "not given".
INHERIT_LIMITS: Final = Limits()


def as_path(value: object, base: Path | None) -> Any:
    """``value`` as a Path joined to ``base``; anything else is left for validate()."""
    if isinstance(value, Path | str) and value != "":
        path = Path(value)
        return path if base is None or path.is_absolute() else base / path
    if isinstance(value, os.PathLike) and not isinstance(value, Path):
        return as_path(os.fspath(value), base)
    return value


def resolve_paths(obj: object, names: tuple[str, ...], base: Path | None) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            # Frozen: __post_init__ is the one place a field may still be set.
            object.__setattr__(obj, name, as_path(value, base))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Where ``GET /metrics`` is served, and with which credential (``[peer.metrics]``).

    The metrics name partners and count their refusals: not for outsiders. Without
    either key they are served on the partner listener only when it is on a loopback
    address.

    Attributes:
        listen: ``HOST:PORT`` of a separate plain-HTTP listener that serves only
            ``/metrics``; the partner listener then serves none.
        token_sha256: hex SHA-256 of the bearer a scrape must present
            (``Authorization: Bearer ...``), wherever ``/metrics`` is served; with it,
            the partner listener serves ``/metrics`` on any address.
    """

    listen: str | None = None
    token_sha256: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AppConfig:
    """The local application interface (``[peer.app]``): how the identity service
    beside the node publishes, receives and reads failures, never on the partner port.

    Attributes:
        listen: ``unix:PATH`` (a Unix socket, mode 0600; a relative path starts at the
            config's folder) or ``HOST:PORT`` on a loopback address (then
            ``token_sha256`` is required). None: no local interface. A file config
            without ``[peer.app]`` gets ``unix:app.sock``; a config built in code none.
        token_sha256: hex SHA-256 of the bearer token applications present
            (``Authorization: Bearer ...``); optional on a Unix socket.
        deliver: a webhook URL (``http://`` to loopback, or ``https://``): each
            received SET is POSTed to it and marked done on a 2xx. With it, pulling
            received SETs through the interface is refused (one consumer, not a race).
        deliver_auth: ``env:NAME`` or ``file:PATH`` of a bearer token sent to the
            webhook.
        listen_defaulted: True when ``listen`` is the default of a file config, not
            written in it: a socket another running node serves (two configs in one
            folder) is then left to that node, with a warning, instead of refusing
            to start.
    """

    listen: str | None = None
    token_sha256: str | None = None
    deliver: str | None = None
    deliver_auth: str | None = None
    listen_defaulted: bool = dataclasses.field(default=False, compare=False)


DEFAULT_APP_LISTEN = "unix:app.sock"
"""``[peer.app] listen`` of a config file that has no ``[peer.app]`` table."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """Server TLS (``[peer.tls]``); ``client_ca`` turns on client certificates (mTLS).

    Attributes:
        certfile: PEM certificate chain we serve.
        keyfile: its PEM private key.
        client_ca: PEM bundle of CAs whose client certificates we accept; without it no
            client certificate is requested.
    """

    certfile: Path
    keyfile: Path
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        resolve_paths(self, ("certfile", "keyfile", "client_ca"), None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientCert:
    """A client certificate we present to a partner (``[partners.auth.client_cert]``)."""

    certfile: Path
    keyfile: Path

    def __post_init__(self) -> None:
        resolve_paths(self, ("certfile", "keyfile"), None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OAuthClient:
    """OAuth client credentials we use toward a partner (``[partners.auth.oauth]``).

    The authorization server is found through the partner's RFC 9728 metadata unless
    ``token_endpoint`` is given.

    Attributes:
        client_id: our client identifier at the partner's authorization server.
        client_secret: ``env:NAME`` or ``file:PATH``; or
        private_key_jwt: a private JWK Set file (RFC 7523 client assertion).
        scope: scope to request, if the server needs one.
        token_endpoint: override for servers without discoverable metadata.
        issuer: the authorization server we trust for this partner; its RFC 9728
            metadata must list it (OPRM-28). Default: the first one listed.
    """

    client_id: str
    client_secret: str | None = None
    private_key_jwt: Path | None = None
    scope: str | None = None
    token_endpoint: str | None = None
    issuer: str | None = None

    def __post_init__(self) -> None:
        resolve_paths(self, ("private_key_jwt",), None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutboundAuth:
    """How we authenticate to a partner (``[partners.auth]``).

    Attributes:
        bearer: a static token, as ``env:NAME`` or ``file:PATH`` (never inline).
        oauth: OAuth client credentials instead of a static bearer.
        client_cert: a client certificate (mTLS), alone or with either of the above.
    """

    bearer: str | None = None
    oauth: OAuthClient | None = None
    client_cert: ClientCert | None = None

    @property
    def configured(self) -> bool:
        """Whether any credential is configured."""
        return not (self.bearer is None and self.oauth is None and self.client_cert is None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InboundOAuth:
    """OAuth access tokens a partner may present: from ``issuer``, about ``subject``.

    Attributes:
        issuer: the authorization server's issuer identifier (RFC 8414); its
            metadata and JWK Set are fetched over HTTPS.
        subject: the token's ``sub`` (for client credentials: the partner's
            ``client_id``; ``client_id`` is used when ``sub`` is absent).
        scope: space-separated scopes the token must carry (RFC 9068 ``scope``).
        ca: PEM CA bundle that verifies the authorization server (default: system).
    """

    issuer: str
    subject: str
    scope: str | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        resolve_paths(self, ("ca",), None)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InboundAuth:
    """How a partner authenticates to us (``[partners.inbound]``); any one suffices.

    Attributes:
        bearer_sha256: lowercase hex SHA-256 of the static token the partner presents,
            so the token itself never sits in our config.
        client_cert_sha256: lowercase hex SHA-256 of the partner's DER client
            certificate (needs ``peer.tls.client_ca``).
        oauth: access tokens from an authorization server, for one subject.
    """

    bearer_sha256: str | None = None
    client_cert_sha256: str | None = None
    oauth: InboundOAuth | None = None

    @property
    def configured(self) -> bool:
        """Whether any credential is configured."""
        return not (
            self.bearer_sha256 is None and self.client_cert_sha256 is None and self.oauth is None
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """Our stream at a partner that is an SSF transmitter (``[partners.stream]``).

    Attributes:
        delivery: ``push`` (it POSTs to our ``/events``), ``poll`` (we poll the
            endpoint it returns) or ``pushpull`` (when it advertises push-pull).
        events_requested: event type URIs to ask for; None: every CAEP and RISC
            event type we understand.
        description: the stream's ``description`` (receiver-supplied, SSF 8.1.1).
    """

    delivery: str = "push"
    events_requested: tuple[str, ...] | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Partner:
    """One partner peer (``[[partners]]``); see docs/configuration.md for each key.

    ``limits`` left out means the PeerConfig's limits; ``config_dir`` left out means
    the PeerConfig's folder (both filled in when the PeerConfig is built).
    """

    name: str
    issuer: str
    audience: str
    jwks: Path | None = None
    jwks_uri: str | None = None
    endpoint: str | None = None
    initiate: bool = False
    transport: Transport = "websocket"
    send_via: DeliveryMode = "pushpull"
    receive_via: ReceiveMode = "pushpull"
    push_endpoint: str | None = None
    multipush_endpoint: str | None = None
    poll_endpoint: str | None = None
    auth: OutboundAuth = dataclasses.field(default_factory=OutboundAuth)
    inbound: InboundAuth = dataclasses.field(default_factory=InboundAuth)
    limits: Limits = INHERIT_LIMITS
    ssf: SSFSetting = False
    stream: StreamSettings = dataclasses.field(default_factory=StreamSettings)
    strict_subjects: bool = False
    dialect: Dialect = dataclasses.field(default_factory=Dialect)
    ca: Path | None = None
    config_dir: Path | None = None

    def __post_init__(self) -> None:
        base = self.config_dir if isinstance(self.config_dir, Path) else None
        resolve_paths(self, ("jwks", "ca"), base)
        auth = self.auth
        if isinstance(auth, OutboundAuth) and base is not None:
            cert, oauth = auth.client_cert, auth.oauth
            if isinstance(cert, ClientCert):
                cert = dataclasses.replace(
                    cert,
                    certfile=as_path(cert.certfile, base),
                    keyfile=as_path(cert.keyfile, base),
                )
            if isinstance(oauth, OAuthClient) and oauth.private_key_jwt is not None:
                key = as_path(oauth.private_key_jwt, base)
                oauth = dataclasses.replace(oauth, private_key_jwt=key)
            object.__setattr__(
                self, "auth", dataclasses.replace(auth, client_cert=cert, oauth=oauth)
            )
        inbound = self.inbound
        if (
            isinstance(inbound, InboundAuth)
            and isinstance(inbound.oauth, InboundOAuth)
            and inbound.oauth.ca is not None
            and base is not None
        ):
            their = dataclasses.replace(inbound.oauth, ca=as_path(inbound.oauth.ca, base))
            object.__setattr__(self, "inbound", dataclasses.replace(inbound, oauth=their))

    @property
    def ssf_profile(self) -> bool:
        """Whether the SSF 1.0 SET profile applies (``ssf`` is anything but false)."""
        return self.ssf is not False

    @property
    def ssf_receiver(self) -> bool:
        """Whether the partner is an SSF receiver that manages its stream with us."""
        return self.ssf == "receiver"

    @property
    def ssf_transmitter(self) -> bool:
        """Whether the partner is an SSF transmitter whose stream we manage."""
        return self.ssf == "transmitter"

    @property
    def jwks_path(self) -> Path | None:
        """The partner's public JWK Set file, if given as a file."""
        return self.jwks

    @property
    def ca_path(self) -> Path | None:
        """CA bundle that verifies the partner's server certificate (default: system)."""
        return self.ca

    @property
    def http_endpoint(self) -> str:
        """``endpoint`` for the HTTP binding: ``wss`` -> ``https``, ``ws`` -> ``http``."""
        endpoint = self.endpoint or ""
        scheme, sep, rest = endpoint.partition("://")
        mapped = {"wss": "https", "ws": "http"}.get(scheme.lower())
        return f"{mapped}://{rest}" if sep and mapped else endpoint

    @property
    def inbound_bearer_sha256(self) -> str | None:
        """Hex SHA-256 of the bearer token this partner presents to us."""
        return self.inbound.bearer_sha256

    def outbound_bearer(self) -> str | None:
        """The bearer token we present to this partner, resolved now (never logged).

        Raises:
            ConfigError: the ``env:`` variable is unset or the ``file:`` unreadable.
        """
        if self.auth.bearer is None:
            return None
        key = f"partners[name={self.name!r}].auth.bearer"
        return resolve_secret(self.auth.bearer, self.config_dir or Path.cwd(), key=key)
