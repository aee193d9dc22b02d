"""A partner's delivery as a stream sets it at run time, over its configuration.

An SSF receiver chooses how our SETs reach it when it creates or updates its stream
(``delivery.method``, its ``endpoint_url`` and ``authorization_header``) and may
pause or disable the stream (``peer/ssf/``). :class:`Delivery` is that choice; the
Link applies it (:meth:`~peer.link.link.Link.set_delivery`) and its parts consult
the Link, never the configuration alone: ``send_via`` and the push endpoints are
the Link's ``partner`` (the configuration with the stream's choice laid over it),
the ``Authorization`` value goes with every push (SSF-19), and a held stream sends
nothing while its SETs stay in the outbox.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..protocol.vocabulary import DeliveryMode

__all__ = ["Delivery", "Hold"]

Hold = Literal["enabled", "paused", "disabled"]
"""``enabled`` sends; ``paused`` keeps SETs in the outbox, unsent, and takes new
ones; ``disabled`` sends nothing and refuses new ones (``StreamDisabled``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """How our SETs reach the partner, as its stream says.

    Attributes:
        send_via: the protocol (push, poll, push-pull, multi-push).
        endpoint: the partner's URL for push or multi-push.
        authorization: the ``Authorization`` value sent with every push or
            multi-push request instead of the configured credentials (SSF-19).
        status: whether SETs go out, wait, or are refused.
    """

    send_via: DeliveryMode
    endpoint: str | None = None
    authorization: str | None = None
    status: Hold = "enabled"
