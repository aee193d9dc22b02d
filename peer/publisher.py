"""Turn an application's event into a signed SET for one partner.

Shared by ``Peer.publish`` and ``setpeer send`` so both mint SETs the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .config import Partner
from .errors import SETTooLarge
from .tokens.sign import Signer, build_claims

__all__ = ["Publisher", "check_size"]


def check_size(partner: Partner, token: str) -> None:
    """Refuse a SET over the partner's ``max_set_bytes`` before it is stored.

    Raises:
        SETTooLarge: it is larger.
    """
    if len(token) > partner.limits.max_set_bytes:
        raise SETTooLarge(partner.name, len(token), partner.limits.max_set_bytes)


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

        Raises:
            SETTooLarge: the signed SET is over the partner's ``max_set_bytes``.
            ValueError: a claim value is not valid.
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
        token = self.signer.sign(claims)
        check_size(partner, token)
        return str(claims["jti"]), token
