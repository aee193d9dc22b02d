"""Helpers shared by subcommands: their parser (a description and an example in
``--help``), config loading that exits 2 on a config problem, one line per problem."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..config import PeerConfig, load_config
from ..errors import ConfigError, StoreError
from ..logs import escape_controls
from ..store import sqlite_path

__all__ = [
    "EXIT_CONFIG",
    "add_config_argument",
    "command_parser",
    "load_or_exit",
    "print_problems",
    "readable_secret_files",
    "require_store",
    "usage_error",
    "warn_readable",
]

EXIT_CONFIG = 2  # peer.cli: a usage or configuration problem


def command_parser(
    subparsers: Any, name: str, summary: str, *examples: str
) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``: ``summary`` in ``setpeer --help`` and as the
    description of ``setpeer NAME --help``, whose epilog shows ``examples``."""
    lines = "\n".join(f"  {example}" for example in examples)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example{'s' if len(examples) > 1 else ''}:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def print_problems(problems: Iterable[tuple[str, str]]) -> None:
    """Each problem on its own line of stderr, ``key.path: message``, whatever a path or
    a message holds (control characters escaped)."""
    for key_path, message in problems:
        print(escape_controls(f"{key_path}: {message}"), file=sys.stderr)


def usage_error(command: str, message: str) -> SystemExit:
    """Print ``setpeer COMMAND: message`` and return the exit (2) to raise."""
    print(f"setpeer {command}: {escape_controls(message)}", file=sys.stderr)
    return SystemExit(EXIT_CONFIG)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", required=True, type=Path, help="the node's TOML configuration"
    )


def load_or_exit(path: Path) -> PeerConfig:
    """The configuration, or exit 2 with every problem listed on stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print_problems(exc.problems)
        raise SystemExit(EXIT_CONFIG) from None


def _secret_files(config: PeerConfig) -> Iterator[Path]:
    """Files only the node's user should read: private keys and the SQLite store."""
    yield config.signing_keys_path
    if config.tls is not None:
        yield config.tls.keyfile
    for partner in config.partners:
        oauth = partner.auth.oauth if partner.auth is not None else None
        if oauth is not None and oauth.private_key_jwt is not None:
            yield oauth.private_key_jwt
    if config.store.startswith("sqlite:///"):
        try:
            db = sqlite_path(config.store, config.config_dir)
        except StoreError:
            return
        yield from (db, Path(f"{db}-wal"), Path(f"{db}-shm"))


def readable_secret_files(config: PeerConfig) -> list[tuple[Path, int]]:
    """Existing secret files that group or others may read: ``(path, mode)`` each."""
    found = []
    for path in _secret_files(config):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue  # absent (or unreadable): load_config or the store reports it
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            found.append((path, mode))
    return found


def warn_readable(config: PeerConfig, log: logging.Logger | None = None) -> None:
    """One warning per secret file group or others may read: a line on stderr, or a
    record of ``log`` (``run``: text or JSON like every other line); the exit code is
    not changed (an operator may share a key file on purpose)."""
    for path, mode in readable_secret_files(config):
        text = (
            f"{path} is readable by group or others (mode {mode:04o}); "
            f"it holds secrets: chmod 600 {path}"
        )
        if log is not None:
            log.warning("%s", text)
        else:
            print(f"warning: {text}", file=sys.stderr)


def require_store(config: PeerConfig) -> None:
    """Refuse a store there is nothing to read from, for commands that read one
    (never creating it).

    Raises:
        StoreError: a memory store, or no SQLite file at the configured path.
    """
    if config.store == "memory://":
        raise StoreError("a memory:// store keeps nothing outside the node's process")
    if config.store.startswith("sqlite:"):
        path = sqlite_path(config.store, config.config_dir)
        if not path.is_file():
            raise StoreError(f"no store at {path} (the node has not run yet?)")
