"""Subject identifiers: RFC 9493 SUBID-n, SSF 1.0 §3.3-3.5 (SSF-7, SSF-8).

``check_subject_id`` (lax and strict) and ``schemas/subjects/subject-identifier.json``
are held to one table of cases; the schema is the lax policy written as JSON Schema.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from jsonschema import Draft202012Validator

from peer.errors import MalformedFrame, SETRejected
from peer.protocol.jsonio import loads_strict
from peer.tokens.schemas import schema_dir
from peer.tokens.subjects import (
    FORMAT_NAME_PATTERNS,
    FORMATS,
    LEGACY_FORMATS,
    LIMITS,
    check_subject_id,
    subject_format,
)
from tests.timing import FACTOR
from tests.tokens import examples

SCHEMA = json.loads((schema_dir() / "subjects" / "subject-identifier.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def lax_ok(value: object) -> bool:
    try:
        check_subject_id(value)
    except SETRejected as exc:
        assert exc.err == "invalid_request"
        return False
    return True


def strict_ok(value: object) -> bool:
    try:
        check_subject_id(value, strict=True)
    except SETRejected as exc:
        assert exc.err == "invalid_request"
        return False
    return True


def schema_ok(value: object) -> bool:
    return VALIDATOR.is_valid(value)


# Every subject identifier the specs publish, by source (tests/tokens/examples.py).
PUBLISHED: list[tuple[str, Any]] = (
    examples.RFC9493_SUBJECTS
    + [(label + " sub_id", jwt["sub_id"]) for label, jwt in examples.RFC9493_JWTS]
    + [
        (f"RFC 9493 §1 Figure 3 {name}", subject)
        for payload in examples.RFC9493_INTERCEPTION_SET["events"].values()
        for name, subject in payload.items()
    ]
    + examples.SSF_SUBJECTS
    + [(label + " sub_id", claims["sub_id"]) for label, claims in examples.PUBLISHED_SETS]
)
# Published but not RFC 9493 as written: lax accepts them, strict refuses (decision 11).
LAX_ONLY = {"SSF §5 risc-event-subject-example sub_id", "SSF §5 subject-custom-type-ex sub_id"}


@pytest.mark.parametrize("label, value", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_subid18_published_examples_are_valid(label: str, value: Any) -> None:
    """SUBID-8..17, SUBID-18, SSF-7: every published identifier passes, and the schema
    agrees; the value is never altered (SUBID-10)."""
    before = copy.deepcopy(value)
    assert lax_ok(value) and schema_ok(value)
    assert strict_ok(value) is (label not in LAX_ONLY)
    assert value == before


def test_subid13_ssf_phone_with_spaces() -> None:
    """SUBID-13 / pitfall: SSF §5's "+1 206 555 0123" is not E.164: lax only."""
    value = {"format": "phone_number", "phone_number": "+1 206 555 0123"}
    assert lax_ok(value) and schema_ok(value) and not strict_ok(value)
    with pytest.raises(SETRejected, match=r"sub_id\.phone_number: must be an E\.164"):
        check_subject_id(value, strict=True)


def test_legacy_phone_format_of_ssf_remove_subject() -> None:
    """SSF §8.1.3.3's `"format": "phone"`: a legacy name, mapped when lax, refused strict."""
    value = examples.SSF_REMOVE_SUBJECT_AS_PUBLISHED
    assert lax_ok(value) and schema_ok(value) and not strict_ok(value)
    assert subject_format(value) == "phone_number"


def test_risc_account_disabled_as_published_is_not_json() -> None:
    """RISC §2.3's example has a trailing comma: refused at parse, before any check."""
    with pytest.raises(MalformedFrame):
        loads_strict(examples.RISC_ACCOUNT_DISABLED_AS_PUBLISHED, max_bytes=4096, max_depth=8)
    fixed = examples.RISC_ACCOUNT_DISABLED_AS_PUBLISHED.replace('",\n  }', '"\n  }')
    assert loads_strict(fixed, max_bytes=4096, max_depth=8) == examples.RISC_SETS[1][1]


