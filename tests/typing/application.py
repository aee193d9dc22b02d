"""An application using the facade as its docs show; checked with ``mypy --strict``.

Not run: ``tests/typing/test_facade_types.py`` type-checks it, so a facade whose
types an application cannot use under ``mypy --strict`` fails the suite.
"""

from __future__ import annotations

from pathlib import Path

from peer import (
    Backpressure,
    Client,
    DuplicateJti,
    Facade,
    Failure,
    NodeUnavailable,
    NotAuthorized,
    PartnerStats,
    Peer,
    PeerError,
    SETTooLarge,
    StoreError,
    UnknownPartner,
    load_config,
)

EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


async def main(config_path: Path) -> None:
    config = load_config(config_path)
    async with Peer(config) as node:
        try:
            jti: str = await node.publish(
                "b",
                {EVENT: {"event_timestamp": 1}},
                sub_id={"format": "opaque", "id": "u1"},
                jti="my-id-1",
            )
        except DuplicateJti as exc:
            print("stored already:", exc)
        except (Backpressure, SETTooLarge, UnknownPartner, StoreError) as exc:
            print("not stored:", exc)
        else:
            print("published", jti)
        stats: dict[str, PartnerStats] = node.stats()
        for name, entry in stats.items():
            pending: int = entry["pending"] + entry["inflight"]
            session: str = entry["session"]
            if session == "down" and pending > 100:
                print(name, "is down with", pending, "SETs waiting")
        failures: list[Failure] = node.failures()
        for failure in failures:
            print(failure.partner, failure.jti, failure.err, failure.description)
        try:
            await node.flush(timeout=5)
        except PeerError as exc:
            print(exc)
        async for received in node.receive():
            events = received.claims.get("events", {})
            print(received.partner, received.jti, sorted(events))
            await received.done()
            break


async def either(node: Facade) -> None:
    """Code written once for both facades: ``await`` works on failures() and stats()."""
    failures = await node.failures()
    stats = await node.stats()
    print(len(failures), sorted(stats))
    async for received in node.receive():
        print(received.events, received.subject)
        await received.done()
        break


async def beside(config_path: Path) -> None:
    """The same application beside a running node, through its local interface."""
    _: Facade = Peer(load_config(config_path))
    async with Client("unix:app.sock") as node:
        facade: Facade = node
        await either(facade)
        try:
            await node.publish("b", {EVENT: {}})
        except (NotAuthorized, NodeUnavailable) as exc:
            print("the node said no:", exc)
