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


@pytest.mark.slow
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
        ("401 invalid bearer token; Bearer tokenXYZ", "tokenXYZ", "invalid bearer token"),
    ],
)
def test_redact(line: str, secret: str, kept: str) -> None:
    """redact() removes credentials, JWS and private key members; challenges stay readable."""
    cleaned = redact(line)
    assert secret not in cleaned and kept in cleaned


# A close reason (at most 123 bytes) that would forge a record and clear the screen.
FORGED = "bye\n2030-01-01 00:00:00,000 INFO setpeer partner=other forged\x1b[2J\u2028\x85end"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_close_reason_cannot_forge_a_log_record(tmp_path: Path, log_format: str) -> None:
    """A real ``setpeer run``: partner a closes its session with a newline, a forged
    record for another partner and a terminal escape in the reason. The log shows one
    line for it, escaped; JSON lines stay JSON."""
    import signal
    import subprocess
    import sys

    a_files, b_files = make_pair(tmp_path)
    write_config(b_files, a_files)
    stderr = tmp_path / "b.log"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "peer", "run", "-c", str(tmp_path / "b.toml")]
            + ["--log-format", log_format],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("setpeer listening on "), line
        attacker = Attacker(line.split()[-1], a_files, b_files)
        async with await attacker.session() as ws:
            await ws.close(4000, FORGED)
        with anyio.fail_after(seconds(10)):
            while "forged" not in stderr.read_text(errors="replace"):  # noqa: ASYNC110 - a file
                await anyio.sleep(20 * MS)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=seconds(30)) == 0
        if process.stdout is not None:
            process.stdout.close()
    text = stderr.read_text()
    print(text)
    lines = text.splitlines()
    assert "\x1b" not in text and "\u2028" not in text and "\x85" not in text
    forged = [entry for entry in lines if "forged" in entry]
    assert len(forged) == 1, forged
    assert not any(entry.startswith("2030-01-01") for entry in lines)
    if log_format == "json":
        records = [json.loads(entry) for entry in lines]  # every line is one JSON object
        (message,) = [r["message"] for r in records if "forged" in r["message"]]
    else:
        message = forged[0]
    assert "partner=a session=" in message
    assert " websocket closed 4000 bye\\n2030-01-01" in message
    assert "forged\\x1b[2J\\u2028\\x85end" in message


def test_escaping_keeps_uvicorn_style_args_and_tracebacks_indented() -> None:
    """Arguments stay a tuple (uvicorn's access formatter unpacks them); every control
    character is escaped; a traceback's lines are all indented."""
    from peer.logs import install_redaction

    install_redaction()
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/x\r\nINFO forged\x1b[0m\x9b", "1.1", 200),
        None,
    )
    assert isinstance(record.args, tuple) and record.args[4] == 200
    assert record.getMessage() == (
        '127.0.0.1:5 - "GET /x\\r\\nINFO forged\\x1b[0m\\x9b HTTP/1.1" 200'
    )
    try:
        raise ValueError("boom\nERROR setpeer partner=other forged")
    except ValueError:
        import sys

        record = logger.makeRecord(
            "setpeer.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    assert record.exc_text is not None
    assert all(line.startswith("  ") for line in record.exc_text.split("\n"))
    assert "boom\\nERROR setpeer" in record.exc_text
