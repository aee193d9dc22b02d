"""An identity service that embeds the node: it serves the partner port itself.

Publishes one CAEP session-revoked event to a partner, then prints every SET partners
send as a JSON line, marking each done once printed::

    python examples/embedded.py -c peer.toml --to b --subject alice@example.com

Pick this way in when the identity service is written in Python and one process may
own the partner port. Beside a running ``setpeer run`` use ``Client`` instead
(examples/client.py): the code below is the same but for the line that makes ``node``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import anyio

from peer import Facade, Peer, load_config

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
        await rx.done()  # handled: a restart does not hand it out again
        handled += 1
        if count is not None and handled >= count:
            break
    for failure in await node.failures():
        print(json.dumps({"failure": failure.jti, "err": failure.err}), file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", required=True, help="the node's peer.toml")
    parser.add_argument("--to", required=True, help="the partner to tell")
    parser.add_argument("--subject", default="alice@example.com", help="whose sessions ended")
    parser.add_argument("--count", type=int, help="stop after this many received SETs")
    args = parser.parse_args()
    async with Peer(load_config(args.config)) as node:
        await serve(node, args.to, args.subject, args.count)
        await node.flush(timeout=30)  # our SET reached the partner before we stop


if __name__ == "__main__":
    anyio.run(main)
