"""Log hygiene (docs/operations.md "Logs"): with every logger at DEBUG, a full
exchange plus bad input leaves no token, compact JWS, bearer or key in any log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import httpx
import pytest
import websockets

from peer import Peer
from peer.logs import redact
from tests.hostile.helpers import Attacker
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.3, "retry_initial": 0.05, "ack_timeout": 1}


def secrets_of(token: str) -> list[str]:
    """A compact JWS, its payload and its signature: none may be logged."""
    _, payload, signature = token.split(".")
    return [token, *(part for part in (payload, signature) if len(part) >= 16)]


async def test_no_secret_in_any_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Publish and receive both ways, plus bad credentials and bad SETs: logs stay clean."""
    caplog.set_level(logging.DEBUG)  # root: setpeer, uvicorn, websockets, httpx, httpcore
    for name in ("setpeer", "uvicorn", "uvicorn.error", "websockets", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    a_files, b_files = make_pair(tmp_path)
    tokens: list[str] = []
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint, limits=FAST)) as a:
            for _ in range(5):
                await a.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "email", "email": "x@y.example"}
                )
                await b.publish("a", {SESSION_REVOKED: {}})
            for node in (a, b):
                got = 0
                with anyio.fail_after(20_000 * MS):
                    async for rx in node.receive():
                        tokens.append(rx.token)
                        await rx.done()
                        got += 1
                        if got == 5:
                            break
            await a.flush(timeout=seconds(20))
            await b.flush(timeout=seconds(20))
            # Bad input against b: a wrong bearer, a forged SET, a truncated one.
            w = Attacker(b.url, a_files, b_files)
            wrong_bearer = "hostile-bearer-value-0123456789abcdef"
            forged = w.set_token("forged")[:-8] + "AAAAAAAA"
            valid = w.set_token("valid-bad-aud")
            tokens += [forged, valid]
            async with httpx.AsyncClient() as client:
                await client.post(
                    w.http,
                    json={"sets": {"f": forged}},
                    headers={"authorization": f"Bearer {wrong_bearer}"},
                )
                await client.post(
                    w.http, json={"sets": {"f": forged, "t": valid[:-3]}}, headers=w.auth
                )
                await client.post(
                    w.base + "/events",
                    content=forged,
                    headers={**w.auth, "content-type": "application/secevent+jwt"},
                )
            with pytest.raises(websockets.exceptions.InvalidStatus):
                await websockets.connect(
                    w.ws,
                    additional_headers={"authorization": f"Bearer {wrong_bearer}"},
                    subprotocols=["pushpull"],  # type: ignore[list-item]
                )
            async with await w.session() as ws:
                # Its answer may leave on a's own session (acks are per partner, PP-23).
                await ws.send(json.dumps({"sets": {"forged": forged}}))
                await ws.send('{"sets": {"x": "' + forged + '"')  # malformed: closed 1007
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
    private_a = json.loads((tmp_path / "a.jwks.json").read_text())
    private_b = json.loads((tmp_path / "b.jwks.json").read_text())
    forbidden = [a_files.token_out, b_files.token_out, wrong_bearer]
    for token in tokens:
        forbidden += secrets_of(token)
    for jwks in (private_a, private_b):
        for key in jwks["keys"]:
            forbidden += [key["d"], json.dumps(key)]
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text]  # formatted, exceptions and all
    assert len(caplog.records) > 50, "logging was not captured"
    assert len(tokens) >= 12
    leaks = [(secret[:12], line[:200]) for line in lines for secret in forbidden if secret in line]
    assert not leaks, leaks


@pytest.mark.parametrize(
    "line, secret, kept",
    [
        ("> authorization: Bearer abc.def_g==", "abc.def_g", "authorization"),
        ("x Bearer dGVzdA== y", "dGVzdA", "Bearer"),
        ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Basic"),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2lnX3Bh end", "eyJqdGkiOiJ4In0", "end"),
        ('{"kty":"EC","d":"c2VjcmV0dmFsdWU"}', "c2VjcmV0dmFsdWU", '"kty":"EC"'),
        ("client_secret=s3cr3t&x=1", "s3cr3t", "x=1"),
        ('HTTP 401 Bearer realm="setpeer", error="invalid_token"', "-", 'realm="setpeer"'),
    ],
)
def test_redact(line: str, secret: str, kept: str) -> None:
    """redact() removes credentials, JWS and private key members; challenges stay readable."""
    cleaned = redact(line)
    assert secret not in cleaned and kept in cleaned
