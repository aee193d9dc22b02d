"""Published SET examples (RFC 8417 §2.1, §2.4; CAEP/RISC/SSF shapes) as claims data.

The published tokens are unsigned or HS256 with unknown secrets (decision 9): tests
re-sign these claims with a test key, and keep the unsigned Figure 6 to show that
``alg: none`` is refused.
"""

from __future__ import annotations

from typing import Any

# RFC 8417 §2.1.1 Figure 1: SCIM password reset, two event URIs, sub, aud array.
FIGURE_1: dict[str, Any] = {
    "iss": "https://scim.example.com",
    "iat": 1458496025,
    "jti": "3d0c3cf797584bd193bd0fb1bd4e7d30",
    "aud": [
        "https://jhub.example.com/Feeds/98d52461fa5bbc879593b7754",
        "https://jhub.example.com/Feeds/5d7604516b1d08641d7676ee7",
    ],
    "sub": "https://scim.example.com/Users/44f6142df96bd6ab61e7521d9",
    "events": {
        "urn:ietf:params:scim:event:passwordReset": {"id": "44f6142df96bd6ab61e7521d9"},
        "https://example.com/scim/event/passwordResetExt": {"resetAttempts": 5},
    },
}
# RFC 8417 §2.1.2 Figure 2: OpenID back-channel logout, empty payload, extra claim sid.
FIGURE_2: dict[str, Any] = {
    "iss": "https://server.example.com",
    "sub": "248289761001",
    "aud": "s6BhdRkqt3",
    "iat": 1471566154,
    "jti": "bWJq",
    "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
    "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
}
# RFC 8417 §2.1.3 Figure 3: consent; the payload has its own iss/sub (SET-6).
FIGURE_3: dict[str, Any] = {
    "iss": "https://my.examplecom/",
    "iat": 1458496025,
    "jti": "3d0c3cf797584bd193bd0fb1bd4e7d30",
    "aud": ["https://rp.example.com"],
    "events": {
        "https://openid.net/heart/specs/consent.html": {
            "iss": "https://connect.example.com/",
            "sub": "https://connect.example.com/Users/1234",
            "consent": "granted",
        }
    },
}
# RFC 8417 §2.1.4 Figure 4: legacy RISC account-disabled with subject_type iss-sub.
FIGURE_4: dict[str, Any] = {
    "iss": "https://idp.example.com/",
    "jti": "756E69717565206964656E746966696572",
    "iat": 1508184845,
    "aud": "636C69656E745F6964",
    "events": {
        "http://schemas.openid.net/secevent/risc/event-type/account-disabled": {
            "subject": {
                "subject_type": "iss-sub",
                "iss": "https://idp.example.com/",
                "sub": "7375626A656374",
            },
            "reason": "hijacking",
            "cause-time": 1508012752000,
        }
    },
}
FIGURES = {"figure1": FIGURE_1, "figure2": FIGURE_2, "figure3": FIGURE_3, "figure4": FIGURE_4}

# RFC 8417 §2.4 Figure 6: an unsecured SET (header {"typ":"secevent+jwt","alg":"none"}).
FIGURE_6 = (
    "eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJub25lIn0."
    "eyJqdGkiOiI0ZDM1NTllYzY3NTA0YWFiYTY1ZDQwYjAzNjNmYWFkOCIsImlhdCI6MTQ1ODQ5NjQwNCwiaXNzIjoi"
    "aHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29tIiwiYXVkIjpbImh0dHBzOi8vc2NpbS5leGFtcGxlLmNvbS9GZWVkcy85"
    "OGQ1MjQ2MWZhNWJiYzg3OTU5M2I3NzU0IiwiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29tL0ZlZWRzLzVkNzYwNDUx"
    "NmIxZDA4NjQxZDc2NzZlZTciXSwiZXZlbnRzIjp7InVybjppZXRmOnBhcmFtczpzY2ltOmV2ZW50OmNyZWF0ZSI6"
    "eyJyZWYiOiJodHRwczovL3NjaW0uZXhhbXBsZS5jb20vVXNlcnMvNDRmNjE0MmRmOTZiZDZhYjYxZTc1MjFkOSIs"
    "ImF0dHJpYnV0ZXMiOlsiaWQiLCJuYW1lIiwidXNlck5hbWUiLCJwYXNzd29yZCIsImVtYWlscyJdfX19."
)

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"

