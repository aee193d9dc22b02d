"""``setpeer stream ACTION -c peer.toml --partner NAME``: our stream at an SSF transmitter.

Actions: ``discover`` (its metadata), ``create``, ``show``, ``update``, ``delete``,
``status``, ``pause``, ``resume``, ``disable``, ``verify``, ``add-subject``,
``remove-subject``. Each prints one JSON document; the stream is kept in the node's
store, where a running node picks it up (docs/ssf.md "Receiver role"). A problem of
the command line or the config exits 2; one of the transmitter or the store exits 1,
with one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError
from ..logs import escape_controls
from ..store import open_store
from ._common import EXIT_CONFIG, add_config_argument, command_parser, load_or_exit

__all__ = ["ACTIONS", "add_parser", "main"]

ACTIONS = (
    "discover",
    "create",
    "show",
    "update",
    "delete",
    "status",
    "pause",
    "resume",
    "disable",
    "verify",
    "add-subject",
    "remove-subject",
)
_STATUS = {"pause": "paused", "resume": "enabled", "disable": "disabled"}


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "manage our stream at a partner that is an SSF transmitter",
        "setpeer stream create -c a.toml --partner idp --delivery push",
        "setpeer stream pause -c a.toml --partner idp --reason maintenance",
    )
    parser.add_argument("action", choices=ACTIONS)
    add_config_argument(parser)
    parser.add_argument("--partner", required=True, help="the partner's name")
    parser.add_argument("--delivery", choices=("push", "poll", "pushpull"), help="create")
    parser.add_argument("--events", nargs="+", metavar="URI", help="events_requested")
    parser.add_argument("--description", help="the stream's description")
    parser.add_argument("--subject", help="add-subject / remove-subject: a JSON object")
    parser.add_argument(
        "--verified", choices=("true", "false"), help="add-subject: the subject's verified"
    )
    parser.add_argument("--reason", help="pause / resume / disable: why")
    parser.add_argument(
        "--base-url", help="where partners reach this node (default peer.public_url)"
    )
    parser.set_defaults(handler=main)


def _fail(message: str, code: int) -> int:
    print(f"setpeer stream: {escape_controls(message)}", file=sys.stderr)
    return code


def _base_url(config: PeerConfig, given: str | None) -> str:
    if given:
        return given
    if config.public_url:
        return config.public_url
    scheme = "https" if config.tls is not None else "http"
    return f"{scheme}://{config.listen}"


def _row(row: Any) -> dict[str, Any]:
    from ..ssf.receiver import public_config
    from ..ssf.status import stream_entry

    return {**stream_entry(row), "config": public_config(row.config)}


async def _run(args: argparse.Namespace, config: PeerConfig, subject: Any) -> Any:
    from ..ssf.client import StreamClient
    from ..ssf.receiver import ReceiverStream

    partner = next(p for p in config.partners if p.name == args.partner)
    client = StreamClient(partner, insecure_ok=config.allow_insecure_loopback)
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        stream = ReceiverStream(
            partner, store, client, base_url=lambda: _base_url(config, args.base_url)
        )
        action = args.action
        if action == "discover":
            return dict((await stream.discover()).document)
        if action == "create":
            return _row(
                await stream.create(
                    delivery=args.delivery,
                    events_requested=args.events,
                    description=args.description,
                )
            )
        if action == "show":
            return _row(await stream.show())
        if action == "update":
            changes: dict[str, Any] = {}
            if args.events:
                changes["events_requested"] = args.events
            if args.description is not None:
                changes["description"] = args.description
            return _row(await stream.update(changes))
        if action == "delete":
            return {"deleted": True, "existed": await stream.delete()}
        if action == "status":
            return _row(await stream.read_status())
        if action in _STATUS:
            return _row(await stream.set_status(_STATUS[action], args.reason))
        if action == "verify":
            row = await stream.verify()
            return {"stream_id": row.stream_id, "verification": "requested"}
        verified = None if args.verified is None else args.verified == "true"
        if action == "add-subject":
            await stream.add_subject(subject, verified)
        else:
            await stream.remove_subject(subject)
        return {"stream_id": (await stream.row()).stream_id, "subject": subject}  # type: ignore[union-attr]
    finally:
        await client.aclose()
        await store.aclose()


def main(args: argparse.Namespace) -> int:
    """Run one stream action; print its JSON result."""
    config = load_or_exit(args.config)
    partner = next((p for p in config.partners if p.name == args.partner), None)
    if partner is None:
        return _fail(f"no partner named {args.partner!r}", EXIT_CONFIG)
    if not partner.ssf_transmitter:
        return _fail(f'partner {args.partner!r} is not ssf = "transmitter"', EXIT_CONFIG)
    subject = None
    if args.action in ("add-subject", "remove-subject"):
        try:
            subject = json.loads(args.subject or "")
        except ValueError:
            subject = None
        if not isinstance(subject, dict):
            return _fail("--subject must be a JSON object", EXIT_CONFIG)
    try:
        result = anyio.run(_run, args, config, subject)
    except PeerError as exc:
        return _fail(str(exc), 1)
    print(json.dumps(result, default=_plain))
    return 0


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)
