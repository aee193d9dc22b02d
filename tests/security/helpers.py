"""Security test helpers: a trustme PKI on disk, node configs built in code, waits.

Nodes are real (uvicorn, websockets, httpx, memory store); certificates are real
X.509 from trustme; nothing of ours is replaced.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from peer import Peer
from peer.config import (
    InboundAuth,
    Limits,
    OutboundAuth,
    Partner,
    PeerConfig,
    TLSConfig,
)
from tests.peers import SESSION_REVOKED, NodeFiles
from tests.timing import MS, seconds

__all__ = [
    "LIMITS",
    "MS",
    "Pki",
    "bearer_pair",
    "cert_sha256",
    "exchange",
    "node_config",
    "seconds",
    "sha256_hex",
    "wait_for_log",
]

# Quick reconnects so refusals show up in the log within a test's patience.
LIMITS = Limits(reconnect_initial=0.05, reconnect_max=0.5, retry_initial=0.2, retry_max=1.0)


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass
class Pki:
    """A CA and the certificates the tests need, written under ``folder``."""

    folder: Path
    ca: trustme.CA
    ca_name: str

    @classmethod
    def create(cls, folder: Path, name: str = "ca") -> Pki:
        pki = cls(folder, trustme.CA(organization_name=f"setpeer test {name}"), name)
        pki.ca.cert_pem.write_to_path(str(pki.ca_path))
        return pki

    @property
    def ca_path(self) -> Path:
        return self.folder / f"{self.ca_name}.pem"

    def issue(
        self, stem: str, *identities: str, not_after: datetime.datetime | None = None
    ) -> tuple[Path, Path]:
        """``(certfile, keyfile)`` for ``identities`` (default: 127.0.0.1)."""
        kwargs = {}
        if not_after is not None:
            kwargs["not_before"] = not_after - datetime.timedelta(days=30)
            kwargs["not_after"] = not_after
        cert = self.ca.issue_cert(*(identities or ("127.0.0.1",)), **kwargs)
        certfile = self.folder / f"{self.ca_name}-{stem}.crt"
        keyfile = self.folder / f"{self.ca_name}-{stem}.key"
        cert.cert_chain_pems[0].write_to_path(str(certfile))
        cert.private_key_pem.write_to_path(str(keyfile))
        return certfile, keyfile

    def tls(self, stem: str = "server", *identities: str, client_ca: bool = False) -> TLSConfig:
        certfile, keyfile = self.issue(stem, *identities)
        return TLSConfig(
            certfile=certfile, keyfile=keyfile, client_ca=self.ca_path if client_ca else None
        )


def cert_sha256(certfile: Path) -> str:
    """SHA-256 of a PEM certificate's DER form (``client_cert_sha256``)."""
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    return sha256_hex(cert.public_bytes(Encoding.DER))


def node_config(
    me: NodeFiles,
    partners: Iterable[Partner | tuple[NodeFiles, dict[str, object]]],
    *,
    tls: TLSConfig | None = None,
    insecure: bool = False,
    public_url: str | None = None,
) -> PeerConfig:
    """``me``'s config with the given partners (NodeFiles plus Partner keyword args)."""
    built = []
    for entry in partners:
        if isinstance(entry, Partner):
            built.append(entry)
            continue
        other, options = entry
        endpoint = options.pop("endpoint", None)
        built.append(
            Partner(
                name=other.name,
                issuer=other.issuer,
                audience=other.issuer,
                jwks=me.folder / f"{other.name}.public.json",
                endpoint=endpoint,  # type: ignore[arg-type]
                initiate=endpoint is not None,
                **options,  # type: ignore[arg-type]
            )
        )
    config = PeerConfig(
        issuer=me.issuer,
        listen="127.0.0.1:0",
        store="memory://",
        signing_keys=me.folder / f"{me.name}.jwks.json",
        allow_insecure_loopback=insecure or tls is None,
        tls=tls,
        public_url=public_url,
        limits=LIMITS,
        partners=tuple(built),
        config_dir=me.folder,
    )
    config.validate()
    return config


def bearer_pair(me: NodeFiles, other: NodeFiles) -> tuple[OutboundAuth, InboundAuth]:
    """``me``'s static-bearer auth toward ``other`` and what ``me`` expects from ``other``."""
    outbound = OutboundAuth(bearer=f"env:SETPEER_TEST_TOKEN_{me.name.upper()}")
    return outbound, InboundAuth(bearer_sha256=sha256_hex(other.token_out))


async def wait_for_log(
    records: Callable[[], list[logging.LogRecord]], needle: str, timeout: float
) -> str:
    """The first log message containing ``needle``, waiting up to ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while True:
            for record in records():
                message = record.getMessage()
                if needle in message:
                    return message
            await anyio.sleep(20 * MS)


async def exchange(a: Peer, b: Peer, count: int, *, timeout: float) -> dict[str, list[str]]:
    """Publish ``count`` SETs each way; wait until each side received and acked all.

    Returns:
        The partner names each side attributed its received SETs to.
    """
    sent = {"a": [], "b": []}  # type: dict[str, list[str]]
    seen = {"a": [], "b": []}  # type: dict[str, list[str]]
    got: dict[str, list[str]] = {"a": [], "b": []}

    async def consume(node: Peer, me: str) -> None:
        async for rx in node.receive():
            got[me].append(rx.jti)
            seen[me].append(rx.partner)
            await rx.done()
            if len(got[me]) >= count:
                return

    with anyio.fail_after(timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, a, "a")
            tg.start_soon(consume, b, "b")
            for i in range(count):
                sent["a"].append(await a.publish("b", {SESSION_REVOKED: {}}, jti=f"a{i}"))
                sent["b"].append(await b.publish("a", {SESSION_REVOKED: {}}, jti=f"b{i}"))
        await a.flush(timeout=timeout)
        await b.flush(timeout=timeout)
    assert sorted(got["b"]) == sorted(sent["a"])
    assert sorted(got["a"]) == sorted(sent["b"])
    return seen
