"""A webhook receiver for setpeer: prints each received SET and answers 204.

Run it beside the node, and point ``[peer.app] deliver`` at it::

    HOOK_TOKEN=... python examples/webhook_receiver.py --port 8080

    # peer.toml
    [peer.app]
    deliver = "http://127.0.0.1:8080/setpeer"
    deliver_auth = "env:HOOK_TOKEN"

Each POST carries one SET as JSON: ``{"seq", "partner", "jti", "claims", "token"}``,
already verified by the node. Answer 2xx only once the SET is handled for good: the
node then marks it done; any other answer (or none) makes it POST the same SET again
later. Delivery is at least once, so a SET may come twice (a lost answer, a node
restart): handle it idempotently, keyed on ``(partner, jti)``. Only the Python standard
library is used; see docs/webhook.md.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024  # a SET is at most [peer.limits] max_set_bytes (64 KiB) plus JSON
SEEN = 100_000  # (partner, jti) pairs remembered to recognise a SET sent again


class Handler(BaseHTTPRequestHandler):
    """``POST /setpeer``: one SET a request."""

    protocol_version = "HTTP/1.1"  # keep-alive: the node reuses its connections
    token = os.environ.get("HOOK_TOKEN")
    seen: OrderedDict[tuple[str, str], None] = OrderedDict()
    lock = threading.Lock()  # requests run in threads, one SET each

    def do_POST(self) -> None:
        if self.path != "/setpeer":
            return self.answer(404)
        expected = f"Bearer {self.token}" if self.token else None
        got = self.headers.get("authorization", "")
        if expected is not None and not hmac.compare_digest(got.encode(), expected.encode()):
            return self.answer(401)
        length = int(self.headers.get("content-length") or 0)
        if not 0 < length <= MAX_BODY:
            return self.answer(413)
        try:
            item = json.loads(self.rfile.read(length))
            key = (item["partner"], item["jti"])
        except (ValueError, KeyError, TypeError):
            return self.answer(400)
        with self.lock:
            if key not in self.seen:  # a repeat is answered 204 again, not handled twice
                self.handle_set(item)
                self.seen[key] = None
                if len(self.seen) > SEEN:
                    self.seen.popitem(last=False)
        return self.answer(204)

    def handle_set(self, item: dict[str, object]) -> None:
        """Your code goes here: act on the event (revoke the session, ...)."""
        line = {name: item[name] for name in ("seq", "partner", "jti", "claims")}
        print(json.dumps(line), flush=True)

    def answer(self, status: int) -> None:
        if status >= 400:
            self.close_connection = True  # the body may be left unread
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per SET is printed above; no access log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/setpeer", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
