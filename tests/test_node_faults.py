"""Real nodes in trouble: fallback to HTTP and back, partner down, bad input on both bindings."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from peer import Peer
from peer.protocol.vocabulary import new_session_id
from peer.tokens.keys import generate_private_jwks, public_jwks
from peer.tokens.sign import Signer, build_claims
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair, write_config
from tests.timing import MS, seconds

FAST = {
    "reconnect_initial": 0.05,
    "reconnect_max": 0.5,
    "retry_initial": 0.05,
    "retry_max": 0.2,
    "ack_timeout": 0.5,
    "idle_timeout": 5,
}


async def wait_for(condition: Any, timeout: float = 20_000 * MS) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - polling a node's public stats
            await anyio.sleep(10 * MS)


async def drain(node: Peer, count: int, got: list[str]) -> None:
    async for rx in node.receive():
        got.append(rx.jti)
        await rx.done()
        if len(got) >= count:
            return


@pytest.mark.slow
async def test_fallback_to_http_and_back_to_websocket(tmp_path: Path) -> None:
    """PP-16, PP-17: upgrade refused -> HTTP binding, nothing lost; WebSocket again once offered."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        b.accept_websocket = False
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint, limits=FAST)) as a:
            await wait_for(lambda: a.stats()["b"]["session"] == "http")
            jtis = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(50)]
            got: list[str] = []
            with anyio.fail_after(20_000 * MS):
                await drain(b, 50, got)
                await a.flush(timeout=seconds(30))
            assert sorted(got) == sorted(jtis)
            b.accept_websocket = True
            await wait_for(lambda: a.stats()["b"]["session"] == "websocket")
            more = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(50)]
            got.clear()
            with anyio.fail_after(20_000 * MS):
                await drain(b, 50, got)
                await a.flush(timeout=seconds(30))
            assert sorted(got) == sorted(more)
            assert a.stats()["b"]["acked"] == 100 and a.failures() == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_partner_down_then_back(tmp_path: Path) -> None:
    """PP-21, PP-24: SETs queue while the partner is down, attempts show, all arrive later."""
    a_files, b_files = make_pair(tmp_path)
    port = free_port()
    endpoint = f"ws://127.0.0.1:{port}/pushpull"
    async with Peer(write_config(a_files, b_files, endpoint=endpoint, limits=FAST)) as a:
        jtis = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(30)]
        await anyio.sleep(300 * MS)
        stats = a.stats()["b"]
        assert stats["session"] == "down" and stats["pending"] + stats["inflight"] == 30
        b_config = write_config(b_files, a_files, limits=FAST)
        b_config = type(b_config)(**{**_fields(b_config), "listen": f"127.0.0.1:{port}"})
        async with Peer(b_config) as b:
            got: list[str] = []
            with anyio.fail_after(20_000 * MS):
                await drain(b, 30, got)
                await a.flush(timeout=seconds(30))
            assert sorted(got) == sorted(jtis)
        assert a.stats()["b"]["acked"] == 30 and a.stats()["b"]["pending"] == 0


