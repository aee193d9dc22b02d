"""Two transmitter nodes on one PostgreSQL database serve the same streams: a stream a
receiver created through one running node is read, delivered to and deleted through the
other within a second (SSF 8;
the RISC push method URI of the older drafts taken as push, docs/dialects.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from peer import Peer
from peer.protocol.delivery_methods import RISC_PUSH
from tests.adapters.fake_partner import fake_partner
from tests.peers import SESSION_REVOKED
from tests.store.conftest import _pg_schemas, pg_schema_url  # noqa: F401 (fixtures)
from tests.timing import seconds

from .test_transmitter import Setup, accept_all, create, pushed, until


@pytest.mark.slow
async def test_two_nodes_on_one_database_serve_the_same_stream(
    tmp_path: Path,
    pg_schema_url: str,  # noqa: F811
) -> None:
    setup = Setup(tmp_path)
    config = dataclasses.replace(setup.config(), store=pg_schema_url)
    async with fake_partner(accept_all) as fake:
        delivery = {
            "method": RISC_PUSH,
            "endpoint_url": fake.url + "/events",
            "authorization_header": "Bearer rx-secret",
        }
        async with (
            Peer(config) as first,
            setup.client(first) as b,
            Peer(config) as second,
            setup.client(second) as b2,
        ):
            made = await create(b, delivery=delivery)
            sid = made["stream_id"]
            assert made["delivery"]["method"] == RISC_PUSH
            # The running second node takes the stream up from the store.
            params = {"stream_id": sid}
            with anyio.fail_after(seconds(5)):
                while (read := await b2.get("/ssf/stream", params=params)).status_code == 404:  # noqa: ASYNC110 - another node writes the store
                    await anyio.sleep(0.05)
            assert read.status_code == 200 and read.json() == made
            jti = await second.publish(
                "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u"}
            )
            await until(lambda: jti in [c["jti"] for c in pushed(fake)])
            assert all(
                call.headers["authorization"] == "Bearer rx-secret"
                for call in fake.paths("/events")
            )
            # Deleted through the first: the second stops serving it too.
            assert (await b.delete("/ssf/stream", params=params)).status_code == 204
            with anyio.fail_after(seconds(5)):
                while (await b2.get("/ssf/stream", params=params)).status_code != 404:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
