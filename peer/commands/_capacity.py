"""Whether the connection cap and the file-descriptor limit fit the partners.

Each partner that opens its session to us (``initiate = false``) holds one of the
partner listener's ``max_connections`` slots while connected; each partner we dial
holds a file descriptor of its own. A node with as many such partners as slots has,
once they are all connected, none left: a reconnect overlapping its old session, a
scrape of ``/metrics`` or an HTTP request is closed at accept. And a process whose
file-descriptor limit (``ulimit -n``) is below what the cap allows fails to accept
(EMFILE) before the cap is reached. ``check-config`` prints these as warnings and
``run`` logs them; ``run`` first raises its own soft limit up to the hard one.
"""

from __future__ import annotations

import resource
from typing import Final

from ..config import PeerConfig

__all__ = ["HEADROOM", "RESERVED_FILES", "capacity_warnings", "files_needed", "raise_file_limit"]

HEADROOM: Final = 16
"""Slots beyond one per connecting partner: a reconnect overlapping the session it
replaces, a scraper, a partner's HTTP requests."""

RESERVED_FILES: Final = 64
"""Descriptors beyond the connections: the store's files and threads' connections,
the listeners, the local interface, the event loop, logs."""


def files_needed(config: PeerConfig) -> int:
    """Descriptors the node may hold: the connection cap, one per partner we dial, and
    :data:`RESERVED_FILES`."""
    dialed = sum(1 for partner in config.partners if partner.initiate)
    return config.limits.max_connections + dialed + RESERVED_FILES


def raise_file_limit(config: PeerConfig) -> None:
    """Raise this process's soft ``RLIMIT_NOFILE`` towards :func:`files_needed`, never
    beyond the hard limit (no privilege needed); never lowers it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = files_needed(config)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def capacity_warnings(config: PeerConfig) -> list[str]:
    """What does not fit, one line each; none when all is well. The file limit is
    judged by the hard limit (``run`` raises the soft one up to it)."""
    warnings = []
    cap = config.limits.max_connections
    connecting = sum(1 for partner in config.partners if not partner.initiate)
    if connecting + HEADROOM > cap:
        warnings.append(
            f"{connecting} partners open their sessions to this node and"
            f" peer.limits.max_connections is {cap}: with them all connected, fewer than"
            f" {HEADROOM} connections are left for reconnects, scrapes and requests (more"
            f" are closed at accept); raise max_connections to at least"
            f" {connecting + HEADROOM}"
        )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = files_needed(config)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        warnings.append(
            f"the file-descriptor limit (ulimit -n) is {hard}, and max_connections"
            f" {cap} with {len(config.partners)} partners may need {wanted}: connections"
            " beyond it fail at accept (EMFILE); raise the hard limit or lower"
            " max_connections"
        )
    return warnings
