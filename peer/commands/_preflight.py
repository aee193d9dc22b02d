"""What ``setpeer run`` would refuse at start, found without starting a node.

``load_config`` checks the form of everything and that files exist; this goes on to
what only using them shows: every secret reference resolves, every key file holds
keys the node can sign or verify with, the TLS files load, and (when asked: the
ports may be taken by the node itself while it runs) every listener can be bound.
``check-config`` prints these problems, and ``run`` refuses to start on them, so the
two never disagree.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

from ..config import PeerConfig, check_secrets
from ..errors import ConfigError, PeerError

__all__ = ["startup_problems"]

Problem = tuple[str, str]


def startup_problems(
    config: PeerConfig, *, secrets: bool = True, bind: bool = False
) -> list[Problem]:
    """Every problem ``run`` would meet starting ``config``, as ``(key path, message)``:
    without ``secrets`` the secret references are not resolved; with ``bind``, the
    listeners that cannot be bound now are problems too."""
    problems = list(check_secrets(config)) if secrets else []
    problems += _key_problems(config)
    problems += _tls_problems(config)
    if bind:
        problems += _bind_problems(config)
    return problems


def _rekeyed(exc: ConfigError, key: str, path: Path) -> Iterator[Problem]:
    for _, message in exc.problems:
        yield key, f"{path}: {message}"


def _key_problems(config: PeerConfig) -> Iterator[Problem]:
    from ..tokens.keys import KeyStore, load_private_jwks, signing_key

    private = [("peer.signing_keys", config.signing_keys_path)]
    for index, partner in enumerate(config.partners):
        oauth = partner.auth.oauth
        if oauth is not None and oauth.private_key_jwt is not None:
            private.append((f"partners[{index}].auth.oauth.private_key_jwt", oauth.private_key_jwt))
        if partner.jwks_path is not None:
            try:
                KeyStore.from_file(partner.jwks_path)
            except ConfigError as exc:
                yield from _rekeyed(exc, f"partners[{index}].jwks", partner.jwks_path)
    for key, path in private:
        try:
            signing_key(load_private_jwks(path))
        except ConfigError as exc:
            yield from _rekeyed(exc, key, path)
        except ValueError as exc:
            yield key, f"{path}: {exc}"


def _tls_problems(config: PeerConfig) -> Iterator[Problem]:
    """Certificates and keys that do not load, and CA bundles that hold none."""
    pairs: list[tuple[str, Path, Path]] = []
    bundles: list[tuple[str, Path]] = []
    if config.tls is not None:
        pairs.append(("peer.tls", config.tls.certfile, config.tls.keyfile))
        if config.tls.client_ca is not None:
            bundles.append(("peer.tls.client_ca", config.tls.client_ca))
    for index, partner in enumerate(config.partners):
        cert = partner.auth.client_cert
        if cert is not None:
            pairs.append((f"partners[{index}].auth.client_cert", cert.certfile, cert.keyfile))
        if partner.ca_path is not None:
            bundles.append((f"partners[{index}].ca", partner.ca_path))
    for key, certfile, keyfile in pairs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or "not a PEM certificate"
            yield key, f"cannot load {certfile} with {keyfile}: {reason}"
    for key, path in bundles:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(path)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or "no PEM certificate"
            yield key, f"cannot load {path}: {reason}"


def _bind_problems(config: PeerConfig) -> Iterator[Problem]:
    from ..server.listen import bind_tcp

    listeners = [("peer.listen", config.listen), ("peer.metrics.listen", config.metrics.listen)]
    if config.app_socket is None:
        listeners.append(("peer.app.listen", config.app.listen))
    for key, listen in listeners:
        if listen is None:
            continue
        host, _, port = listen.rpartition(":")
        try:
            sockets = bind_tcp(host.removeprefix("[").removesuffix("]"), int(port), what=key)
        except OSError as exc:
            yield key, str(exc).removeprefix(f"{key}: ")
            continue
        for sock in sockets:
            sock.close()
    if config.app_socket is not None and not config.app.listen_defaulted:
        # A defaulted socket another node serves is left to it (a warning, no refusal).
        yield from _socket_problems(config.app_socket)


def _socket_problems(path: Path) -> Iterator[Problem]:
    from ..local.unix import UnixPath

    try:
        where = UnixPath(path)
    except PeerError as exc:
        yield "peer.app.listen", str(exc).removeprefix("[peer.app] listen: ")
        return
    try:
        if where.stat() is not None and where.answers():
            yield "peer.app.listen", f"a running node serves {path} already"
    except PeerError as exc:
        yield "peer.app.listen", str(exc).removeprefix("[peer.app] listen: ")
    finally:
        with contextlib.suppress(OSError):
            where.close()
