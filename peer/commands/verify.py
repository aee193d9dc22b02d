"""``setpeer verify``: why was this SET rejected? The node's own verifier, one line per token.

Each token (argument, or one per line on stdin) gives one JSON line: the decoded
claims, or ``{"err": CODE, "description": ...}`` with an RFC 8935 code. Exit 1 if any
failed, 2 on a usage problem (unreadable key set).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SETRejected
from ..tokens.keys import KeyStore
from ..tokens.verify import Verifier
from ._common import command_parser

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``verify`` on the ``setpeer`` argument parser."""
    parser = command_parser(
        subparsers,
        name,
        "verify SETs as a receiver would; one JSON line per token",
        "setpeer verify --jwks b.public.json --issuer https://b.example "
        "--audience https://a.example TOKEN",
    )
    parser.add_argument("--jwks", required=True, type=Path, help="the sender's public JWK Set")
    parser.add_argument("--issuer", required=True, help="the iss the sender must use")
    parser.add_argument("--audience", required=True, help="our audience (must be in aud)")
    parser.add_argument("--ssf", action="store_true", help="apply the SSF 1.0 SET profile")
    parser.add_argument("--strict-subjects", action="store_true", help="RFC 9493 as written")
    parser.add_argument("token", nargs="?", help="a compact SET; default: one per stdin line")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Verify each token with the node's :class:`Verifier`.

    Returns:
        0 if every token verified, 1 if any failed, 2 if the key set is unusable.
    """
    try:
        keys = KeyStore.from_file(args.jwks)
    except ConfigError as exc:
        for _, message in exc.problems:
            print(f"setpeer verify: --jwks: {message}", file=sys.stderr)
        return 2
    verifier = Verifier(
        issuer=args.issuer,
        audience=args.audience,
        keys=keys,
        ssf=args.ssf,
        strict_subjects=args.strict_subjects,
    )
    tokens = [args.token] if args.token else (line.strip() for line in sys.stdin)
    failed = False
    for token in tokens:
        if not token:
            continue
        result: dict[str, Any]
        try:
            result = dict(verifier.verify(token, now=time.time()).claims)
        except SETRejected as exc:
            result = {"err": exc.err, "description": exc.description}
            failed = True
        print(json.dumps(result), flush=True)
    return 1 if failed else 0
