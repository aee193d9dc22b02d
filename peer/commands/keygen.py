"""``setpeer keygen --alg ES256 [--kid K]``: print a new private JWK Set."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..tokens.keys import ALGORITHMS, generate_private_jwks

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``keygen`` on the ``setpeer`` argument parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="print a new private JWK Set (the first key signs)"
    )
    # ES256 by default: on this stack it verifies faster than EdDSA (measured), and
    # verification is the receiver's bottleneck.
    parser.add_argument("--alg", choices=ALGORITHMS, default="ES256")
    parser.add_argument("--kid", default=None, help="key id (default: RFC 7638 thumbprint)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print a new private JWK Set as JSON; returns 0."""
    print(json.dumps(generate_private_jwks(args.alg, kid=args.kid), indent=2))
    return 0
