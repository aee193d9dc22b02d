"""``setpeer migrate -c peer.toml``: create or upgrade the store's schema."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from ..errors import PeerError
from ..store import migrate
from ._common import add_config_argument, command_parser, load_or_exit

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers, name, "create or upgrade the store's schema", "setpeer migrate -c a.toml"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Migrate; exit 1 if the store refuses (e.g. a newer schema than we know)."""
    config = load_or_exit(args.config)
    try:
        version = anyio.run(migrate, config.store, config.config_dir)
    except PeerError as exc:
        print(f"setpeer migrate: {exc}", file=sys.stderr)
        return 1
    print(f"store schema at version {version}")
    return 0