def _fields(obj: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


# -- bad input on both bindings, with plain clients --------------------------------------


class Wire:
    """A raw client's view of node b: a's credentials and keys, b's URLs."""

    def __init__(self, b: Peer, a_files: NodeFiles, b_files: NodeFiles) -> None:
        self.http = b.url + "/pushpull"
        self.ws = b.url.replace("http://", "ws://") + "/pushpull"
        self.auth = {"authorization": f"Bearer {a_files.token_out}"}
        self.a_files, self.b_files = a_files, b_files
        self.signer = Signer(json.loads((a_files.folder / "a.jwks.json").read_text()))

    def set_token(self, jti: str, **overrides: Any) -> str:
        claims = build_claims(
            iss=self.a_files.issuer,
            aud=self.b_files.issuer,
            events={SESSION_REVOKED: {}},
            iat=int(__import__("time").time()),
            jti=jti,
        )
        claims.update(overrides)
        return self.signer.sign(claims)


@pytest.fixture
async def wire(tmp_path: Path) -> Any:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        yield Wire(b, a_files, b_files), b


async def test_http_bad_requests(wire: tuple[Wire, Peer]) -> None:
    """PP-13, decisions 6/7: each bad request gets its status and RFC 8935 body."""
    w, b = wire
    async with httpx.AsyncClient() as client:
        cases = [
            ({}, b"{}", "application/json", 401, "authentication_failed"),
            (
                {"authorization": "Bearer wrong"},
                b"{}",
                "application/json",
                401,
                "authentication_failed",
            ),
            (w.auth, b"{not json", "application/json", 400, "invalid_request"),
            (w.auth, b"[]", "application/json", 400, "invalid_request"),
            (w.auth, b'{"ack": "x"}', "application/json", 400, "invalid_request"),
            (w.auth, b'{"sets": {"a": "x", "a": "y"}}', "application/json", 400, "invalid_request"),
            (w.auth, b"{}", "text/plain", 415, "invalid_request"),
            (
                w.auth,
                b'{"ack": ["' + b"x" * (2 * 1024 * 1024) + b'"]}',
                "application/json",
                413,
                "invalid_request",
            ),
            (
                w.auth,
                json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(1001)}}).encode(),
                "application/json",
                413,
                "invalid_request",
            ),
        ]
        for headers, body, ctype, status, err in cases:
            response = await client.post(
                w.http, content=body, headers={**headers, "content-type": ctype}
            )
            assert response.status_code == status, (body[:40], response.text)
            assert response.json()["err"] == err
            assert response.headers["content-language"] == "en"
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
        response = await client.get(w.http, headers=w.auth)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        # The node still serves a good request afterwards.
        token = w.set_token("good-1")
        response = await client.post(w.http, json={"sets": {"good-1": token}}, headers=w.auth)
        assert response.status_code == 200
    got: list[str] = []
    with anyio.fail_after(5_000 * MS):
        await drain(b, 1, got)
    assert got == ["good-1"]


async def test_http_bad_sets_get_set_errs(wire: tuple[Wire, Peer]) -> None:
    """PP-23, PUSH-6: bad SETs are answered in setErrs with their codes; good ones stored."""
    w, b = wire
    other = Signer(generate_private_jwks("ES256"))
    bad_sig = other.sign(
        build_claims(
            iss=w.a_files.issuer,
            aud=w.b_files.issuer,
            events={SESSION_REVOKED: {}},
            iat=1,
            jti="bad-sig",
        )
    )
    header = "eyJhbGciOiJub25lIiwidHlwIjoic2VjZXZlbnQrand0In0"
    sets = {
        "ok": w.set_token("ok"),
        "wrong-iss": w.set_token("wrong-iss", iss="https://evil.example"),
        "wrong-aud": w.set_token("wrong-aud", aud="https://elsewhere.example"),
        "bad-sig": bad_sig,
        "alg-none": header + "." + w.set_token("alg-none").split(".")[1] + ".",
        "mismatch": w.set_token("not-the-key"),
        "number": 5,
    }
    expected = {
        "wrong-iss": "invalid_issuer",
        "wrong-aud": "invalid_audience",
        "bad-sig": "invalid_key",
        "alg-none": "invalid_key",
        "mismatch": "invalid_request",
        "number": "invalid_request",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(w.http, json={"sets": sets}, headers=w.auth)
        assert response.status_code == 200
        body = response.json()
        assert body.get("ack") == ["ok"]
        assert {jti: e["err"] for jti, e in body["setErrs"].items()} == expected
        assert all(e["description"] for e in body["setErrs"].values())
        # A duplicate is acknowledged again, not stored twice (decision 15).
        response = await client.post(w.http, json={"sets": {"ok": sets["ok"]}}, headers=w.auth)
        assert response.json()["ack"] == ["ok"]
    assert b.stats()["a"]["received"] == 1


async def test_websocket_handshake_refusals(wire: tuple[Wire, Peer]) -> None:
    """Refused before the upgrade: no credentials 401; no pushpull subprotocol 400."""
    w, _ = wire
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await connect(w.ws, subprotocols=["pushpull"])  # type: ignore[list-item]
    assert info.value.response.status_code == 401
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await connect(w.ws, additional_headers=w.auth, subprotocols=["puhspull"])  # type: ignore[list-item]
    assert info.value.response.status_code == 400


@pytest.mark.parametrize(
    "message, code",
    [
        ("{not json", 1007),
        ("[]", 1007),
        ('{"ack": 5}', 1007),
        (b"\xff\xfe", 1007),
        ('{"ack": ["' + "x" * (2 * 1024 * 1024) + '"]}', 1009),
        (json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(1001)}}), 1009),
    ],
)
async def test_websocket_bad_frames_close_with_reason(
    wire: tuple[Wire, Peer], message: str | bytes, code: int
) -> None:
    """Malformed frame 1007, oversized 1009, each with a reason; others unaffected."""
    w, b = wire
    async with connect(
        w.ws,
        additional_headers=w.auth,
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
    ) as ws:
        await ws.send(message)
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            with anyio.fail_after(5_000 * MS):
                while True:
                    await ws.recv()
        assert ws.close_code == code
        assert ws.close_reason
    # The node keeps serving: a good SET on a new session is acked.
    async with connect(
        w.ws,
        additional_headers=w.auth,
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
    ) as ws:
        await ws.send(json.dumps({"sets": {"after": w.set_token("after")}}))
        with anyio.fail_after(5_000 * MS):
            reply = json.loads(await ws.recv())
        assert reply["ack"] == ["after"]


