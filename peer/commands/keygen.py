"""``setpeer keygen --alg ES256 [--kid K] [-o FILE [--force]]``: a new private JWK Set.

With ``-o`` the key is written to FILE created with mode 0600 (``O_EXCL``: an existing
file is refused unless ``--force``); without it, printed on stdout, with a hint on
stderr, since ``setpeer keygen > key.json`` leaves the key as readable as the umask
makes new files (usually by everyone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..tokens.keys import ALGORITHMS, generate_private_jwks

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``keygen`` on the ``setpeer`` argument parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="write (or print) a new private JWK Set (the first key signs)"
    )
    # ES256 by default: on this stack it verifies faster than EdDSA (measured), and
    # verification is the receiver's bottleneck.
    parser.add_argument("--alg", choices=ALGORITHMS, default="ES256")
    parser.add_argument("--kid", default=None, help="key id (default: RFC 7638 thumbprint)")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write to FILE, mode 0600 (not stdout)"
    )
    parser.add_argument("--force", action="store_true", help="with -o: replace an existing FILE")
    parser.set_defaults(handler=main)


def write_private(path: Path, text: str, *, force: bool = False) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600, whatever the umask).

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
        OSError: it cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file (--force) keeps its mode otherwise
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main(args: argparse.Namespace) -> int:
    """Write or print a new private JWK Set as JSON; returns 0, or 1 if it cannot write."""
    text = json.dumps(generate_private_jwks(args.alg, kid=args.kid), indent=2) + "\n"
    if args.output is None:
        print(
            "setpeer keygen: this is a private key; "
            "`setpeer keygen -o FILE` writes it readable by you only",
            file=sys.stderr,
        )
        sys.stdout.write(text)
        return 0
    try:
        write_private(args.output, text, force=args.force)
    except FileExistsError:
        print(f"setpeer keygen: {args.output} exists (--force replaces it)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"setpeer keygen: {exc}", file=sys.stderr)
        return 1
    return 0
