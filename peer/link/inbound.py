"""The inbound pipeline: a partner's SETs verified, stored, and counted.

Valid SETs and every answer owed are committed in one transaction before anyone is
told; a duplicate ``(iss, jti)`` is not stored again but still acknowledged. A SET
signed with a key we do not know makes the partner's keys be fetched again once (a
rotation loses no SET). The signature checks of a large frame run in a worker thread
(they release the GIL), beside the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import anyio

from ..errors import Overloaded, SETRejected, StoreError, WireError
from ..protocol.communication import SetErr
from ..protocol.limits import FrameLimits
from ..signal import Signal
from ..store.base import Answer, InboundNew, Store
from ..tokens.verify import UnknownKey, Verifier
from .fair_share import FairShare
from .outcomes import LinkCounters, Observer, safe_description, safe_jti
from .partner_limits import PartnerGuard

if TYPE_CHECKING:
    from ..auth.partner_keys import RemoteKeys

T = TypeVar("T")

__all__ = [
    "PARSE_IN_THREAD",
    "REFUSALS_LOG_INTERVAL",
    "STORE_WAIT",
    "VERIFY_IN_THREAD",
    "InboundPipeline",
    "RefusalLog",
    "SetCheck",
    "Verdicts",
]

# Verdicts, SETs to store, jtis with an unknown kid, (jti, warning) of lax acceptances.
_Checked = tuple[dict[str, "SetErr | None"], list[InboundNew], list[str], list[tuple[str, str]]]

log = logging.getLogger("setpeer.link")

PARSE_IN_THREAD = 64 * 1024
"""Frames of at least this many bytes are parsed in a worker thread (a 1 MiB frame
costs milliseconds, more for hostile shapes)."""

VERIFY_IN_THREAD = 8
"""Frames with at least this many SETs are verified in a worker thread; a handful
costs less inline than the hand-off (~30 µs) and keeps batch-1 latency low."""

STORE_WAIT = 30.0
"""Seconds a frame's SETs may take to be stored once handed to the store, even when
their session ends meanwhile (then they are still counted)."""

Verdicts = dict[str, SetErr | None]
"""The verdict per inbound jti: None (accepted, or a duplicate) or the error."""

SetCheck = Callable[[Sequence[InboundNew]], Awaitable[Mapping[str, SetErr]]]
"""A check of verified SETs before they are stored: the ones it refuses, by jti."""


REFUSALS_LOG_INTERVAL = 10.0
"""Seconds between two log lines about one partner's refused SETs; the refusals
between them are summed up by error (all are counted in the metrics)."""


class RefusalLog:
    """One partner's refused SETs, logged at a bounded rate: the first at once, then
    one line per :data:`REFUSALS_LOG_INTERVAL` with the counts by error since and
    the first of those refusals (jti, err, description).

    ``verb`` says what happened to them: ``rejected``, or for SETs a lax dialect
    setting let through, ``accepted despite`` (the error they would have met)."""

    def __init__(
        self, name: str, clock: Callable[[], float] = time.monotonic, verb: str = "rejected"
    ) -> None:
        self.name = name
        self.verb = verb
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._first: tuple[str, str, str] | None = None
        self._last = ""
        self._since = clock()
        self._next = 0.0

    def refused(self, jti: str, err: str, description: str = "") -> None:
        self._counts[err] = self._counts.get(err, 0) + 1
        if self._first is None:
            self._first = (jti, err, description)
        self._last = jti
        now = self._clock()
        if now < self._next:
            return
        total = sum(self._counts.values())
        counts = " ".join(f"{safe_jti(e)}={n}" for e, n in sorted(self._counts.items()))
        first_jti, first_err, first_description = self._first
        if total == 1:
            log.info(
                "partner=%s jti=%s %s err=%s description=%s",
                self.name,
                safe_jti(jti),
                self.verb,
                safe_jti(err),
                safe_description(description),
                extra={"partner": self.name, "jti": safe_jti(jti), "err": err}
                | {"description": description[:200]},
            )
        else:
            log.info(
                "partner=%s %s %d SETs in %.0f s: %s (first jti=%s err=%s"
                " description=%s; last jti=%s)",
                self.name,
                self.verb,
                total,
                now - self._since,
                counts,
                safe_jti(first_jti),
                safe_jti(first_err),
                safe_description(first_description),
                safe_jti(self._last),
                extra={"partner": self.name, "jti": safe_jti(first_jti), "err": first_err}
                | {"description": first_description[:200], "count": total},
            )
        self._counts.clear()
        self._first = None
        self._since = now
        self._next = now + REFUSALS_LOG_INTERVAL


class InboundPipeline:
    """Takes in one partner's SETs.

    Args:
        name: the partner.
        store: the node's store.
        verifier: checks the partner's SETs.
        guard: the partner's inbound limits (rate charged, backlog counted).
        counters: the partner's counters (``received``).
        inbox: set when a new SET is stored (wakes ``receive()``).
        remote_keys: the partner's keys from its ``jwks_uri``, if it has one.
        observer: told how long each store write took.
        share: the node's turns at CPU-heavy work (a private one by default).
        on_refused: told each SET refused, ``(jti, err, description)`` (the Link keeps
            it among its failures and in the store's ring).
    """

    def __init__(
        self,
        *,
        name: str,
        store: Store,
        verifier: Verifier,
        guard: PartnerGuard,
        counters: LinkCounters,
        inbox: Signal,
        remote_keys: RemoteKeys | None = None,
        observer: Observer | None = None,
        share: FairShare | None = None,
        on_refused: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.name = name
        self.share = FairShare() if share is None else share
        self.verifier = verifier
        self.guard = guard
        self.remote_keys = remote_keys
        self.rejected: dict[str, int] = {}  # inbound SETs refused, by error code
        # Set by whoever knows more about the partner's SETs than their signature
        # (an SSF stream checks the state of verification SETs, SSF-34).
        self.set_check: SetCheck | None = None
        self._store = store
        self._counters = counters
        self._inbox = inbox
        self._observer = observer
        self._refusals = RefusalLog(name)
        # SETs a lax [partners.dialect] setting let through, logged the same way.
        self._lax = RefusalLog(name, verb="accepted despite")
        self._on_refused = on_refused

    def count_rejected(self, err: str) -> None:
        """One inbound SET refused with ``err`` (``setpeer_sets_rejected_total``)."""
        self.rejected[err] = self.rejected.get(err, 0) + 1

    def refused(self, jti: str, err: str, description: str) -> None:
        """One inbound SET refused: counted, logged (at a bounded rate) and kept."""
        self.count_rejected(err)
        self._refusals.refused(jti, err, description)
        if self._on_refused is not None:
            self._on_refused(jti, err, description)

    async def accept(
        self,
        sets: Mapping[str, str],
        rejected: Mapping[str, SetErr] | None,
        *,
        owe: bool,
    ) -> Verdicts:
        """Verify and store ``sets``; ``rejected`` are refused by the codec already.

        ``owe``: their answers are stored as owed (sent in a later frame or poll).

        Raises:
            Overloaded: nothing could be stored (refused whole, retryable); or the
                partner's keys cannot be fetched yet.
        """
        self.guard.received(len(sets) + len(rejected or {}))
        remote = self.remote_keys
        if sets and remote is not None and not remote.loaded:
            await remote.refetch()
            remote.require_loaded()  # still none: refused, retryable (503/1013)
        verdicts, items, unknown, lax = await self._verify(sets)
        if unknown and remote is not None and await remote.refetch():
            # A kid we do not know: the partner may have rotated its keys. Check
            # these SETs again with the keys fetched now.
            again, more, _, more_lax = await self._verify({jti: sets[jti] for jti in unknown})
            verdicts.update(again)
            items.extend(more)
            lax.extend(more_lax)
        for jti, warning in lax:
            self._lax.refused(jti, "invalid_request", warning)
        if items and self.set_check is not None:
            refused = await self.set_check(items)
            if refused:
                items = [item for item in items if item.jti not in refused]
                verdicts.update(refused)
        for jti, refusal in (rejected or {}).items():
            verdicts[jti] = refusal
        answers = (
            [
                Answer(jti, None if e is None else e.err, None if e is None else e.description)
                for jti, e in verdicts.items()
            ]
            if owe
            else []
        )
        for jti, err in verdicts.items():
            if err is not None:
                self.refused(jti, err.err, err.description)
        await self._store_shielded(items, answers)
        return verdicts

    async def _store_shielded(self, items: list[InboundNew], answers: list[Answer]) -> None:
        """Commit SETs and answers. Shielded: SETs handed to the store are committed
        even if their session dies meanwhile, and what was stored is counted and
        handed to the application. Bounded: a store that does not answer within
        :data:`STORE_WAIT` seconds is refused like a failed one."""
        started = time.monotonic()
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(STORE_WAIT):
                    fresh = await self._store.accept_inbound(self.name, items, answers)
            except (StoreError, TimeoutError) as exc:
                # Not stored, so not acknowledged: refused whole and retryable (503 /
                # close 1013); the partner keeps the SETs and sends them again.
                why = str(exc) or f"no answer in {STORE_WAIT:g} s"
                log.warning("partner=%s cannot store its SETs: %s", self.name, why)
                raise Overloaded("cannot store SETs now, try again", retry_after=1.0) from exc
            new = sum(1 for flag in fresh if flag)
            self.guard.stored(new)
            if new:
                self._counters.received += new
                self._inbox.set()
        if self._observer is not None:
            self._observer.store_time("accept_inbound", time.monotonic() - started)

    async def parse(self, parser: Callable[..., T], data: str | bytes, limits: FrameLimits) -> T:
        """``parser(data, limits=limits)``. A large frame is parsed in a worker thread,
        with a turn of the node's share, so that one partner's stream of large frames
        cannot hold the event loop.

        A refusal comes back from the thread bare (:func:`_parse_apart`) and is raised
        here, so the frame's copies are freed at once, not by a later garbage collection.
        """
        if len(data) < PARSE_IN_THREAD:
            return parser(data, limits=limits)
        await self.share.acquire(self.name)
        try:
            parsed, refused = await anyio.to_thread.run_sync(_parse_apart, parser, data, limits)
        finally:
            self.share.release()
        if refused is None:
            return cast(T, parsed)
        try:
            raise refused
        finally:
            del refused  # the local would make a cycle with the traceback

    async def _verify(self, sets: Mapping[str, str]) -> _Checked:
        """Verify with a turn of the node's share: one partner's flood of SETs to check
        cannot starve another's (see :mod:`.fair_share`)."""
        await self.share.acquire(self.name)
        try:
            if len(sets) >= VERIFY_IN_THREAD:
                # The signature checks release the GIL: a frame's worth runs in a
                # worker thread beside the event loop, on the other core.
                return await anyio.to_thread.run_sync(self._verify_all, sets)
            return self._verify_all(sets)
        finally:
            self.share.release()

    def _verify_all(self, sets: Mapping[str, str]) -> _Checked:
        """Verify each SET: the verdict per jti, the SETs to store, the jtis whose
        ``kid`` no key of the partner has (worth a key refetch), and what lax
        dialect settings let through (logged by the caller, on the event loop)."""
        now = time.time()
        verdicts: Verdicts = {}
        items: list[InboundNew] = []
        unknown: list[str] = []
        lax: list[tuple[str, str]] = []
        for jti, token in sets.items():
            try:
                verified = self.verifier.verify(token, now=now, expected_jti=jti)
            except SETRejected as exc:
                verdicts[jti] = SetErr(exc.err, exc.description)
                if isinstance(exc, UnknownKey):
                    unknown.append(jti)
                continue
            verdicts[jti] = None
            items.append(InboundNew(verified.iss, jti, token, verified.claims, parsed=True))
            lax.extend((jti, warning) for warning in verified.warnings)
        return verdicts, items, unknown, lax


def _parse_apart(
    parser: Callable[..., T], data: str | bytes, limits: FrameLimits
) -> tuple[T | None, WireError | None]:
    """``parser(data, limits=limits)`` in a worker thread: the result, or the refusal.

    A refusal raised through the thread hand-off would keep its traceback in a reference
    cycle (the hand-off's frame holds the future, which holds the exception), and the
    traceback's frames hold the frame being parsed and the parser's copies of it: a few
    MiB per refused frame, freed only when the garbage collector next runs, which a
    flood of large malformed frames outpaces. So the refusal is returned with no
    traceback and no chained exception; its error code and description are all it needs.
    """
    try:
        return parser(data, limits=limits), None
    except WireError as exc:
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        return None, exc
