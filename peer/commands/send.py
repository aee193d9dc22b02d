"""``setpeer send``: enqueue one SET into the store's outbox; prints only the jti.

Works while ``setpeer run`` runs (the store wakes the running node) and before the
store was ever opened by ``run`` (the schema is created).

Exit status: 0 stored (the jti printed), 1 failed, 2 a config or usage problem, 3 a SET
with this ``--jti`` is stored already: a script that retries with its own jti after an
uncertain failure never sends an event twice (``peer.errors.DuplicateJti``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import DuplicateJti, PeerError
from ..publisher import Publisher
from ..store import open_store
from ..store.base import OutboundNew
from ..tokens.keys import load_private_jwks
from ..tokens.sign import Signer
from ._common import add_config_argument, load_or_exit

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="enqueue one SET for a partner; prints its jti"
    )
    add_set_arguments(parser)
    parser.set_defaults(handler=main)


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The config and what one SET holds: ``--to``, ``--event``, ``--payload``, ``--sub-id``."""
    add_config_argument(parser)
    parser.add_argument("--to", required=True, help="partner name")
    parser.add_argument("--event", required=True, help="event type URI")
    parser.add_argument("--payload", default="{}", help="the event's payload, a JSON object")
    parser.add_argument("--sub-id", default=None, help="subject identifier, a JSON object")
    parser.add_argument(
        "--jti", default=None, help="the SET's jti (default: a fresh random one); retry with it"
    )


def json_object(text: str, what: str, command: str = "send") -> dict[str, Any]:
    """``text`` as a JSON object, or exit with a message naming ``what``."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"setpeer {command}: {what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"setpeer {command}: {what} must be a JSON object")
    return value


async def _send(
    config: PeerConfig,
    to: str,
    event: str,
    payload: dict[str, Any],
    sub_id: Any,
    jti: str | None,
) -> str:
    partner = config.partner(to)
    publisher = Publisher(
        issuer=config.issuer, signer=Signer(load_private_jwks(config.signing_keys_path))
    )
    jti, token = publisher.mint(partner, {event: payload}, sub_id=sub_id, jti=jti)
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        await store.enqueue([OutboundNew(partner.name, jti, token)])
    except DuplicateJti as exc:
        raise DuplicateJti.of_set(partner.name, jti) from exc
    finally:
        await store.aclose()
    return jti


def main(args: argparse.Namespace) -> int:
    """Enqueue and print the jti; exit 2 on a config or usage problem, 1 on failure."""
    config = load_or_exit(args.config)
    payload = json_object(args.payload, "--payload")
    sub_id = None if args.sub_id is None else json_object(args.sub_id, "--sub-id")
    try:
        config.partner(args.to)
    except LookupError as exc:
        print(f"setpeer send: {exc}", file=sys.stderr)
        return 2
    try:
        jti = anyio.run(_send, config, args.to, args.event, payload, sub_id, args.jti)
    except DuplicateJti as exc:
        print(f"setpeer send: {exc}; stored before, not sent again", file=sys.stderr)
        return 3
    except (PeerError, ValueError) as exc:
        print(f"setpeer send: {exc}", file=sys.stderr)
        return 1
    print(jti)
    return 0
