"""Turn an application's event into a signed SET for one partner.

Shared by ``Peer.publish`` and ``setpeer send`` so both mint SETs the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .config import Partner
from .tokens.sign import Signer, build_claims

__all__ = ["Publisher"]


class Publisher:
    """Signs SETs as ``issuer`` with the first key of our signing key set.

    Args:
        issuer: our ``iss``.
        signer: built once from ``signing_keys``.
    """

    def __init__(self, *, issuer: str, signer: Signer) -> None:
        self.issuer = issuer
        self.signer = signer

    def mint(
        self,
        partner: Partner,
        events: Mapping[str, Mapping[str, Any]],
        *,
        sub_id: Mapping[str, Any] | None = None,
        txn: str | None = None,
        toe: int | float | None = None,
        jti: str | None = None,
    ) -> tuple[str, str]:
        """A fresh SET for ``partner``: ``(jti, compact token)``.

        ``aud`` is the partner's configured audience; ``iat`` is now.
        """
        claims = build_claims(
            iss=self.issuer,
            aud=partner.audience,
            events=events,
            jti=jti,
            iat=int(time.time()),
            sub_id=sub_id,
            txn=txn,
            toe=toe,
        )
        return str(claims["jti"]), self.signer.sign(claims)
