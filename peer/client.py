"""Client: the facade over a running node's local interface (docs/local-interface.md).

::

    async with Client("unix:/srv/setpeer/app.sock") as node:
        jti = await node.publish("b", {EVENT_URI: {...}}, sub_id={...})
        async for rx in node.receive():
            ...
            await rx.done()

The same methods as :class:`peer.Peer`, with the same meanings and exception classes
(:class:`peer.Facade`); ``failures()`` and ``stats()`` must be awaited.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import httpx

from .errors import (
    Backpressure,
    DuplicateJti,
    NodeUnavailable,
    NotAuthorized,
    PeerError,
    SETRejected,
    SETTooLarge,
    StoreError,
    StreamDisabled,
    UnknownPartner,
)
from .link import Failure, PartnerStats
from .local.unix import UnixPath
from .received import Received

__all__ = ["Client"]

RECEIVE_WAIT = 25.0  # seconds one long poll of receive() waits
RECEIVE_BATCH = 100
RETRY_INITIAL, RETRY_MAX = 0.1, 2.0  # receive() while the node is away (a restart)
_STATS_KEYS = tuple(PartnerStats.__annotations__)


class Client:
    """A running node's facade, over its local interface (``[peer.app] listen``).

    Args:
        url: ``unix:PATH`` (the node's socket; relative to the working folder) or
            ``http://127.0.0.1:PORT``.
        token: the bearer token whose SHA-256 is ``[peer.app] token_sha256``
            (required on TCP; on a Unix socket only if the node asks for one).
        timeout: seconds a call may take (long polls wait longer by their ``wait``).

    Raises:
        ValueError: ``url`` is neither.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        if url.startswith("unix:") and len(url) > len("unix:"):
            self._socket: Path | None = Path(url.removeprefix("unix:"))
            self._base = "http://setpeer.local"
        elif url.startswith(("http://", "https://")):
            self._socket = None
            self._base = url.rstrip("/")
        else:
            raise ValueError(f"Client url must be unix:PATH or http://HOST:PORT, not {url!r}")
        self.url = url
        self._token = token
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._unix: UnixPath | None = None

    async def __aenter__(self) -> Self:
        transport = None
        if self._socket is not None:
            self._unix = UnixPath(self._socket.absolute())
            transport = httpx.AsyncHTTPTransport(uds=self._unix.address)
        headers = {} if self._token is None else {"authorization": f"Bearer {self._token}"}
        self._http = httpx.AsyncClient(
            base_url=self._base,
            transport=transport,
            headers=headers,
            timeout=self._timeout,
            trust_env=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections to the node."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._unix is not None:
            self._unix.close()
            self._unix = None

    # -- the facade ----------------------------------------------------------------

    async def publish(
        self,
        partner: str,
        events: Mapping[str, Mapping[str, Any]],
        *,
        sub_id: Mapping[str, Any] | None = None,
        txn: str | None = None,
        toe: int | float | None = None,
        jti: str | None = None,
    ) -> str:
        """Have the node sign a SET for ``partner`` and commit it to its outbox.

        Returns only once the SET is durable, as :meth:`peer.Peer.publish`.

        Returns:
            The SET's jti.

        Raises:
            UnknownPartner: no such partner.
            Backpressure: the partner's outbox holds ``max_pending`` SETs already.
            ValueError: an argument is not a valid claim value.
            SETTooLarge: the signed SET is over the partner's ``max_set_bytes``.
            DuplicateJti: ``jti`` was published to this partner before.
            StoreError: the node's store could not make it durable.
            NotAuthorized: the node refused the token.
            NodeUnavailable: the node did not answer. If the call was under way,
                whether the SET was stored is unknown: publish with your own ``jti=``
                and retry with it (DuplicateJti then says it was).
        """
        body: dict[str, Any] = {"to": partner, "events": events}
        for key, value in (("sub_id", sub_id), ("txn", txn), ("toe", toe), ("jti", jti)):
            if value is not None:
                body[key] = value
        answer = await self._call("POST", "/v1/publish", body=body)
        return str(answer["jti"])

    async def forward(self, partner: str, token: str) -> str:
        """Have the node queue a SET signed elsewhere for ``partner``; its jti.

        Raises as :meth:`publish` does; SETRejected when ``token`` is no SET whose
        jti could be read.
        """
        answer = await self._call("POST", "/v1/forward", body={"to": partner, "set": token})
        return str(answer["jti"])

    async def receive(self) -> AsyncIterator[Received]:
        """Verified inbound SETs from every partner, in inbox order, until cancelled.

        Long polls the node; while the node is away (restarting) it tries again with
        backoff, so nothing is lost and a SET marked done is never handed out again.

        Raises:
            NotAuthorized: the node refused the token.
            PeerError: the node delivers to a webhook (``[peer.app] deliver``).
        """
        after, delay = 0, RETRY_INITIAL
        while True:
            try:
                page = await self.received(after=after, limit=RECEIVE_BATCH, wait=RECEIVE_WAIT)
            except (NodeUnavailable, StoreError):
                await anyio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            delay = RETRY_INITIAL
            for rx in page:
                after = max(after, rx.seq)
                yield rx

    async def received(
        self, *, after: int = 0, limit: int = RECEIVE_BATCH, wait: float = 0.0
    ) -> list[Received]:
        """One page of received SETs not yet done, in inbox order, after inbox row
        ``after``; waits up to ``wait`` seconds for the first (``GET /v1/received``).

        Raises:
            NotAuthorized: the node refused the token.
            NodeUnavailable: the node did not answer.
            PeerError: the node delivers to a webhook (``[peer.app] deliver``).
        """
        params = {"after": after, "limit": limit, "wait": wait}
        answer = await self._call("GET", "/v1/received", params=params, extra_time=wait)
        page = []
        for item in answer["received"]:
            seq = int(item["seq"])
            done = functools.partial(self._done, seq)
            page.append(
                Received(item["partner"], item["jti"], item["claims"], item["token"], seq, done)
            )
        return page

    async def done(self, seqs: Sequence[int]) -> None:
        """Mark these inbox rows handled (``Received.done`` for many at once)."""
        await self._call("POST", "/v1/done", body={"seq": list(seqs)})

    async def _done(self, seq: int) -> None:
        await self.done([seq])

    async def failures(self, since: float | None = None) -> list[Failure]:
        """SETs that ended in error, oldest first; with ``since``, those that ended at
        or after that Unix time."""
        params = {} if since is None else {"since": f"{since:.6f}"}
        answer = await self._call("GET", "/v1/failures", params=params)
        return [
            Failure(
                partner=str(f["partner"]),
                jti=str(f["jti"]),
                err=str(f["err"]),
                description=str(f["description"]),
                direction="inbound" if f.get("direction") == "inbound" else "outbound",
                at=float(f.get("at") or 0.0),
            )
            for f in answer["failures"]
        ]

    async def stats(self) -> dict[str, PartnerStats]:
        """Per partner: session, pending, inflight, acked, failed, received."""
        status = await self.status()
        return {
            name: PartnerStats(**{k: entry[k] for k in _STATS_KEYS if k in entry})  # type: ignore[typeddict-item]
            for name, entry in status.items()
        }

    async def node(self) -> dict[str, Any]:
        """Which node answers: ``{"issuer", "partners"}`` (``GET /v1/node``)."""
        return dict(await self._call("GET", "/v1/node"))

    async def status(self) -> dict[str, Any]:
        """What ``setpeer status --json`` prints, from the running node."""
        answer = await self._call("GET", "/v1/status")
        return dict(answer)

    async def flush(self, timeout: float = 30) -> None:
        """Wait until nothing is pending or in flight to any partner.

        Raises:
            PeerError: still pending after ``timeout`` seconds.
        """
        pause = 0.05
        with anyio.move_on_after(timeout):
            while True:
                status = await self.status()
                if all(e["pending"] + e["inflight"] == 0 for e in status.values()):
                    return
                await anyio.sleep(pause)
                pause = min(0.5, pause * 2)
        pending = {n: e for n, e in status.items() if e["pending"] or e["inflight"]}
        raise PeerError(f"flush timed out after {timeout}s; still pending: {pending}")

    # -- the wire ------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        extra_time: float = 0.0,
    ) -> Any:
        if self._http is None:
            raise PeerError("the Client is not open: use `async with Client(url)`")
        content = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {} if content is None else {"content-type": "application/json"}
        try:
            response = await self._http.request(
                method,
                path,
                content=content,
                params=params,
                headers=headers,
                timeout=self._timeout + extra_time,
            )
        except httpx.TransportError as exc:
            raise NodeUnavailable(
                f"the node's local interface at {self.url} did not answer: {exc!r}"
            ) from None
        if response.status_code in (200, 201):
            return response.json()
        if response.status_code == 204:
            return None
        raise _error(response)


def _error(response: httpx.Response) -> Exception:
    """The exception an error answer stands for (docs/local-interface.md)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error", ""))
    text = str(body.get("description", response.reason_phrase))
    status = response.status_code
    if status == 401:
        return NotAuthorized(text)
    if status == 404 and error == "unknown_partner":
        return UnknownPartner(text)
    if status == 409 and error == "duplicate_jti":
        return DuplicateJti(text)
    if status == 413 and error == "set_too_large":
        return SETTooLarge(str(body.get("partner", "")), _int(body, "size"), _int(body, "limit"))
    if status == 429 and error == "backpressure":
        return Backpressure(
            str(body.get("partner", "")), _int(body, "pending"), _int(body, "limit")
        )
    if status == 409 and error == "stream_disabled":
        return StreamDisabled(str(body.get("partner", "")))
    if status == 503:
        return StoreError(text)
    if status == 400 and error == "invalid_set":
        return SETRejected(str(body.get("err", "invalid_request")), text)
    if status == 400:
        return ValueError(text)
    return PeerError(f"{status} {error or response.reason_phrase}: {text}")


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