E, P, OP = "email", "phone_number", "opaque"
EMAIL = {"format": E, "email": "user@example.com"}
# (item, value, lax and schema verdict, strict verdict): the shared table.
CASES: list[tuple[str, object, bool, bool]] = [
    ("SUBID-1", "user@example.com", False, False),
    ("SUBID-1", ["format", "email"], False, False),
    ("SUBID-1", {"email": "user@example.com"}, False, False),
    ("SUBID-1", {"format": "", "email": "user@example.com"}, False, False),
    ("SUBID-1", {"format": None, "email": "user@example.com"}, False, False),
    ("SUBID-1", {"format": ["email"], "email": "user@example.com"}, False, False),
    ("SUBID-2", {"format": "catalog_item", "catalog_id": "c0384"}, True, False),
    ("SUBID-2", {"format": "urn:example:format:employee", "employee": "4711"}, True, False),
    ("SUBID-2", {"format": "Catalog Item"}, False, False),
    ("SUBID-2", {"format": "x" * 65}, False, False),
    ("SUBID-5", {**EMAIL, "note": "extra"}, True, False),
    ("SUBID-5", {"format": E}, False, False),
    ("SUBID-8", {"format": "account", "uri": "acct:bob@example.com"}, True, True),
    ("SUBID-8", {"format": "account", "uri": "mailto:bob@example.com"}, False, False),
    ("SUBID-8", {"format": "account", "uri": "acct:bob"}, False, False),
    ("SUBID-9", {"format": E, "email": "User.Name+tag@Example.COM"}, True, True),
    ("SUBID-9", {"format": E, "email": '"john@home"@example.com'}, True, True),
    ("SUBID-9", {"format": E, "email": ""}, False, False),
    ("SUBID-9", {"format": E, "email": None}, False, False),
    ("SUBID-9", {"format": E, "email": 42}, False, False),
    ("SUBID-9", {"format": E, "email": "no-at-sign"}, False, False),
    ("SUBID-9", {"format": E, "email": "a@b@example.com"}, False, False),
    ("SUBID-9", {"format": E, "email": "user @example.com"}, False, False),
    ("SUBID-9", {"format": E, "email": "user@example.com\n"}, False, False),
    ("SUBID-9", {"format": E, "email": "@example.com"}, False, False),
    ("SUBID-11", {"format": "iss_sub", "iss": "https://i.example/"}, False, False),
    ("SUBID-11", {"format": "iss_sub", "iss": "https://i.example/", "sub": ""}, False, False),
    ("SUBID-11", {"format": "iss_sub", "iss": "1:x", "sub": "s"}, True, False),
    ("SUBID-12", {"format": OP, "id": ""}, False, False),
    ("SUBID-12", {"format": OP, "id": 12345}, False, False),
    ("SUBID-12", {"format": OP, "id": "x" * LIMITS["value_chars"]}, True, True),
    ("SUBID-12", {"format": OP, "id": "x" * (LIMITS["value_chars"] + 1)}, False, False),
    ("SUBID-13", {"format": P, "phone_number": "2065550100"}, False, False),
    ("SUBID-13", {"format": P, "phone_number": "+1 (206) 555-0100"}, True, False),
    ("SUBID-13", {"format": P, "phone_number": "+0123"}, False, False),
    ("SUBID-13", {"format": P, "phone_number": "+1234567890123456"}, False, False),
    ("SUBID-13", {"format": P, "phone_number": "+12065550100 "}, False, False),
    ("SUBID-13", {"format": P, "phone_number": "+1206555010a"}, False, False),
    (
        "SUBID-14",
        {"format": "did", "url": "did:web:example.com%3A8443:user:alice#key-1"},
        True,
        True,
    ),
    ("SUBID-14", {"format": "did", "url": "https://example.com"}, False, False),
    ("SUBID-14", {"format": "did", "url": "did:Example:123"}, False, False),
    ("SUBID-14", {"format": "did", "url": "did:example:"}, False, False),
    ("SUBID-14", {"format": "did", "URL": "did:example:123456"}, False, False),
    ("SUBID-15", {"format": "uri", "uri": "mailto:user@example.com"}, True, True),
    ("SUBID-15", {"format": "uri", "uri": "not a uri"}, False, False),
    ("SUBID-15", {"format": "uri", "uri": "/relative/path"}, False, False),
    ("SUBID-16", {"format": "aliases", "identifiers": []}, False, False),
    ("SUBID-16", {"format": "aliases", "identifiers": EMAIL}, False, False),
    ("SUBID-16", {"format": "aliases", "identifiers": [EMAIL, EMAIL]}, True, False),
    ("SUBID-16", {"format": "aliases", "identifiers": [EMAIL, {"format": E}]}, False, False),
    (
        "SUBID-17",
        {"format": "aliases", "identifiers": [{"format": "aliases", "identifiers": [EMAIL]}]},
        False,
        False,
    ),
    ("SSF-7", {"format": "complex"}, False, False),
    (
        "SSF-7",
        {"format": "complex", "user": EMAIL, "org_unit": {"format": OP, "id": "7"}},
        True,
        True,
    ),
    ("SSF-7", {"format": "complex", "printer": {"format": OP, "id": "p-7"}}, True, True),
    ("SSF-7", {"format": "complex", "user": "user@example.com"}, False, False),
    ("SSF-7", {"format": "complex", "user": {"format": E, "email": ""}}, False, False),
    ("SSF-7", {"format": "complex", "user": {"format": "complex", "user": EMAIL}}, False, False),
    (
        "SSF-7",
        {"format": "complex", "user": {"format": "aliases", "identifiers": [EMAIL]}},
        True,
        True,
    ),
    (
        "SSF-7",
        {"format": "aliases", "identifiers": [{"format": "complex", "user": EMAIL}]},
        False,
        False,
    ),
    ("SSF-8", {"format": "jwt_id", "iss": "https://i.example/", "jti": "j"}, True, True),
    ("SSF-8", {"format": "jwt_id", "iss": "https://i.example/"}, False, False),
    ("SSF-8", {"format": "saml_assertion_id", "issuer": "https://i.example/"}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": ["192.0.2.1", "::1"]}, True, True),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": ["999.1.1.1"]}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": ["010.1.1.1"]}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": ["fe80::1%eth0"]}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": []}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": "192.0.2.1"}, False, False),
    ("SSF-8", {"format": "ip-addresses", "ip-addresses": [3232235777]}, False, False),
    (
        "legacy",
        {"subject_type": "iss-sub", "iss": "https://idp.example.com/", "sub": "7"},
        True,
        False,
    ),
    ("legacy", {"subject_type": "email", "email": "user@example.com"}, True, False),
    ("legacy", {"format": "phone", "phone": "+1 (206) 555-0100"}, True, False),
    ("legacy", {"format": "phone-number", "phone_number": "+12065550100"}, True, False),
    ("legacy", {"format": "phone", "phone": "call me"}, False, False),
    ("legacy", {"subject_type": "complex", "user": EMAIL}, False, False),
    ("legacy", {"subject_type": "aliases", "identifiers": [EMAIL]}, False, False),
    ("bounds", {"format": OP, "id": "1", **{f"m{i}": i for i in range(64)}}, False, False),
    ("bounds", {"format": "aliases", "identifiers": [EMAIL] * 65}, False, False),
    ("bounds", {"format": "ip-addresses", "ip-addresses": ["192.0.2.1"] * 257}, False, False),
]


