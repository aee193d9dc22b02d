"""Prometheus metrics of one node (``GET /metrics``; the list is in docs/operations.md).

Counts and gauges are read from the Links at scrape time — the same numbers
``stats()`` and ``setpeer status`` show, so a scrape always matches them. Two
histograms are observed as things happen: publish-to-ack latency per partner, and
store latency per operation. Each node has its own registry (several nodes may
share a process, as in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .link import Link
    from .local.heartbeat import Heartbeat
    from .local.webhook_health import WebhookState

__all__ = ["CONTENT_TYPE", "NodeMetrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Publish to ack spans a round trip and a commit on each side: milliseconds when
# the partner is up, minutes when it is not.
_ACK_BUCKETS: Final = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_STORE_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class NodeMetrics:
    """The metrics of one node.

    Args:
        links: the node's Links by partner name (read at each scrape).
    """

    def __init__(self, links: Mapping[str, Link]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.ack_latency = Histogram(
            "setpeer_publish_to_ack_seconds",
            "Seconds from publish() to the partner's ack, per partner.",
            ["partner"],
            buckets=_ACK_BUCKETS,
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "setpeer_store_seconds",
            "Seconds per store operation (one transaction, group-committed).",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LinkCollector(links))

    def watch_webhook(self, state: Callable[[], WebhookState]) -> None:
        """Add the webhook's metrics, read from ``state()`` at each scrape."""
        self.registry.register(_WebhookCollector(state))

    def watch_store(self, heartbeat: Heartbeat) -> None:
        """Add the store's health, as the node's heartbeat writes find it."""
        self.registry.register(_StoreCollector(heartbeat))

    def acked(self, partner: str, seconds: float) -> None:
        """A SET published by this node was acked ``seconds`` after ``publish``."""
        self.ack_latency.labels(partner).observe(seconds)

    def store_time(self, operation: str, seconds: float) -> None:
        """A store operation took ``seconds``."""
        self.store_latency.labels(operation).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _LinkCollector(Collector):
    """Per-partner counters and gauges, read from the Links when scraped."""

    def __init__(self, links: Mapping[str, Link]) -> None:
        self._links = links

    def collect(self) -> Iterator[Metric]:
        links: Iterable[Link] = list(self._links.values())
        counters = {
            "sent": ("setpeer_sets_sent", "SET transmissions to the partner, retries included."),
            "acked": ("setpeer_sets_acked", "SETs the partner acknowledged."),
            "failed": (
                "setpeer_sets_failed",
                "SETs the partner refused or that ran out of attempts.",
            ),
            "received": (
                "setpeer_sets_received",
                "Distinct SETs received from the partner and stored.",
            ),
        }
        for key, (name, text) in counters.items():
            family = CounterMetricFamily(name, text, labels=["partner"])
            for link in links:
                family.add_metric([link.name], float(getattr(link.counters, key)))
            yield family
        rejected = CounterMetricFamily(
            "setpeer_sets_rejected",
            "SETs from the partner refused, by RFC 8935 error code.",
            labels=["partner", "reason"],
        )
        for link in links:
            for reason, count in sorted(link.rejected.items()):
                rejected.add_metric([link.name, reason], float(count))
        yield rejected
        failed = CounterMetricFamily(
            "setpeer_sets_failed_by_reason",
            "SETs to the partner that failed, by RFC 8935 error code (or"
            " delivery_exhausted), since this process started.",
            labels=["partner", "reason"],
        )
        for link in links:
            for reason, count in sorted(link.failed_by_err.items()):
                failed.add_metric([link.name, reason], float(count))
        yield failed
        stats = {link.name: link.stats() for link in links}
        pending = GaugeMetricFamily(
            "setpeer_sets_pending", "SETs for the partner not sent yet.", labels=["partner"]
        )
        inflight = GaugeMetricFamily(
            "setpeer_sets_inflight",
            "SETs sent to the partner and not answered yet.",
            labels=["partner"],
        )
        for name, entry in stats.items():
            pending.add_metric([name], float(entry["pending"]))
            inflight.add_metric([name], float(entry["inflight"]))
        yield pending
        yield inflight
        session = GaugeMetricFamily(
            "setpeer_session",
            "1 for the partner's current session kind (websocket, http, push, ..., down).",
            labels=["partner", "state"],
        )
        for link in links:
            session.add_metric([link.name, link.session_state], 1.0)
        yield session


class _WebhookCollector(Collector):
    """The webhook's state (``[peer.app] deliver``), read when scraped."""

    def __init__(self, state: Callable[[], WebhookState]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        yield GaugeMetricFamily(
            "setpeer_webhook_up",
            "1 while the webhook takes SETs (its last POST got a 2xx), else 0.",
            value=1.0 if state["state"] == "up" else 0.0,
        )
        deliveries = CounterMetricFamily(
            "setpeer_webhook_deliveries",
            "POSTs to the webhook by outcome: delivered (2xx), refused (another "
            "status), failed (no usable answer).",
            labels=["outcome"],
        )
        for outcome, count in state["deliveries"].items():
            deliveries.add_metric([outcome], float(count))
        yield deliveries
        yield GaugeMetricFamily(
            "setpeer_webhook_backlog",
            "Received SETs not yet delivered to the webhook (not done).",
            value=float(state["backlog"]),
        )


class _StoreCollector(Collector):
    """Whether the store takes writes: the node's heartbeat, a write every 2 s."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self._heartbeat = heartbeat

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "setpeer_store_up",
            "1 while the node's heartbeat writes (every 2 s) commit to the store, else 0.",
            value=1.0 if self._heartbeat.ok else 0.0,
        )
        yield CounterMetricFamily(
            "setpeer_store_errors",
            "Heartbeat writes (every 2 s) the store refused or did not answer.",
            value=float(self._heartbeat.failures),
        )
