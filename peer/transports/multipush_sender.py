"""Multi-push, transmitter side (``send_via = "multipush"``): batches of SETs per POST.

A batch is whatever is due when a request slot frees up, up to the agreed limit
(``max_sets_per_frame``): nothing is held back to fill a batch (MP-23), and while
requests are in flight more SETs gather for the next one. SETs the answer neither
acks nor refuses stay in flight (a late ack may come, MP-18) and are retried after
``ack_timeout`` (MP-8, MP-21); while any are in flight and nothing else is due, an
empty batch collects the answers still owed (MP-3). Answers for unknown jtis are
ignored (MP-5); a jti once answered is never sent again (MP-9).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio
import httpx

from ..auth.bounded_read import ResponseCut, bounded_request, why_failed
from ..errors import WireError
from ..protocol.communication import SetErr
from ..protocol.media import JSON
from ..protocol.multipush import MultiPushRequest, MultiPushResponse
from ..protocol.push import Rejected, Retry, classify_push_response
from ..protocol.vocabulary import SessionKind
from .reachability import Reachability

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["COLLECT_INTERVAL", "CONCURRENT_BATCHES", "run_multipush_sender"]

log = logging.getLogger("setpeer.multipush")

CONCURRENT_BATCHES = 4
"""Requests in flight per partner; the first of them also collects owed answers."""

COLLECT_INTERVAL = 1.0
"""Seconds between empty batches sent to collect answers still owed (MP-3)."""


async def run_multipush_sender(link: Link, client: httpx.AsyncClient) -> None:
    """Deliver the partner's SETs by multi-push until cancelled."""
    url = link.partner.multipush_endpoint
    assert url is not None, "config checks require multipush_endpoint for send_via = multipush"
    reach = Reachability(link, SessionKind.MULTIPUSH)
    limit = _BatchLimit(link.batch_size)
    try:
        async with anyio.create_task_group() as tg:
            for i in range(CONCURRENT_BATCHES):
                tg.start_soon(_worker, link, client, url, reach, limit, i == 0)
    finally:
        reach.close()


class _BatchLimit:
    """The batch size: the agreed limit, halved after a 413 (MP-22)."""

    def __init__(self, agreed: int) -> None:
        self.size = max(1, agreed)


async def _worker(
    link: Link,
    client: httpx.AsyncClient,
    url: str,
    reach: Reachability,
    limit: _BatchLimit,
    collects: bool,
) -> None:
    while True:
        await reach.wait()
        woken = link.outbound_ready.snapshot()
        sets = link.take_sets(limit.size)
        if not sets:
            if not (collects and link.has_inflight):
                await woken.wait()
                continue
            # MP-3: SETs in flight but nothing due: ask for their answers, now and then.
            await link.wait_outbound(COLLECT_INTERVAL)
            sets = link.take_sets(limit.size)
            if not sets and not link.has_inflight:
                continue
        await _send_batch(link, client, url, reach, limit, sets)


async def _send_batch(
    link: Link,
    client: httpx.AsyncClient,
    url: str,
    reach: Reachability,
    limit: _BatchLimit,
    sets: dict[str, str],
) -> None:
    try:
        response = await bounded_request(
            client,
            "POST",
            url,
            max_bytes=link.limits.max_frame_bytes,
            # The whole exchange, to the last byte (httpx's timeouts are per read).
            deadline=link.limits.handshake_timeout + link.limits.ack_timeout,
            content=MultiPushRequest(sets).serialize(),
            headers={"content-type": JSON, "accept": JSON, **link.auth_headers()},
        )
    except (httpx.HTTPError, ResponseCut) as exc:
        # An answer over the frame size or the deadline is cut: retried like no answer.
        log.info("partner=%s multi-push failed: %s", link.name, why_failed(exc))
        link.retry_later(sets)
        reach.unreachable()
        return
    except BaseException:  # cancelled mid-request: it may or may not have arrived
        link.sets_lost(sets)
        raise
    reach.answered()
    status = response.status_code
    if 200 <= status < 300:  # 202 (-02) or 200 (-00, decision 4)
        try:
            answer = await link.parse(MultiPushResponse.parse, response.content)
        except WireError as exc:
            # Unreadable: nothing is known about these SETs; try them again later.
            log.info("partner=%s bad multi-push answer: %s", link.name, exc.description)
            link.retry_later(sets)
            return
        link.answers_received(answer.ack, answer.set_errs)
        return
    if status == 413 and len(sets) > 1:
        # MP-22: the partner's batch limit is lower than ours: halve and resend.
        limit.size = max(1, min(limit.size, len(sets)) // 2)
        log.info("partner=%s batch too large: now %d SETs per request", link.name, limit.size)
        link.sets_lost(sets)
        return
    outcome = classify_push_response(status, response.headers, response.content, now=time.time())
    if isinstance(outcome, Rejected):
        # A request-level refusal (MP-17) applies to every SET in the batch.
        refusal = SetErr(outcome.err, outcome.description)
        link.answers_received([], dict.fromkeys(sets, refusal))
        return
    assert isinstance(outcome, Retry)  # 2xx was handled above
    log.info("partner=%s multi-push to retry: %s", link.name, outcome.reason)
    if outcome.after is not None:
        reach.pause(outcome.after)
    link.retry_later(sets, not_before=time.time() + (outcome.after or 0.0))
