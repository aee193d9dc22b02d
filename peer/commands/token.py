"""``setpeer token [-o FILE] [--json]``: a fresh bearer token and its ``bearer_sha256``.

The token is what one node presents (``[partners.auth] bearer = "file:FILE"`` or
``"env:NAME"``); its SHA-256 is what the other node keeps (``[partners.inbound]
bearer_sha256``), so neither config holds a secret the other can use. Printed as two
labelled lines, or one JSON object; with ``-o`` the token goes to FILE (mode 0600, no
line break) and only its digest is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from ._common import command_parser
from .keygen import write_private

__all__ = ["add_parser", "main", "new_token"]

TOKEN_BYTES = 32  # 256 bits, base64url: 43 characters


def new_token() -> tuple[str, str]:
    """A fresh random bearer token and its SHA-256 in hex: ``(token, bearer_sha256)``."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hashlib.sha256(token.encode()).hexdigest()


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``token`` on the ``setpeer`` argument parser."""
    parser = command_parser(
        subparsers,
        name,
        "print a fresh bearer token and its bearer_sha256 (the partner's side of it)",
        "setpeer token",
        'setpeer token -o a-to-b.token   # a.toml: bearer = "file:a-to-b.token"',
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write the token to FILE, mode 0600"
    )
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing FILE")
    parser.add_argument("--json", action="store_true", help='{"token": ..., "bearer_sha256": ...}')
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print the token and digest (or write the token); 1 if FILE cannot be written."""
    token, digest = new_token()
    if args.output is not None:
        try:
            write_private(args.output, token, force=args.force)
        except FileExistsError:
            print(f"setpeer token: {args.output} exists (--force replaces it)", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"setpeer token: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
    shown: dict[str, str] = {"bearer_sha256": digest}
    if args.output is None:
        shown = {"token": token, **shown}
    else:
        shown = {"token_file": str(args.output), **shown}
    if args.json:
        print(json.dumps(shown))
    else:
        for key, value in shown.items():
            print(f"{key}: {value}")
    return 0
