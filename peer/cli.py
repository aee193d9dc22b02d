"""The ``setpeer`` command line: parses arguments and calls the facade.

Each subcommand lives in ``peer/commands/<name>.py`` and exposes
``add_parser(subparsers)`` and ``main(args) -> int``. Only the module of the command
being run is imported (every one for ``--help`` or a mistyped command): ``status``
then starts in about half the time, without the node, the transports and joserfc.

Every failure ends as one line on stderr, ``setpeer COMMAND: what went wrong``, and
one of the exit codes below (README "Exit codes"); ``--debug`` (before or after the
command) lets the exception through with its traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from .errors import ConfigError
from .logs import escape_controls

__all__ = ["EXIT_CONFIG", "EXIT_DUPLICATE", "EXIT_FAILED", "EXIT_OK", "main", "one_line"]

EXIT_OK = 0
EXIT_FAILED = 1  # a runtime failure: the store, the network, a port in use
EXIT_CONFIG = 2  # a usage or configuration problem: nothing was tried
EXIT_DUPLICATE = 3  # setpeer send: a SET with this --jti is stored already

# Subcommand name -> module under peer.commands (README "Command line").
COMMANDS = {
    "init": "init",
    "run": "run",
    "migrate": "migrate",
    "keygen": "keygen",
    "token": "token",
    "check-config": "check_config",
    "send": "send",
    "sign": "sign",
    "status": "status",
    "failures": "failures",
    "receive": "receive",
    "verify": "verify",
    "stream": "stream",
}


class _Parser(argparse.ArgumentParser):
    """A usage error is one line too: what is wrong and where the help is (argparse
    would print the usage block first); every subcommand's parser is one of these."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("setpeer")
        except PackageNotFoundError:  # run from a source tree that was never installed
            text = "unknown (not installed)"
        print(f"setpeer {text}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is installed, or with ``only``."""
    parser = _Parser(
        prog="setpeer",
        description="Security Event Token peer (push-pull, push, poll).",
        epilog="quick start: setpeer init DIR, then follow what it prints; "
        "setpeer COMMAND --help for each command",
    )
    parser.add_argument("--version", nargs=0, action=_Version, help="print the version and exit")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a failure (not one line)"
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
        # `setpeer run -c a.toml --debug` too; SUPPRESS keeps a --debug given first.
        sub.choices[name].add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def one_line(exc: BaseException) -> str:
    """``exc`` as one printable line: a config problem as ``key: message``, an
    exception group as its distinct messages, an unexpected error with its type."""
    parts: list[str] = []
    for leaf in _leaves(exc):
        if isinstance(leaf, ConfigError):
            text = "; ".join(f"{key}: {message}" for key, message in leaf.problems)
        elif isinstance(leaf, OSError | ValueError | LookupError) or type(
            leaf
        ).__module__.startswith("peer."):
            text = str(leaf) or type(leaf).__name__
        else:
            text = f"unexpected {type(leaf).__name__}: {leaf} (--debug shows where)"
        if text not in parts:
            parts.append(text)
    return escape_controls("; ".join(parts))


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (after any global options), if known."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        status: int = args.handler(args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if args.debug:
            raise
        print(f"setpeer {args.command}: {one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG if all(isinstance(e, ConfigError) for e in _leaves(exc)) else EXIT_FAILED
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
