"""Our stream at an SSF transmitter, kept going inside a running node.

For each partner with ``ssf = "transmitter"`` the node runs :func:`run_stream`:

- the partner's SETs pass :meth:`ReceiverStream.check_sets` before they are stored
  (verification state, SSF-34; stream-updated status, SSF-28);
- after a start the kept stream is read again at the partner and created anew if the
  transmitter lost it (404), retried with backoff while the partner is unreachable;
- without ``jwks``/``jwks_uri`` in the config, the partner's keys come from the
  ``jwks_uri`` of its metadata;
- while the kept stream is a poll stream that is not disabled, its ``endpoint_url``
  is polled (in place of ``poll_endpoint``). The kept stream is read again every
  :data:`WATCH_INTERVAL` seconds, so a stream the ``setpeer stream`` command
  creates, changes or deletes is followed without a restart.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Final

import anyio

from ..auth.partner_keys import RemoteKeys
from ..errors import PeerError
from ..store.base import StreamRow
from ..transports.adapters import run_stream_poller
from ..transports.dialer import run_dialer
from .receiver import ReceiverStream, poll_url, pushpull_url

if TYPE_CHECKING:
    from ..link import Link

__all__ = ["RESTORE_BACKOFF", "WATCH_INTERVAL", "run_stream"]

log = logging.getLogger("setpeer.ssf")

WATCH_INTERVAL: Final = 1.0
"""Seconds between two readings of the kept stream (another process may change it)."""
RESTORE_BACKOFF: Final = (1.0, 60.0)
"""First and longest wait between attempts to reach the transmitter after a start."""


async def run_stream(stream: ReceiverStream, link: Link) -> None:
    """Keep ``stream`` going for ``link``'s partner until cancelled."""
    link.pipeline.set_check = stream.check_sets
    async with anyio.create_task_group() as tg:
        tg.start_soon(_restore, stream, link, tg)
        await _follow(stream, link)


async def _restore(stream: ReceiverStream, link: Link, tg: anyio.abc.TaskGroup) -> None:
    wait = RESTORE_BACKOFF[0]
    while True:
        try:
            metadata = await stream.discover()
            partner = link.partner
            if partner.jwks is None and partner.jwks_uri is None and link.remote_keys is None:
                if metadata.jwks_uri is None:
                    log.warning(
                        "partner=%s advertises no jwks_uri: its SETs cannot be checked", stream.name
                    )
                else:
                    keyed = dataclasses.replace(partner, jwks_uri=metadata.jwks_uri)
                    keys = RemoteKeys(keyed, link.pipeline.verifier.keys)
                    link.pipeline.remote_keys = keys
                    tg.start_soon(keys.run)
            await stream.restore()
            return
        except PeerError as exc:
            log.warning(
                "partner=%s stream not restored (again in %.0f s): %s", stream.name, wait, exc
            )
        await anyio.sleep(wait)
        wait = min(wait * 2, RESTORE_BACKOFF[1])


async def _follow(stream: ReceiverStream, link: Link) -> None:
    """Poll the kept poll stream's endpoint, or keep a push-pull session to the kept
    push-pull stream's, while there is one, following changes."""
    following: tuple[str, str] | None = None
    scope: anyio.CancelScope | None = None
    async with anyio.create_task_group() as tg:
        while True:
            try:
                row = await stream.row()
            except PeerError:
                await anyio.sleep(WATCH_INTERVAL)
                continue  # the store is away: keep going as is
            wanted = _wanted(row)
            if wanted != following:
                if scope is not None:
                    scope.cancel()
                    scope = None
                following = wanted
                if wanted is not None:
                    scope = anyio.CancelScope()
                    tg.start_soon(_connect, scope, link, *wanted)
                    log.info("partner=%s %s its stream at %s", stream.name, *wanted)
            await anyio.sleep(WATCH_INTERVAL)


def _wanted(row: StreamRow | None) -> tuple[str, str] | None:
    """``("polling", url)`` or ``("dialing", url)`` for the kept stream, or None."""
    if row is None or row.status == "disabled":
        return None
    if (url := poll_url(row)) is not None:
        return "polling", url
    if (url := pushpull_url(row)) is not None:
        return "dialing", url
    return None


async def _connect(scope: anyio.CancelScope, link: Link, how: str, url: str) -> None:
    with scope:
        if how == "polling":
            await run_stream_poller(link, url)
        else:
            await run_dialer(link, endpoint=url)
