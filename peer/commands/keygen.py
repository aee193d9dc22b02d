"""``setpeer keygen --alg ES256 [--kid K] [-o FILE [--force]] [--public FILE]``: a new
private JWK Set, and its public half for partners.

With ``-o`` the key is written to FILE created with mode 0600 (``O_EXCL``: an existing
file is refused unless ``--force``); without it, printed on stdout, with a hint on
stderr, since ``setpeer keygen > key.json`` leaves the key as readable as the umask
makes new files (usually by everyone). ``--public FILE`` writes the public JWK Set a
partner configures as our ``jwks`` (mode 0644: it holds no secret).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..tokens.keys import ALGORITHMS, generate_private_jwks, public_jwks
from ._common import command_parser

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``keygen`` on the ``setpeer`` argument parser."""
    parser = command_parser(
        subparsers,
        name,
        "write a new private JWK Set (the first key signs), and its public half",
        "setpeer keygen -o a.jwks.json --public a.public.json",
    )
    # ES256 by default: on this stack it verifies faster than EdDSA (measured), and
    # verification is the receiver's bottleneck.
    parser.add_argument("--alg", choices=ALGORITHMS, default="ES256")
    parser.add_argument("--kid", default=None, help="key id (default: RFC 7638 thumbprint)")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write to FILE, mode 0600 (not stdout)"
    )
    parser.add_argument(
        "--public",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the public JWK Set, for partners (their jwks = ...)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing -o or --public FILE"
    )
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


def write_public(path: Path, text: str, *, force: bool = False) -> None:
    """Write ``text`` to ``path`` readable by everyone (a public key is no secret).

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
        OSError: it cannot be written.
    """
    with path.open("w" if force else "x") as file:
        file.write(text)


def main(args: argparse.Namespace) -> int:
    """Write or print a new private JWK Set as JSON (and write its public half);
    returns 0, or 1 if a file cannot be written (nothing is left half written)."""
    private = generate_private_jwks(args.alg, kid=args.kid)
    text = json.dumps(private, indent=2) + "\n"
    for path in (args.output, args.public):
        if path is not None and path.exists() and not args.force:
            print(f"setpeer keygen: {path} exists (--force replaces it)", file=sys.stderr)
            return 1
    try:
        if args.public is not None:
            public = json.dumps(public_jwks(private), indent=2) + "\n"
            write_public(args.public, public, force=args.force)
        if args.output is None:
            print(
                "setpeer keygen: this is a private key; "
                "`setpeer keygen -o FILE` writes it readable by you only",
                file=sys.stderr,
            )
            sys.stdout.write(text)
            return 0
        write_private(args.output, text, force=args.force)
    except FileExistsError as exc:
        print(f"setpeer keygen: {exc.filename} exists (--force replaces it)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"setpeer keygen: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
