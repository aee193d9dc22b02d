"""``setpeer init [DIR] [--port PORT]``: a working two-node setup to start from.

Writes, in DIR (created if needed; existing files are never replaced unless
``--force``): ``a.toml`` and ``b.toml``, commented, for two nodes on loopback (``a``
listens on PORT and dials ``b`` on PORT + 1 over WebSocket); each node's private JWK
Set (0600) and public half; the bearer token each presents to the other (0600, used as
``file:`` secrets) with its SHA-256 in the other's config; each node's local interface
on its own Unix socket. Then ``check-config``, ``run`` and ``send`` work as printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..tokens.keys import generate_private_jwks, public_jwks
from ._common import EXIT_CONFIG, command_parser
from .keygen import write_private, write_public
from .token import new_token

__all__ = ["add_parser", "main", "starter_config"]

DEFAULT_PORT = 8443
COMMENT_COLUMN = 42
EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

TEMPLATE = """\
# {me}.toml: one of two setpeer nodes written by `setpeer init` (every key, its
# default and its limits: docs/configuration.md). Check: setpeer check-config -c {me}.toml

[peer]
issuer = "https://{me}.example"          # the iss of every SET we sign
listen = "127.0.0.1:{port}"             # partners reach us here (/pushpull, /events, ...)
store = "sqlite:///{me}.db"             # relative to this file; created by `setpeer run`
signing_keys = "{me}.jwks.json"          # our private keys: setpeer keygen -o FILE --public PUB
allow_insecure_loopback = true          # plain http:// and ws:// to 127.0.0.1 only; use TLS beyond

[peer.app]
listen = "unix:{me}.sock"               # the local interface (setpeer status, receive)

[[partners]]
name = "{other}"                         # --to {other} in setpeer send
issuer = "https://{other}.example"       # the only iss {other} may use
audience = "https://{other}.example"     # the aud of SETs we send {other}
jwks = "{other}.public.json"             # {other}'s public keys: its SETs verify with these
{dial}
[partners.auth]
bearer = "file:{me}-to-{other}.token"    # the token we present to {other} (setpeer token -o FILE)

[partners.inbound]
# SHA-256 of the token {other} presents to us (setpeer token prints both)
bearer_sha256 = "{digest}"
"""

DIALS = """\
endpoint = "ws://127.0.0.1:{port}/pushpull"   # {other}'s listen
initiate = true                          # we dial {other}; it does not dial us
transport = "websocket"                  # falls back to HTTP when the upgrade is refused
"""

LISTENS = """\
initiate = false                         # {other} dials us
"""


def add_parser(subparsers: Any, name: str) -> None:
    """Register ``init`` on the ``setpeer`` argument parser."""
    parser = command_parser(
        subparsers,
        name,
        "write a commented two-node starter setup (configs, keys, tokens) into DIR",
        "setpeer init quickstart && cd quickstart && setpeer check-config -c a.toml",
    )
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"a listens on PORT, b on PORT + 1 (default {DEFAULT_PORT})",
    )
    parser.add_argument("--force", action="store_true", help="replace files that exist")
    parser.set_defaults(handler=main)


def _aligned(text: str) -> str:
    """Every ``key = value  # comment`` line with its comment at one column."""
    lines = []
    for line in text.splitlines():
        setting, sep, comment = line.partition("  # ")
        if sep and not line.startswith("#"):
            line = f"{setting.rstrip().ljust(COMMENT_COLUMN - 1)} # {comment.strip()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def starter_config(me: str, other: str, *, port: int, other_port: int | None, digest: str) -> str:
    """The commented TOML of node ``me``; ``other_port`` set: we dial ``other`` there."""
    if other_port is None:
        dial = LISTENS.format(other=other)
    else:
        dial = DIALS.format(other=other, port=other_port)
    return _aligned(TEMPLATE.format(me=me, other=other, port=port, dial=dial, digest=digest))


def _files(port: int) -> dict[str, tuple[str, bool]]:
    """File name -> (text, private) for the two nodes."""
    files: dict[str, tuple[str, bool]] = {}
    digests = {}
    for me, other in (("a", "b"), ("b", "a")):
        token, digests[me] = new_token()
        files[f"{me}-to-{other}.token"] = (token, True)
        private = generate_private_jwks("ES256")
        files[f"{me}.jwks.json"] = (json.dumps(private, indent=2) + "\n", True)
        files[f"{me}.public.json"] = (json.dumps(public_jwks(private), indent=2) + "\n", False)
    # b's config holds the digest of the token a presents, and the other way round.
    files["a.toml"] = (
        starter_config("a", "b", port=port, other_port=port + 1, digest=digests["b"]),
        False,
    )
    files["b.toml"] = (
        starter_config("b", "a", port=port + 1, other_port=None, digest=digests["a"]),
        False,
    )
    return files


def next_steps(folder: Path, port: int) -> str:
    """What to run next, for the operator reading ``init``'s output."""
    return f"""\
wrote a.toml and b.toml with their keys and tokens in {folder}
next:
  cd {folder}
  setpeer check-config -c a.toml && setpeer check-config -c b.toml
  setpeer run -c b.toml &    # b listens on 127.0.0.1:{port + 1}
  setpeer run -c a.toml &    # a listens on 127.0.0.1:{port} and dials b
  setpeer send -c a.toml --to b --event {EVENT} \\
      --sub-id '{{"format": "email", "email": "jane@example.com"}}'
  setpeer status -c a.toml   # b: session websocket, acked 1"""


def main(args: argparse.Namespace) -> int:
    """Write the setup; exit 2 on a bad port or files that exist, 1 if writing fails."""
    if not 1 <= args.port <= 65534:
        print(f"setpeer init: --port must be 1-65534, not {args.port}", file=sys.stderr)
        return EXIT_CONFIG
    folder: Path = args.dir
    files = _files(args.port)
    existing = sorted(name for name in files if (folder / name).exists())
    if existing and not args.force:
        print(
            f"setpeer init: {folder} holds {', '.join(existing)} already (--force replaces them)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, (text, private) in files.items():
            write = write_private if private else write_public
            write(folder / name, text, force=True)
    except OSError as exc:
        print(f"setpeer init: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    print(next_steps(folder, args.port))
    return 0
