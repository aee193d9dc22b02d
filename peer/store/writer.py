"""Group commit, for every durable backend: many writes, one transaction.

A write is a small function on the backend's connection. Writes made in one
event-loop turn are handed to the writer as one list once every task that is ready
has run; while a transaction commits, more turns queue up, and the writer takes all
of them (up to :data:`MAX_GROUP` writes) into the next transaction. So 1,000
concurrent ``publish`` calls cost a handful of commits, never one fsync each
(docs/decisions.md). Consecutive enqueues with one lease become one statement
(:func:`runs`).

The backend supplies ``commit(batch)``: one transaction for the batch, returning
one ``(ok, value)`` per write, a failing write's value being its
:class:`~peer.errors.StoreError`. If one write fails (a duplicate jti) the backend
redoes the batch with one savepoint per write, so the others still commit.

Two drivers: :class:`ThreadWriter` runs ``commit`` in a thread of its own (SQLite's
blocking driver; writes may come from several event loops), :class:`TaskWriter` as a
task on the event loop that opened the store (psycopg's async driver).
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

import anyio.to_thread

from ..errors import StoreError
from .checks import StoreClosed

__all__ = ["MAX_GROUP", "Result", "TaskWriter", "ThreadWriter", "Write", "runs"]

F = TypeVar("F")

MAX_GROUP = 2048
"""Writes per transaction, about: bounds one commit's latency."""

Result: TypeAlias = tuple[bool, Any]
"""``(True, value)`` for a write that committed, ``(False, StoreError)`` for one that failed."""