async def test_websocket_bad_sets_keep_session(wire: tuple[Wire, Peer]) -> None:
    """Per-SET problems go in setErrs; the session stays usable."""
    w, b = wire
    async with connect(
        w.ws,
        additional_headers=w.auth,
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
    ) as ws:
        await ws.send(json.dumps({"sets": {"x": w.set_token("x", iss="https://evil.example")}}))
        with anyio.fail_after(5_000 * MS):
            reply = json.loads(await ws.recv())
        assert reply["setErrs"]["x"]["err"] == "invalid_issuer"
        await ws.send(json.dumps({"sets": {"y": w.set_token("y")}}))
        with anyio.fail_after(5_000 * MS):
            reply = json.loads(await ws.recv())
        assert reply["ack"] == ["y"]
    assert b.stats()["a"]["received"] == 1


async def test_websocket_acks_and_sets_in_one_frame(wire: tuple[Wire, Peer]) -> None:
    """PP-15, PP-27: b sends its SETs on the session and takes our acks in our frames."""
    w, b = wire
    jti = await b.publish("a", {SESSION_REVOKED: {}})
    async with connect(
        w.ws,
        additional_headers=w.auth,
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
    ) as ws:
        with anyio.fail_after(5_000 * MS):
            frame = json.loads(await ws.recv())
        assert list(frame["sets"]) == [jti]
        await ws.send(json.dumps({"ack": [jti], "sets": {"z": w.set_token("z")}}))
        with anyio.fail_after(5_000 * MS):
            reply = json.loads(await ws.recv())
        assert reply["ack"] == ["z"]
        await b.flush(timeout=seconds(5))
    assert b.stats()["a"]["acked"] == 1


def test_public_jwks_route_has_no_private_members(tmp_path: Path) -> None:
    """GET /.well-known/jwks.json serves only public members."""

    async def main() -> None:
        a_files, b_files = make_pair(tmp_path)
        async with Peer(write_config(b_files, a_files)) as b:
            async with httpx.AsyncClient() as client:
                response = await client.get(b.url + "/.well-known/jwks.json")
            keys = response.json()["keys"]
            private = json.loads((tmp_path / "b.jwks.json").read_text())
            assert keys == public_jwks(private)["keys"]
            assert "d" not in keys[0]

    anyio.run(main)


