"""LinkPort: everything a transport may ask of a partner's Link, and nothing more.

Bindings (WebSocket, HTTP push-pull, the push, multi-push and poll adapters) and
the server's routes are written against this Protocol, never against
:class:`~peer.link.link.Link` or its parts, so the Link can change inside without
touching them, and a binding can be tested against any object that has these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..config import Limits, Partner
from ..errors import WireError
from ..protocol.communication import CommunicationObject, SetErr
from ..protocol.limits import FrameLimits
from ..protocol.vocabulary import SessionId, SessionKind
from ..signal import Signal
from .outcomes import PartnerStats
from .sessions import Closable

if TYPE_CHECKING:
    from ..auth.outbound import OutboundAuth

__all__ = ["LinkPort"]

T = TypeVar("T")


class LinkPort(Protocol):
    """One partner, as its transports see it."""

    # -- who the partner is, and what it allows ---------------------------------------

    @property
    def name(self) -> str: ...
    @property
    def partner(self) -> Partner: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def frame_limits(self) -> FrameLimits: ...
    @property
    def batch_size(self) -> int:
        """SETs per frame or batch we send."""
        ...

    @property
    def window(self) -> int:
        """SETs in flight at most."""
        ...

    @property
    def closing(self) -> bool:
        """The node is shutting down: send answers, no new SETs."""
        ...

    @property
    def outbound_auth(self) -> OutboundAuth:
        """The credentials we present to the partner."""
        ...

    def auth_headers(self) -> dict[str, str]: ...
    def stats(self) -> PartnerStats: ...

    # -- sessions -----------------------------------------------------------------------

    def session_opened(self, kind: SessionKind, closer: Closable | None = None) -> SessionId: ...
    def session_closed(self, session: SessionId) -> None: ...
    def session_refused(self, error: WireError) -> float:
        """A session closes for ``error``; the wait now due before the partner's next."""
        ...

    async def before_session(self) -> None:
        """Hold a WebSocket upgrade while the partner is over its budget of sessions
        closed for bad data (Overloaded beyond a second)."""
        ...

    def request_seen(self, kind: SessionKind) -> None: ...
    def request_done(self, session: SessionId) -> None: ...

    # -- outbound -----------------------------------------------------------------------

    @property
    def outbound_ready(self) -> Signal:
        """Set when there may be something to send: take a snapshot before looking."""
        ...

    @property
    def has_inflight(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    async def take_frame(
        self, *, max_sets: int, via: SessionId | None = None
    ) -> CommunicationObject | None: ...
    async def frame_delivered(self, frame: CommunicationObject) -> None: ...
    def frame_lost(self, frame: CommunicationObject) -> None: ...
    def take_sets(self, limit: int) -> dict[str, str]: ...
    def answers_received(self, ack: Iterable[str], set_errs: Mapping[str, SetErr]) -> None: ...
    def retry_later(self, jtis: Iterable[str], not_before: float = 0.0) -> None: ...
    def sets_lost(self, jtis: Iterable[str]) -> None: ...
    async def wait_outbound(self, timeout: float) -> None: ...

    # -- inbound ------------------------------------------------------------------------

    async def frame_received(
        self, frame: CommunicationObject, via: SessionId | None = None
    ) -> dict[str, SetErr | None]: ...
    async def accept_sets(
        self,
        sets: Mapping[str, str],
        rejected: Mapping[str, SetErr] | None = None,
        *,
        owe: bool = True,
        via: SessionId | None = None,
    ) -> dict[str, SetErr | None]: ...
    async def parse(self, parser: Callable[..., T], data: str | bytes) -> T:
        """``parser(data, limits=...)``; large frames off the event loop, in turn."""
        ...

    async def admit_frame(self, count: int) -> None: ...
    def check_inbound(self) -> None: ...
    @property
    def inbox_full(self) -> bool: ...
    def count_rejected(self, err: str, description: str = "", jti: str = "") -> None: ...
    def take_slot(self) -> None: ...
    def give_slot(self) -> None: ...
