"""Fuzz every input path of setpeer with hypothesis-generated and mutated input.

Paths (``--paths`` picks some):

- ``ws``: WebSocket messages to a real node's ``/pushpull`` session;
- ``pushpull``, ``events``, ``multipush``, ``poll``: POST bodies to a real node's routes;
- ``parsers``: the pure codecs (Communication Object, RFC 8935 push body, multi-push
  request and response, RFC 8936 poll request and response);
- ``config``: ``peer.config.load_config`` on random and mutated TOML;
- ``jwks``: ``peer.tokens.keys.KeyStore`` on random and mutated partner JWK Sets.

A crash is any exception other than the path's typed error (``WireError``,
``ConfigError``, ``ValueError`` for a JWK Set), an HTTP 5xx, a WebSocket close 1011, or
an ERROR log record from the node. Prints per path the count, crashes and the RSS of
this process (which hosts the node) before and after; exits 1 on any crash.

Engine: hypothesis (``given`` with generation only: no shrinking, no example database),
so every example is a fresh draw; atheris would need a native build.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from hypothesis import HealthCheck, Phase, given, seed as fixed_seed, settings, strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peer import Peer, load_config  # noqa: E402
from peer.errors import ConfigError, WireError  # noqa: E402
from peer.protocol.communication import CommunicationObject  # noqa: E402
from peer.protocol.limits import FrameLimits  # noqa: E402
from peer.protocol.multipush import MultiPushRequest, MultiPushResponse  # noqa: E402
from peer.protocol.poll import PollRequest, PollResponse  # noqa: E402
from peer.protocol.push import parse_push_request  # noqa: E402
from peer.tokens.keys import KeyStore, generate_private_jwks, public_jwks  # noqa: E402
from peer.tokens.sign import Signer, build_claims  # noqa: E402

__all__ = ["PATHS", "Result", "main", "run"]

EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
NETWORK = ("ws", "pushpull", "events", "multipush", "poll")
PATHS = (*NETWORK, "parsers", "config", "jwks")
LIMITS = FrameLimits()


@dataclass
class Result:
    """One path's outcome."""

    path: str
    count: int = 0
    crashes: list[str] = field(default_factory=list)
    rss_before: int = 0
    rss_after: int = 0
    seconds: float = 0.0


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# -- strategies ----------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
_b64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60
)
_jws_like = st.builds(lambda a, b, c: f"eyJ{a}.{b}.{c}", _b64, _b64, _b64)
_jti = st.text(max_size=20) | st.sampled_from(["", "a", "\u0000", "x" * 300])


def _shaped(token: str) -> st.SearchStrategy[Any]:
    """Objects shaped like our wire formats, with a valid SET among the junk."""
    member = st.one_of(_jws_like, st.just(token), _json)
    err = st.fixed_dictionaries(
        {}, optional={"err": _json | st.sampled_from(["invalid_key", "x"]), "description": _json}
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "sets": st.dictionaries(_jti, member, max_size=5) | _json,
            "ack": st.lists(_jti | _json, max_size=5) | _json,
            "setErrs": st.dictionaries(_jti, err | _json, max_size=3) | _json,
            "maxResponseEvents": _json | st.integers(-5, 10**20),
            "maxEvents": _json | st.integers(-5, 10**20),
            "returnImmediately": _json,
            "moreAvailable": _json,
        },
    )


@st.composite
def _mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from([b"[", b"{", b'"', b"\\", b"\xff"])
            )
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif data:
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def bodies(token: str) -> st.SearchStrategy[bytes]:
    """JSON-ish bodies: shaped, mutated, nested, or plain bytes."""
    shaped = _shaped(token).map(lambda v: json.dumps(v).encode())
    valid = json.dumps({"sets": {"v": token}, "ack": ["a"]}).encode()
    nested = st.integers(1, 5000).map(lambda n: b'{"sets":' + b"[" * n + b"]" * n + b"}")
    return st.one_of(
        shaped, _mutated(valid), shaped.flatmap(_mutated), nested, st.binary(max_size=200)
    )


# -- the node under fuzz ---------------------------------------------------------------


