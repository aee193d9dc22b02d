"""Helpers shared by subcommands: config loading that exits 2 on a config problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import PeerConfig, load_config
from ..errors import ConfigError

__all__ = ["add_config_argument", "load_or_exit"]

EXIT_CONFIG = 2


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", required=True, type=Path, help="the node's TOML configuration"
    )


def load_or_exit(path: Path) -> PeerConfig:
    """The configuration, or exit 2 with every problem listed on stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for key_path, message in exc.problems:
            print(f"{key_path}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
