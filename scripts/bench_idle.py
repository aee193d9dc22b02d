"""Bench rows of idle nodes: what a node costs when nothing but heartbeats flows.

- ``idle node``: the peak RSS of a node with one partner that only started and idled
  for a second (``scripts/bench.py node --role idle``);
- ``idle sessions``: one node (``setpeer run``, a process of its own) configured with
  N partners (each its own issuer, public JWKS file and bearer), and a second process,
  the opener, holding one push-pull WebSocket session per partner, idle, answering
  pings and pinging as our dialer does. Once the node's status shows all N sessions
  up, the node's RSS (``VmRSS``) and CPU (``utime + stime``) are read from ``/proc``
  over a window of whole heartbeat intervals (a window that cut an interval would
  count some sessions' pings and not others'), beside the same node before any
  session opened; the opener counts the WebSocket bytes of both directions (frames,
  without TLS records or TCP/IP headers). The window is one interval (20 s) with
  ``--quick``, two otherwise. Also: the node's start-up, the time to open the
  sessions (200 a second), one ``setpeer status --json`` and one ``/metrics`` scrape;
- ``idle sessions tls`` (full run only): the same, served over TLS (``wss://``).

``scripts/bench --only idle`` runs these rows alone; ``python scripts/bench_idle.py
[--quick] [--sessions N] [--tls]`` one sessions row, printed.
``SETPEER_BENCH_PROFILE=idle`` records the node with py-spy over the window.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peer.tokens.keys import generate_private_jwks, public_jwks  # noqa: E402

BENCH = Path(__file__).resolve().parent / "bench.py"
# The node's WebSocket ping interval (peer/server/serve.py) and our dialer's
# (peer/transports/dialer.py): both ends ping every 20 s.
HEARTBEAT_INTERVAL = 20.0
# Sessions opened per second: well under what a node accepts, so the row measures
# idle sessions, not a storm of handshakes.
OPEN_RATE = 200.0
# The node with no session, before the opener starts.
BASE_WINDOW = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


# -- the node's configuration ------------------------------------------------------


def partner_name(i: int) -> str:
    return f"p{i:05d}"


def write_config(
    folder: Path, partners: int, *, max_connections: int | None = None, tls: bool = False
) -> list[str]:
    """``node.toml`` in ``folder``: node ``n`` with ``partners`` partners that never
    dial (each opens its session to us); with ``tls``, served over TLS with a
    certificate for 127.0.0.1 from a throwaway CA (``ca.pem``). Returns each
    partner's bearer, in order."""
    private = generate_private_jwks("ES256")
    (folder / "n.jwks.json").write_text(json.dumps(private))
    (folder / "n.token").write_text(secrets.token_urlsafe(24))
    keys = folder / "keys"
    keys.mkdir()
    limits = "" if max_connections is None else f"max_connections = {max_connections}\n"
    parts = [
        f"""[peer]
issuer = "https://n.idle.example"
listen = "127.0.0.1:0"
store = "sqlite:///n.db"
signing_keys = "n.jwks.json"
allow_insecure_loopback = true
[peer.app]
listen = "unix:app.sock"
[peer.limits]
{limits}{_tls(folder) if tls else ""}"""
    ]
    bearers = []
    for i in range(partners):
        name = partner_name(i)
        bearer = secrets.token_urlsafe(24)
        bearers.append(bearer)
        # Each partner its own key: a node of many partners holds many keys.
        public = public_jwks(generate_private_jwks("ES256"))
        (keys / f"{name}.json").write_text(json.dumps(public))
        parts.append(
            f"""
[[partners]]
name = "{name}"
issuer = "https://{name}.idle.example"
audience = "https://{name}.idle.example"
jwks = "keys/{name}.json"
transport = "websocket"
initiate = false
[partners.auth]
bearer = "file:n.token"
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(bearer.encode()).hexdigest()}"
"""
        )
    (folder / "node.toml").write_text("".join(parts))
    return bearers


def _tls(folder: Path) -> str:
    """A CA (``ca.pem``) and the node's certificate from it: the ``[peer.tls]`` table."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(folder / "n.key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "n.cert.pem"))
    return '[peer.tls]\ncertfile = "n.cert.pem"\nkeyfile = "n.key.pem"\n'


# -- /proc ---------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """The process's resident set now (``VmRSS``), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """The process's CPU so far (user + system), seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


# -- the opener: N idle sessions, in their own process ---------------------------------


class Counted:
    """The opener's WebSocket bytes, both directions (every session together), and the
    sessions the node closed."""

    received = 0
    sent = 0
    closed = 0


@functools.cache
def _counting_connection() -> type[Any]:
    from websockets.asyncio.client import ClientConnection

    class CountingConnection(ClientConnection):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            write = transport.write

            def counted_write(data: bytes | bytearray | memoryview) -> None:
                Counted.sent += len(data)
                write(data)

            transport.write = counted_write
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            Counted.received += len(data)
            super().data_received(data)

    return CountingConnection


async def _session(
    url: str, bearer: str, opened: asyncio.Queue[str | None], ssl: Any = None
) -> None:
    """One idle session, as our dialer holds one: ``pushpull`` offered, pings every
    20 s, each Communication Object read (an idle node sends none; SETs would be
    acked). Puts None on ``opened`` once up, or the reason it failed."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    try:
        ws = await connect(
            url,
            subprotocols=["pushpull"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {bearer}"},
            compression=None,
            ping_interval=HEARTBEAT_INTERVAL,
            ping_timeout=20,
            open_timeout=30,
            create_connection=_counting_connection(),
            ssl=ssl,
        )
    except Exception as exc:  # reported and counted: the row fails on any
        await opened.put(f"{type(exc).__name__}: {exc}")
        return
    await opened.put(None)
    try:
        async for message in ws:
            frame = json.loads(message)
            if frame.get("sets"):
                await ws.send(json.dumps({"ack": list(frame["sets"])}))
    except ConnectionClosed:
        pass
    Counted.closed += 1


async def opener_main(url: str, bearers: list[str], rate: float, cafile: str | None) -> None:
    """Open a session per bearer at ``rate`` per second; print ``up N FAILED SECONDS``.
    Then on stdin: ``go`` zeroes the byte counts, ``stop`` prints them as JSON and
    ends every session."""
    import ssl

    context = None if cafile is None else ssl.create_default_context(cafile=cafile)
    opened: asyncio.Queue[str | None] = asyncio.Queue()
    tasks = []
    started = time.monotonic()
    for i, bearer in enumerate(bearers):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_session(url, bearer, opened, context)))
    failures: list[str] = []
    for _ in bearers:
        reason = await opened.get()
        if reason is not None:
            failures.append(reason)
    print(
        f"up {len(bearers) - len(failures)} {len(failures)} {time.monotonic() - started:.2f}",
        flush=True,
    )
    for reason in sorted(set(failures))[:5]:
        print(f"failure {reason}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    go = time.monotonic()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "go":
            Counted.received = Counted.sent = 0
            go = time.monotonic()
        elif line in ("stop", ""):
            break
    print(
        json.dumps(
            {
                "received": Counted.received,
                "sent": Counted.sent,
                "seconds": time.monotonic() - go,
                "closed_by_node": Counted.closed,
            }
        ),
        flush=True,
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- the rows ------------------------------------------------------------------------


def bench_idle(quick: bool) -> list[dict[str, Any]]:
    """The idle-node RSS row and the idle-sessions row (1,000 sessions); the full run
    also the same sessions over TLS (``idle sessions tls``)."""
    rows = [idle_rss(), idle_sessions(1000, quick=quick)]
    if not quick:
        rows.append(idle_sessions(1000, quick=quick, tls=True))
    for row in rows[1:]:
        print(
            f"{row['name']}: {row['sessions']} sessions, RSS {row['rss_mb_base']} ->"
            f" {row['rss_mb']} MB ({row['kb_per_session']} KB each), CPU"
            f" {row['cpu_ms_per_s']} ms/s, heartbeats {row['heartbeat_bytes_per_s']} B/s"
        )
    return rows


def idle_rss() -> dict[str, Any]:
    """Peak RSS of a node with one partner that only started and idled for a second."""
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        folder = Path(tmp)
        write_config(folder, 1)
        subprocess.run(
            [
                sys.executable,
                str(BENCH),
                "node",
                "--config",
                str(folder / "node.toml"),
                "--role",
                "idle",
                "--count",
                "0",
                "--out",
                str(folder / "idle.json"),
                "--timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return {
            "name": "idle node",
            "rss_mb": round(json.loads((folder / "idle.json").read_text())["rss_mb"], 1),
        }


def _readline(stream: IO[str], timeout: float, what: str) -> str:
    """The next line of a child's stdout, or RuntimeError after ``timeout``."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError(f"no {what} within {timeout:.0f} s")
    line = stream.readline()
    if not line:
        raise RuntimeError(f"{what}: the process ended")
    return line.strip()


def _status(folder: Path) -> tuple[dict[str, Any], float]:
    """``setpeer status --json`` of the node (through its local interface), and how
    long it took."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "peer", "status", "--json", "-c", str(folder / "node.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout), time.perf_counter() - started


def _profile(pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """With ``SETPEER_BENCH_PROFILE=idle``: py-spy records the node over the window
    (raw format, ``/tmp/setpeer-idle.prof``); the sampling costs the node no CPU of
    its own (py-spy reads its memory from outside)."""
    if os.environ.get("SETPEER_BENCH_PROFILE") != "idle":
        return None
    rate = os.environ.get("SETPEER_BENCH_PROFILE_RATE", "1000")
    out = "/tmp/setpeer-idle.prof"
    spy = ["py-spy", "record", "-r", rate, "-f", "raw", "-d", str(int(seconds)), "-o", out]
    return subprocess.Popen([*spy, "-p", str(pid)], stdout=subprocess.DEVNULL)


def _scrape(url: str, pid: int, cafile: str | None) -> dict[str, Any]:
    """One ``GET /metrics`` (the partner listener serves it on loopback): its size,
    and the node's CPU for it (best of three)."""
    import httpx

    best: dict[str, Any] = {}
    with httpx.Client(verify=cafile or True) as client:
        for _ in range(3):
            cpu = cpu_s(pid)
            body = client.get(url + "/metrics").raise_for_status().content
            ms = (cpu_s(pid) - cpu) * 1000
            if not best or ms < best["metrics_cpu_ms"]:
                best = {"metrics_bytes": len(body), "metrics_cpu_ms": round(ms)}
    return best


def _up(status: dict[str, Any]) -> int:
    return sum(1 for entry in status.values() if entry["session"] == "websocket")


def idle_sessions(sessions: int, *, quick: bool, tls: bool = False) -> dict[str, Any]:
    """The ``idle sessions`` row (``idle sessions tls`` with ``tls``): see the module
    docstring."""
    window = HEARTBEAT_INTERVAL * (1 if quick else 2)
    with tempfile.TemporaryDirectory(prefix="setpeer-idle-") as tmp:
        folder = Path(tmp)
        bearers = write_config(folder, sessions, max_connections=sessions + 64, tls=tls)
        (folder / "bearers.txt").write_text("\n".join(bearers))
        log = (folder / "node.log").open("w")
        began = time.perf_counter()
        node = subprocess.Popen(
            [sys.executable, "-m", "peer", "run", "-c", str(folder / "node.toml")],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )
        opener: subprocess.Popen[str] | None = None
        try:
            assert node.stdout is not None
            url = _readline(node.stdout, 120, "node start").rsplit(" ", 1)[-1]
            startup = time.perf_counter() - began
            time.sleep(1.0)
            base_cpu, base_t = cpu_s(node.pid), time.monotonic()
            time.sleep(BASE_WINDOW)
            base_rss = rss_mb(node.pid)
            base_cpu_per_s = (cpu_s(node.pid) - base_cpu) / (time.monotonic() - base_t)
            opener = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "open",
                    "--url",
                    url.replace("http", "ws", 1) + "/pushpull",
                    "--bearers",
                    str(folder / "bearers.txt"),
                    *(["--cafile", str(folder / "ca.pem")] if tls else []),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert opener.stdin is not None and opener.stdout is not None
            up_line = _readline(opener.stdout, 60 + sessions / OPEN_RATE * 3, "sessions up")
            _, opened, failed, open_s = up_line.split()
            if int(failed):
                raise RuntimeError(f"{failed} of {sessions} sessions failed to open")
            status, status_s = _status(folder)
            # The session state reaches the store (what status reads) behind the open.
            deadline = time.monotonic() + 10
            while _up(status) < sessions and time.monotonic() < deadline:
                time.sleep(0.5)
                status, status_s = _status(folder)
            if _up(status) < sessions:
                raise RuntimeError(f"the node shows {_up(status)} of {sessions} sessions up")
            time.sleep(1.0)
            opener.stdin.write("go\n")
            opener.stdin.flush()
            cpu0, t0 = cpu_s(node.pid), time.monotonic()
            spy = _profile(node.pid, window)
            time.sleep(window)
            if spy is not None:
                spy.wait(timeout=30)
            cpu1, t1 = cpu_s(node.pid), time.monotonic()
            rss = rss_mb(node.pid)
            after, _ = _status(folder)
            scrape = _scrape(url, node.pid, None if not tls else str(folder / "ca.pem"))
            opener.stdin.write("stop\n")
            opener.stdin.flush()
            counts = json.loads(_readline(opener.stdout, 30, "opener counts"))
            if counts["closed_by_node"] or _up(after) < sessions:
                raise RuntimeError(
                    f"sessions lost while idle: {counts['closed_by_node']} closed by the node,"
                    f" {_up(after)} of {sessions} up"
                )
        finally:
            for proc in (opener, node):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            log.close()
        cpu_per_s = (cpu1 - cpu0) / (t1 - t0)
        heartbeat_bytes = counts["received"] + counts["sent"]
        return {
            "name": "idle sessions tls" if tls else "idle sessions",
            "sessions": sessions,
            "rss_mb": round(rss, 1),
            "rss_mb_base": round(base_rss, 1),
            "kb_per_session": round((rss - base_rss) * 1024 / sessions, 1),
            "cpu_ms_per_s": round(cpu_per_s * 1000, 2),
            "cpu_ms_per_s_base": round(base_cpu_per_s * 1000, 2),
            "cpu_us_per_s_per_session": round(cpu_per_s * 1e6 / sessions, 2),
            "heartbeat_bytes_per_s": round(heartbeat_bytes / counts["seconds"]),
            "heartbeat_interval_s": HEARTBEAT_INTERVAL,
            "window_s": window,
            "startup_s": round(startup, 2),
            "open_s": float(open_s),
            "status_s": round(status_s, 2),
            **scrape,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    opener = sub.add_parser("open", help="(internal) hold the idle sessions")
    opener.add_argument("--url", required=True)
    opener.add_argument("--bearers", required=True)
    opener.add_argument("--rate", type=float, default=OPEN_RATE)
    opener.add_argument("--cafile", default=None, help="wss: trust this CA")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--tls", action="store_true", help="the node serves TLS (wss://)")
    args = parser.parse_args()
    if args.command == "open":
        bearers = Path(args.bearers).read_text().split()
        asyncio.run(opener_main(args.url, bearers, args.rate, args.cafile))
        return 0
    print(json.dumps(idle_sessions(args.sessions, quick=args.quick, tls=args.tls), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