class Node:
    """A real node ``b`` on loopback, served from a background event loop, with partner
    ``a``'s keys and bearer to attack it."""

    def __init__(self, folder: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        os.environ["SETPEER_FUZZ_TOKEN_B"] = secrets.token_urlsafe(24)
        keys = {}
        for name in ("a", "b"):
            keys[name] = generate_private_jwks("ES256")
            (folder / f"{name}.jwks.json").write_text(json.dumps(keys[name]))
            (folder / f"{name}.public.json").write_text(json.dumps(public_jwks(keys[name])))
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        (folder / "b.toml").write_text(base_toml("b", "a", digest))
        self.config = load_config(folder / "b.toml")
        self.signer = Signer(keys["a"])
        self.auth = {"authorization": f"Bearer {self.token}"}
        self.url = ""
        self.errors: list[str] = []

    def token_for(self, jti: str) -> str:
        """A valid SET from ``a`` to ``b``."""
        claims = build_claims(
            iss="https://a.fuzz.example",
            aud="https://b.fuzz.example",
            events={EVENT: {}},
            iat=int(time.time()),
            jti=jti,
        )
        return self.signer.sign(claims)

    @contextlib.contextmanager
    def running(self) -> Iterator[Node]:
        """Serve until the block ends; the application drains the inbox meanwhile."""
        handler = _ErrorLog(self.errors)
        logging.getLogger().addHandler(handler)
        try:
            with (
                anyio.from_thread.start_blocking_portal() as portal,
                portal.wrap_async_context_manager(Peer(self.config)) as node,
            ):
                self.url = node.url
                drain = portal.start_task_soon(_drain, node)
                try:
                    yield self
                finally:
                    drain.cancel()
        finally:
            logging.getLogger().removeHandler(handler)


async def _drain(node: Peer) -> None:
    async for rx in node.receive():  # keep the inbox backlog empty
        await rx.done()


class _ErrorLog(logging.Handler):
    """Collects ERROR records of the node (an unexpected exception anywhere in it)."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("setpeer", "uvicorn", "starlette")):
            self.sink.append(f"{record.name}: {record.getMessage()[:300]}")


def base_toml(me: str, other: str, digest: str) -> str:
    """A valid config for ``me`` with ``other`` as its one inbound partner."""
    return f"""
[peer]
issuer = "https://{me}.fuzz.example"
listen = "127.0.0.1:0"
store = "memory://"
signing_keys = "{me}.jwks.json"
allow_insecure_loopback = true

[peer.limits]
max_inbound_sets_per_second = 10000000
max_sessions = 1000
handshake_timeout = 5
long_poll_timeout = 0.01

[[partners]]
name = "{other}"
issuer = "https://{other}.fuzz.example"
audience = "https://{other}.fuzz.example"
jwks = "{other}.public.json"
initiate = false

[partners.auth]
bearer = "env:SETPEER_FUZZ_TOKEN_B"

[partners.inbound]
bearer_sha256 = "{digest}"
"""


# -- fuzzers ---------------------------------------------------------------------------

Check = Callable[[Any], None]  # one input; raises only on a crash


# Hypothesis keeps every example of a run in memory (~25 MiB per 1,000 here, measured
# with tracemalloc); runs of this size keep the fuzzer's own RSS flat, so the RSS shown
# is the node's.
_BATCH = 500


def _drive(
    strategy: st.SearchStrategy[Any], check: Check, result: Result, count: int, seed: int | None
) -> None:
    """Feed ``count`` fresh draws of ``strategy`` to ``check``, recording crashes."""

    def one(value: Any) -> None:
        result.count += 1
        try:
            check(value)
        except Exception as exc:  # the crash itself: recorded, the run goes on
            if len(result.crashes) < 20:
                shown = repr(value)[:200]
                result.crashes.append(f"{type(exc).__name__}: {exc} <- {shown}")
            else:
                result.crashes.append(type(exc).__name__)

    for batch, start in enumerate(range(0, count, _BATCH)):
        size = min(_BATCH, count - start)
        run = settings(
            max_examples=size,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(one))
        if seed is not None:
            run = fixed_seed(seed + batch)(run)
        before = result.count
        run()
        if result.count == before:  # the strategy is exhausted: nothing new to draw
            break


def _parsers(token: str) -> tuple[st.SearchStrategy[Any], Check]:
    codecs: list[Callable[[bytes], object]] = [
        lambda b: CommunicationObject.parse(b, limits=LIMITS),
        lambda b: MultiPushRequest.parse(b, limits=LIMITS),
        lambda b: MultiPushResponse.parse(b, limits=LIMITS),
        lambda b: PollRequest.parse(b, limits=LIMITS),
        lambda b: PollResponse.parse(b, limits=LIMITS),
        lambda b: parse_push_request(b, "application/secevent+jwt", limits=LIMITS),
        lambda b: CommunicationObject.parse(b.decode("utf-8", "replace"), limits=LIMITS),
    ]
    pushed = _mutated(token.encode()) | _jws_like.map(str.encode)

    def check(value: tuple[int, bytes]) -> None:
        index, body = value
        try:
            codecs[index](body)
        except WireError:
            pass

    return st.tuples(st.integers(0, len(codecs) - 1), bodies(token) | pushed), check


def _config(folder: Path) -> tuple[st.SearchStrategy[Any], Check]:
    base = base_toml("b", "a", "0" * 64)
    lines = base.splitlines()
    toml_values = st.sampled_from(
        [
            '""',
            "0",
            "-1",
            "1e999",
            "inf",
            "nan",
            "[]",
            "{}",
            "true",
            '"env:"',
            '"file:/etc/passwd"',
            '"../../../etc/passwd"',
            "[[1]]",
            "9" * 400,
            '"\\u0000"',
            "{a = {b = {c = 1}}}",
        ]
    )

    @st.composite
    def texts(draw: st.DrawFn) -> bytes:
        kind = draw(st.integers(0, 3))
        if kind == 0:  # a value replaced
            out = list(lines)
            index = draw(st.integers(0, len(out) - 1))
            key = out[index].split("=")[0].strip() or "x"
            out[index] = f"{key} = {draw(toml_values)}"
            return "\n".join(out).encode()
        if kind == 1:  # lines dropped or repeated
            out = [line for line in lines if draw(st.booleans()) or not line.strip()]
            return "\n".join(out + out[: draw(st.integers(0, 3))]).encode()
        if kind == 2:
            return draw(_mutated(base.encode()))
        return draw(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))

    path = folder / "fuzz.toml"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError:
            pass

    return texts(), check


def _jwks() -> tuple[st.SearchStrategy[Any], Check]:
    real = [
        public_jwks(generate_private_jwks(alg))["keys"][0] for alg in ("ES256", "RS256", "EdDSA")
    ]
    members = st.sampled_from(
        ["kty", "crv", "x", "y", "n", "e", "d", "k", "alg", "use", "kid", "key_ops"]
    )
    values = st.one_of(
        _json,
        _b64,
        st.sampled_from(
            [
                "EC",
                "RSA",
                "OKP",
                "oct",
                "P-256",
                "Ed25519",
                "ES256",
                "RS256",
                "none",
                "HS256",
                "sig",
                "enc",
            ]
        ),
    )
    # A member that selects code paths (kty, crv, alg, ...) given a list or an object.
    type_confusion = st.dictionaries(
        st.sampled_from(["kty", "crv", "alg", "kid", "use"]),
        st.lists(_scalars, max_size=2) | st.dictionaries(st.text(max_size=2), _scalars, max_size=1),
        min_size=1,
        max_size=2,
    )
    edited = st.builds(
        lambda key, changes, drop: {**{k: v for k, v in key.items() if k not in drop}, **changes},
        st.sampled_from(real),
        st.dictionaries(members, values, max_size=3) | type_confusion,
        st.sets(members, max_size=2),
    )
    docs = st.one_of(
        st.fixed_dictionaries({"keys": st.lists(edited | _json, max_size=4)}),
        _json,
        st.fixed_dictionaries({"keys": _json}),
    )

    def check(doc: Any) -> None:
        try:
            KeyStore(doc)
        except ValueError:
            pass

    return docs, check


def _http(node: Node, client: httpx.Client, path: str) -> tuple[st.SearchStrategy[Any], Check]:
    token = node.token_for("fuzz-valid")
    types = st.sampled_from(
        [
            "application/json",
            "application/secevent+jwt",
            "text/plain",
            "",
            "application/json; charset=latin-1",
        ]
    )
    body = bodies(token) | _mutated(token.encode())

    def check(value: tuple[bytes, str]) -> None:
        data, ctype = value
        seen = len(node.errors)
        response = client.post(
            node.url + path, content=data, headers={**node.auth, "content-type": ctype}
        )
        if response.status_code >= 500 or len(node.errors) > seen:
            raise AssertionError(f"HTTP {response.status_code}: {node.errors[seen:][:1]}")

    return st.tuples(body, types), check


class _Session:
    """One WebSocket session, reopened whenever the node closes it (as it must on junk)."""

    def __init__(self, node: Node, timeout: float) -> None:
        self.node = node
        self.timeout = timeout
        self.ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()

    def _open(self) -> ClientConnection:
        url = self.node.url.replace("http://", "ws://") + "/pushpull"
        return self._stack.enter_context(
            connect(
                url,
                additional_headers=self.node.auth,
                subprotocols=["pushpull"],  # type: ignore[list-item]
                compression=None,
                max_size=None,
                open_timeout=self.timeout,
            )
        )

    def send(self, message: str | bytes) -> None:
        """Send ``message``; a close other than the typed ones (1007/1008/1009/1013) raises."""
        for _ in range(2):
            if self.ws is None:
                self.ws = self._open()
            try:
                self.ws.send(message)
                self._drain()
                return
            except ConnectionClosed:
                self._closed()
        raise AssertionError("could not deliver the message on a fresh session")

    def _drain(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(TimeoutError):
            while True:
                self.ws.recv(timeout=0)

    def _closed(self) -> None:
        assert self.ws is not None
        code = self.ws.close_code
        self.close()
        if code not in (1007, 1008, 1009, 1013):
            raise AssertionError(f"session closed with {code}")

    def close(self) -> None:
        """Close the session, if one is open."""
        self.ws = None
        self._stack.close()


def _websocket(node: Node, session: _Session) -> tuple[st.SearchStrategy[Any], Check]:
    token = node.token_for("fuzz-valid")
    messages = bodies(token).flatmap(lambda b: st.sampled_from([b, b.decode("utf-8", "replace")]))

    def check(message: str | bytes) -> None:
        seen = len(node.errors)
        session.send(message)
        if len(node.errors) > seen:
            raise AssertionError(node.errors[seen])

    return messages, check


# -- driver ----------------------------------------------------------------------------


def run(
    paths: tuple[str, ...],
    count: int,
    report: Callable[[Result], None] = lambda r: None,
    *,
    seed: int | None = None,
    timeout: float = 30.0,
) -> list[Result]:
    """Fuzz ``paths`` with ``count`` inputs each; one Result per path.

    Args:
        paths: names from :data:`PATHS`.
        count: inputs per path.
        report: called with each path's result as soon as it is done.
        seed: a fixed hypothesis seed (repeatable runs), or None for fresh randomness.
        timeout: seconds an HTTP request or a WebSocket opening may take.
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        node = Node(folder)
        valid = node.token_for("fuzz-valid")
        with node.running(), httpx.Client(timeout=timeout) as client:
            session = _Session(node, timeout)
            try:
                for path in paths:
                    result = Result(path, rss_before=rss())
                    started = time.monotonic()
                    if path == "ws":
                        strategy, check = _websocket(node, session)
                    elif path in NETWORK:
                        strategy, check = _http(node, client, "/" + path)
                    elif path == "parsers":
                        strategy, check = _parsers(valid)
                    elif path == "config":
                        strategy, check = _config(folder)
                    elif path == "jwks":
                        strategy, check = _jwks()
                    else:
                        raise SystemExit(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
                    _drive(strategy, check, result, count, seed)
                    # The node still takes a valid SET after the path's junk.
                    with contextlib.suppress(Exception):
                        session.close()
                    session = _Session(node, timeout)
                    ok = client.post(
                        node.url + "/pushpull", json={"sets": {"after": valid}}, headers=node.auth
                    )
                    if ok.status_code != 200:
                        result.crashes.append(
                            f"valid SET refused afterwards: HTTP {ok.status_code}"
                        )
                    result.seconds = time.monotonic() - started
                    result.rss_after = rss()
                    results.append(result)
                    report(result)
            finally:
                session.close()
    return results


def _print(result: Result) -> None:
    mib = 1024 * 1024
    print(
        f"{result.path:10} {result.count:>8} inputs {len(result.crashes):>4} crashes  "
        f"RSS {result.rss_before / mib:7.1f} -> {result.rss_after / mib:7.1f} MiB  "
        f"{result.seconds:7.1f} s",
        flush=True,
    )
    for crash in result.crashes[:5]:
        print(f"    {crash}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``scripts/fuzz [--count N | --quick] [--paths ws,config,...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs per path")
    parser.add_argument("--quick", action="store_true", help="300 inputs per path")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=None, help="repeatable run")
    args = parser.parse_args(argv)
    count = 300 if args.quick else args.count
    paths = tuple(p for p in args.paths.split(",") if p)
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    print(f"{'path':10} {'count':>8}", flush=True)
    try:
        results = run(paths, count, _print, seed=args.seed)
    except Exception:
        traceback.print_exc()
        return 2
    crashed = sum(len(r.crashes) for r in results)
    print(f"total: {sum(r.count for r in results)} inputs, {crashed} crashes", flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
