"""The receiver role: our stream at a partner that is an SSF transmitter (SSF 7, 8).

A real node (in process, SQLite) manages its stream at a scripted transmitter on
127.0.0.1 (tests/ssf/transmitter.py): discovery, create with push then poll,
subjects, verification with the state echoed or not (SSF-34), status changes,
delete, and a restart that keeps the stream or re-creates a lost one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from peer import Peer
from peer.config import PeerConfig, load_config
from peer.protocol.delivery_methods import RISC_POLL, RISC_PUSH
from peer.protocol.ssf_receiver import POLL_METHOD, PUSH_METHOD, VERIFICATION_EVENT
from peer.ssf.client import StreamError
from peer.ssf.receiver import ReceiverStream
from tests.peers import NodeFiles
from tests.timing import seconds

from .transmitter import ScriptedTransmitter, scripted_transmitter

pytestmark = pytest.mark.anyio

WAIT = seconds(5)
EMAIL = {"format": "email", "email": "user@example.com"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_node(
    folder: Path, transmitter: ScriptedTransmitter, extra: str = "", listen: str = "127.0.0.1:0"
) -> PeerConfig:
    """Node ``r``, whose one partner ``idp`` is the scripted transmitter."""
    me = NodeFiles("r", folder)
    if not (folder / "r.jwks.json").exists():
        me.make_keys()
    os.environ["SETPEER_TEST_SSF_TOKEN"] = transmitter.token
    text = f"""
[peer]
issuer = "{transmitter.audience}"
listen = "{listen}"
store = "sqlite:///r.db"
signing_keys = "r.jwks.json"
allow_insecure_loopback = true

[peer.app]
listen = "unix:r.sock"

