"""An identity service beside a running ``setpeer run``: it talks to the node's local
interface (a Unix socket by default), in any process, restarted at will.

Publishes one CAEP session-revoked event to a partner, then prints every SET partners
send as a JSON line, marking each done once printed::

    python examples/client.py unix:/srv/setpeer/app.sock --to b --subject alice@example.com
    SETPEER_APP_TOKEN=... python examples/client.py http://127.0.0.1:8444 --to b

The code is examples/embedded.py's but for the line that makes ``node``: both
``Peer`` and ``Client`` satisfy ``peer.Facade``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import anyio

from peer import Client, Facade

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


async def serve(node: Facade, to: str, subject: str, count: int | None) -> None:
    """Tell ``to`` that ``subject``'s sessions are revoked, then print what arrives."""
    jti = await node.publish(
        to,
        {SESSION_REVOKED: {"event_timestamp": int(time.time())}},
        sub_id={"format": "email", "email": subject},
    )
    print(json.dumps({"published": jti, "to": to}), flush=True)
    handled = 0
    async for rx in node.receive():
        line = {"partner": rx.partner, "jti": rx.jti, "events": rx.events, "subject": rx.subject}
        print(json.dumps(line), flush=True)
        await rx.done()  # handled: the node does not hand it out again
        handled += 1
        if count is not None and handled >= count:
            break
    for failure in await node.failures():
        print(json.dumps({"failure": failure.jti, "err": failure.err}), file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="unix:/path/app.sock, or http://127.0.0.1:PORT")
    parser.add_argument("--to", required=True, help="the partner to tell")
    parser.add_argument("--subject", default="alice@example.com", help="whose sessions ended")
    parser.add_argument("--count", type=int, help="stop after this many received SETs")
    args = parser.parse_args()
    token = os.environ.get("SETPEER_APP_TOKEN")  # required on TCP, optional on the socket
    async with Client(args.url, token=token) as node:
        await serve(node, args.to, args.subject, args.count)


if __name__ == "__main__":
    anyio.run(main)
