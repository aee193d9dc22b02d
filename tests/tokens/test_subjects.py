"""Subject identifiers (spec/subject-ids.md: SUBID-n; SSF 3.3-3.5 formats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from jsonschema import Draft202012Validator

from peer.errors import SETRejected
from peer.tokens.schemas import schema_dir
from peer.tokens.subjects import check_subject_id, subject_format

# RFC 9493 §3.2.x and §4 examples, SSF 3.3/3.5 examples: all valid.
VALID: list[tuple[str, dict[str, Any]]] = [
    ("SUBID-8", {"format": "account", "uri": "acct:example.user@service.example.com"}),
    ("SUBID-9", {"format": "email", "email": "user@example.com"}),
    ("SUBID-11", {"format": "iss_sub", "iss": "https://issuer.example.com/", "sub": "145234573"}),
    ("SUBID-12", {"format": "opaque", "id": "11112222333344445555"}),
    ("SUBID-13", {"format": "phone_number", "phone_number": "+12065550100"}),
    ("SUBID-14", {"format": "did", "url": "did:example:123456"}),
    ("SUBID-14", {"format": "did", "url": "did:example:123456/did/url/path?versionId=1"}),
    ("SUBID-15", {"format": "uri", "uri": "https://user.example.com/"}),
    ("SUBID-15", {"format": "uri", "uri": "urn:uuid:4e851e98-83c4-4743-a5da-150ecb53042f"}),
    (
        "SUBID-16",
        {
            "format": "aliases",
            "identifiers": [
                {"format": "email", "email": "user@example.com"},
                {"format": "phone_number", "phone_number": "+12065550100"},
                {"format": "email", "email": "user+qualifier@example.com"},
            ],
        },
    ),
    (
        "SSF 3.5.1",
        {
            "format": "jwt_id",
            "iss": "https://idp.example.com/123456789/",
            "jti": "B70BA622-9515-4353-A866-823539EECBC8",
        },
    ),
    (
        "SSF 3.5.2",
        {
            "format": "saml_assertion_id",
            "issuer": "https://idp.example.com/123456789/",
            "assertion_id": "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6",
        },
    ),
    ("SSF 3.5.3", {"format": "ip-addresses", "ip-addresses": ["10.29.37.75", "2001:db8::1"]}),
    (
        "SSF 3.3",
        {
            "format": "complex",
            "user": {"format": "email", "email": "bob@example.com"},
            "device": {
                "format": "iss_sub",
                "iss": "https://idp.example.com/123456789/",
                "sub": "e9297990-14d2-42ec-a4a9-4036db86509a",
            },
            "tenant": {"format": "opaque", "id": "123456789"},
        },
    ),
]
INVALID: list[tuple[str, object]] = [
    ("SUBID-1", {"email": "user@example.com"}),
    ("SUBID-1", {"format": ""}),
    ("SUBID-1", "user@example.com"),
    ("SUBID-5", {"format": "email"}),
    ("SUBID-8", {"format": "account", "uri": "mailto:user@example.com"}),
    ("SUBID-9", {"format": "email", "email": ""}),
    ("SUBID-9", {"format": "email", "email": None}),
    ("SUBID-9", {"format": "email", "email": "no-at-sign"}),
    ("SUBID-11", {"format": "iss_sub", "iss": "https://issuer.example.com/"}),
    ("SUBID-12", {"format": "opaque", "id": ""}),
    ("SUBID-13", {"format": "phone_number", "phone_number": "2065550100"}),
    ("SUBID-13", {"format": "phone_number", "phone_number": "+1 206 555 0123"}),
    ("SUBID-14", {"format": "did", "url": "https://example.com"}),
    ("SUBID-14", {"format": "did", "URL": "did:example:123456"}),
    ("SUBID-15", {"format": "uri", "uri": "not a uri"}),
    ("SUBID-16", {"format": "aliases", "identifiers": []}),
    (
        "SUBID-17",
        {
            "format": "aliases",
            "identifiers": [
                {"format": "aliases", "identifiers": [{"format": "opaque", "id": "x"}]}
            ],
        },
    ),
    ("SSF 3.3", {"format": "complex"}),
    ("SSF 3.3", {"format": "complex", "user": {"format": "email", "email": ""}}),
    ("SSF 3.5.3", {"format": "ip-addresses", "ip-addresses": ["999.1.1.1"]}),
    ("SSF 3.5.3", {"format": "ip-addresses", "ip-addresses": []}),
]


@pytest.mark.parametrize("item, value", VALID)
def test_published_examples_are_valid(item: str, value: dict[str, Any]) -> None:
    """Every RFC 9493 and SSF example is valid, strict and lax."""
    check_subject_id(value)
    check_subject_id(value, strict=True)


@pytest.mark.parametrize("item, value", INVALID)
def test_invalid_identifiers(item: str, value: object) -> None:
    """SUBID-1, SUBID-5, SUBID-8..17: each violation is invalid_request naming the path."""
    with pytest.raises(SETRejected) as info:
        check_subject_id(value, strict=True)
    assert info.value.err == "invalid_request" and "sub_id" in info.value.description


def test_subid5_extra_members_lax_and_strict() -> None:
    """SUBID-5 vs SSF-17 (decision 11): extras ignored by default, refused when strict."""
    value = {"format": "email", "email": "a@b.example", "note": "x"}
    check_subject_id(value)
    with pytest.raises(SETRejected, match="note"):
        check_subject_id(value, strict=True)


def test_legacy_shapes_lax_only() -> None:
    """Legacy shapes (RFC 8417 Fig. 4, SSF remove-subject example) are accepted when lax."""
    legacy = [
        {"subject_type": "iss-sub", "iss": "https://idp.example.com/", "sub": "7375626A656374"},
        {"format": "phone", "phone_number": "+12065550100"},
        {"format": "phone-number", "phone_number": "+12065550100"},
    ]
    for value in legacy:
        check_subject_id(value)
        with pytest.raises(SETRejected):
            check_subject_id(value, strict=True)
    assert subject_format(legacy[0]) == "iss_sub"


def test_ssf34_unknown_formats() -> None:
    """SSF-8 / SUBID-2: proprietary formats agreed out of band pass when lax."""
    check_subject_id({"format": "catalog_item", "catalog_id": "c0384", "item_id": "ed9a"})
    with pytest.raises(SETRejected):
        check_subject_id({"format": "catalog_item"}, strict=True)
    with pytest.raises(SETRejected):
        check_subject_id({"format": "Not Valid!"})


def test_subid7_subid10_values_are_not_altered() -> None:
    """SUBID-10: no canonicalization on the wire: the checker never changes its input."""
    value = {"format": "email", "email": "User@Example.COM"}
    before = json.dumps(value)
    check_subject_id(value)
    assert json.dumps(value) == before


def test_subid19_sub_and_sub_id_may_coexist() -> None:
    """SUBID-19/20: covered by the verifier; here: an iss_sub may name another issuer."""
    check_subject_id({"format": "iss_sub", "iss": "https://other.example", "sub": "x"})


SCHEMA = json.loads((schema_dir() / "subjects" / "subject-identifier.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


@pytest.mark.parametrize("item, value", VALID)
def test_schema_accepts_published_examples(item: str, value: dict[str, Any]) -> None:
    """schemas/subjects/subject-identifier.json agrees with the checker on valid cases."""
    assert list(VALIDATOR.iter_errors(value)) == []


@pytest.mark.parametrize(
    "item, value", [c for c in INVALID if c[0] not in ("SUBID-14",) or "URL" not in str(c[1])]
)
def test_schema_rejects_invalid_cases(item: str, value: object) -> None:
    """The schema rejects what the strict checker rejects (extra members aside)."""
    assert list(VALIDATOR.iter_errors(value)) != []


def test_schema_file_location() -> None:
    assert (schema_dir() / "subjects").is_dir() and isinstance(schema_dir(), Path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "format",
                    "email",
                    "identifiers",
                    "user",
                    "iss",
                    "sub",
                    "id",
                    "subject_type",
                    "uri",
                    "url",
                    "ip-addresses",
                ]
            ),
            c,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values, strict=st.booleans())
def test_hostile_subjects(value: object, strict: bool) -> None:
    """Type-confused input ends valid or in SETRejected, never another exception."""
    try:
        check_subject_id(value, strict=strict)
    except SETRejected:
        pass


def test_deep_nesting_is_bounded() -> None:
    value: dict[str, Any] = {"format": "opaque", "id": "x"}
    for _ in range(10_000):
        value = {"format": "complex", "user": value}
    with pytest.raises(SETRejected, match="deeply"):
        check_subject_id(value)
