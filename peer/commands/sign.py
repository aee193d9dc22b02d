"""``setpeer sign``: mint one SET for a partner and print it (nothing is stored).

For trying a partner's endpoint by hand, e.g. ``curl --data "$(setpeer sign ...)"``
against an RFC 8935 ``/events`` route; ``setpeer send`` is the way to deliver one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import PeerError
from ..protocol.multipush import MultiPushRequest
from ..publisher import Publisher
from ..tokens.keys import load_private_jwks
from ..tokens.sign import Signer
from ._common import command_parser, load_or_exit
from .send import add_set_arguments, json_object, unix_time

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "mint one signed SET for a partner and print it (not stored, not sent)",
        "setpeer sign -c a.toml --to b --event "
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    )
    add_set_arguments(parser)
    parser.add_argument(
        "--format",
        choices=["jwt", "multipush"],
        default="jwt",
        help="jwt: the compact SET (an RFC 8935 push body); multipush: a multi-push "
        'request body {"sets": {jti: SET}}',
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print the compact SET; exit 2 on a config or usage problem, 1 on failure."""
    config = load_or_exit(args.config)
    payload = json_object(args.payload, "--payload", "sign")
    sub_id = None if args.sub_id is None else json_object(args.sub_id, "--sub-id", "sign")
    toe = unix_time(args.toe, "--toe", "sign")
    try:
        partner = config.partner(args.to)
    except LookupError as exc:
        print(f"setpeer sign: {exc}", file=sys.stderr)
        return 2
    try:
        signer = Signer(load_private_jwks(config.signing_keys_path))
        jti, token = Publisher(issuer=config.issuer, signer=signer).mint(
            partner, {args.event: payload}, sub_id=sub_id, jti=args.jti, txn=args.txn, toe=toe
        )
    except (PeerError, ValueError) as exc:
        print(f"setpeer sign: {exc}", file=sys.stderr)
        return 1
    print(token if args.format == "jwt" else MultiPushRequest({jti: token}).serialize().decode())
    return 0
