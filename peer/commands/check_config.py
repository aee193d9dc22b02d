"""``setpeer check-config -c peer.toml``: validate; exit 2 listing every problem."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_config_argument, load_or_exit

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="validate a configuration; exit 2 with every problem and its key path"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print ``ok`` or every problem (``key.path: message``, on stderr) with exit 2."""
    config = load_or_exit(args.config)
    print(f"ok: {len(config.partners)} partner(s)")
    return 0