[[partners]]
name = "idp"
issuer = "{transmitter.issuer}"
audience = "{transmitter.issuer}"
ssf = "transmitter"
{extra}
[partners.auth]
bearer = "env:SETPEER_TEST_SSF_TOKEN"
"""
    path = folder / "r.toml"
    path.write_text(text)
    return load_config(path)


@contextlib.asynccontextmanager
async def running(config: PeerConfig) -> AsyncIterator[tuple[Peer, ReceiverStream]]:
    async with Peer(config) as node:
        yield node, node.streams["idp"]


@pytest.fixture
async def transmitter() -> AsyncIterator[ScriptedTransmitter]:
    async with scripted_transmitter(secrets.token_urlsafe(16), "https://r.test.example") as t:
        yield t


async def test_discovery_path_inserted_and_issuer_checked(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """SSF-22: the well-known suffix goes before the issuer's path; SSF-24: an issuer
    that is not identical is refused, and nothing of the document is used."""
    config = write_node(tmp_path, transmitter)
    async with running(config) as (_, stream):
        metadata = await stream.discover()
        assert metadata.issuer == transmitter.issuer
        assert metadata.endpoint("verification_endpoint") == f"{transmitter.base}/ssf/verify"
        transmitter.issuer_override = transmitter.issuer + "/other"
        with pytest.raises(StreamError, match="issuer must be"):
            await stream.discover()
        with pytest.raises(StreamError, match="issuer must be"):
            await stream.create()
        assert transmitter.streams == {}


async def test_a_transmitter_on_the_older_drafts_is_discovered_and_asked_its_way(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """Metadata only at the legacy ``risc-configuration`` location, delivery methods
    under their RISC names: discovery falls back to it, and the stream is created with
    the method URI the transmitter advertised (docs/dialects.md)."""
    transmitter.legacy = True
    transmitter.methods = [RISC_PUSH, RISC_POLL]
    config = write_node(tmp_path, transmitter)
    async with running(config) as (_, stream):
        metadata = await stream.discover()
        assert metadata.issuer == transmitter.issuer
        assert metadata.advertised(PUSH_METHOD) == RISC_PUSH
        row = await stream.create(delivery="push")
        assert transmitter.streams[row.stream_id]["delivery"]["method"] == RISC_PUSH
    transmitter.methods = [POLL_METHOD]
    async with running(config) as (_, stream):
        await stream.delete()
        with pytest.raises(StreamError, match="does not advertise"):
            await stream.create(delivery="push")


async def test_push_stream_verified_and_wrong_state_refused(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """Create with push: our /events with a fresh token (SSF-19) the node accepts;
    verification with the state echoed is recorded, another state is answered
    invalid_state (SSF-34) and recorded as a mismatch."""
    config = write_node(tmp_path, transmitter)
    async with running(config) as (node, stream):
        row = await stream.create(description="ours")
        sent = transmitter.streams[row.stream_id]
        assert sent["delivery"]["method"] == PUSH_METHOD
        assert sent["delivery"]["endpoint_url"] == node.url + "/events"
        header = sent["delivery"]["authorization_header"]
        assert header.startswith("Bearer ") and len(header) > 40
        # The token is never at rest: only its digest is kept.
        assert header[7:] not in json.dumps(dict(row.config))
        assert "authorization_header" not in row.config["delivery"]
        assert transmitter.streams[row.stream_id]["events_requested"]  # CAEP and RISC

        await stream.verify()
        await transmitter.wait_for(lambda: len(transmitter.pushed) == 1, WAIT)
        assert transmitter.pushed[0].status == 202
        kept = await stream.row()
        assert kept is not None and kept.verification is not None
        assert kept.verification["state"] == "verified"
        assert (await node.status())["idp"]["stream"]["verification"]["state"] == "verified"
        async with anyio.create_task_group() as tg:  # the SET is in the inbox too
            async for rx in node.receive():
                assert VERIFICATION_EVENT in rx.claims["events"]
                tg.cancel_scope.cancel()
                break

        transmitter.state_override = "not-what-we-asked"
        await stream.verify()
        await transmitter.wait_for(lambda: len(transmitter.pushed) == 2, WAIT)
        refused = transmitter.pushed[1]
        assert refused.status == 400
        assert json.loads(refused.body)["err"] == "invalid_state"
        kept = await stream.row()
        assert kept is not None and kept.verification is not None
        assert kept.verification["state"] == "mismatch"

        # A token nobody was given is refused (401), not taken as the partner's.
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                node.url + "/events",
                content="x.y.z",
                headers={"authorization": "Bearer " + "A" * 43},
            )
        assert answer.status_code == 401


async def test_poll_stream_polled_and_state_checked(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """Create with poll: the node polls the endpoint_url the transmitter returned;
    a verification SET is acknowledged, one with another state is answered with
    setErrs invalid_state (SSF-34)."""
    config = write_node(tmp_path, transmitter, '[partners.stream]\ndelivery = "poll"\n')
    async with running(config) as (_, stream):
        row = await stream.create()
        assert transmitter.streams[row.stream_id]["delivery"]["method"] == POLL_METHOD
        await stream.verify()
        await transmitter.wait_for(lambda: bool(transmitter.poll_answers), WAIT)
        assert transmitter.poll_answers[0].get("ack")
        kept = await stream.row()
        assert kept is not None and kept.verification is not None
        assert kept.verification["state"] == "verified"

        transmitter.state_override = "forged"
        await stream.verify()
        await transmitter.wait_for(lambda: len(transmitter.poll_answers) == 2, WAIT)
        errs = transmitter.poll_answers[1]["setErrs"]
        assert [e["err"] for e in errs.values()] == ["invalid_state"]


async def test_subjects_status_and_delete(tmp_path: Path, transmitter: ScriptedTransmitter) -> None:
    """Add and remove a subject (SSF 8.1.3), pause and resume (SSF 8.1.2), delete
    (SSF 8.1.1.5): each kept in the store; the deleted stream's token stops working."""
    config = write_node(tmp_path, transmitter)
    async with running(config) as (node, stream):
        row = await stream.create()
        await stream.add_subject(EMAIL)
        assert transmitter.subjects[row.stream_id] == [EMAIL]
        assert await stream.subjects() == [EMAIL]
        await stream.remove_subject(EMAIL)
        assert transmitter.subjects[row.stream_id] == [] and await stream.subjects() == []

        paused = await stream.set_status("paused", "maintenance")
        assert (paused.status, paused.reason) == ("paused", "maintenance")
        assert (await node.status())["idp"]["stream"]["status"] == "paused"
        assert (await stream.read_status()).status == "paused"
        assert (await stream.set_status("enabled")).status == "enabled"
        with pytest.raises(StreamError, match="status must be"):
            await stream.set_status("off")

        token = transmitter.streams[row.stream_id]["delivery"]["authorization_header"]
        assert await stream.delete() is True
        assert transmitter.streams == {} and await stream.row() is None
        with pytest.raises(StreamError, match="create one first"):
            await stream.show()
        await anyio.sleep(seconds(1.1))  # the book of tokens is read again at most 1/s
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                node.url + "/events", content="x.y.z", headers={"authorization": token}
            )
        assert answer.status_code == 401


