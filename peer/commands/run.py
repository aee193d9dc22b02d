"""``setpeer run -c peer.toml``: serve and keep partner sessions until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError
from ..logs import configure_logging
from ..node import Peer
from ._common import add_config_argument, load_or_exit, warn_readable

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="serve and keep partner sessions until SIGINT/SIGTERM"
    )
    add_config_argument(parser)
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(handler=main)


async def _serve(config: PeerConfig) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with Peer(config) as node:
            print(f"setpeer listening on {node.url}", flush=True)
            async for signum in signals:
                logging.getLogger("setpeer").info(
                    "received %s: shutting down", signal.Signals(signum).name
                )
                break


def main(args: argparse.Namespace) -> int:
    """Run the node; graceful on SIGINT/SIGTERM (exit 0)."""
    config = load_or_exit(args.config)
    configure_logging(args.log_format, args.log_level)
    warn_readable(config, logging.getLogger("setpeer"))
    try:
        anyio.run(_serve, config)
    except (OSError, PeerError) as exc:
        print(f"setpeer run: {exc}", file=sys.stderr)
        return 1
    return 0
