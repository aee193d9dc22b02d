"""``setpeer run -c peer.toml``: serve and keep partner sessions until SIGINT/SIGTERM.

Refuses to start (exit 2, one line per problem) on anything ``check-config`` refuses:
an unresolved secret, an unusable key file, TLS files that do not load. A listener
that cannot be bound (a port in use) or a store that cannot be opened is a runtime
failure: one line naming it, exit 1. The soft file-descriptor limit is raised up to
the hard one to fit ``max_connections`` (``_capacity``).
"""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

import anyio

from ..config import PeerConfig
from ..logs import configure_logging
from ..node import Peer
from ._capacity import capacity_warnings, raise_file_limit
from ._common import (
    EXIT_CONFIG,
    add_config_argument,
    command_parser,
    load_or_exit,
    print_problems,
    warn_readable,
)
from ._preflight import startup_problems

__all__ = ["LOG_LEVELS", "add_parser", "main"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level(text: str) -> str:
    """``--log-level``, case-insensitive: ``debug`` is ``DEBUG``."""
    return text.upper()


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "serve and keep partner sessions until SIGINT/SIGTERM",
        "setpeer run -c a.toml --log-format json --log-level info",
    )
    add_config_argument(parser)
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--log-level", type=_level, choices=LOG_LEVELS, default="INFO")
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
    """Run the node; graceful on SIGINT/SIGTERM (exit 0). A failure to start is one
    line on stderr (``peer.cli``): exit 1, or 2 for a configuration problem."""
    config = load_or_exit(args.config)
    problems = startup_problems(config)
    if problems:
        print_problems(problems)
        return EXIT_CONFIG
    configure_logging(args.log_format, args.log_level)
    log = logging.getLogger("setpeer")
    warn_readable(config, log)
    raise_file_limit(config)  # up to the hard limit: a soft 1,024 is common
    for line in capacity_warnings(config):
        log.warning("%s", line)
    anyio.run(_serve, config)
    return 0
