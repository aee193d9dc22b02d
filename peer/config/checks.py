"""``config_problems``: every rule a PeerConfig must meet, with each problem's key path.

The same walk serves files (``load_config``) and configs built in code
(``PeerConfig.validate``), so both report the same problems at the same paths. Values
are type-checked here, not trusted: a config built in code may hold anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from .dialect import dialect_problems
from .limits import Limits, limit_problems
from .model import (
    RECEIVE_VIA,
    SEND_VIA,
    SSF_SETTINGS,
    STREAM_DELIVERY,
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
from .rules import (
    file_problem,
    hex64_problem,
    is_loopback,
    jwks_problem,
    listen_problem,
    store_problem,
    text_problem,
    url_problem,
)
from .secrets import secret_ref_problem

if TYPE_CHECKING:
    from .peer_config import PeerConfig

__all__ = ["config_problems"]

# A partner's name is a store key, a CLI argument (--to NAME), a metrics label and a
# log field: keep it to characters that need no quoting anywhere.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HTTPS: Final = (("https",), ("http",))
_WSS: Final = (("wss", "https"), ("ws", "http"))

Problems = list[tuple[str, str]]


class _Walk:
    """Collects problems; each check names its key path once."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.problems: Problems = []
        flag = config.allow_insecure_loopback
        self.insecure_ok = flag is True

    def add(self, key: str, message: str | None) -> None:
        if message is not None:
            self.problems.append((key, message))

    def url(self, key: str, value: object, kinds: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        if value is not None:
            self.add(key, url_problem(value, kinds[0], kinds[1], self.insecure_ok))

    def flag(self, key: str, value: object) -> None:
        if not isinstance(value, bool):
            self.add(key, "must be true or false")

    def file(
        self, key: str, value: object, check: Callable[[Path], str | None] | None = None
    ) -> None:
        problem = file_problem(value)
        if problem is None and check is not None:
            assert isinstance(value, Path)
            problem = check(value)
        self.add(key, problem)

    def optional_text(self, key: str, value: object) -> None:
        if value is not None:
            self.add(key, text_problem(value))


def config_problems(config: PeerConfig) -> Problems:
    """Every problem with ``config`` as ``(key_path, message)`` pairs.

    Order: ``[peer]``, then each partner, then the rules across partners.
    """
    walk = _Walk(config)
    _check_peer(walk, config)
    partners = config.partners
    if not isinstance(partners, tuple):
        walk.add("partners", "must be a list of partners")
        return walk.problems
    for index, partner in enumerate(partners):
        path = f"partners[{index}]"
        if isinstance(partner, Partner):
            _check_partner(walk, path, partner)
        else:
            walk.add(path, "must be a [[partners]] table (Partner)")
    _check_unique(walk, config)
    return walk.problems


def _check_peer(walk: _Walk, config: PeerConfig) -> None:
    walk.add("peer.issuer", text_problem(config.issuer))
    host, problem = listen_problem(config.listen)
    walk.add("peer.listen", problem)
    _check_metrics(walk, config.metrics)
    _check_app(walk, config.app)
    base = config.config_dir
    if not isinstance(base, Path):
        walk.add("config_dir", "must be a Path")
        base = Path.cwd()
    walk.add("peer.store", store_problem(config.store, base))
    walk.file(
        "peer.signing_keys",
        config.signing_keys,
        lambda path: jwks_problem(path, private=True),
    )
    walk.flag("peer.allow_insecure_loopback", config.allow_insecure_loopback)
    tls = config.tls
    if tls is None:
        # Security stance: plain HTTP only on loopback, and only when the config says so.
        if problem is None and not is_loopback(host):
            walk.add(
                "peer.tls",
                "is required to listen on a non-loopback address "
                "(plain HTTP only on 127.0.0.0/8 or [::1])",
            )
        elif problem is None and not walk.insecure_ok:
            walk.add("peer.tls", "is required unless peer.allow_insecure_loopback = true")
    elif isinstance(tls, TLSConfig):
        walk.file("peer.tls.certfile", tls.certfile)
        walk.file("peer.tls.keyfile", tls.keyfile)
        if tls.client_ca is not None:
            walk.file("peer.tls.client_ca", tls.client_ca)
    else:
        walk.add("peer.tls", "must be a [peer.tls] table (TLSConfig)")
    _check_public_url(walk, config, host if problem is None else None)
    walk.problems.extend(limit_problems(config.limits, "peer.limits"))


def _check_metrics(walk: _Walk, metrics: object) -> None:
    if not isinstance(metrics, MetricsConfig):
        walk.add("peer.metrics", "must be a [peer.metrics] table (MetricsConfig)")
        return
    if metrics.listen is not None:
        walk.add("peer.metrics.listen", listen_problem(metrics.listen)[1])
    if metrics.token_sha256 is not None:
        walk.add("peer.metrics.token_sha256", hex64_problem(metrics.token_sha256))


def _check_app(walk: _Walk, app: object) -> None:
    if not isinstance(app, AppConfig):
        walk.add("peer.app", "must be a [peer.app] table (AppConfig)")
        return
    listen = app.listen
    if isinstance(listen, str) and listen.startswith("unix:"):
        path = listen.removeprefix("unix:")
        if not path or "\x00" in path:
            walk.add("peer.app.listen", "unix: must name a socket file, e.g. unix:app.sock")
    elif listen is not None:
        host, problem = listen_problem(listen)
        if problem is None and not is_loopback(host):
            problem = (
                "must be unix:PATH or a loopback HOST:PORT (127.0.0.1 or [::1]): "
                "the local interface is for the service beside the node"
            )
        walk.add("peer.app.listen", problem)
        if problem is None and app.token_sha256 is None:
            walk.add(
                "peer.app.token_sha256",
                "is required when peer.app.listen is a TCP address (any local user can connect)",
            )
    if app.token_sha256 is not None:
        walk.add("peer.app.token_sha256", hex64_problem(app.token_sha256))
    if app.deliver is not None:
        walk.add("peer.app.deliver", url_problem(app.deliver, ("https",), ("http",), True))
    if app.deliver_auth is not None:
        if app.deliver is None:
            walk.add("peer.app.deliver_auth", "is set but peer.app.deliver is not")
        walk.add("peer.app.deliver_auth", secret_ref_problem(app.deliver_auth))


def _check_public_url(walk: _Walk, config: PeerConfig, listen_host: str | None) -> None:
    """``public_url``: our RFC 9728 resource identifiers are ``<public_url>/pushpull`` etc."""
    value = config.public_url
    if value is None:
        uses_oauth = any(
            isinstance(p, Partner)
            and isinstance(p.inbound, InboundAuth)
            and isinstance(p.inbound.oauth, InboundOAuth)
            for p in (config.partners if isinstance(config.partners, tuple) else ())
        )
        if uses_oauth and listen_host is not None and not is_loopback(listen_host):
            # The bound address (0.0.0.0, a pod IP) is not what partners dial, and the
            # audience of their access tokens must be exactly what they dial (OPRM-15).
            walk.add(
                "peer.public_url",
                "is required when a partner uses OAuth (partners.inbound.oauth) and we "
                "listen on a non-loopback address: the https URL partners reach us at",
            )
        return
    walk.url("peer.public_url", value, _HTTPS)
    if isinstance(value, str) and url_problem(value, *_HTTPS, walk.insecure_ok) is None:
        parts = urlsplit(value)
        if parts.path not in ("", "/") or parts.query:
            # OPRM-1: the resource identifiers are this URL plus our route paths.
            walk.add("peer.public_url", "must be scheme://host[:port] with no path or query")


def _dials(partner: Partner) -> bool:
    """Whether we open connections to the partner (so we need outbound credentials)."""
    pushpull = "pushpull" in (partner.send_via, partner.receive_via)
    return (
        (partner.initiate is True and pushpull)
        or partner.send_via in ("push", "multipush")
        or partner.receive_via == "poll"
        or partner.ssf == "transmitter"  # its stream management endpoints
    )


def _is_dialed(partner: Partner) -> bool:
    """Whether the partner opens connections to us (so we need inbound credentials).

    A partner that only receives from us (``send_via`` push or multi-push, or push-pull
    sessions we dial, and ``receive_via = "none"`` or a poll of ours) never does: it
    needs no ``[partners.inbound]``, and without one any request made in its name is
    refused 401 like a stranger's. An SSF receiver calls our stream management
    endpoints, so it always does; an SSF transmitter is given a fresh credential with
    each stream we create there."""
    if partner.ssf == "receiver":
        return True
    if partner.ssf == "transmitter":
        return partner.send_via == "poll" or partner.receive_via in ("push", "multipush")
    pushpull = "pushpull" in (partner.send_via, partner.receive_via)
    return (
        (partner.initiate is not True and pushpull)
        or partner.send_via == "poll"
        or partner.receive_via in ("push", "multipush")
    )


def _check_partner(walk: _Walk, path: str, p: Partner) -> None:
    name_ok = isinstance(p.name, str) and _NAME.fullmatch(p.name)
    if p.name is None:
        walk.add(f"{path}.name", "is required")
    elif not name_ok:
        walk.add(f"{path}.name", "must be 1-64 letters, digits, '.', '_' or '-'")
    walk.add(f"{path}.issuer", text_problem(p.issuer))
    walk.add(f"{path}.audience", text_problem(p.audience))
    if p.jwks is not None and p.jwks_uri is not None:
        walk.add(f"{path}.jwks", "give exactly one of jwks (a file) or jwks_uri")
    elif p.jwks is None and p.jwks_uri is None and p.ssf != "transmitter":
        # An SSF transmitter's jwks_uri is discovered from its metadata.
        walk.add(f"{path}.jwks", "give exactly one of jwks (a file) or jwks_uri")
    if p.jwks is not None:
        walk.file(f"{path}.jwks", p.jwks, lambda file: jwks_problem(file, private=False))
    walk.url(f"{path}.jwks_uri", p.jwks_uri, _HTTPS)
    walk.url(f"{path}.endpoint", p.endpoint, _WSS)
    walk.flag(f"{path}.initiate", p.initiate)
    for key, value, allowed in (
        ("transport", p.transport, TRANSPORTS),
        ("send_via", p.send_via, SEND_VIA),
        ("receive_via", p.receive_via, RECEIVE_VIA),
    ):
        if value not in allowed:
            walk.add(f"{path}.{key}", f"must be one of {', '.join(allowed)}")
    for key in ("push_endpoint", "multipush_endpoint", "poll_endpoint"):
        walk.url(f"{path}.{key}", getattr(p, key), _HTTPS)
    if p.initiate is True and p.endpoint is None:
        walk.add(f"{path}.endpoint", "is required when initiate = true")
    for via, mode, key in (
        (p.send_via, "push", "push_endpoint"),
        (p.send_via, "multipush", "multipush_endpoint"),
        (p.receive_via, "poll", "poll_endpoint"),
    ):
        if via == mode and getattr(p, key) is None:
            direction = "send_via" if key != "poll_endpoint" else "receive_via"
            walk.add(f"{path}.{key}", f'is required when {direction} = "{mode}"')
    if p.ssf not in SSF_SETTINGS or type(p.ssf) not in (bool, str):
        walk.add(f"{path}.ssf", 'must be true, false, "receiver" or "transmitter"')
    _check_stream(walk, f"{path}.stream", p)
    walk.flag(f"{path}.strict_subjects", p.strict_subjects)
    walk.problems.extend(dialect_problems(p.dialect, f"{path}.dialect"))
    if p.ca is not None:
        walk.file(f"{path}.ca", p.ca)
    _check_outbound(walk, f"{path}.auth", p)
    _check_inbound(walk, f"{path}.inbound", p)
    peer_limits = walk.config.limits
    inherited = peer_limits if isinstance(peer_limits, Limits) else None
    walk.problems.extend(limit_problems(p.limits, f"{path}.limits", inherited))


_MAX_EVENTS_REQUESTED: Final = 256


def _check_stream(walk: _Walk, path: str, p: Partner) -> None:
    """``[partners.stream]``, and what an SSF transmitter partner needs besides."""
    stream = p.stream
    if not isinstance(stream, StreamSettings):
        walk.add(path, "must be a [partners.stream] table (StreamSettings)")
        return
    if stream.delivery not in STREAM_DELIVERY:
        walk.add(f"{path}.delivery", f"must be one of {', '.join(STREAM_DELIVERY)}")
    events = stream.events_requested
    if events is not None:
        if not isinstance(events, tuple) or not all(
            isinstance(e, str) and text_problem(e) is None for e in events
        ):
            walk.add(f"{path}.events_requested", "must be a list of event type URIs")
        elif not events or len(events) > _MAX_EVENTS_REQUESTED:
            walk.add(f"{path}.events_requested", f"must hold 1 to {_MAX_EVENTS_REQUESTED} URIs")
    walk.optional_text(f"{path}.description", stream.description)
    if stream != StreamSettings() and p.ssf != "transmitter":
        walk.add(path, 'is only used with ssf = "transmitter"')
    if p.ssf == "transmitter":
        # SSF-21: the issuer is where its metadata is discovered: https only.
        walk.url(f"{path.rpartition('.')[0]}.issuer", p.issuer, _HTTPS)


def _check_outbound(walk: _Walk, path: str, p: Partner) -> None:
    auth = p.auth
    if not isinstance(auth, OutboundAuth):
        walk.add(path, "must be a [partners.auth] table (OutboundAuth)")
        return
    if auth.bearer is not None:
        walk.add(f"{path}.bearer", secret_ref_problem(auth.bearer))
    oauth = auth.oauth
    if isinstance(oauth, OAuthClient):
        if auth.bearer is not None:
            walk.add(f"{path}.oauth", "give bearer or oauth, not both")
        walk.add(f"{path}.oauth.client_id", text_problem(oauth.client_id))
        if (oauth.client_secret is None) == (oauth.private_key_jwt is None):
            walk.add(f"{path}.oauth", "give exactly one of client_secret or private_key_jwt")
        if oauth.client_secret is not None:
            walk.add(f"{path}.oauth.client_secret", secret_ref_problem(oauth.client_secret))
        if oauth.private_key_jwt is not None:
            walk.file(
                f"{path}.oauth.private_key_jwt",
                oauth.private_key_jwt,
                lambda file: jwks_problem(file, private=True),
            )
        walk.optional_text(f"{path}.oauth.scope", oauth.scope)
        walk.url(f"{path}.oauth.token_endpoint", oauth.token_endpoint, _HTTPS)
        # OPRM-28: the authorization server is a trust decision; only https.
        walk.url(f"{path}.oauth.issuer", oauth.issuer, (("https",), ()))
    elif oauth is not None:
        walk.add(f"{path}.oauth", "must be a table (OAuthClient)")
    cert = auth.client_cert
    if isinstance(cert, ClientCert):
        walk.file(f"{path}.client_cert.certfile", cert.certfile)
        walk.file(f"{path}.client_cert.keyfile", cert.keyfile)
    elif cert is not None:
        walk.add(f"{path}.client_cert", "must be a table (ClientCert)")
    if not auth.configured and _dials(p):
        message = "is required: we connect to this partner; give bearer, oauth or client_cert"
        walk.add(path, message)


def _check_inbound(walk: _Walk, path: str, p: Partner) -> None:
    inbound = p.inbound
    if not isinstance(inbound, InboundAuth):
        walk.add(path, "must be a [partners.inbound] table (InboundAuth)")
        return
    if inbound.bearer_sha256 is not None:
        walk.add(f"{path}.bearer_sha256", hex64_problem(inbound.bearer_sha256))
    if inbound.client_cert_sha256 is not None:
        walk.add(f"{path}.client_cert_sha256", hex64_problem(inbound.client_cert_sha256))
        tls = walk.config.tls
        if not isinstance(tls, TLSConfig) or tls.client_ca is None:
            walk.add(
                f"{path}.client_cert_sha256",
                "needs peer.tls.client_ca: client certificates are requested only then",
            )
    oauth = inbound.oauth
    if isinstance(oauth, InboundOAuth):
        # RFC 8414 §2: an issuer identifier is an https URL (no plain-HTTP exception:
        # its JWK Set decides which tokens we accept).
        walk.url(f"{path}.oauth.issuer", oauth.issuer, (("https",), ()))
        walk.add(f"{path}.oauth.subject", text_problem(oauth.subject))
        walk.optional_text(f"{path}.oauth.scope", oauth.scope)
        if oauth.ca is not None:
            walk.file(f"{path}.oauth.ca", oauth.ca)
    elif oauth is not None:
        walk.add(f"{path}.oauth", "must be a table (InboundOAuth)")
    if not inbound.configured and _is_dialed(p):
        walk.add(
            path,
            "is required: this partner connects to us (initiate = false, send_via = poll "
            "or receive_via = push/multipush), so give bearer_sha256, client_cert_sha256 "
            "or oauth",
        )


def _check_unique(walk: _Walk, config: PeerConfig) -> None:
    """A SET's iss, and each inbound credential, must map to exactly one partner."""
    seen: dict[tuple[str, object], int] = {}

    def once(index: int, key: str, value: object, what: str) -> None:
        if value is None or not isinstance(value, str | tuple):
            return
        first = seen.setdefault((key, value), index)
        if first != index:
            walk.add(f"partners[{index}].{key}", f"same {what} as partners[{first}]")

    for index, p in enumerate(config.partners):
        if not isinstance(p, Partner):
            continue
        once(index, "name", p.name, "name")
        once(index, "issuer", p.issuer, "issuer")
        if isinstance(p.issuer, str) and p.issuer == config.issuer:
            walk.add(f"partners[{index}].issuer", "is our own issuer (peer.issuer)")
        inbound = p.inbound
        if isinstance(inbound, InboundAuth):
            what = "credential"
            once(index, "inbound.bearer_sha256", inbound.bearer_sha256, what)
            once(index, "inbound.client_cert_sha256", inbound.client_cert_sha256, what)
            if isinstance(inbound.oauth, InboundOAuth):
                pair = (inbound.oauth.issuer, inbound.oauth.subject)
                if all(isinstance(v, str) for v in pair):
                    once(index, "inbound.oauth", pair, "OAuth issuer and subject")
