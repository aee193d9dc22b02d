"""``setpeer check-config -c peer.toml [--bind]``: validate; exit 2 listing every problem.

Private key files and SQLite store files that group or others may read get a warning
line on stderr (the exit code stays 0); so do a ``max_connections`` the partners that
connect to us would fill, and a file-descriptor limit below what it allows
(``_capacity``).

Beyond what ``load_config`` checks, everything ``setpeer run`` would refuse at start
is checked too (``_preflight``): the secrets (``env:``/``file:`` references) resolve,
the key files hold usable keys, the TLS files load; ``--bind`` also binds every
listener for a moment (a port in use is then a problem). ``--no-secrets`` skips the
secrets where they are not available (a CI lint).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from ._capacity import capacity_warnings
from ._common import EXIT_CONFIG, add_config_argument, command_parser, print_problems, warn_readable
from ._preflight import startup_problems

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    """Add the ``check-config`` subcommand to ``subparsers``."""
    parser = command_parser(
        subparsers,
        name,
        "validate a configuration as run would; exit 2 with every problem and its key path",
        "setpeer check-config -c a.toml",
        "setpeer check-config -c a.toml --bind   # also: can every port be bound now?",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not resolve env:/file: secret references (their form is still checked)",
    )
    parser.add_argument(
        "--bind",
        action="store_true",
        help="also bind every listener for a moment: a port in use is a problem",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print ``ok: N partners`` (exit 0) or every problem on stderr (exit 2).

    Each problem is one line, ``key.path: message``, e.g.
    ``partners[0].send_via: must be one of pushpull, push, multipush, poll``.
    """
    try:
        config = load_config(args.config)
        problems = startup_problems(config, secrets=not args.no_secrets, bind=args.bind)
    except ConfigError as exc:
        problems = exc.problems
    if problems:
        print_problems(problems)
        return EXIT_CONFIG
    warn_readable(config)
    for line in capacity_warnings(config):
        print(f"warning: {line}", file=sys.stderr)
    count = len(config.partners)
    print(f"ok: {count} partners")
    return 0
