"""A partner on the 2021 drafts, scripted: the test double of the dialect tests.

Built from the older drafts' behaviour, not from setpeer's: it publishes its metadata
at ``/.well-known/risc-configuration`` (none at ``ssf-configuration``) naming the RISC
delivery-method URIs; its ``/poll`` answers a long poll (no ``returnImmediately:
true``) with 404 "does not support long polling", reads acknowledgements from
``acks`` only and ignores ``setErrs``, so a SET it is told is invalid is served again
at once, every poll; its ``/events`` takes our pushes. The SETs it signs carry no
top-level ``sub_id``: the subject is inside the event, a complex one without
``format``, and the payloads use values outside the 1.0 enumerations.
"""

from __future__ import annotations

import json
import time
from typing import Any

from peer.tokens.sign import Signer, build_claims

from .fake_partner import Action, Answer, Call, SenderNode
from .wire import jti_of

__all__ = ["ASSURANCE", "LegacyPartner", "REVOKED", "legacy_events", "sign_legacy"]

RISC_DELIVERY = "https://schemas.openid.net/secevent/risc/delivery-method/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
REVOKED = CAEP + "session-revoked"
ASSURANCE = CAEP + "assurance-level-change"


def legacy_events(kind: str) -> dict[str, Any]:
    """An event as a 2021 sender writes it."""
    subject = {
        "user": {"format": "iss_sub", "iss": "https://idp.example/", "sub": "jane"},
        "tenant": {"format": "opaque", "id": "123456789"},
    }
    if kind == "revoked":
        return {
            REVOKED: {
                "subject": subject,
                "initiating_entity": "acme policy",
                "reason_admin": "Landspeed policy violation",
                "event_timestamp": 1615304991643,
            }
        }
    return {
        ASSURANCE: {
            "subject": {"subject_type": "iss_sub", "iss": "https://idp.example/", "sub": "jane"},
            "current_level": "nist-aal2",
            "previous_level": "nist-aal1",
            "change_direction": "increase",
        }
    }


def sign_legacy(run: SenderNode, jti: str, kind: str, **overrides: Any) -> str:
    """A 2021-style SET from the partner b to node a, signed with b's key."""
    claims = build_claims(
        iss=run.b.issuer,
        aud=run.a.issuer,
        events=legacy_events(kind),
        iat=int(time.time()),
        jti=jti,
    )
    claims.update(overrides)
    return Signer(json.loads((run.b.folder / "b.jwks.json").read_text())).sign(claims)


class LegacyPartner:
    """The script of a FakePartner playing a 2021-draft transmitter and receiver.

    Attributes:
        served: jti -> SET its ``/poll`` serves until acknowledged in ``acks``.
        acked: jtis acknowledged in ``acks``, in order.
        ignored: every ``ack`` and ``setErrs`` member it was sent (and ignored).
        pushed: jti -> SET received on ``/events``.
    """

    def __init__(self) -> None:
        self.url = ""
        self.served: dict[str, str] = {}
        self.acked: list[str] = []
        self.ignored: list[dict[str, Any]] = []
        self.pushed: dict[str, str] = {}

    def __call__(self, call: Call) -> Action:
        if call.path.startswith("/.well-known/risc-configuration"):
            return Answer(200, self.metadata())
        if call.path.startswith("/.well-known/"):
            return Answer(404)
        if call.path == "/events":
            token = call.body.decode()
            self.pushed[jti_of(token)] = token
            return Answer(202)
        request = call.json()
        if request.get("returnImmediately") is not True:
            return Answer(404, {"error": "not_found", "message": "does not support long polling"})
        self.acked += request.get("acks", [])
        self.ignored += [{k: request[k]} for k in ("ack", "setErrs") if k in request]
        sets = {jti: tok for jti, tok in self.served.items() if jti not in self.acked}
        return Answer(200, {"sets": sets})

    def metadata(self) -> dict[str, Any]:
        """Its transmitter configuration, the RISC way."""
        return {
            "issuer": self.url,
            "jwks_uri": self.url + "/jwks",
            "delivery_methods_supported": [RISC_DELIVERY + "push", RISC_DELIVERY + "poll"],
            "configuration_endpoint": self.url + "/stream",
        }
