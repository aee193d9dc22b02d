"""One partner's delivery: the Link and its parts, each a file with one job.

- :mod:`.link`: the thin :class:`Link` that composes the parts below.
- :mod:`.port`: :class:`LinkPort`, the one interface transports use.
- :mod:`.sessions`: what is open to the partner; its session state.
- :mod:`.outbox_feed` and :mod:`.leases`: outbound rows from the store to the
  Ledger, from a store of our own or leased from a shared one.
- :mod:`.inbound`: the partner's SETs verified, stored and counted.
- :mod:`.write_behind`: bookkeeping written behind the hot path.
- :mod:`.outcomes`: counters, failures, publish-to-ack times.
- :mod:`.partner_limits`: the partner's session, rate and backlog limits.
- :mod:`.factory`: Links built from the configuration.
"""

from __future__ import annotations

from .factory import build_link, build_links
from .leases import LEASE_TTL
from .link import Link
from .outcomes import Failure, LinkCounters, PartnerStats
from .port import LinkPort

__all__ = [
    "LEASE_TTL",
    "Failure",
    "Link",
    "LinkCounters",
    "LinkPort",
    "PartnerStats",
    "build_link",
    "build_links",
]