async def test_restart_keeps_the_stream_and_recreates_a_lost_one(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """After a restart the kept stream is read again and its token still accepted;
    a stream the transmitter lost (404) is created anew."""
    # Our /events URL is in the stream: the node comes back at the same address.
    config = write_node(tmp_path, transmitter, listen=f"127.0.0.1:{free_port()}")
    async with running(config) as (_, stream):
        first = (await stream.create()).stream_id
    async with running(config) as (_, stream):
        await transmitter.wait_for(lambda: ("GET", "/ssf/streams") in transmitter.requests, WAIT)
        await stream.verify()
        await transmitter.wait_for(lambda: len(transmitter.pushed) == 1, WAIT)
        assert transmitter.pushed[0].status == 202
        assert list(transmitter.streams) == [first]
    transmitter.streams.clear()
    async with running(config) as (_, stream):
        await transmitter.wait_for(lambda: bool(transmitter.streams), WAIT)
        again = list(transmitter.streams)[0]
        assert again != first
        with anyio.fail_after(WAIT):
            while (row := await stream.row()) is None or row.stream_id != again:  # noqa: ASYNC110
                await anyio.sleep(0.02)


async def test_transmitter_answers_checked(
    tmp_path: Path, transmitter: ScriptedTransmitter
) -> None:
    """SSF-26: a configuration whose iss is not the discovered issuer is refused;
    409 (one stream per receiver) is reported with the transmitter's words; a
    delivery method the transmitter does not advertise is not asked for."""
    config = write_node(tmp_path, transmitter)
    async with running(config) as (_, stream):
        transmitter.methods = [POLL_METHOD]
        with pytest.raises(StreamError, match="does not advertise"):
            await stream.create(delivery="push")
        transmitter.methods = [PUSH_METHOD, POLL_METHOD]
        real = transmitter.issuer
        transmitter.streams["other"] = {"stream_id": "other", "iss": real}
        with pytest.raises(StreamError, match="409"):
            await stream.create()
        transmitter.streams.clear()
        issuer = type(transmitter).issuer
        try:
            type(transmitter).issuer = property(lambda self: self.base + "/elsewhere")  # type: ignore[assignment]
            transmitter.issuer_override = real
            with pytest.raises(StreamError, match="iss must be"):
                await stream.create()
        finally:
            type(transmitter).issuer = issuer  # type: ignore[method-assign]


async def test_cli_stream_commands(tmp_path: Path, transmitter: ScriptedTransmitter) -> None:
    """``setpeer stream``: JSON out; usage problems exit 2, the transmitter's exit 1."""
    config = write_node(tmp_path, transmitter)
    path = str(tmp_path / "r.toml")

    async def cli(*args: str) -> tuple[int, Any, str]:
        result = await anyio.run_process(
            [sys.executable, "-m", "peer", "stream", *args, "-c", path, "--partner", "idp"],
            check=False,
            env={**os.environ},
        )
        out = result.stdout.decode()
        return result.returncode, json.loads(out) if out.strip() else None, result.stderr.decode()

    code, found, _ = await cli("discover")
    assert code == 0 and found["issuer"] == transmitter.issuer
    code, created, _ = await cli("create", "--delivery", "poll", "--description", "cli")
    assert code == 0 and created["status"] == "enabled"
    assert created["config"]["delivery"]["method"] == POLL_METHOD
    code, shown, _ = await cli("pause", "--reason", "night")
    assert code == 0 and (shown["status"], shown["reason"]) == ("paused", "night")
    code, _, err = await cli("add-subject", "--subject", "[1]")
    assert code == 2 and "JSON object" in err
    code, _, err = await cli("create")
    assert code == 1 and "kept already" in err and err.count("\n") == 1
    async with running(config) as (node, _):  # the node sees what the command did
        assert (await node.status())["idp"]["stream"]["status"] == "paused"
    table = await anyio.run_process(
        [sys.executable, "-m", "peer", "status", "-c", path], check=False
    )
    assert f"stream idp: {created['stream_id']} paused (night)" in table.stdout.decode()
    code, done, _ = await cli("delete")
    assert code == 0 and done == {"deleted": True, "existed": True}
    bad = subprocess.run(
        [sys.executable, "-m", "peer", "stream", "nonsense", "-c", path, "--partner", "idp"],
        capture_output=True,
        check=False,
    )
    assert bad.returncode == 2
