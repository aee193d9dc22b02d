"""Published examples, as data: RFC 8417 SETs, RFC 9493 subject identifiers, and the
SSF 1.0 / CAEP 1.0 / RISC 1.0 example SETs (openid/sharedsignals e47d2a0).

Each constant names the section and figure it is copied from. Values are copied
exactly, flaws included; where a published example is broken, the flaw is kept in a
``*_AS_PUBLISHED`` constant and the usable form sits beside it.

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

# ---------------------------------------------------------------------------
# RFC 9493 (draft-ietf-secevent-subject-identifiers-18): every subject identifier.
# ---------------------------------------------------------------------------
RFC9493_SUBJECTS: list[tuple[str, dict[str, Any]]] = [
    # §1 Figure 1 (figexampleintro)
    ("RFC 9493 §1 Figure 1", {"format": "email", "email": "user@example.com"}),
    # §3.2.1 Figure 4 (figexamplesubidaccount)
    (
        "RFC 9493 §3.2.1 Figure 4",
        {"format": "account", "uri": "acct:example.user@service.example.com"},
    ),
    # §3.2.2 Figure 5 (figexamplesubidemail)
    ("RFC 9493 §3.2.2 Figure 5", {"format": "email", "email": "user@example.com"}),
    # §3.2.3 Figure 6 (figexamplesubidisssub)
    (
        "RFC 9493 §3.2.3 Figure 6",
        {"format": "iss_sub", "iss": "https://issuer.example.com/", "sub": "145234573"},
    ),
    # §3.2.4 Figure 7 (figexamplesubidopaque)
    ("RFC 9493 §3.2.4 Figure 7", {"format": "opaque", "id": "11112222333344445555"}),
    # §3.2.5 Figure 8 (figexamplesubidphone; captioned "Email Identifier Format" in -18)
    ("RFC 9493 §3.2.5 Figure 8", {"format": "phone_number", "phone_number": "+12065550100"}),
    # §3.2.6 Figures 9 and 10 (figexamplesubiddidbare, figexamplesubiddidcomplex)
    ("RFC 9493 §3.2.6 Figure 9", {"format": "did", "url": "did:example:123456"}),
    (
        "RFC 9493 §3.2.6 Figure 10",
        {"format": "did", "url": "did:example:123456/did/url/path?versionId=1"},
    ),
    # §3.2.7 Figures 11 and 12 (figexamplesubiduidbare, figexamplesubidurnbare)
    ("RFC 9493 §3.2.7 Figure 11", {"format": "uri", "uri": "https://user.example.com/"}),
    (
        "RFC 9493 §3.2.7 Figure 12",
        {"format": "uri", "uri": "urn:uuid:4e851e98-83c4-4743-a5da-150ecb53042f"},
    ),
    # §3.2.8 Figure 13 (figexamplesubididtoken)
    (
        "RFC 9493 §3.2.8 Figure 13",
        {
            "format": "aliases",
            "identifiers": [
                {"format": "email", "email": "user@example.com"},
                {"format": "phone_number", "phone_number": "+12065550100"},
                {"format": "email", "email": "user+qualifier@example.com"},
            ],
        },
    ),
]

# RFC 9493 JWTs carrying sub_id: §1 Figure 2, §4.1 Figures 14-17, §4.2 Figures 18-20.
RFC9493_JWTS: list[tuple[str, dict[str, Any]]] = [
    (
        "RFC 9493 §1 Figure 2",
        {
            "iss": "issuer.example.com",
            "sub_id": {"format": "phone_number", "phone_number": "+12065550100"},
        },
    ),
    (
        "RFC 9493 §4.1 Figure 14",
        {"iss": "issuer.example.com", "sub_id": {"format": "email", "email": "user@example.com"}},
    ),
    (
        "RFC 9493 §4.1 Figure 15",
        {
            "iss": "issuer.example.com",
            "sub": "user@example.com",
            "sub_id": {"format": "email", "email": "user@example.com"},
        },
    ),
    (
        "RFC 9493 §4.1 Figure 16",
        {
            "iss": "issuer.example.com",
            "sub": "liz@example.com",
            "sub_id": {"format": "email", "email": "elizabeth@example.com"},
        },
    ),
    (
        "RFC 9493 §4.1 Figure 17",
        {
            "iss": "issuer.example.com",
            "sub": "user@example.com",
            "sub_id": {"format": "account", "uri": "acct:example.user@service.example.com"},
        },
    ),
    (
        "RFC 9493 §4.2 Figure 18",
        {
            "iss": "issuer.example.com",
            "sub_id": {"format": "iss_sub", "iss": "issuer.example.com", "sub": "example_user"},
        },
    ),
    (
        "RFC 9493 §4.2 Figure 19",
        {
            "iss": "client.example.com",
            "sub_id": {"format": "iss_sub", "iss": "issuer.example.com", "sub": "example_user"},
        },
    ),
    (
        "RFC 9493 §4.2 Figure 20",
        {
            "iss": "client.example.com",
            "sub": "client_user",
            "sub_id": {"format": "iss_sub", "iss": "issuer.example.com", "sub": "example_user"},
        },
    ),
]

# RFC 9493 §1 Figure 3 (figexampleintro3): three subject members in one payload, no jti.
RFC9493_INTERCEPTION_SET: dict[str, Any] = {
    "iss": "issuer.example.com",
    "iat": 1508184845,
    "aud": "aud.example.com",
    "events": {
        "https://secevent.example.com/events/message-interception": {
            "from": {"format": "email", "email": "alice@example.com"},
            "to": {"format": "email", "email": "bob@example.com"},
            "interceptor": {"format": "email", "email": "eve@example.com"},
        }
    },
}

# ---------------------------------------------------------------------------
# OpenID SSF 1.0 (openid-sharedsignals-framework-1_0, 2025-08-29)
# ---------------------------------------------------------------------------
SSF_SUBJECTS: list[tuple[str, dict[str, Any]]] = [
    # §3.2 (simple-subject-ex)
    ("SSF §3.2 simple-subject-ex", {"format": "email", "email": "foo@example.com"}),
    # §3.3 (complex-subject-ex)
    (
        "SSF §3.3 complex-subject-ex",
        {
            "format": "complex",
            "user": {"format": "email", "email": "bar@example.com"},
            "tenant": {"format": "iss_sub", "iss": "https://example.com/idp1", "sub": "1234"},
        },
    ),
    # §3.5.1 (sub-id-jwtid)
    (
        "SSF §3.5.1 sub-id-jwtid",
        {
            "format": "jwt_id",
            "iss": "https://idp.example.com/123456789/",
            "jti": "B70BA622-9515-4353-A866-823539EECBC8",
        },
    ),
    # §3.5.2 (sub-id-samlassertionid)
    (
        "SSF §3.5.2 sub-id-samlassertionid",
        {
            "format": "saml_assertion_id",
            "issuer": "https://idp.example.com/123456789/",
            "assertion_id": "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6",
        },
    ),
    # §3.5.3 (sub-id-ips-example): the IPv6 address is not in RFC 5952 short form.
    (
        "SSF §3.5.3 sub-id-ips-example",
        {
            "format": "ip-addresses",
            "ip-addresses": ["10.29.37.75", "2001:0db8:0000:0000:0000:8a2e:0370:7334"],
        },
    ),
    # §8.1.3.1 subject matching examples (unnamed figures), in order.
    (
        "SSF §8.1.3.1 matching example 1, receiver",
        {"format": "complex", "tenant": {"format": "opaque", "id": "example-a38h4792-uw2"}},
    ),
    (
        "SSF §8.1.3.1 matching example 1, transmitter",
        {
            "format": "complex",
            "tenant": {"format": "opaque", "id": "example-a38h4792-uw2"},
            "user": {"format": "email", "email": "jdoe@example.com"},
        },
    ),
    (
        "SSF §8.1.3.1 matching example 2, receiver",
        {
            "format": "complex",
            "user": {"format": "email", "email": "jdoe@example.com"},
            "device": {"format": "ip-addresses", "ip-addresses": ["10.29.37.75"]},
        },
    ),
    (
        "SSF §8.1.3.1 matching example 2, transmitter",
        {"format": "complex", "user": {"format": "email", "email": "jdoe@example.com"}},
    ),
    (
        "SSF §8.1.3.1 matching example 3, receiver",
        {
            "format": "complex",
            "user": {"format": "email", "email": "jdoe@example.com"},
            "group": {"format": "did", "url": "did:example:123456"},
        },
    ),
    (
        "SSF §8.1.3.1 matching example 3, transmitter",
        {
            "format": "complex",
            "user": {"format": "email", "email": "jdoe@example.com"},
            "group": {"format": "did", "url": "did:example:9999999"},
        },
    ),
    # §8.1.3.2 (figaddreq): the add-subject request's subject.
    ("SSF §8.1.3.2 figaddreq", {"format": "email", "email": "example.user@example.com"}),
]
# §8.1.3.3 (figremovereq): pre-RFC format name "phone" (RFC 9493: "phone_number").
SSF_REMOVE_SUBJECT_AS_PUBLISHED: dict[str, Any] = {
    "format": "phone",
    "phone_number": "+12065550123",
}

SSF_VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
SSF_STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
_IDP = {"iss": "https://idp.example.com/", "jti": "756E69717565206964656E746966696572"}
_SSF5 = {**_IDP, "iat": 1520364019, "txn": "8675309", "aud": "636C69656E745F6964"}

SSF_SETS: list[tuple[str, dict[str, Any]]] = [
    (
        "SSF §4.1.8 figarrayaud",
        {
            "jti": "123456",
            "iss": "https://transmitter.example.com",
            "aud": ["receiver.example.com/web", "receiver.example.com/mobile"],
            "iat": 1493856000,
            "txn": "8675309",
            "sub_id": {"format": "opaque", "id": "72e6991badb44e08a69672960053b342"},
            "events": {SSF_VERIFICATION: {"state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}},
        },
    ),
    (
        "SSF §5 subject-ids-ex-simple",
        {
            **_SSF5,
            "sub_id": {"format": "email", "email": "foo@example.com"},
            "events": {"https://schemas.openid.net/secevent/risc/event-type/account-enabled": {}},
        },
    ),
    # The phone number has spaces: not strict E.164 (accepted when lax, decision 11).
    (
        "SSF §5 risc-event-subject-example",
        {
            **_SSF5,
            "sub_id": {"format": "phone_number", "phone_number": "+1 206 555 0123"},
            "events": {
                "https://schemas.openid.net/secevent/risc/event-type/account-disabled": {
                    "reason": "hijacking"
                }
            },
        },
    ),
    (
        "SSF §5 caep-event-properties-example",
        {
            **_SSF5,
            "sub_id": {"format": "email", "email": "user@example.com"},
            "events": {
                "https://schemas.openid.net/secevent/caep/event-type/token-claims-change": {
                    "claims": {"token": "some-token-value"}
                }
            },
        },
    ),
    (
        "SSF §5 subject-ids-ex-complex",
        {
            **_SSF5,
            "sub_id": {
                "format": "complex",
                "user": {
                    "format": "iss_sub",
                    "iss": "https://idp.example.com/3957ea72-1b66-44d6-a044-d805712b9288/",
                    "sub": "jane.smith@example.com",
                },
                "device": {
                    "format": "iss_sub",
                    "iss": "https://idp.example.com/3957ea72-1b66-44d6-a044-d805712b9288/",
                    "sub": "e9297990-14d2-42ec-a4a9-4036db86509a",
                },
            },
            "events": {
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "Policy Violation: C076E82F"},
                    "reason_user": {
                        "en": "Land speed violation.",
                        "es": "Violación de velocidad en tierra.",
                    },
                    "event_timestamp": 1600975810,
                }
            },
        },
    ),
    (
        "SSF §5 subject-properties-ex",
        {
            **_SSF5,
            "iss": "https://sp.example2.com/",
            "sub_id": {"format": "email", "email": "foo@example2.com"},
            "events": {
                "https://schemas.openid.net/secevent/caep/event-type/token-claims-change": {
                    "event_timestamp": 1600975810,
                    "claims": {"role": "ro-admin"},
                }
            },
        },
    ),
    # A proprietary format (SSF §3.4); iat 15203800012 lies in the year 2451.
    (
        "SSF §5 subject-custom-type-ex",
        {
            "iss": "https://myservice.example3.com/",
            "jti": "756E69717565206964656E746966696534",
            "iat": 15203800012,
            "txn": "8675309",
            "aud": "636C69656E745F6324",
            "sub_id": {"format": "catalog_item", "catalog_id": "c0384/winter/2354122"},
            "events": {
                "https://schemas.openid.net/secevent/caep/event-type/token-claims-change": {
                    "event_timestamp": 1600975810,
                    "claims": {"role": "ro-admin"},
                }
            },
        },
    ),
    (
        "SSF §8.1.4.2 figverifyset",
        {
            "jti": "123456",
            "iss": "https://transmitter.example.com",
            "aud": "receiver.example.com",
            "iat": 1493856000,
            "sub_id": {"format": "opaque", "id": "f67e39a0a4d34d56b3aa1bc4cff0069f"},
            "events": {SSF_VERIFICATION: {"state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}},
        },
    ),
    (
        "SSF §8.1.5 figstreamupdatedset",
        {
            "jti": "123456",
            "iss": "https://transmitter.example.com",
            "aud": "receiver.example.com",
            "iat": 1493856000,
            "sub_id": {"format": "opaque", "id": "f67e39a0a4d34d56b3aa1bc4cff0069f"},
            "events": {SSF_STREAM_UPDATED: {"status": "paused", "reason": "Internal error"}},
        },
    ),
]

# ---------------------------------------------------------------------------
# OpenID CAEP 1.0 (openid-caep-1_0, 2025-08-29), §3.x examples
# ---------------------------------------------------------------------------
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
_CAEP_A = {
    "iss": "https://idp.example.com/123456789/",
    "jti": "24c63fb56e5a2d77a6b512616ca9fa24",
    "iat": 1615305159,
    "aud": "https://sp.example.com/caep",
    "txn": "8675309",
}
_CAEP_B = {
    "iss": "https://idp.example.com/987654321/",
    "jti": "9afce1e4e642b165fcaacdd0e7aa4903",
    "iat": 1615305159,
    "aud": "https://sp.example2.net/caep",
    "txn": "8675309",
}
_CAEP_C = {
    "iss": "https://idp.example.com/3456789/",
    "jti": "07efd930f0977e4fcc1149a733ce7f78",
    "iat": 1615305159,
    "aud": "https://sp.example2.net/caep",
    "txn": "8675309",
}
_JANE = {
    "format": "iss_sub",
    "iss": "https://idp.example.com/3456789/",
    "sub": "jane.smith@example.com",
}
_JWT_ID = {
    "format": "jwt_id",
    "iss": "https://idp.example.com/987654321/",
    "jti": "f61t6e20zdo3px56gepu8rzlsp4c1dpc0fx7",
}
_SOMEUSER = {"format": "email", "email": "someuser@somedomain.com"}
_DEVICE = {
    "format": "iss_sub",
    "iss": "https://idp.example.com/123456789/",
    "sub": "e9297990-14d2-42ec-a4a9-4036db86509a",
}
_TENANT = {"format": "opaque", "id": "123456789"}

CAEP_SETS: list[tuple[str, dict[str, Any]]] = [
    (
        "CAEP §3.1.2 session-revoked-example-session-id-req",
        {
            **_CAEP_A,
            "sub_id": {"format": "opaque", "id": "dMTlD|1600802906337.16|16008.16"},
            "events": {CAEP + "session-revoked": {"event_timestamp": 1615304991}},
        },
    ),
    # Captioned "subject as `sub` claim" but carries a complex sub_id (correct per SSF).
    (
        "CAEP §3.1.2 session-revoked-example-user-sub",
        {
            **_CAEP_A,
            "sub_id": {
                "format": "complex",
                "session": {"format": "opaque", "id": "dMTlD|1600802906337.16|16008.16"},
                "user": {
                    "format": "iss_sub",
                    "iss": "https://idp.example.com/123456789/",
                    "sub": "99beb27c-c1c2-4955-882a-e0dc4996fcbc",
                },
                "tenant": _TENANT,
            },
            "events": {
                CAEP + "session-revoked": {
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "Landspeed Policy Violation: C076E82F"},
                    "reason_user": {
                        "en": "Access attempt from multiple regions.",
                        "es-410": "Intento de acceso desde varias regiones.",
                    },
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.1.2 session-revoked-example-user-device",
        {
            **_CAEP_A,
            "sub_id": {
                "format": "complex",
                "user": {
                    "format": "iss_sub",
                    "iss": "https://idp.example.com/123456789/",
                    "sub": "jane.smith@example.com",
                },
                "device": _DEVICE,
                "tenant": _TENANT,
            },
            "events": {
                CAEP + "session-revoked": {
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "Policy Violation: C076E822"},
                    "reason_user": {
                        "en": "This device is no longer compliant.",
                        "it": "Questo dispositivo non è più conforme.",
                    },
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.2.2 token-claims-change-example-oidc",
        {
            **_CAEP_B,
            "sub_id": _JWT_ID,
            "events": {
                CAEP + "token-claims-change": {
                    "event_timestamp": 1615304991,
                    "claims": {"role": "ro-admin"},
                }
            },
        },
    ),
    (
        "CAEP §3.2.2 token-claims-change-example-oidc-optional",
        {
            **_CAEP_B,
            "sub_id": _JWT_ID,
            "events": {
                CAEP + "token-claims-change": {
                    "event_timestamp": 1615304991,
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "User left trusted network: CorpNet3"},
                    "reason_user": {
                        "en": "You're no longer connected to a trusted network.",
                        "it": "Non sei più connesso a una rete attendibile.",
                    },
                    "claims": {"trusted_network": False},
                }
            },
        },
    ),
    (
        "CAEP §3.2.2 token-claims-change-example-saml",
        {
            **_CAEP_B,
            "jti": "dae94fed5f459881efa38b65c6772ddc",
            "sub_id": {
                "format": "saml_assertion_id",
                "issuer": "https://idp.example.com/987654321/",
                "assertion_id": "_a75adf55-01d7-dbd8372ebdfc",
            },
            "events": {
                CAEP + "token-claims-change": {
                    "event_timestamp": 1615304991,
                    "claims": {
                        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/role": "ro-admin"
                    },
                }
            },
        },
    ),
    (
        "CAEP §3.3.2 credential-change-example-fido2",
        {
            **_CAEP_C,
            "sub_id": _JANE,
            "events": {
                CAEP + "credential-change": {
                    "credential_type": "fido2-roaming",
                    "change_type": "create",
                    "fido2_aaguid": "accced6a-63f5-490a-9eea-e59bc1896cfc",
                    "friendly_name": "Jane's USB authenticator",
                    "initiating_entity": "user",
                    "reason_admin": {"en": "User self-enrollment"},
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.4.2 assurance-level-change-examples-al-increase",
        {
            **_CAEP_C,
            "sub_id": _JANE,
            "events": {
                CAEP + "assurance-level-change": {
                    "namespace": "NIST-AAL",
                    "current_level": "nist-aal2",
                    "previous_level": "nist-aal1",
                    "change_direction": "increase",
                    "initiating_entity": "user",
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.4.2 assurance-level-change-examples-custom",
        {
            **_CAEP_C,
            "sub_id": _JANE,
            "events": {
                CAEP + "assurance-level-change": {
                    "namespace": "Retinal Scan",
                    "current_level": "hi-res-scan",
                    "initiating_entity": "user",
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.5.2 device-compliance-change-examples-out-of-compliance",
        {
            **_CAEP_A,
            "sub_id": {"format": "complex", "device": _DEVICE, "tenant": _TENANT},
            "events": {
                CAEP + "device-compliance-change": {
                    "current_status": "not-compliant",
                    "previous_status": "compliant",
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "Location Policy Violation: C076E8A3"},
                    "reason_user": {"en": "Device is no longer in a trusted location."},
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.6.2 session-established example",
        {
            **_CAEP_A,
            "sub_id": _SOMEUSER,
            "events": {
                CAEP + "session-established": {
                    "fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611",
                    "acr": "AAL2",
                    "amr": ["otp"],
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.7.2 session-presented example",
        {
            **_CAEP_A,
            "sub_id": _SOMEUSER,
            "events": {
                CAEP + "session-presented": {
                    "fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611",
                    "ext_id": "12345",
                    "event_timestamp": 1615304991,
                }
            },
        },
    ),
    (
        "CAEP §3.8.2 risk-level-change example",
        {
            **_CAEP_A,
            "sub_id": {
                "format": "iss_sub",
                "iss": "https://idp.example.com/3456789/",
                "sub": "jane.doe@example.com",
            },
            "events": {
                CAEP + "risk-level-change": {
                    "current_level": "LOW",
                    "previous_level": "HIGH",
                    "event_timestamp": 1615304991,
                    "principal": "USER",
                    "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH",
                }
            },
        },
    ),
]

# ---------------------------------------------------------------------------
# OpenID RISC 1.0 (openid-risc-profile-specification-1_0, 2025-08-29), §2.x examples
# ---------------------------------------------------------------------------
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
_RISC = {**_IDP, "iat": 1508184845, "aud": "636C69656E745F6964"}
_RISC_SUB = {"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "7375626A656374"}

# §2.3 (account-disabled-example), verbatim: the trailing comma makes it invalid JSON.
RISC_ACCOUNT_DISABLED_AS_PUBLISHED = """\
{
  "iss": "https://idp.example.com/",
  "jti": "756E69717565206964656E746966696572",
  "iat": 1508184845,
  "aud": "636C69656E745F6964",
  "sub_id": {
    "format": "iss_sub",
    "iss": "https://idp.example.com/",
    "sub": "7375626A656374",
  },
  "events": {
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled": {
      "reason": "hijacking"
    }
  }
}
"""
RISC_SETS: list[tuple[str, dict[str, Any]]] = [
    (
        "RISC §2.1 account-credential-change-required-example",
        {**_RISC, "sub_id": _RISC_SUB, "events": {RISC + "account-credential-change-required": {}}},
    ),
    # The same SET without the trailing comma.
    (
        "RISC §2.3 account-disabled-example (comma removed)",
        {
            **_RISC,
            "sub_id": _RISC_SUB,
            "events": {RISC + "account-disabled": {"reason": "hijacking"}},
        },
    ),
    (
        "RISC §2.5 identifier-changed-example",
        {
            **_RISC,
            "sub_id": {"format": "email", "email": "john.doe@example.com"},
            "events": {RISC + "identifier-changed": {"new-value": "john.roe@example.com"}},
        },
    ),
    (
        "RISC §2.6 identifier-recycled-example",
        {
            **_RISC,
            "sub_id": {"format": "email", "email": "foo@example.com"},
            "events": {RISC + "identifier-recycled": {}},
        },
    ),
    (
        "RISC §2.7 credential-compromise-example",
        {
            **_RISC,
            "iss": "https://idp.example.com/3456790/",
            "aud": "https://sp.example2.net/caep",
            "sub_id": {
                "format": "iss_sub",
                "iss": "https://idp.example.com/3456790/",
                "sub": "joe.smith@example.com",
            },
            "events": {RISC + "credential-compromise": {"credential_type": "password"}},
        },
    ),
]

PUBLISHED_SETS: list[tuple[str, dict[str, Any]]] = SSF_SETS + CAEP_SETS + RISC_SETS

# Event types with no published example: constructed payloads (marked so), one per type,
# so that every schema is exercised with a valid payload.
CONSTRUCTED_EVENT_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (RISC + "account-purged", {}),
    (RISC + "account-enabled", {}),
    (RISC + "opt-in", {}),
    (RISC + "opt-out-initiated", {}),
    (RISC + "opt-out-cancelled", {}),
    (RISC + "opt-out-effective", {}),
    (RISC + "recovery-activated", {}),
    (RISC + "recovery-information-changed", {}),
    (RISC + "sessions-revoked", {}),
    (SSF_VERIFICATION, {}),  # transmitter-initiated: no state (SSF-35)
    (
        RISC + "credential-compromise",
        {
            "credential_type": "password",
            "event_timestamp": 1615304991,
            "reason_admin": {"en": "Found in a breach corpus"},
            "reason_user": "Your password was found in a breach.",
        },
    ),
    # RFC 8417 Figure 4's legacy in-payload subject, under the https RISC URI (SSF-2).
    (RISC + "account-disabled", FIGURE_4["events"][next(iter(FIGURE_4["events"]))]),
]

# (event URI, payload) for every event in a published SET, then the constructed ones.
EVENT_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (uri, payload) for _, claims in PUBLISHED_SETS for uri, payload in claims["events"].items()
] + CONSTRUCTED_EVENT_PAYLOADS

# Payloads that break a REQUIRED member or an enumeration: always invalid_request.
INVALID_EVENT_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (CAEP + "session-revoked", {"initiating_entity": "robot"}),
    (CAEP + "session-revoked", {"reason_admin": {}}),
    (CAEP + "session-revoked", {"reason_user": {"en": 5}}),
    (CAEP + "session-revoked", {"reason_admin": {"en_US": "underscore is no BCP 47"}}),
    (CAEP + "session-revoked", {"event_timestamp": "1615304991"}),
    (CAEP + "session-revoked", {"event_timestamp": True}),
    (CAEP + "session-revoked", {"subject": {"format": "email", "email": ""}}),
    (CAEP + "token-claims-change", {}),
    (CAEP + "token-claims-change", {"claims": {}}),
    (CAEP + "token-claims-change", {"claims": ["role"]}),
    (CAEP + "credential-change", {"credential_type": "password"}),
    (CAEP + "credential-change", {"change_type": "create"}),
    (CAEP + "credential-change", {"credential_type": "", "change_type": "create"}),
    (CAEP + "credential-change", {"credential_type": "password", "change_type": "rotate"}),
    (CAEP + "assurance-level-change", {"namespace": "NIST-AAL"}),
    (CAEP + "assurance-level-change", {"current_level": "nist-aal2"}),
    (
        CAEP + "assurance-level-change",
        {"namespace": "NIST-AAL", "current_level": "nist-aal2", "change_direction": "up"},
    ),
    (CAEP + "device-compliance-change", {"current_status": "fine", "previous_status": "compliant"}),
    (CAEP + "device-compliance-change", {"current_status": "compliant"}),
    (CAEP + "risk-level-change", {"principal": "USER", "current_level": "EXTREME"}),
    (CAEP + "risk-level-change", {"principal": "USER", "current_level": "low"}),
    (CAEP + "risk-level-change", {"current_level": "LOW"}),
    (
        CAEP + "risk-level-change",
        {"principal": "USER", "current_level": "LOW", "previous_level": "NONE"},
    ),
    (CAEP + "session-established", {"amr": "otp"}),
    (CAEP + "session-established", {"amr": [1]}),
    (RISC + "account-disabled", {"reason": "boredom"}),
    (RISC + "identifier-changed", {"new-value": ""}),
    (RISC + "credential-compromise", {}),
    (RISC + "credential-compromise", {"credential_type": "password", "reason_admin": {}}),
    (SSF_STREAM_UPDATED, {"reason": "x"}),
    (SSF_STREAM_UPDATED, {"status": "stopped"}),
    (SSF_VERIFICATION, {"state": 42}),
]
