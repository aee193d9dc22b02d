"""RFC 8935 push, transmitter side (``send_via = "push"``): one SET per POST.

Several POSTs are in flight per partner over one keep-alive connection pool; each
outcome goes back to the Ledger (``classify_push_response`` decides, PUSH-12..22):
2xx acks the SET, a 400 with an error code fails it with the partner's code, and
everything a later attempt may fix (5xx, 429 and its ``Retry-After``, timeouts,
connection errors, an unreadable answer) retries with backoff up to the cap.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio
import httpx

from ..auth.bounded_read import ResponseCut, bounded_request, why_failed
from ..protocol.communication import SetErr
from ..protocol.media import JSON, SECEVENT_JWT
from ..protocol.push import Accepted, Rejected, classify_push_response
from ..protocol.vocabulary import SessionKind
from .reachability import Reachability

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["CONCURRENT_PUSHES", "run_push_sender"]

log = logging.getLogger("setpeer.push")

CONCURRENT_PUSHES = 8
"""POSTs in flight per partner: one at a time would cost a round trip per SET."""


async def run_push_sender(link: Link, client: httpx.AsyncClient) -> None:
    """Deliver the partner's SETs by RFC 8935 push until cancelled."""
    url = link.partner.push_endpoint
    assert url is not None, "config checks require push_endpoint for send_via = push"
    reach = Reachability(link, SessionKind.PUSH)
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(min(CONCURRENT_PUSHES, link.window)):
                tg.start_soon(_worker, link, client, url, reach)
    finally:
        reach.close()


async def _worker(link: Link, client: httpx.AsyncClient, url: str, reach: Reachability) -> None:
    # The whole exchange, to the last byte of the answer (httpx's timeouts are per read).
    deadline = link.limits.handshake_timeout + link.limits.ack_timeout
    while True:
        await reach.wait()
        woken = link.outbound_ready.snapshot()
        sets = link.take_sets(1)
        if not sets:
            await woken.wait()
            continue
        [(jti, token)] = sets.items()
        try:
            response = await bounded_request(
                client,
                "POST",
                url,
                max_bytes=link.limits.max_frame_bytes,
                deadline=deadline,
                content=token.encode("ascii"),
                headers={"content-type": SECEVENT_JWT, "accept": JSON, **link.auth_headers()},
            )
        except (httpx.HTTPError, ResponseCut) as exc:
            # An answer over the frame size or the deadline is cut: retried like no answer.
            log.info("partner=%s push failed: %s", link.name, why_failed(exc))
            link.retry_later([jti])
            reach.unreachable()
            continue
        except BaseException:  # cancelled mid-request: it may or may not have arrived
            link.sets_lost([jti])
            raise
        reach.answered()
        outcome = classify_push_response(
            response.status_code, response.headers, response.content, now=time.time()
        )
        if isinstance(outcome, Accepted):
            link.answers_received([jti], {})
        elif isinstance(outcome, Rejected):
            link.answers_received([], {jti: SetErr(outcome.err, outcome.description)})
        else:
            log.info("partner=%s push to retry: %s", link.name, outcome.reason)
            if outcome.after is not None:
                reach.pause(outcome.after)
            link.retry_later([jti], not_before=time.time() + (outcome.after or 0.0))
