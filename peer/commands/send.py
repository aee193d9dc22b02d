"""``setpeer send``: enqueue one SET into the store's outbox; prints only the jti.

Works while ``setpeer run`` runs (the store wakes the running node) and before the
store was ever opened by ``run`` (the schema is created). A ``memory://`` store is
refused: the SET would live only as long as this command.

The SET is checked as the partner's node would check it before anything is stored
(``partner_refusal``: the issuer, audience, subject identifier and the CAEP/RISC/SSF
payload schemas, under the partner's SSF profile and subject rules), so a payload the
partner would refuse is a usage error here, not a failure found later in its log.

Exit status: 0 stored (the jti printed), 1 failed, 2 a config or usage problem, 3 a SET
with this ``--jti`` is stored already: a script that retries with its own jti after an
uncertain failure never sends an event twice (``peer.errors.DuplicateJti``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import anyio

from ..config import Partner, PeerConfig
from ..errors import DuplicateJti, PeerError, SETRejected, SETTooLarge
from ..publisher import Publisher
from ..store import open_store
from ..store.base import OutboundNew
from ..tokens.keys import KeyStore, load_private_jwks, public_jwks
from ..tokens.sign import Signer
from ..tokens.verify import Verifier
from ._common import add_config_argument, command_parser, load_or_exit, usage_error

__all__ = ["add_parser", "json_object", "main", "partner_refusal", "unix_time"]

EXAMPLE_EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "enqueue one SET for a partner (checked as the partner will); prints its jti",
        f"setpeer send -c a.toml --to b --event {EXAMPLE_EVENT} \\\n"
        '      --payload \'{"initiating_entity": "policy"}\' '
        '--sub-id \'{"format": "email", "email": "jane@example.com"}\'',
    )
    add_set_arguments(parser)
    parser.set_defaults(handler=main)


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The config and what one SET holds: ``--to``, ``--event``, ``--payload``,
    ``--sub-id``, ``--jti``, ``--txn``, ``--toe``."""
    add_config_argument(parser)
    parser.add_argument("--to", required=True, help="partner name")
    parser.add_argument("--event", required=True, help="event type URI")
    parser.add_argument("--payload", default="{}", help="the event's payload, a JSON object")
    parser.add_argument("--sub-id", default=None, help="subject identifier, a JSON object")
    parser.add_argument(
        "--jti", default=None, help="the SET's jti (default: a fresh random one); retry with it"
    )
    parser.add_argument("--txn", default=None, help="transaction id (txn claim, RFC 8417 §2.2)")
    parser.add_argument(
        "--toe", default=None, metavar="UNIX_TIME", help="time of the event (toe claim), seconds"
    )


def json_object(text: str, what: str, command: str = "send") -> dict[str, Any]:
    """``text`` as a JSON object, or exit 2 with one line naming ``what``."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise usage_error(command, f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise usage_error(command, f"{what} must be a JSON object")
    return value


def unix_time(text: str | None, what: str, command: str = "send") -> float | None:
    """``text`` as seconds since the epoch (an int when it is one), or exit 2."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise usage_error(command, f"{what} takes a Unix time in seconds, not {text!r}")
    return int(value) if value.is_integer() else value


def partner_refusal(config: PeerConfig, partner: Partner, token: str, jwks: Any) -> str | None:
    """Why ``partner``'s node would refuse ``token``, or None: our SET verified as the
    partner verifies ours (our issuer and keys, its audience, its SSF profile and
    subject rules, the payload schemas); ``err: description`` like its answer."""
    verifier = Verifier(
        issuer=config.issuer,
        audience=partner.audience,
        keys=KeyStore(public_jwks(jwks)),
        ssf=partner.ssf_profile,
        strict_subjects=partner.strict_subjects,
        max_token_bytes=partner.limits.max_set_bytes,
    )
    try:
        verifier.verify(token, now=time.time())
    except SETRejected as exc:
        return f"{exc.err}: {exc.description}"
    return None


async def _store(config: PeerConfig, partner: Partner, jti: str, token: str) -> None:
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        await store.enqueue([OutboundNew(partner.name, jti, token)])
    except DuplicateJti as exc:
        raise DuplicateJti.of_set(partner.name, jti) from exc
    finally:
        await store.aclose()


def main(args: argparse.Namespace) -> int:
    """Enqueue and print the jti; exit 2 on a config or usage problem (a SET the
    partner would refuse among them), 1 on failure, 3 on a jti stored already."""
    config = load_or_exit(args.config)
    payload = json_object(args.payload, "--payload")
    sub_id = None if args.sub_id is None else json_object(args.sub_id, "--sub-id")
    toe = unix_time(args.toe, "--toe")
    try:
        partner = config.partner(args.to)
    except LookupError as exc:
        raise usage_error("send", str(exc)) from None
    if config.store == "memory://":
        raise usage_error(
            "send",
            "peer.store is memory://: the SET would be gone when this command exits; "
            "use sqlite:///PATH or postgresql://, or publish from the running node",
        )
    jwks = load_private_jwks(config.signing_keys_path)
    try:
        jti, token = Publisher(issuer=config.issuer, signer=Signer(jwks)).mint(
            partner, {args.event: payload}, sub_id=sub_id, jti=args.jti, txn=args.txn, toe=toe
        )
    except SETTooLarge as exc:
        print(f"setpeer send: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise usage_error("send", str(exc)) from None
    refusal = partner_refusal(config, partner, token, jwks)
    if refusal is not None:
        raise usage_error("send", f"partner {partner.name} would refuse this SET: {refusal}")
    try:
        anyio.run(_store, config, partner, jti, token)
    except DuplicateJti as exc:
        print(f"setpeer send: {exc}; stored before, not sent again", file=sys.stderr)
        return 3
    except PeerError as exc:
        print(f"setpeer send: {exc}", file=sys.stderr)
        return 1
    print(jti)
    return 0
