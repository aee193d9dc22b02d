"""Reach the running node through its local interface, for commands that prefer the
live node to the store (``receive``, ``status``)."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from ..config import PeerConfig
from ..errors import NodeUnavailable

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["TOKEN_ENV", "running_node"]

TOKEN_ENV = "SETPEER_APP_TOKEN"
"""The environment variable a command takes the local interface's bearer token from
(required on TCP, or when the socket's node sets ``token_sha256``)."""


async def running_node(config: PeerConfig) -> Client | None:
    """An open :class:`peer.Client` of the node serving ``config``'s local interface,
    or None when no node answers there (it is not running, or serves none)."""
    from ..local.unix import UnixPath

    if config.app.listen is None:
        return None
    if config.app_socket is not None:
        where = UnixPath(config.app_socket)
        try:
            if where.stat() is None or not where.answers():
                return None
        finally:
            where.close()
        url = f"unix:{config.app_socket}"
    else:
        host, _, port = config.app.listen.rpartition(":")
        try:  # a plain connect first: no node, no client library to load
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
        except OSError:
            return None
        url = "http://" + config.app.listen
    from ..client import Client  # only with a node to talk to: status starts faster

    client = Client(url, token=os.environ.get(TOKEN_ENV))
    await client.__aenter__()
    try:
        about = await client.node()
    except NodeUnavailable:
        await client.aclose()
        return None
    except BaseException:
        await client.aclose()
        raise
    if about.get("issuer") != config.issuer:
        # Another node's socket (two configs in one folder sharing the default
        # app.sock): not ours to read or mark done; ours, if it runs, serves none.
        await client.aclose()
        return None
    return client
