"""A node's Links built from its configuration, one per partner, and restored from the store."""

from __future__ import annotations

import random

from ..auth.outbound import OutboundAuth
from ..auth.partner_keys import RemoteKeys
from ..config import Partner, PeerConfig
from ..protocol.communication import SetErr
from ..protocol.ledger import Ledger
from ..protocol.retry import RetryPolicy
from ..signal import Signal
from ..store.base import Store, shared_store
from ..tokens.keys import KeyStore
from ..tokens.verify import Verifier
from .fair_share import FairShare
from .leases import LEASE_TTL, LeasedRows, LocalRows, RowSource
from .link import Link
from .outcomes import Failure, Observer
from .partner_limits import count_backlogs

__all__ = ["build_link", "build_links", "restore"]


def _at(failure: Failure) -> float:
    return failure.at


def build_link(
    partner: Partner,
    *,
    config: PeerConfig,
    store: Store,
    owner: str,
    inbox: Signal,
    progress: Signal,
    observer: Observer | None = None,
    rng: random.Random | None = None,
    share: FairShare | None = None,
) -> Link:
    """The Link of ``partner``, not yet restored (see :meth:`Link.restore`).

    Args:
        partner: the partner's configuration.
        config: the node's configuration (our issuer is the SETs' audience).
        store: the node's store; a shared one makes the Link lease its rows.
        owner: names this node's leases in a shared store.
        inbox: set when a new inbound SET is stored.
        progress: set when a SET is acked or failed.
        observer: the node's metrics.
        rng: jitter for retries (shared by the node's Links).
        share: the node's turns at CPU-heavy work (shared by the node's Links).
    """
    limits = partner.limits
    ledger = Ledger(
        window=limits.window,
        retry=RetryPolicy(initial=limits.retry_initial, maximum=limits.retry_max),
        max_attempts=limits.max_attempts,
        # A partner that polls us acks in a later poll: unacked SETs are served
        # again after poll_redelivery (POLL-15), not ack_timeout.
        ack_timeout=limits.poll_redelivery if partner.send_via == "poll" else limits.ack_timeout,
        rng=rng or random.Random(),
        max_set_bytes=limits.max_set_bytes,
    )
    # Keys from a file, or fetched from jwks_uri once the node runs.
    keys = KeyStore.from_file(partner.jwks_path)
    verifier = Verifier(
        issuer=partner.issuer,
        audience=config.issuer,
        keys=keys,
        ssf=partner.ssf_profile,
        strict_subjects=partner.strict_subjects,
        payload_check=partner.dialect.payload_check,
        legacy_subjects=partner.dialect.lax_subjects,
        max_token_bytes=limits.max_set_bytes,
    )
    return Link(
        partner=partner,
        store=store,
        ledger=ledger,
        verifier=verifier,
        rows=row_source(store, partner.name, owner, ttl=limits.lease_ttl),
        outbound_auth=OutboundAuth(partner),
        inbox_signal=inbox,
        progress_signal=progress,
        remote_keys=None if partner.jwks_uri is None else RemoteKeys(partner, keys),
        observer=observer,
        share=share,
    )


def row_source(store: Store, partner: str, owner: str, *, ttl: float = LEASE_TTL) -> RowSource:
    """Leased rows (``ttl`` seconds each) when several nodes share ``store``, else
    every row is ours."""
    shared = shared_store(store)
    if shared is not None:
        return LeasedRows(shared, partner, owner, ttl)
    return LocalRows(store, partner)


async def build_links(
    config: PeerConfig,
    store: Store,
    *,
    owner: str,
    inbox: Signal,
    progress: Signal,
    observer: Observer | None = None,
) -> dict[str, Link]:
    """Every partner's Link, restored from the store, by partner name."""
    rng = random.Random()
    share = FairShare()  # one for the node: partners take turns at its CPU
    links: dict[str, Link] = {}
    for partner in config.partners:
        link = build_link(
            partner,
            config=config,
            store=store,
            owner=owner,
            inbox=inbox,
            progress=progress,
            observer=observer,
            rng=rng,
            share=share,
        )
        await restore(link)
        links[partner.name] = link
    await count_backlogs(store, {name: link.inbound for name, link in links.items()})
    return links


async def restore(link: Link) -> None:
    """Seed a Link's counters, failures and owed answers from the store (a restart).

    Failures: the newest ``failures_kept`` of both directions, by time (outbound
    ones failed before the store kept a time come first).
    """
    store, name = link.store, link.name
    counts = (await store.stats()).get(name)
    counters = link.counters
    if counts is not None:
        counters.unfinished = counts.pending + counts.inflight
        counters.acked = counts.acked
        counters.failed = counts.failed
        counters.received = counts.received
        counters.refused = counts.refused
    keep = link.limits.failures_kept
    failures = [
        Failure(name, row.jti, row.err, row.description, "outbound", row.at)
        for row in await store.failures(name, limit=keep)
    ] + [
        Failure(name, row.jti, row.err, row.description, "inbound", row.at)
        for row in await store.refusals(partner=name)
    ]
    link.failures.extend(sorted(failures, key=_at))
    for answer in await store.acks_due(name):
        error = None if answer.err is None else SetErr(answer.err, answer.description or "")
        link.ledger.owe(answer.jti, error)