@dataclasses.dataclass(slots=True)
class Write(Generic[F]):
    """One call's write, waiting for its transaction.

    ``rows`` and ``lease`` mark an enqueue: its rows may join the enqueues beside
    it in one statement (:func:`runs`). ``partners`` are woken after the commit.
    """

    fn: F
    durable: bool
    partners: frozenset[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    rows: list[tuple[Any, ...]] | None = None
    lease: tuple[Any, float] | None = None


def runs(
    batch: Sequence[Write[F]],
) -> Iterator[tuple[Sequence[Write[F]], list[tuple[Any, ...]] | None]]:
    """The batch in order, as ``(writes, rows)``.

    Consecutive enqueues with the same lease come as one run with their rows joined
    (one INSERT for them all); any other write comes alone, rows None.
    """
    i = 0
    while i < len(batch):
        rows = batch[i].rows
        if rows is None:
            yield batch[i : i + 1], None
            i += 1
            continue
        lease, merged, j = batch[i].lease, list(rows), i + 1
        while j < len(batch) and (more := batch[j].rows) is not None and batch[j].lease == lease:
            merged += more
            j += 1
        yield batch[i:j], merged
        i = j


class _Turns(Generic[F]):
    """Writes collected per event-loop turn, handed over to a queue of turns."""

    def __init__(self) -> None:
        self.closed = False
        self.failure: StoreError | None = None
        """Why the last transaction failed as a whole (None once one commits): the
        store cannot write, whatever a read says (readiness asks for it)."""
        self._turns: dict[asyncio.AbstractEventLoop, list[Write[F]]] = {}
        self._queue: queue.SimpleQueue[list[Write[F]] | None] = queue.SimpleQueue()

    def submit(
        self,
        fn: F,
        *,
        durable: bool,
        partners: frozenset[str] = frozenset(),
        rows: list[tuple[Any, ...]] | None = None,
        lease: tuple[Any, float] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``fn`` for the next transaction; the future settles once it committed.

        Raises:
            StoreError: the store is closed.
        """
        if self.closed:
            raise StoreClosed("the store is closed")
        loop = self._check_loop()
        future: asyncio.Future[Any] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            # The first write of this turn: hand the whole turn over once every task
            # that is ready now has run (call_soon runs after them).
            turn = self._turns[loop] = []
            loop.call_soon(self._hand_over, loop)
        turn.append(Write(fn, durable, partners, loop, future, rows, lease))
        return future

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        turn = self._turns.pop(loop, None)
        if turn:
            self._queue.put(turn)
            self._handed_over()

    def _handed_over(self) -> None:
        """A turn (or the end) is in the queue: the writer may have to wake up."""

    def _close_queue(self) -> None:
        """Refuse new writes; the ones submitted already commit, then the writer ends."""
        self.closed = True
        for loop in list(self._turns):
            self._hand_over(loop)
        self._queue.put(None)
        self._handed_over()

    def _batch(self, first: list[Write[F]]) -> tuple[list[Write[F]], bool]:
        """``first`` and every turn queued behind it, up to :data:`MAX_GROUP` writes;
        True if the end was reached (commit this batch, then stop)."""
        batch = list(first)
        while len(batch) < MAX_GROUP:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if more is None:
                return batch, True
            batch.extend(more)
        return batch, False


class ThreadWriter(_Turns[F]):
    """Runs ``commit`` for each batch in a thread of its own.

    Args:
        commit: one transaction for a batch (see the module doc); blocking.
        error: the StoreError for an exception ``commit`` raised (the whole batch fails).
        after: called in the writer thread after each batch, with its results.
        name: the thread's name.
    """

    def __init__(
        self,
        commit: Callable[[list[Write[F]]], list[Result]],
        *,
        error: Callable[[Exception], StoreError],
        after: Callable[[list[Write[F]], list[Result]], None] | None = None,
        name: str,
    ) -> None:
        super().__init__()
        self._commit, self._error, self._after = commit, error, after
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._batch(first)
            try:
                results = self._commit(batch)
                self.failure = None
            except Exception as exc:  # the whole transaction failed
                self.failure = self._error(exc)
                results = [(False, self._error(exc)) for _ in batch]
            if self._after is not None:
                self._after(batch, results)
            # One wake-up of each event loop per batch, not one per write.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Write[F], Result]]] = {}
            for write, result in zip(batch, results, strict=True):
                by_loop.setdefault(write.loop, []).append((write, result))
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, settled)
                except RuntimeError:
                    pass  # that loop is closed: nobody waits any more

    async def aclose(self) -> None:
        """Commit every write submitted so far, then end the thread."""
        if not self.closed:
            self._close_queue()
        await anyio.to_thread.run_sync(self._thread.join)


class TaskWriter(_Turns[F]):
    """Runs ``commit`` for each batch in a task on the event loop that called :meth:`start`.

    Args:
        commit: one transaction for a batch (see the module doc).
        error: the StoreError for an exception ``commit`` raised (the whole batch fails).
        name: the task's name.
    """

    def __init__(
        self,
        commit: Callable[[list[Write[F]]], Awaitable[list[Result]]],
        *,
        error: Callable[[Exception], StoreError],
        name: str,
    ) -> None:
        super().__init__()
        self._commit, self._error, self._name = commit, error, name
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer on the running event loop; writes may come only from it."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=self._name)

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise StoreError("this store must be used from the event loop that opened it")
        return loop

    def _handed_over(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        stop = False
        while not stop:
            while self._queue.empty():
                self._wakeup.clear()
                await self._wakeup.wait()
            first = self._queue.get_nowait()
            if first is None:
                return
            batch, stop = self._batch(first)
            try:
                results = await self._commit(batch)
                self.failure = None
            except Exception as exc:  # the whole group failed
                self.failure = self._error(exc)
                results = [(False, self._error(exc)) for _ in batch]
            _settle(list(zip(batch, results, strict=True)))

    async def aclose(self) -> None:
        """Commit every write submitted so far, then end the task."""
        if not self.closed:
            self._close_queue()
        if self._task is not None:
            await self._task


def _settle(settled: list[tuple[Write[Any], Result]]) -> None:
    for write, (ok, value) in settled:
        if write.future.done():
            continue  # the caller was cancelled; the write stands
        if ok:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)