# CAEP 1.0 §3.x and RISC 1.0 §2.x examples (payloads), SSF-style with sub_id.
EVENT_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (
        CAEP + "session-revoked",
        {
            "initiating_entity": "policy",
            "reason_admin": {"en": "Landspeed Policy Violation: C076E82F"},
            "reason_user": {
                "en": "Access attempt from multiple regions.",
                "es-410": "Intento de acceso desde varias regiones.",
            },
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "token-claims-change",
        {"event_timestamp": 1615304991643, "claims": {"role": "ro-admin"}},
    ),
    (
        CAEP + "credential-change",
        {
            "credential_type": "fido2-roaming",
            "change_type": "create",
            "fido2_aaguid": "accced5c-2467-48ea-829b-59b6f2d5b8b1",
            "friendly_name": "Jane's USB authenticator",
            "initiating_entity": "user",
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "assurance-level-change",
        {
            "namespace": "NIST-AAL",
            "current_level": "nist-aal2",
            "previous_level": "nist-aal1",
            "change_direction": "increase",
            "initiating_entity": "user",
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "device-compliance-change",
        {
            "current_status": "not-compliant",
            "previous_status": "compliant",
            "initiating_entity": "policy",
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "session-established",
        {
            "fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611",
            "acr": "AAL2",
            "amr": ["otp"],
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "session-presented",
        {
            "fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611",
            "ext_id": "12345",
            "event_timestamp": 1615304991643,
        },
    ),
    (
        CAEP + "risk-level-change",
        {
            "current_level": "LOW",
            "previous_level": "HIGH",
            "principal": "USER",
            "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH",
            "event_timestamp": 1615304991643,
        },
    ),
    (RISC + "account-credential-change-required", {}),
    (RISC + "account-purged", {}),
    (RISC + "account-disabled", {"reason": "hijacking"}),
    (RISC + "account-enabled", {}),
    (RISC + "identifier-changed", {"new-value": "john.roe@example.com"}),
    (RISC + "identifier-recycled", {}),
    (
        RISC + "credential-compromise",
        {
            "credential_type": "password",
            "event_timestamp": 1615304991643,
            "reason_admin": {"en": "Found in a breach corpus"},
        },
    ),
    (RISC + "opt-in", {}),
    (RISC + "opt-out-initiated", {}),
    (RISC + "opt-out-cancelled", {}),
    (RISC + "opt-out-effective", {}),
    (RISC + "recovery-activated", {}),
    (RISC + "recovery-information-changed", {}),
    (RISC + "sessions-revoked", {}),
    ("https://schemas.openid.net/secevent/ssf/event-type/verification", {"state": "VGhpcyBpcyBh"}),
    (
        "https://schemas.openid.net/secevent/ssf/event-type/stream-updated",
        {"status": "paused", "reason": "License is not valid"},
    ),
]
INVALID_EVENT_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (CAEP + "session-revoked", {"initiating_entity": "robot"}),
    (CAEP + "session-revoked", {"reason_admin": {}}),
    (CAEP + "token-claims-change", {}),
    (CAEP + "credential-change", {"credential_type": "password"}),
    (CAEP + "credential-change", {"credential_type": "password", "change_type": "rotate"}),
    (CAEP + "assurance-level-change", {"namespace": "NIST-AAL"}),
    (CAEP + "device-compliance-change", {"current_status": "fine", "previous_status": "compliant"}),
    (CAEP + "risk-level-change", {"principal": "USER", "current_level": "EXTREME"}),
    (CAEP + "session-established", {"amr": "otp"}),
    (RISC + "account-disabled", {"reason": "boredom"}),
    (RISC + "credential-compromise", {}),
    ("https://schemas.openid.net/secevent/ssf/event-type/stream-updated", {"reason": "x"}),
]
