"""Single-value rules: URLs and the loopback exception, files, JWK Sets, listen, store.

Each function returns the problem as a message (or None), so the walk in ``checks.py``
only attaches key paths. Messages never repeat a value from the config except file
paths: a misplaced secret must not end up in a log through its error message.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, urlsplit

from ..errors import WireError
from ..protocol.jsonio import loads_strict

__all__ = [
    "MAX_TEXT",
    "file_problem",
    "hex64_problem",
    "is_loopback",
    "jwks_problem",
    "listen_problem",
    "store_problem",
    "text_problem",
    "url_problem",
]

# Identifiers (issuer, audience, subject) and URLs are short; 2,048 characters is the
# de facto URL limit of browsers and proxies, and bounds every message we build.
MAX_TEXT: Final = 2048
# A JWK Set with a few RSA keys is a few KiB; 1 MiB refuses the wrong file quickly.
MAX_JWKS_BYTES: Final = 1024 * 1024
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_LOOPBACK_V4: Final = ipaddress.ip_network("127.0.0.0/8")


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a literal loopback address: 127.0.0.0/8 or ::1.

    ``localhost`` is not: it is resolved at connect time (hosts file, resolver), so
    the check could not be made here; write ``127.0.0.1`` or ``[::1]``.
    """
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == ipaddress.IPv6Address("::1")


def text_problem(value: object) -> str | None:
    """A required identifier: non-empty string, no control characters, bounded."""
    if value is None:
        return "is required"
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    return None


def _split(value: str) -> SplitResult | str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a valid URL"
    return parts


def url_problem(
    value: object, secure: tuple[str, ...], insecure: tuple[str, ...], allow_insecure: bool
) -> str | None:
    """Check a URL: a ``secure`` scheme, or an ``insecure`` one to literal loopback.

    Args:
        value: the configured URL.
        secure: schemes always allowed (``https``, ``wss``).
        insecure: their plain counterparts (``http``, ``ws``), allowed only to a
            literal loopback address and only with ``allow_insecure``.
        allow_insecure: ``peer.allow_insecure_loopback``.
    """
    problem = text_problem(value)
    if problem is not None:
        return problem
    assert isinstance(value, str)
    wanted = " or ".join(f"{scheme}://" for scheme in secure)
    if any(c.isspace() for c in value):
        return "must not contain spaces"
    parts = _split(value)
    if isinstance(parts, str):
        return parts
    if parts.scheme not in secure + insecure:
        return f"must be a {wanted} URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@); use the auth settings"
    if parts.fragment or value.endswith("#"):
        return "must not contain a fragment (#...)"
    if parts.scheme in insecure:
        if not is_loopback(parts.hostname):
            return (
                f"{parts.scheme}:// is allowed only to a literal loopback address "
                f"(127.0.0.0/8 or [::1]); use {wanted}"
            )
        if not allow_insecure:
            return f"{parts.scheme}:// needs peer.allow_insecure_loopback = true"
    return None


def file_problem(value: object) -> str | None:
    """A file that must exist now (keys, certificates)."""
    if value is None:
        return "is required"
    if not isinstance(value, Path):
        return "must be a file path (string)"
    if not value.exists():
        return f"file not found: {value}"
    if not value.is_file():
        return f"not a regular file: {value}"
    return None


def jwks_problem(path: Path, *, private: bool) -> str | None:
    """A light check that ``path`` holds a JWK Set; peer.tokens checks the keys deeply.

    Args:
        path: an existing file.
        private: our signing keys (the first key must hold private material) rather
            than a partner's public keys (which must hold none).
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if len(data) > MAX_JWKS_BYTES:
        return f"{path} is larger than {MAX_JWKS_BYTES} bytes"
    try:
        document = loads_strict(data, max_bytes=MAX_JWKS_BYTES, max_depth=8)
    except WireError:
        # No details: the parser's excerpt could be private key material.
        return f"{path} is not a valid JSON document"
    if not isinstance(document, dict):
        return f"{path} must hold a JSON object (a JWK Set)"
    keys = document.get("keys")
    if not isinstance(keys, list) or not keys:
        return f'{path} must have a non-empty "keys" array'
    if not all(isinstance(key, dict) and isinstance(key.get("kty"), str) for key in keys):
        return f'{path}: every entry of "keys" must be a JWK object with "kty"'
    if private and "d" not in keys[0]:
        return f"{path}: the first key signs, so it must be a private key"
    if not private and any("d" in key or "k" in key for key in keys):
        # A partner never needs to hand us its private or symmetric key material.
        return f"{path} holds private or symmetric key material; use the public JWK Set"
    return None


def hex64_problem(value: object) -> str | None:
    """A SHA-256 digest written as 64 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        return "must be 64 lowercase hex digits (a SHA-256 digest)"
    return None


def listen_problem(value: object) -> tuple[str, str | None]:
    """Parse ``HOST:PORT``; returns ``(host, problem)``."""
    if not isinstance(value, str):
        return "", "must be a string HOST:PORT"
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or len(port) > 5:
        return "", "must be HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443 (port 0 = ephemeral)"
    if int(port) > 65535:
        return "", "port must be between 0 and 65535"
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        return "", "an IPv6 address goes in brackets, e.g. [::1]:8443"
    bare = host.removeprefix("[").removesuffix("]")
    if not bare or _CONTROL.search(bare) or any(c.isspace() for c in bare):
        return "", "must be HOST:PORT with a valid host"
    return bare, None


def store_problem(value: object, base_dir: Path) -> str | None:
    """``memory://``, ``sqlite:///PATH`` (folder must exist) or ``postgresql://``."""
    if not isinstance(value, str):
        return "must be a string URL"
    if value == "memory://":
        return None
    if value.startswith("sqlite:///"):
        rest = value.removeprefix("sqlite:///")
        if not rest or rest.endswith("/") or "\x00" in rest:
            return "sqlite:/// must be followed by a file path"
        folder = (base_dir / rest).parent
        if not folder.is_dir():
            return f"folder not found: {folder}"
        return None
    if value.startswith(("postgresql://", "postgres://")):
        parts = _split(value)
        if isinstance(parts, str):
            return parts
        if parts.password is not None or re.search(r"(^|&)password=", parts.query):
            # Secrets are never inline: libpq reads PGPASSWORD or a passfile instead.
            return "must not contain a password; use PGPASSWORD or a passfile"
        return None
    if value.startswith("sqlite:"):
        return "a SQLite URL has three slashes: sqlite:///relative.db or sqlite:////abs.db"
    return "must be memory://, sqlite:///PATH or postgresql://..."
