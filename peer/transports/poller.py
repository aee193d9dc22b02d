"""RFC 8936 poll, recipient side (``receive_via = "poll"``): we poll the partner.

Each request carries the answers we owe for SETs from earlier polls (POLL-11,
POLL-12, POLL-19) and asks for more; it long-polls by default (POLL-10), asks
again at once while ``moreAvailable`` (POLL-14), and backs off on errors. SETs are
verified and stored before they are acknowledged (POLL-7), duplicates are
acknowledged again (POLL-15).

Transmitters on the older drafts (``[partners.dialect]``, docs/dialects.md): with
``poll_mode = "short"`` an empty poll is answered at once and the next waits
``poll_interval``; ``"auto"`` (the default) switches to that when a long poll is
answered 400 or 404. Acknowledgements go out under ``ack_member``. A transmitter
that serves again only SETs we have already answered (it ignores our ``setErrs``,
or reads acknowledgements elsewhere) is asked again after a growing pause, not at
once. The session shows ``poll`` only while the endpoint answers polls with poll
responses; an error status or an unreadable body shows it ``down``.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import httpx

from ..auth.bounded_read import ResponseCut, bounded_request, why_failed
from ..errors import WireError
from ..protocol.media import JSON
from ..protocol.poll import PollRequest, PollResponse
from ..protocol.retry import RetryPolicy
from ..protocol.vocabulary import SessionKind
from .reachability import Reachability

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["REMEMBERED_JTIS", "Repeats", "run_poller"]

log = logging.getLogger("setpeer.poll")

REMEMBERED_JTIS: Final = 10_000
"""jtis of served SETs remembered to recognise a transmitter serving them again."""

# What older transmitters answer to a long poll they do not support.
_LONG_POLL_REFUSED: Final = (400, 404)


class Repeats:
    """Recognises a transmitter that serves only SETs it served before, and how long
    to wait before asking it again: a jittered exponential pause, bounded.

    Args:
        policy: the pause after 1, 2, ... repeats in a row.
        remembered: how many jtis are kept (the oldest forgotten first).
    """

    def __init__(self, policy: RetryPolicy, remembered: int = REMEMBERED_JTIS) -> None:
        self._policy = policy
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remembered = remembered
        self._rng = random.Random()
        self.in_a_row = 0

    def served(self, jtis: Iterable[str]) -> float:
        """A response served ``jtis``; the pause before the next poll (0: none)."""
        fresh = False
        for jti in jtis:
            if jti in self._seen:
                self._seen.move_to_end(jti)
            else:
                fresh = True
                self._seen[jti] = None
                if len(self._seen) > self._remembered:
                    self._seen.popitem(last=False)
        if fresh:
            self.in_a_row = 0
            return 0.0
        self.in_a_row += 1
        return self._policy.delay(self.in_a_row, self._rng)


async def run_poller(link: Link, client: httpx.AsyncClient, url: str | None = None) -> None:
    """Poll the partner for SETs until cancelled.

    Args:
        link: the partner's Link.
        client: the HTTP client (the partner's TLS context).
        url: where to poll instead of the partner's ``poll_endpoint``: the endpoint
            an SSF transmitter returned for our poll stream.
    """
    url = url or link.partner.poll_endpoint
    assert url is not None, "config checks require poll_endpoint for receive_via = poll"
    dialect = link.partner.dialect
    reach = Reachability(link, SessionKind.POLL)
    # The partner holds a long poll up to its own timeout (agreed out of band):
    # our read timeout leaves it room. The whole poll, to the last byte of the
    # answer, has the long poll and then ack_timeout (default 10 s) for the answer.
    limits = link.limits
    timeout = httpx.Timeout(limits.handshake_timeout, read=limits.long_poll_timeout + 10.0)
    deadline = limits.handshake_timeout + limits.long_poll_timeout + limits.ack_timeout
    repeats = Repeats(RetryPolicy(initial=limits.reconnect_initial, maximum=limits.reconnect_max))
    short = dialect.poll_mode == "short"
    more = False
    try:
        while True:
            await reach.wait()
            frame = await link.take_frame(max_sets=0)  # answers owed, nothing else
            ack = frame.ack if frame is not None else ()
            set_errs = frame.set_errs if frame is not None else {}
            request = PollRequest(
                max_events=link.batch_size,
                # Answers waiting go out now; otherwise wait for SETs (POLL-18),
                # unless the partner serves short polls only.
                return_immediately=more or short,
                ack=ack,
                set_errs=set_errs,
                ack_member=dialect.ack_member,
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
            if response.status_code != 200:
                # POLL-21: the body of an error is undefined; our answers may not have
                # been taken, so they are owed again.
                if frame is not None:
                    link.frame_lost(frame)
                more = False
                if (
                    dialect.poll_mode == "auto"
                    and not request.return_immediately
                    and response.status_code in _LONG_POLL_REFUSED
                ):
                    # Older transmitters refuse long polls: ask again at once, short.
                    log.warning(
                        "partner=%s answered a long poll with HTTP %d: short polls every"
                        " %g s from now on (poll_mode = auto)",
                        link.name,
                        response.status_code,
                        dialect.poll_interval,
                    )
                    short = True
                    continue
                log.info("partner=%s poll answered HTTP %d", link.name, response.status_code)
                reach.refused(link.limits.reconnect_max)
                continue
            if frame is not None:
                await link.frame_delivered(frame)
            try:
                answer = await link.parse(PollResponse.parse, response.content)
            except WireError as exc:
                log.info("partner=%s bad poll response: %s", link.name, exc.description)
                reach.refused(link.limits.reconnect_max)
                more = False
                continue
            reach.answered()
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
                pause = repeats.served([*answer.sets, *answer.rejected])
                if pause > 0:
                    # Only SETs it served before: it ignores our answers. Asking again
                    # at once would have it serve them again at once, forever.
                    if repeats.in_a_row == 1:
                        log.info(
                            "partner=%s serves again SETs already answered; polls slow down",
                            link.name,
                        )
                    reach.pause(pause)
            # Ask again at once for more, or to deliver the answers for these SETs.
            more = answer.more_available or bool(answer.sets or answer.rejected)
            if short and not more:
                reach.pause(dialect.poll_interval)
    finally:
        reach.close()
