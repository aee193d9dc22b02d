"""RFC 8936 poll, recipient side (``receive_via = "poll"``): we poll the partner.

Each request carries the answers we owe for SETs from earlier polls (POLL-11,
POLL-12, POLL-19) and asks for more; it long-polls by default (POLL-10), asks
again at once while ``moreAvailable`` (POLL-14), and backs off on errors. SETs are
verified and stored before they are acknowledged (POLL-7), duplicates are
acknowledged again (POLL-15).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

from ..auth.bounded_read import ResponseCut, bounded_request, why_failed
from ..errors import WireError
from ..protocol.media import JSON
from ..protocol.poll import PollRequest, PollResponse
from ..protocol.vocabulary import SessionKind
from .reachability import Reachability

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["run_poller"]

log = logging.getLogger("setpeer.poll")


async def run_poller(link: Link, client: httpx.AsyncClient) -> None:
    """Poll the partner for SETs until cancelled."""
    url = link.partner.poll_endpoint
    assert url is not None, "config checks require poll_endpoint for receive_via = poll"
    reach = Reachability(link, SessionKind.POLL)
    # The partner holds a long poll up to its own timeout (agreed out of band):
    # our read timeout leaves it room. The whole poll, to the last byte of the
    # answer, has the long poll and then ack_timeout (default 10 s) for the answer.
    limits = link.limits
    timeout = httpx.Timeout(limits.handshake_timeout, read=limits.long_poll_timeout + 10.0)
    deadline = limits.handshake_timeout + limits.long_poll_timeout + limits.ack_timeout
    more = False
    try:
        while True:
            await reach.wait()
            frame = await link.take_frame(max_sets=0)  # answers owed, nothing else
            ack = frame.ack if frame is not None else ()
            set_errs = frame.set_errs if frame is not None else {}
            request = PollRequest(
                max_events=link.batch_size,
                # Answers waiting go out now; otherwise wait for SETs (POLL-18).
                return_immediately=more,
                ack=ack,
                set_errs=set_errs,
            )
            try:
                response = await bounded_request(
                    client,
                    "POST",
                    url,
                    max_bytes=link.limits.max_frame_bytes,
                    deadline=deadline,
                    body_of=(200,),  # POLL-21: the body of an error is undefined
                    content=request.serialize(),
                    headers={
                        "content-type": JSON,
                        "accept": JSON,
                        # POLL-22: a request carrying error descriptions names their language.
                        **({"content-language": "en"} if set_errs else {}),
                        **link.auth_headers(),
                    },
                    timeout=timeout,
                )
            except (httpx.HTTPError, ResponseCut) as exc:
                # Over the frame size or the deadline: cut, and treated like no answer.
                log.info("partner=%s poll failed: %s", link.name, why_failed(exc))
                if frame is not None:
                    link.frame_lost(frame)
                reach.unreachable()
                more = False
                continue
            except BaseException:
                if frame is not None:
                    link.frame_lost(frame)
                raise
            reach.answered()
            if response.status_code != 200:
                # POLL-21: the body of an error is undefined; our answers may not have
                # been taken, so they are owed again.
                log.info("partner=%s poll answered HTTP %d", link.name, response.status_code)
                if frame is not None:
                    link.frame_lost(frame)
                reach.pause(link.limits.reconnect_max)
                more = False
                continue
            if frame is not None:
                await link.frame_delivered(frame)
            try:
                answer = await link.parse(PollResponse.parse, response.content)
            except WireError as exc:
                log.info("partner=%s bad poll response: %s", link.name, exc.description)
                reach.pause(link.limits.reconnect_max)
                more = False
                continue
            if answer.sets or answer.rejected:
                try:
                    await link.accept_sets(answer.sets, answer.rejected)
                except WireError as exc:
                    # Taken as a whole or not at all (keys not fetchable yet, our inbox
                    # full): nothing acknowledged, the partner serves them again (POLL-15).
                    log.info("partner=%s polled SETs not taken: %s", link.name, exc.description)
                    reach.pause(link.limits.reconnect_max)
                    more = False
                    continue
            # Ask again at once for more, or to deliver the answers for these SETs.
            more = answer.more_available or bool(answer.sets or answer.rejected)
    finally:
        reach.close()
