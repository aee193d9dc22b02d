"""Secret references: ``env:NAME`` or ``file:PATH``, never the secret itself.

A config file is copied, committed, pasted into tickets; a secret in it leaks with it.
So a secret is always named, and every message about one names the key and the
reference's kind, never the value (docs/configuration.md, "General rules").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..errors import ConfigError

if TYPE_CHECKING:
    from .peer_config import PeerConfig

__all__ = ["check_secrets", "resolve_secret", "secret_ref_problem"]

_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A token or client secret is a few hundred bytes; 64 KiB refuses a mistyped path to a
# large file without reading it all.
MAX_SECRET_BYTES: Final = 64 * 1024


def secret_ref_problem(value: object) -> str | None:
    """Why ``value`` is not a secret reference, or None if it is one.

    The message never contains ``value``: it may be the secret itself.
    """
    if not isinstance(value, str):
        return "must be a string: env:NAME or file:PATH"
    kind, sep, rest = value.partition(":")
    if sep and kind == "env":
        if _ENV_NAME.fullmatch(rest):
            return None
        return "env: must name an environment variable (letters, digits and _)"
    if sep and kind == "file":
        if rest and "\x00" not in rest:
            return None
        return "file: must name a file"
    return "must be env:NAME or file:PATH; secrets are never given inline"


def resolve_secret(ref: str, base_dir: Path, *, key: str = "secret") -> str:
    """The secret behind ``env:NAME`` or ``file:PATH``.

    A file's trailing line break is dropped (``echo token > file`` adds one).

    Args:
        ref: the reference from the config.
        base_dir: the folder a relative ``file:`` path starts from (the config's).
        key: key path used in the error, e.g. ``partners[0].auth.bearer``.

    Returns:
        The secret.

    Raises:
        ConfigError: not a reference, unset variable, unreadable, oversized,
            non-UTF-8 or empty file. The secret is never part of the message.
    """
    problem = secret_ref_problem(ref)
    if problem is not None:
        raise ConfigError([(key, problem)])
    kind, _, rest = ref.partition(":")
    if kind == "env":
        secret = os.environ.get(rest)
        if secret is None:
            raise ConfigError([(key, f"environment variable {rest} is not set")])
    else:
        path = base_dir / rest
        try:
            with path.open("rb") as file:
                data = file.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise ConfigError([(key, f"cannot read {path}: {exc.strerror}")]) from None
        if len(data) > MAX_SECRET_BYTES:
            raise ConfigError([(key, f"{path} is larger than {MAX_SECRET_BYTES} bytes")])
        try:
            secret = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([(key, f"{path} is not UTF-8 text")]) from None
        secret = secret.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigError([(key, f"the secret in {kind}:{rest} is empty")])
    return secret


def check_secrets(config: PeerConfig) -> list[tuple[str, str]]:
    """Resolve every secret reference now; the problems, secrets never included.

    ``load_config`` only checks the references' form: ``status`` or ``migrate`` may run
    where the secrets are not available. ``setpeer check-config`` calls this too.
    """
    problems: list[tuple[str, str]] = []
    for index, partner in enumerate(config.partners):
        auth = partner.auth
        refs = [("bearer", auth.bearer)]
        if auth.oauth is not None:
            refs.append(("oauth.client_secret", auth.oauth.client_secret))
        for name, ref in refs:
            if ref is None or secret_ref_problem(ref) is not None:
                continue  # absent, or already a problem in load_config / validate()
            try:
                resolve_secret(ref, config.config_dir, key=f"partners[{index}].auth.{name}")
            except ConfigError as exc:
                problems.extend(exc.problems)
    ref = config.app.deliver_auth
    if ref is not None and secret_ref_problem(ref) is None:
        try:
            resolve_secret(ref, config.config_dir, key="peer.app.deliver_auth")
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems
