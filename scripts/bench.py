"""setpeer benchmarks, each beside the floor measured in the same run.

Rows:
- tokens: SETs signed/s and verified/s through ``peer.tokens``, beside raw
  ``cryptography`` on the same bytes (base64url + orjson, no JOSE library);
- transports: two nodes in separate processes on loopback, publish -> sign ->
  store -> send -> verify -> store -> ack, push-pull over WebSocket and HTTP,
  batches of 1 and 100 SETs: SETs/s (publish to ack, at the sender), the
  receiving application's own rate (``app_sets_per_s``: pages of ``received()``, each
  marked ``done()`` in one commit), p50/p99 publish-to-receive latency, CPU
  seconds per 1,000 SETs and peak RSS per node, beside the single-core
  sign+verify floor of the same algorithm;
- the compatibility adapters the same way: multi-push and RFC 8936 poll with
  100-SET batches, RFC 8935 push (one SET per POST);
- a latency row at a fixed 500 SETs/s;
- idle (``scripts/bench_idle.py``): the RSS of an idle node, and one node holding
  1,000 idle push-pull sessions of 1,000 partners (RSS, CPU, heartbeat bytes);
- the local side (``scripts/bench_local.py``; full run or ``--only local``): publish
  and receive through the local interface beside the embedded facade, and by webhook;
- every transport over a 50 ms round trip (``scripts/bench_wan.py``; full run or
  ``--only wan``, ``--wan-delay-ms`` one way): SETs/s beside what its window predicts.

Writes ``bench-results.json`` (``{"quick", "seconds", "python", "cpus", "rows": [...]}``).
``--quick`` keeps the whole run under a minute; ``--only NAME`` runs one entry of
``BENCHES`` (tokens, transports, stores, idle, local, wan). The store rows (the sending node on
SQLite, on PostgreSQL, and two nodes sharing one PostgreSQL database) run in the full
run or with ``--only stores``, three interleaved rounds each reporting its median run;
``scripts/bench`` starts a throwaway PostgreSQL for them. Sender nodes start first and
publish together once all are up (their start-up is not in the measured window);
``cpu_s_per_1000_sender_run`` is the senders' CPU from the first publish to the last ack.
Rates are per CPU second, best of interleaved slices, so that ours and the floor see
the same machine noise.

``--plot [FOLDER]`` then draws PNG charts of the results into FOLDER (default
docs/img; ``scripts/bench_plot.py``, matplotlib from the ``bench`` extra);
``--plot-only RESULTS.json`` (or ``--from``) redraws them from a results file without
running anything.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peer.tokens.keys import KeyStore, generate_private_jwks, public_jwks, signing_key  # noqa: E402
from peer.tokens.sign import Signer, build_claims  # noqa: E402
from peer.tokens.verify import Verifier  # noqa: E402
from scripts.bench_idle import bench_idle  # noqa: E402
from scripts.bench_local import bench_local  # noqa: E402
from scripts.bench_plot import plot, require  # noqa: E402
from scripts.bench_wan import bench_wan  # noqa: E402

BENCH_EVENT = "https://bench.setpeer.example/event"
ISS, AUD = "https://a.bench.example", "https://b.bench.example"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Operations per CPU second of ``fn`` over one slice of ``seconds`` of CPU time.

    CPU time, not wall time: on this shared 2-core machine other processes take the
    core away for milliseconds at a time, which wall time would count against us.
    """
    count, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.process_time()
        if now >= deadline:
            return count / (now - start)


def best_interleaved(
    fns: dict[str, Callable[[], object]], seconds: float, rounds: int = 5
) -> dict[str, float]:
    """Best rate of each function, slices interleaved so machine noise hits all alike."""
    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = max(best[name], rate(fn, seconds / rounds))
    return best


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def claims() -> dict[str, Any]:
    # A typical SET (~440 bytes of claims): CAEP session-revoked with sub_id.
    return build_claims(
        iss=ISS,
        aud=AUD,
        iat=int(time.time()),
        txn=secrets.token_hex(8),
        events={
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
                "initiating_entity": "policy",
                "reason_admin": {"en": "Landspeed policy violation"},
                "event_timestamp": int(time.time()),
            }
        },
        sub_id={
            "format": "complex",
            "user": {"format": "email", "email": "jane@example.com"},
            "session": {"format": "opaque", "id": secrets.token_hex(12)},
        },
    )


def operations(alg: str) -> dict[str, Callable[[], object]]:
    """Sign and verify, ours (peer.tokens) and the floor (raw cryptography), same bytes."""
    jwks = generate_private_jwks(alg)
    key = signing_key(jwks)
    private, public = key.private_key, key.private_key.public_key()
    header = b64(orjson.dumps({"alg": alg, "typ": "secevent+jwt", "kid": key.kid}))
    body = claims()
    payload = orjson.dumps(body)
    data = header + b"." + b64(payload)
    if alg == "ES256":

        def floor_sign() -> bytes:
            signing_input = header + b"." + b64(orjson.dumps(body))
            r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return signing_input + b"." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

        der = private.sign(data, ec.ECDSA(hashes.SHA256()))

        def floor_verify() -> None:
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
            orjson.loads(base64.urlsafe_b64decode(b64(payload) + b"=="))
    else:

        def floor_sign() -> bytes:
            signing_input = header + b"." + b64(orjson.dumps(body))
            return signing_input + b"." + b64(private.sign(signing_input))

        raw = private.sign(data)

        def floor_verify() -> None:
            public.verify(raw, data)
            orjson.loads(base64.urlsafe_b64decode(b64(payload) + b"=="))

    signer = Signer(jwks)
    verifier = Verifier(issuer=ISS, audience=AUD, keys=KeyStore(public_jwks(jwks)))
    token = signer.sign(body)
    now = time.time()
    return {
        "floor_sign": floor_sign,
        "floor_verify": floor_verify,
        "sign": lambda: signer.sign(body),
        "verify": lambda: verifier.verify(token, now=now),
    }


def bench_tokens(quick: bool) -> list[dict[str, Any]]:
    """SETs signed/s and verified/s through peer.tokens beside the raw floor, per alg."""
    rows = []
    for alg in ("ES256", "EdDSA"):
        best = best_interleaved(operations(alg), 1.2 if quick else 8.0)
        for op in ("sign", "verify"):
            ours, floor = best[op], best[f"floor_{op}"]
            rows.append(
                {
                    "name": f"tokens {op}",
                    "alg": alg,
                    "ops_per_s": round(ours),
                    "floor_ops_per_s": round(floor),
                    "ratio": round(ours / floor, 3),
                }
            )
    return rows


def sign_verify_floor(alg: str, seconds: float) -> float:
    """Single-core SETs/s if each SET is signed once and verified once (raw crypto)."""
    ops = operations(alg)
    best = best_interleaved({"s": ops["floor_sign"], "v": ops["floor_verify"]}, seconds)
    return 1 / (1 / best["s"] + 1 / best["v"])


# -- transports: two processes -------------------------------------------------------------


# Modes: push-pull sessions ("websocket", "http"), or a compatibility adapter ("push",
# "multipush": a posts to b; "poll": b polls a). The sender is always a.
ADAPTER_PATHS = {"push": "/events", "multipush": "/multipush"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_configs(
    folder: Path,
    alg: str,
    mode: str,
    batch: int,
    a_port: int,
    via: Callable[[str], str] | None = None,
) -> tuple[Path, str]:
    """Configs of b (written) and a (a template: ``{endpoint}`` filled in by run_pair).
    ``via`` rewrites the URL the dialling side uses (the WAN rows: through a proxy)."""
    tokens = {"a": secrets.token_urlsafe(24), "b": secrets.token_urlsafe(24)}
    for name in ("a", "b"):
        private = generate_private_jwks(alg)
        (folder / f"{name}.jwks.json").write_text(json.dumps(private))
        (folder / f"{name}.public.json").write_text(json.dumps(public_jwks(private)))
    import hashlib

    transport = mode if mode in ("websocket", "http") else "websocket"

    def config(me: str, other: str, listen: str, dial: str) -> str:
        return f"""
[peer]
issuer = "https://{me}.bench.example"
listen = "{listen}"
store = "sqlite:///{me}.db"
signing_keys = "{me}.jwks.json"
allow_insecure_loopback = true
[peer.app]
listen = "unix:{me}.sock"
[[partners]]
name = "{other}"
issuer = "https://{other}.bench.example"
audience = "https://{other}.bench.example"
jwks = "{other}.public.json"
transport = "{transport}"
{dial}
[partners.limits]
max_sets_per_frame = {batch}
[partners.auth]
bearer = "file:{me}.token"
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(tokens[other].encode()).hexdigest()}"
"""

    for name in ("a", "b"):
        (folder / f"{name}.token").write_text(tokens[name])
    a_listen = f"127.0.0.1:{a_port}"
    if mode in ADAPTER_PATHS:
        b_dial = f'initiate = false\nreceive_via = "{mode}"'
        a_dial = f'initiate = false\nsend_via = "{mode}"\n{mode}_endpoint = "{{endpoint}}"'
    elif mode == "poll":
        poll = via(f"http://{a_listen}/poll") if via else f"http://{a_listen}/poll"
        b_dial = f'initiate = false\nreceive_via = "poll"\npoll_endpoint = "{poll}"'
        a_dial = 'initiate = false\nsend_via = "poll"'
    else:
        b_dial = "initiate = false"
        a_dial = 'initiate = true\nendpoint = "{endpoint}"'
    (folder / "b.toml").write_text(config("b", "a", "127.0.0.1:0", b_dial))
    return folder / "b.toml", config("a", "b", a_listen, a_dial)


def run_pair(
    alg: str,
    mode: str,
    batch: int,
    count: int,
    send_rate: float,
    timeout: float,
    *,
    sender_store: str | None = None,
    senders: int = 1,
    stages: bool = False,
    via: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """One receiver and ``senders`` sender processes (sharing ``sender_store`` when
    several: nodes on one PostgreSQL database), each publishing its share. ``via``
    rewrites the URL the dialling side uses (see write_configs)."""
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        folder = Path(tmp)
        b_config, a_template = write_configs(folder, alg, mode, batch, _free_port(), via)
        if sender_store is not None:
            a_template = a_template.replace('store = "sqlite:///a.db"', f'store = "{sender_store}"')
        node = [sys.executable, str(Path(__file__)), "node"]
        # SETPEER_BENCH_PROFILE=receive|send records that node with py-spy (raw format).
        profile = os.environ.get("SETPEER_BENCH_PROFILE", "")
        out = f"/tmp/setpeer-{profile}.prof"
        rate = os.environ.get("SETPEER_BENCH_PROFILE_RATE", "1000")  # samples per second
        # SETPEER_BENCH_PROFILE_GIL=1: only samples of the thread holding the GIL (where the
        # Python overhead goes; the crypto releases it).
        gil = ["--gil"] if os.environ.get("SETPEER_BENCH_PROFILE_GIL") else []
        spy = ["py-spy", "record", "-r", rate, "-f", "raw", "--threads", *gil, "-o", out, "--"]
        receiver = subprocess.Popen(
            [
                *(spy if profile == "receive" else []),
                *node,
                "--config",
                str(b_config),
                "--role",
                "receive",
                "--count",
                str(count),
                "--out",
                str(folder / "b.json"),
                "--timeout",
                str(timeout),
                *(["--stages"] if stages else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.stdout is not None
            url = ""
            while not url.startswith("http"):
                url = receiver.stdout.readline().strip()
            if mode in ADAPTER_PATHS:
                endpoint = url + ADAPTER_PATHS[mode]
            else:
                scheme = "ws" if mode == "websocket" else "http"
                endpoint = url.replace("http", scheme, 1) + "/pushpull"
            if via is not None and mode != "poll":
                endpoint = via(endpoint)
            a_text = a_template.replace("{endpoint}", endpoint)
            shares = [count // senders + (i < count % senders) for i in range(senders)]
            processes = []
            for i, share in enumerate(shares):
                config = folder / f"a{i}.toml"
                if i:  # another node of the same identity and store, on its own port
                    listen = f'listen = "127.0.0.1:{_free_port()}"'
                    text = re.sub(r'listen = "127.0.0.1:\d+"', listen, a_text)
                    config.write_text(text.replace('"unix:a.sock"', f'"unix:a{i}.sock"'))
                else:
                    config.write_text(a_text)
                processes.append(
                    subprocess.Popen(
                        [
                            *(spy if profile == "send" and not i else []),
                            *node,
                            "--config",
                            str(config),
                            "--role",
                            "send" if senders == 1 else "send-shared",
                            "--count",
                            str(share),
                            "--rate",
                            str(send_rate / senders),
                            "--publishers",
                            str(128 // senders),
                            "--out",
                            str(folder / f"a{i}.json"),
                            "--timeout",
                            str(timeout),
                            *(["--stages"] if stages else []),
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            # The clock starts when every sender is up (a barrier): one node's start-up
            # (imports, schemas, keys) must not run inside the other's measured window.
            for process in processes:
                assert process.stdout is not None
                while process.stdout.readline().strip() != "ready":
                    if process.poll() is not None:
                        raise RuntimeError(f"a sender failed: exit {process.returncode}")
            for process in processes:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.close()
            for process in processes:
                if process.wait(timeout=timeout + 30):
                    raise RuntimeError(f"a sender failed: exit {process.returncode}")
            receiver.wait(timeout=timeout + 30)
        finally:
            if receiver.poll() is None:
                receiver.kill()
        parts = [json.loads((folder / f"a{i}.json").read_text()) for i in range(senders)]
        b = json.loads((folder / "b.json").read_text())
        breakdown = stage_breakdown(folder, parts[0]["returned"], b["seen"]) if stages else {}
    a = {
        "first_publish": min(p["first_publish"] for p in parts),
        "all_acked": max(p["all_acked"] for p in parts),
        # Several nodes: each counts the acks of what it sent; count what arrived.
        "acked": sum(p["acked"] for p in parts) if senders == 1 else b["received"],
        "cpu": sum(p["cpu"] for p in parts),
        "cpu_run": sum(p["cpu_run"] for p in parts),
        "rss_mb": max(p["rss_mb"] for p in parts),
        "published": [p["published"] for p in parts],
        # Several nodes: the SETs each one delivered (acks it received).
        "carried": [p["acked"] for p in parts],
    }
    latencies = sorted(b["latencies"])

    def percentile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[max(0, int(len(latencies) * q) - 1)] * 1000, 2)

    # The transport's rate: publish -> sign -> store -> send -> verify -> store -> ack,
    # until the sender holds every ack. The application's rate adds the receiving
    # application's own loop (a page of received(), then one durable done() for it).
    acked_in = a["all_acked"] - a["first_publish"]
    received_in = b["last_receive"] - a["first_publish"]
    return {
        "received": b["received"],
        "acked": a["acked"],
        "sets_per_s": round(a["acked"] / acked_in) if acked_in > 0 else 0,
        "app_sets_per_s": round(b["received"] / received_in) if received_in > 0 else 0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "cpu_s_per_1000_sender": round(a["cpu"] / count * 1000, 3),
        # From the first publish to the last ack: what a running node pays per SET.
        "cpu_s_per_1000_sender_run": round(a["cpu_run"] / count * 1000, 3),
        "cpu_s_per_1000_receiver": round(b["cpu"] / count * 1000, 3),
        "cpu_s_per_1000_receiver_run": round(b["cpu_run"] / count * 1000, 3),
        "rss_mb_sender": round(a["rss_mb"], 1),
        "rss_mb_receiver": round(b["rss_mb"], 1),
        "published_per_sender": a["published"],
        "acked_per_sender": a["carried"],
        **({"stages": breakdown} if breakdown else {}),
    }


# Where a SET's publish -> receive time goes, from times both nodes already keep: the
# publishing task's clock (the "t" claim), the sender's outbox row (created_at: signed,
# handed to the store), publish() returning (committed), the receiver's inbox row
# (received_at: verified, handed to the store) and the receiving application.
STAGES = {
    "sign": "claims built and signed (publish() until the outbox write is queued)",
    "commit": "the outbox write queued until durable (group commit, fsync)",
    "send": "durable until verified at the receiver (feed, frame, loopback, parse, verify)",
    "deliver": "verified until the application has it (inbox commit, wake-up, read)",
}


def stage_breakdown(
    folder: Path, returned: dict[str, float], seen: dict[str, float]
) -> dict[str, Any]:
    """Per stage of :data:`STAGES`: p50/p99/max in ms, and its mean share among the
    slowest 1 % of SETs (what the p99 is made of)."""
    import sqlite3

    def rows(db: str, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(folder / db) as conn:
            return conn.execute(sql).fetchall()

    created = dict(rows("a.db", "SELECT jti, created_at FROM outbox"))
    inbox = rows("b.db", "SELECT jti, received_at, claims FROM inbox")
    per_set = []
    for jti, received_at, claims in inbox:
        if jti in created and jti in returned and jti in seen:
            t = json.loads(claims)["events"][BENCH_EVENT]["t"]
            marks = (t, created[jti], returned[jti], received_at, seen[jti])
            per_set.append([b - a for a, b in zip(marks, marks[1:], strict=False)])
    if not per_set:
        return {}
    totals = sorted(range(len(per_set)), key=lambda k: sum(per_set[k]))
    tail = totals[-max(1, len(totals) // 100) :]
    result: dict[str, Any] = {"sets": len(per_set)}
    for n, stage in enumerate(STAGES):
        values = sorted(times[n] for times in per_set)
        result[stage] = {
            "p50_ms": round(values[len(values) // 2] * 1000, 3),
            "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 3),
            "max_ms": round(values[-1] * 1000, 3),
            "mean_in_slowest_1pct_ms": round(
                sum(per_set[k][n] for k in tail) / len(tail) * 1000, 3
            ),
        }
    return result


def bench_transports(quick: bool) -> list[dict[str, Any]]:
    rows = []
    floors: dict[str, float] = {}
    if quick:
        plan = [
            ("ES256", "websocket", 100, 3000),
            ("ES256", "websocket", 1, 1500),
            ("ES256", "http", 100, 2000),
            ("EdDSA", "websocket", 100, 2000),
            # The compatibility adapters beside push-pull. RFC 8935 push is
            # one SET per POST: the baseline users compare us against.
            ("ES256", "multipush", 100, 3000),
            ("ES256", "poll", 100, 3000),
            ("ES256", "push", 1, 400),
        ]
    else:
        plan = [
            (alg, transport, batch, 10000 if batch == 100 else 4000)
            for alg in ("ES256", "EdDSA")
            for transport in ("websocket", "http")
            for batch in (100, 1)
        ]
        plan += [
            ("ES256", "multipush", 100, 10000),
            ("ES256", "poll", 100, 10000),
            ("ES256", "push", 1, 2000),
        ]
    for alg, mode, batch, count in plan:
        if alg not in floors:
            floors[alg] = sign_verify_floor(alg, 1.0 if quick else 3.0)
        result = run_pair(alg, mode, batch, count, 0, timeout=60)
        # Both nodes' CPU per SET (first publish to last ack, first SET received to
        # the last) against the crypto alone: one sign and one verify per SET.
        both = result["cpu_s_per_1000_sender_run"] + result["cpu_s_per_1000_receiver_run"]
        result["cpu_vs_crypto"] = round(both / 1000 * floors[alg], 2)
        if mode in ("websocket", "http"):
            name = f"pushpull {mode} batch {batch}"
        else:
            name = "push (1 SET per POST)" if mode == "push" else f"{mode} batch {batch}"
        rows.append(
            {
                "name": name,
                "alg": alg,
                "count": count,
                **result,
                "floor_sets_per_s": round(floors[alg]),
                "ratio": round(result["sets_per_s"] / floors[alg], 3),
            }
        )
    # Latency at fixed offered rates, both ends durable, with the per-stage breakdown.
    for offered, count in ((500, 2500 if quick else 10000), (2000, 6000 if quick else 20000)):
        result = run_pair("ES256", "websocket", 100, count, offered, timeout=60, stages=True)
        rows.append(
            {
                "name": f"pushpull websocket @{offered}/s latency",
                "alg": "ES256",
                "rate": offered,
                "count": count,
                **result,
                "floor_sets_per_s": round(floors["ES256"]),
                "ratio": round(result["sets_per_s"] / floors["ES256"], 3),
            }
        )
    return rows


# -- one node, in its own process ----------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``). Not ``ru_maxrss``: on Linux a child
    starts with its parent's peak there, so every node would report at least the
    bench's own memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_gc() -> dict[str, float]:
    """Seconds spent in the garbage collector per generation, and collections, from now."""
    import gc

    spent: dict[str, float] = {"0": 0.0, "1": 0.0, "2": 0.0, "collections": 0}
    started: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            spent[str(info["generation"])] += time.perf_counter() - started.pop()
            spent["collections"] += 1

    gc.callbacks.append(callback)
    return spent


async def node_main(args: argparse.Namespace) -> None:
    import anyio

    from peer import Peer, load_config

    config = load_config(args.config)
    partner = config.partners[0].name
    result: dict[str, Any] = {}
    gc_time = _time_gc()
    async with Peer(config) as node:
        print(node.url, flush=True)
        if args.role == "idle":
            await anyio.sleep(args.timeout)
        elif args.role == "receive":
            latencies: list[float] = []
            seen: dict[str, float] = {}  # jti -> when the application had it (--stages)
            last = 0.0
            cpu_first = cpu_last = 0.0
            after = 0
            with anyio.move_on_after(args.timeout):
                # The application takes what has arrived a page at a time and marks
                # the page done in one commit (``done(seqs)``).
                while len(latencies) < args.count:
                    page = await node.received(after=after, limit=1000, wait=args.timeout)
                    now = time.time()
                    if not latencies:
                        cpu_first = time.process_time()
                    latencies += [now - rx.claims["events"][BENCH_EVENT]["t"] for rx in page]
                    if args.stages:
                        seen.update((rx.jti, now) for rx in page)
                    last = now
                    await node.done([rx.seq for rx in page])
                    after = page[-1].seq
                cpu_last = time.process_time()
            await anyio.sleep(1.0)  # let the last acks go out (and every sender flush)
            result = {
                "received": len(latencies),
                "latencies": latencies,
                "last_receive": last,
                # From the first SET received to the last: what a running node pays.
                "cpu_run": (cpu_last or time.process_time()) - cpu_first,
                "seen": seen,
            }
        else:
            # A session to wait for: push-pull, or the partner polling us. Push and
            # multi-push have none until the first request. With several nodes on one
            # store ("send-shared") each has its own and sends the rows it leased.
            if config.partners[0].send_via in ("pushpull", "poll"):
                with anyio.fail_after(10):
                    while node.stats()[partner]["session"] == "down":  # noqa: ASYNC110
                        await anyio.sleep(0.01)
            acked_before = node.stats()[partner]["acked"]  # by another node, before us
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)  # run_pair's "go"
            first = time.time()
            cpu_first = time.process_time()
            interval = 1 / args.rate if args.rate else 0.0
            # Publishers: a fixed set of tasks taking the next index, as an application
            # with many request handlers would; the paced row starts each on schedule.
            next_index = iter(range(args.count))

            returned: dict[str, float] = {}  # jti -> when publish() returned (--stages)

            async def publisher() -> None:
                for i in next_index:
                    if interval:
                        delay = first + i * interval - time.time()
                        if delay > 0:
                            await anyio.sleep(delay)
                    jti = await node.publish(partner, {BENCH_EVENT: {"t": time.time(), "i": i}})
                    if args.stages:
                        returned[jti] = time.time()

            async with anyio.create_task_group() as tg:
                for _ in range(args.publishers if not interval else 8):
                    tg.start_soon(publisher)
            await node.flush(timeout=args.timeout)
            result = {
                "first_publish": first,
                "all_acked": time.time(),
                "acked": int(node.stats()[partner]["acked"]) - int(acked_before),
                "published": args.count,
                "cpu_run": time.process_time() - cpu_first,  # without start-up
                "returned": returned,
            }
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["gc"] = gc_time
    result["cpu"] = usage.ru_utime + usage.ru_stime
    result["rss_mb"] = peak_rss_mb()
    Path(args.out).write_text(json.dumps(result))


# -- stores: the same push-pull row on SQLite and on PostgreSQL ---------------------------


def _postgres_schema(base: str) -> str:
    """A fresh schema on the bench's PostgreSQL server, as a store URL."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{base}{'&' if '?' in base else '?'}options={option}"


def bench_stores(quick: bool) -> list[dict[str, Any]]:
    """Push-pull over WebSocket with the sending node on SQLite, on PostgreSQL, and as
    two nodes sharing one PostgreSQL database (each publishing half, each delivering
    the rows it leased over its own session). ``scripts/bench`` starts a throwaway
    PostgreSQL."""
    base = os.environ.get("SETPEER_TEST_POSTGRES_URL")
    if not base:
        print("stores: no PostgreSQL (SETPEER_TEST_POSTGRES_URL unset): rows skipped")
        return []
    count = 3000 if quick else 10000
    # The three rows run in turn, three rounds, and each reports its median run: on
    # this machine two runs of one row differ by up to 30 % (other tenants, CPU
    # frequency), more than the differences between the rows.
    rounds = 1 if quick else 3
    setups: dict[str, dict[str, Any]] = {
        "store sqlite, one node": {},
        "store postgresql, one node": {"sender_store": base},
        "store postgresql, two nodes": {"sender_store": base, "senders": 2},
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, options in setups.items():
            if "sender_store" in options:  # a fresh schema per run
                options = {**options, "sender_store": _postgres_schema(base)}
            runs[name].append(run_pair("ES256", "websocket", 100, count, 0, 60, **options))
    medians = {
        name: sorted(results, key=lambda r: r["sets_per_s"])[len(results) // 2]
        for name, results in runs.items()
    }
    sqlite = medians["store sqlite, one node"]["sets_per_s"]
    one_pg = medians["store postgresql, one node"]["sets_per_s"]
    return [
        {
            "name": name,
            "alg": "ES256",
            "count": count,
            **result,
            "sets_per_s_runs": [r["sets_per_s"] for r in runs[name]],
            # Here the ratio is to the SQLite row (target: PostgreSQL >= 0.70 of it),
            # and the two-node row's to the one-node PostgreSQL row (>= 1).
            "ratio": round(result["sets_per_s"] / sqlite, 3) if sqlite else None,
            **(
                {"ratio_to_one_node": round(result["sets_per_s"] / one_pg, 3) if one_pg else None}
                if name.endswith("two nodes")
                else {}
            ),
        }
        for name, result in medians.items()
    ]


# The benchmarks, in run order: name -> function(quick) -> rows. A new row family
# (another transport, a store) is one function and one entry here.
BENCHES: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "tokens": bench_tokens,
    "transports": bench_transports,
    "stores": bench_stores,
    "idle": bench_idle,
    "local": bench_local,
    "wan": bench_wan,
}


# The performance goals, each read from the rows of one run: (what, row name, field,
# goal as text, test of the value).
GOALS: list[tuple[str, str, str, str, Callable[[float], bool]]] = [
    (
        "WebSocket push-pull, 100-SET frames, of the floor",
        "pushpull websocket batch 100",
        "ratio",
        ">= 1.0",
        lambda v: v >= 1.0,
    ),
    (
        "CPU per SET, both nodes, vs sign + verify",
        "pushpull websocket batch 100",
        "cpu_vs_crypto",
        "<= 2x",
        lambda v: v <= 2.0,
    ),
    (
        "one SET per WebSocket frame, of the floor",
        "pushpull websocket batch 1",
        "ratio",
        ">= 0.35",
        lambda v: v >= 0.35,
    ),
    (
        "HTTP push-pull, 100-SET frames, of the floor",
        "pushpull http batch 100",
        "ratio",
        ">= 0.8",
        lambda v: v >= 0.8,
    ),
    (
        "multi-push, 100-SET batches, of the floor",
        "multipush batch 100",
        "ratio",
        ">= 0.7",
        lambda v: v >= 0.7,
    ),
    ("poll, 100-SET polls, of the floor", "poll batch 100", "ratio", ">= 0.5", lambda v: v >= 0.5),
    (
        "p99 publish -> receive at 500 SETs/s (ms)",
        "pushpull websocket @500/s latency",
        "p99_ms",
        "< 5",
        lambda v: v < 5,
    ),
    (
        "p99 publish -> receive at 2,000 SETs/s (ms)",
        "pushpull websocket @2000/s latency",
        "p99_ms",
        "report",
        lambda v: True,
    ),
    (
        "receiving application's rate / transport's",
        "pushpull websocket batch 100",
        "app_vs_transport",
        ">= 0.99",  # 1.0 to within a percent: the two rates end a few ms apart
        lambda v: v >= 0.99,
    ),
    ("1,000 idle sessions, node RSS (MB)", "idle sessions", "rss_mb", "< 300", lambda v: v < 300),
]


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal of :data:`GOALS` with its value in these rows (None: not run)."""
    by_name: dict[str, dict[str, Any]] = {}
    for row in rows:  # ES256's row where the algorithms share a name
        if row.get("alg", "ES256") == "ES256":
            by_name.setdefault(row["name"], row)
    out = []
    for what, name, field, goal, met in GOALS:
        row = by_name.get(name)
        value: float | None = None
        if row is not None and field == "app_vs_transport":
            if row.get("sets_per_s"):
                value = round(row["app_sets_per_s"] / row["sets_per_s"], 3)
        elif row is not None:
            value = row.get(field)
        out.append(
            {
                "goal": what,
                "row": name,
                "value": value,
                "target": goal,
                "met": None if value is None else met(value),
            }
        )
    return out


def print_goals(summary: list[dict[str, Any]]) -> None:
    print("\ngoals:")
    for g in summary:
        mark = {True: "met", False: "NOT met", None: "not run"}[g["met"]]
        print(f"  {g['goal']:<52} {g['value']!s:>8}  {g['target']:<7} {mark}")


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        "name",
        "alg",
        "ops_per_s",
        "sets_per_s",
        "floor_ops_per_s",
        "floor_sets_per_s",
        "ratio",
        "ratio_to_one_node",
        "sets_per_s_runs",
        "app_sets_per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "cpu_s_per_1000_sender",
        "cpu_s_per_1000_sender_run",
        "cpu_s_per_1000_receiver",
        "cpu_s_per_1000_receiver_run",
        "cpu_vs_crypto",
        "cpu_s_per_1000_node",
        "cpu_s_per_1000_app",
        "rss_mb_sender",
        "rss_mb_receiver",
        "rss_mb",
        "acked_per_sender",
        "rtt_ms",
        "window",
        "model_sets_per_s",
        "loopback_sets_per_s",
        "model_serial_sets_per_s",
        "paced_p50_ms",
        "paced_p99_ms",
    ]
    used = [c for c in columns if any(c in row for row in rows)]
    table = [used] + [[str(row.get(c, "")) for c in used] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(used))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    node = sub.add_parser("node", help="(internal) run one node of a pair")
    node.add_argument("--config", required=True)
    node.add_argument("--role", choices=["send", "send-shared", "receive", "idle"], required=True)
    node.add_argument("--count", type=int, required=True)
    node.add_argument("--rate", type=float, default=0)
    node.add_argument("--stages", action="store_true", help="record per-SET times")
    # The application's concurrency (publishing tasks); several nodes split it, as a
    # load balancer splits an application's requests.
    node.add_argument("--publishers", type=int, default=128)
    node.add_argument("--out", required=True)
    node.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--quick", action="store_true", help="finish in under a minute")
    parser.add_argument("--only", choices=sorted(BENCHES), default=None)
    parser.add_argument("--output", default="bench-results.json")
    # Charts (scripts/bench_plot.py; matplotlib, the "bench" extra): after the run, or
    # redrawn from a results file without running anything.
    parser.add_argument(
        "--plot",
        nargs="?",
        const=str(ROOT / "docs" / "img"),
        default=None,
        metavar="FOLDER",
        help="after the run, write PNG charts into FOLDER (default docs/img)",
    )
    parser.add_argument(
        "--plot-only",
        "--from",
        dest="plot_only",
        metavar="RESULTS",
        help="only draw the charts of RESULTS (a bench-results.json) into --plot's folder",
    )
    parser.add_argument("--wan-delay-ms", type=float, default=25.0, help="one way, wan rows")
    args = parser.parse_args()
    BENCHES["wan"] = lambda quick: bench_wan(quick, args.wan_delay_ms)
    if args.command == "node":
        import anyio

        anyio.run(node_main, args)
        return 0
    if args.plot_only:
        results = json.loads(Path(args.plot_only).read_text())
        # A file written before runs were dated: the day it was written.
        mtime = Path(args.plot_only).stat().st_mtime
        results.setdefault("date", time.strftime("%Y-%m-%d", time.localtime(mtime)))
        charts = plot(results, Path(args.plot or ROOT / "docs" / "img"))
        print("\n".join(f"wrote {path}" for path in charts) or "no rows to chart")
        return 0
    if args.plot:
        require()  # missing matplotlib: say so now, not after the run
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name, bench in BENCHES.items():
        # The store rows take three more pairs, the local ones six nodes: in the full
        # run, or asked for by name (--quick stays under a minute).
        if name in ("stores", "local", "wan") and args.quick and args.only != name:
            continue
        if args.only in (None, name):
            rows += bench(args.quick)
    print_table(rows)
    summary = goals(rows)
    print_goals(summary)
    Path(args.output).write_text(
        json.dumps(
            {
                "goals": summary,
                "quick": args.quick,
                "seconds": round(time.perf_counter() - started, 1),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d"),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.output} in {time.perf_counter() - started:.0f} s")
    if args.plot:
        for path in plot(json.loads(Path(args.output).read_text()), Path(args.plot)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
