"""Two transmitter nodes on one PostgreSQL database serve the same streams: a stream a
receiver created through one node is read, and delivered to, through the other (SSF 8;
the RISC push method URI of the older drafts taken as push, docs/dialects.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from peer import Peer
from peer.protocol.delivery_methods import RISC_PUSH
from tests.adapters.fake_partner import fake_partner
from tests.peers import SESSION_REVOKED
from tests.store.conftest import _pg_schemas, pg_schema_url  # noqa: F401 (fixtures)

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
        async with Peer(config) as first, setup.client(first) as b:
            made = await create(b, delivery=delivery)
            sid = made["stream_id"]
            assert made["delivery"]["method"] == RISC_PUSH
            async with Peer(config) as second, setup.client(second) as b2:
                read = await b2.get("/ssf/stream", params={"stream_id": sid})
                assert read.status_code == 200 and read.json() == made
                jti = await second.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u"}
                )
                await until(lambda: jti in [c["jti"] for c in pushed(fake)])
                assert all(
                    call.headers["authorization"] == "Bearer rx-secret"
                    for call in fake.paths("/events")
                )