@pytest.mark.parametrize(
    "item, value, lax, strict", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_shared_table(item: str, value: object, lax: bool, strict: bool) -> None:
    """SUBID-1, 2, 5, 8-17, SSF-7/8, legacy shapes, bounds: checker (lax and strict) and
    JSON schema give the table's verdict."""
    assert (lax_ok(value), strict_ok(value), schema_ok(value)) == (lax, strict, lax)


def test_error_names_path_and_rule() -> None:
    """Errors are invalid_request with the member's path and the spec item."""
    value = {
        "format": "complex",
        "user": {"format": "aliases", "identifiers": [EMAIL, {"format": E, "email": "x"}]},
    }
    with pytest.raises(SETRejected) as info:
        check_subject_id(value, path="events.x.subject")
    assert info.value.err == "invalid_request"
    assert info.value.description.startswith("events.x.subject.user.identifiers[1].email: ")
    assert "SUBID-9" in info.value.description
    with pytest.raises(
        SETRejected, match=r"sub_id: member 'note' is not part of email \(SUBID-5\)"
    ):
        check_subject_id({**EMAIL, "note": 1}, strict=True)
    with pytest.raises(SETRejected, match="SUBID-17"):
        check_subject_id({"format": "aliases", "identifiers": [{"format": "aliases"}]})


def test_subid3_subid4_format_table_is_data() -> None:
    """SUBID-4: no format defines rules for "format"; SUBID-3/5: every listed member is
    REQUIRED, and the schema lists the same members and patterns as the checker."""
    for name, spec in FORMATS.items():
        members = [m.name for m in spec.members]
        assert "format" not in members and members
        schema_def = SCHEMA["$defs"][name]
        assert schema_def["required"] == members
        for m in spec.members:
            assert schema_def["properties"][m.name].get("pattern") == m.pattern
    names = SCHEMA["$defs"]["format-name"]["anyOf"]
    assert [n["pattern"] for n in names] == list(FORMAT_NAME_PATTERNS)
    assert SCHEMA["$defs"]["value"]["maxLength"] == LIMITS["value_chars"]


def test_subid6_subid22_format_says_nothing_about_the_subject() -> None:
    """SUBID-6/22: one email identifier may name a user, a group or a mailbox."""
    for member in ("user", "group", "application", "mailbox"):
        check_subject_id({"format": "complex", member: EMAIL}, strict=True)


def test_subid7_most_specific_format_is_the_senders_duty() -> None:
    """SUBID-7 is a SHOULD for senders: a mailto: URI in "uri" is still accepted."""
    check_subject_id({"format": "uri", "uri": "mailto:user@example.com"}, strict=True)


def test_subid10_no_canonicalization() -> None:
    """SUBID-10: case variants all pass as sent; nothing is lower-cased or rewritten."""
    for email in ("user@example.com", "User@Example.com", "USER@EXAMPLE.COM"):
        value = {"format": E, "email": email}
        check_subject_id(value, strict=True)
        assert value["email"] == email


def test_subid19_to_21_sub_and_sub_id() -> None:
    """SUBID-19/21: sub_id may differ from sub, and an iss_sub from the JWT's iss (RFC
    9493 §4.2 Figures 19-20). The checker looks at sub_id alone (SUBID-20)."""
    for _, jwt in examples.RFC9493_JWTS[5:]:
        assert jwt["sub_id"]["format"] == "iss_sub"
        check_subject_id(jwt["sub_id"], strict=True)


def test_subject_format_names() -> None:
    assert subject_format(EMAIL) == "email"
    assert subject_format({"subject_type": "iss-sub"}) == "iss_sub"
    assert subject_format({"format": "catalog_item"}) == "catalog_item"
    assert subject_format(examples.CAEP_SETS[1][1]["sub_id"]) == "complex"
    assert set(LEGACY_FORMATS.values()) <= set(FORMATS)
    for bad in (None, "email", {}, {"format": 3}):
        with pytest.raises(SETRejected):
            subject_format(bad)


def test_deep_nesting_is_cheap() -> None:
    """Hostile nesting ends at the second level: complex and aliases do not nest."""
    value: Any = EMAIL
    for _ in range(100_000):
        value = {"format": "complex", "user": value}
    started = time.perf_counter()
    with pytest.raises(SETRejected, match="cannot be a complex subject member"):
        check_subject_id(value)
    assert time.perf_counter() - started < 0.5 * FACTOR  # microseconds in practice
    shallow: Any = EMAIL
    for _ in range(50):
        shallow = {"format": "complex", "user": shallow}
    assert not lax_ok(shallow) and not schema_ok(shallow)


NAMES = [*FORMATS, *LEGACY_FORMATS, "complex", "aliases", "catalog_item", "Bad Name", "", 7]
MEMBERS = [
    "format",
    "subject_type",
    "email",
    "uri",
    "url",
    "URL",
    "iss",
    "sub",
    "id",
    "jti",
    "issuer",
    "assertion_id",
    "phone_number",
    "phone",
    "ip-addresses",
    "identifiers",
    "user",
    "device",
    "x",
]
VALUES = st.sampled_from(
    [
        "user@example.com",
        "a@b",
        "acct:u@h",
        "+12065550100",
        "+1 206 555 0123",
        "did:ex:1",
        "https://x.example/",
        "10.0.0.1",
        "::1",
        "",
        "x y",
        "1:x",
    ]
)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | VALUES
    | st.text(max_size=6)
)
subjects = st.recursive(
    json_leaf | st.sampled_from(NAMES),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.builds(
            lambda name, members: {"format": name, **members},
            st.sampled_from(NAMES),
            st.dictionaries(
                st.sampled_from(MEMBERS), inner | st.lists(VALUES, max_size=3), max_size=4
            ),
        )
        | st.dictionaries(st.sampled_from(MEMBERS), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(value=subjects)
def test_hypothesis_checker_and_schema_agree(value: object) -> None:
    """Random, type-confused identifiers: lax checker and schema agree, nothing but
    SETRejected is raised, and strict never accepts what lax refuses."""
    lax = lax_ok(value)
    assert lax == schema_ok(value)
    assert not strict_ok(value) or lax


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        json_leaf,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    )
)
def test_hypothesis_random_json(value: object) -> None:
    """Arbitrary JSON ends in None or SETRejected, never another exception."""
    assert lax_ok(value) == schema_ok(value)
    strict_ok(value)