@pytest.mark.slow
async def test_silent_partner_attempts_and_next_retry_show_in_status(tmp_path: Path) -> None:
    """PP-21, PP-24: a partner that takes SETs but never answers: retries with backoff,
    `setpeer status` shows the session, the attempts and the next retry."""
    import subprocess
    import sys

    from websockets.asyncio.server import serve

    received: list[str] = []

    async def silent(ws: Any) -> None:
        async for message in ws:
            received.extend(json.loads(message).get("sets", {}))

    a_files, b_files = make_pair(tmp_path)
    async with serve(
        silent,
        "127.0.0.1",
        0,
        subprotocols=["pushpull"],  # type: ignore[list-item]
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        limits = FAST | {"max_attempts": 50}
        config = write_config(
            a_files, b_files, endpoint=f"ws://127.0.0.1:{port}/pushpull", limits=limits
        )
        async with Peer(config) as a:
            jti = await a.publish("b", {SESSION_REVOKED: {}})
            await wait_for(lambda: received.count(jti) >= 2, timeout=60_000 * MS)

            def status() -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-m", "peer", "status", "-c", str(tmp_path / "a.toml")],
                    capture_output=True,
                    text=True,
                    timeout=seconds(60),
                )

            # Attempts reach the store up to a second after they are made.
            with anyio.fail_after(10_000 * MS):
                while (out := await anyio.to_thread.run_sync(status)).stdout.split()[-2] == "-":  # noqa: ASYNC110
                    await anyio.sleep(100 * MS)
            node, *lines = out.stdout.splitlines()
            assert node.startswith("node: running"), out
            assert lines[0].split()[-3:] == ["attempts", "next", "retry"], out
            row = lines[1].split()
            assert row[:2] == ["b", "websocket"], lines
            attempts = lines[0].split().index("attempts")
            assert int(row[3]) == 1 and int(row[attempts]) >= 1, lines
            assert row[attempts + 1] == "in", lines
            assert a.stats()["b"]["inflight"] + a.stats()["b"]["pending"] == 1


async def test_sets_stored_as_their_session_ends_are_counted(tmp_path: Path) -> None:
    """A session that dies while its frame's SETs are being committed (the partner was
    killed mid-frame): the SETs are stored, so they are counted as received and handed
    to the application; nothing is owed on the dead session (the partner's resend is
    answered). Found by the multinode test: `received` was one short."""
    a_files, b_files = make_pair(tmp_path)
    signer = Signer(json.loads((a_files.folder / "a.jwks.json").read_text()))
    token = signer.sign(
        build_claims(
            iss=a_files.issuer, aud=b_files.issuer, events={SESSION_REVOKED: {}}, iat=1, jti="j1"
        )
    )
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        link = b.links["a"]

        async def frame_arrives() -> None:
            await link.accept_sets({"j1": token}, via=new_session_id())

        async with anyio.create_task_group() as tg:
            tg.start_soon(frame_arrives)
            await anyio.lowlevel.checkpoint()  # verified, and waiting for the commit
            tg.cancel_scope.cancel()  # the session ends now
        assert b.stats()["a"]["received"] == 1
        assert not link.ledger.owes("j1")
        with anyio.fail_after(5_000 * MS):
            async for rx in b.receive():
                assert rx.jti == "j1"
                await rx.done()
                break
        assert await link.store.acks_due("a") != []  # owed durably: a resend is answered


async def test_readyz_says_503_while_the_store_cannot_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds SQLite's write lock (every write of ours would fail
    with "database is locked"): /readyz answers 503, with the reason logged, and
    200 again once the lock is gone. Reads work all along, which is all readiness
    checked before."""

    a_files, b_files = make_pair(tmp_path)
    caplog.set_level("INFO", logger="setpeer.node")
    async with Peer(write_config(a_files, b_files, limits=FAST)) as a, httpx.AsyncClient() as web:
        assert (await web.get(a.url + "/readyz")).status_code == 200
        db = a.config.store_path
        assert db is not None
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            started = anyio.current_time()
            ready = await web.get(a.url + "/readyz", timeout=seconds(10))
            print(
                f"/readyz with the write lock held: {ready.status_code} after"
                f" {anyio.current_time() - started:.2f} s"
            )
            assert ready.status_code == 503
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        started = anyio.current_time()
        with anyio.fail_after(10_000 * MS):
            while (await web.get(a.url + "/readyz")).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(20 * MS)
        print(f"/readyz 200 again {anyio.current_time() - started:.2f} s after the lock went")
    messages = [r.getMessage() for r in caplog.records if r.name == "setpeer.node"]
    assert any(m.startswith("not ready: ") for m in messages), messages
    assert "ready: the store can write again" in messages
