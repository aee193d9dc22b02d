"""The ``setpeer`` command line: parses arguments and calls the facade.

Each subcommand lives in ``peer/commands/<name>.py`` and exposes
``add_parser(subparsers)`` and ``main(args) -> int``. Only the module of the command
being run is imported (every one for ``--help`` or a mistyped command): ``status``
then starts in about half the time, without the node, the transports and joserfc.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Subcommand name -> module under peer.commands (README "Command line").
COMMANDS = {
    "run": "run",
    "migrate": "migrate",
    "keygen": "keygen",
    "check-config": "check_config",
    "send": "send",
    "sign": "sign",
    "status": "status",
    "failures": "failures",
    "receive": "receive",
    "verify": "verify",
    "stream": "stream",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is installed, or with ``only``."""
    parser = argparse.ArgumentParser(
        prog="setpeer", description="Security Event Token peer (push-pull, push, poll)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"peer.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"peer.commands.{module_name}":
                raise
            continue  # not built yet
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
