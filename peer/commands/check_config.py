"""``setpeer check-config -c peer.toml``: validate; exit 2 listing every problem.

Private key files and SQLite store files that group or others may read get a warning
line on stderr (the exit code stays 0).

Beyond what ``load_config`` checks, the secrets (``env:``/``file:`` references) are
resolved too, since a node would otherwise only find an unset variable when it first
dials; ``--no-secrets`` skips that where the secrets are not available (a CI lint).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from ..config import check_secrets, load_config
from ..errors import ConfigError
from ._common import EXIT_CONFIG, add_config_argument, warn_readable

__all__ = ["add_parser", "main"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def add_parser(subparsers: Any, name: str) -> None:
    """Add the ``check-config`` subcommand to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="validate a configuration; exit 2 with every problem and its key path"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not resolve env:/file: secret references (their form is still checked)",
    )
    parser.set_defaults(handler=main)


def _line(key_path: str, message: str) -> str:
    # One problem per line, whatever a file path in the message holds.
    text = f"{key_path}: {message}"
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def main(args: argparse.Namespace) -> int:
    """Print ``ok: N partners`` (exit 0) or every problem on stderr (exit 2).

    Each problem is one line, ``key.path: message``, e.g.
    ``partners[0].send_via: must be one of pushpull, push, multipush, poll``.
    """
    try:
        config = load_config(args.config)
        problems = [] if args.no_secrets else check_secrets(config)
    except ConfigError as exc:
        problems = exc.problems
    if problems:
        for key_path, message in problems:
            print(_line(key_path, message), file=sys.stderr)
        return EXIT_CONFIG
    warn_readable(config)
    count = len(config.partners)
    print(f"ok: {count} partners")
    return 0
