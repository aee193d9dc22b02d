"""Event payload schemas (schemas/events/): CAEP 1.0 (CAEP-1..3), RISC 1.0, SSF 1.0 events.

``EventSchemas.check_events`` answers from compiled predicates and asks ``jsonschema``
only about payloads it refuses; every verdict here is compared with a plain
``jsonschema`` validator built from the same files (the reference).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource

from peer.errors import SETRejected
from peer.tokens.schemas import EventSchemas, schema_dir
from tests.tokens import examples, test_subjects

CAEP_EVENTS = [
    "session-revoked",
    "token-claims-change",
    "credential-change",
    "assurance-level-change",
    "device-compliance-change",
    "session-established",
    "session-presented",
    "risk-level-change",
]
RISC_EVENTS = [
    "account-credential-change-required",
    "account-purged",
    "account-disabled",
    "account-enabled",
    "identifier-changed",
    "identifier-recycled",
    "credential-compromise",
    "opt-in",
    "opt-out-initiated",
    "opt-out-cancelled",
    "opt-out-effective",
    "recovery-activated",
    "recovery-information-changed",
    "sessions-revoked",
]
ALL_TYPES = (
    [examples.CAEP + e for e in CAEP_EVENTS]
    + [examples.RISC + e for e in RISC_EVENTS]
    + [examples.SSF_VERIFICATION, examples.SSF_STREAM_UPDATED]
)
SCHEMAS = EventSchemas.default()
FILES = {path: json.loads(path.read_text()) for path in sorted(schema_dir().glob("*/*.json"))}
_REGISTRY: Registry[Any] = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in FILES.values()
)
REFERENCE = {
    s["$id"]: Draft202012Validator(
        s, registry=_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for path, s in FILES.items()
    if path.parent.name == "events"
}


def accepted(uri: str, payload: object) -> bool:
    """check_events' verdict, checked against the reference validator."""
    try:
        SCHEMAS.check_events({uri: payload})
        verdict = True
    except SETRejected as exc:
        assert exc.err == "invalid_request" and exc.description.startswith(f"event {uri}: ")
        verdict = False
    if uri in REFERENCE:
        assert verdict == REFERENCE[uri].is_valid(payload)
    return verdict


def test_every_event_type_has_one_schema_file() -> None:
    """Files are <profile>-<event>.json and their $id is the event-type URI."""
    assert SCHEMAS.known_event_types() == frozenset(ALL_TYPES)
    for path, schema in FILES.items():
        if path.parent.name == "events":
            profile, _, event = path.stem.partition("-")
            assert schema["$id"].endswith(f"/{profile}/event-type/{event}")


def test_schemas_are_draft_2020_12_and_compiled_once() -> None:
    """Every shipped schema (events and subjects) is valid 2020-12: EventSchemas.default()
    skips this check at start-up because it is made here."""
    assert any(p.parent.name == "subjects" for p in FILES)
    for schema in FILES.values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
    assert EventSchemas.default() is EventSchemas.default()


def test_a_schema_that_is_not_valid_2020_12_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(SchemaError):
        EventSchemas({"urn:example:event": {"type": 12}})
    events = tmp_path / "events"
    events.mkdir()
    (events / "a.json").write_text(json.dumps({"$id": "urn:example:a", "minLength": "x"}))
    with pytest.raises(SchemaError):
        EventSchemas.from_directory(tmp_path)


@pytest.mark.parametrize("uri, payload", examples.EVENT_PAYLOADS)
def test_published_and_constructed_payloads_pass(uri: str, payload: dict[str, Any]) -> None:
    """Every CAEP/RISC/SSF example payload (and one per unexampled type) is valid."""
    assert accepted(uri, payload)


def test_every_type_is_exercised_by_a_valid_payload() -> None:
    assert {uri for uri, _ in examples.EVENT_PAYLOADS} == set(ALL_TYPES)


@pytest.mark.parametrize("uri, payload", examples.INVALID_EVENT_PAYLOADS)
def test_required_members_and_enumerations(uri: str, payload: dict[str, Any]) -> None:
    """CAEP-1 (initiating_entity, reason_* objects), REQUIRED members, enumerations:
    invalid_request naming the event type."""
    assert not accepted(uri, payload)


def test_descriptions_name_the_member_not_the_value() -> None:
    """The description says where and what is wrong, without quoting the partner's value."""
    cases = [
        (
            "credential-change",
            {"credential_type": "x", "change_type": "rotate"},
            "change_type: must be one of create",
        ),
        ("token-claims-change", {}, "(payload): missing REQUIRED member claims"),
        (
            "session-revoked",
            {"initiating_entity": "robot"},
            "initiating_entity: must be one of admin",
        ),
        (
            "session-revoked",
            {"subject": {"format": "email", "email": "secret"}},
            "subject/email: has the wrong syntax",
        ),
    ]
    for event, payload, expected in cases:
        with pytest.raises(SETRejected) as info:
            SCHEMAS.check_events({examples.CAEP + event: payload})
        assert info.value.description == f"event {examples.CAEP + event}: {expected}" or (
            expected in info.value.description
        )
        assert not {"rotate", "robot", "secret"} & set(info.value.description.split())


def test_caep_open_vocabularies() -> None:
    """credential_type, namespace and principal accept agreed values; change_type,
    current_level and the compliance statuses do not."""
    assert accepted(
        examples.CAEP + "credential-change",
        {"credential_type": "smart-card", "change_type": "update"},
    )
    assert accepted(
        examples.CAEP + "assurance-level-change",
        {"namespace": "Retinal Scan", "current_level": "x"},
    )
    assert accepted(
        examples.CAEP + "risk-level-change", {"principal": "PRINTER", "current_level": "HIGH"}
    )
    assert not accepted(
        examples.CAEP + "risk-level-change", {"principal": "USER", "current_level": "high"}
    )


def test_caep2_caep3_optional_claims() -> None:
    """CAEP-2: event_timestamp is a JSON number (int or float); CAEP-3: previous_level
    may be absent."""
    uri = examples.CAEP + "risk-level-change"
    assert accepted(uri, {"principal": "USER", "current_level": "LOW", "event_timestamp": 1.5})
    assert accepted(uri, {"principal": "USER", "current_level": "LOW"})


def test_risc_reason_may_be_text_or_language_map() -> None:
    uri = examples.RISC + "credential-compromise"
    assert accepted(uri, {"credential_type": "pin", "reason_admin": "seen in a dump"})
    assert accepted(uri, {"credential_type": "pin", "reason_user": {"de": "Gefunden"}})
    assert not accepted(uri, {"credential_type": "pin", "reason_user": ["x"]})


@pytest.mark.parametrize("uri", ALL_TYPES)
def test_ssf17_extra_members_are_ignored(uri: str) -> None:
    """SSF-17 (SSF §4.2.3): members a schema does not describe pass, whatever they hold."""
    payload = next(p for u, p in examples.EVENT_PAYLOADS if u == uri)
    assert accepted(uri, {**payload, "x-vendor": {"deep": [1, {"a": None}]}, "cause-time": 15})


def test_ssf2_in_payload_subject_is_a_subject_member() -> None:
    """SSF-2: a legacy in-payload subject is validated like sub_id (lax policy)."""
    uri = examples.CAEP + "session-revoked"
    assert accepted(uri, {"subject": {"subject_type": "iss-sub", "iss": "i", "sub": "s"}})
    assert accepted(uri, {"subject": examples.CAEP_SETS[1][1]["sub_id"]})
    assert not accepted(uri, {"subject": {"format": "did", "URL": "did:example:1"}})
    assert not accepted(uri, {"subject": {"format": "complex", "user": {"format": "complex"}}})


def test_unknown_event_types_and_bad_shapes() -> None:
    """Unknown URIs pass (SETs are statements); a non-object payload or events claim
    of a known type is invalid_request."""
    SCHEMAS.check_events({"https://example.com/unknown-event": {"anything": True}})
    SCHEMAS.check_events(examples.RFC9493_INTERCEPTION_SET["events"])
    SCHEMAS.check_events({"http://schemas.openid.net/secevent/risc/event-type/account-disabled": 5})
    for bad in ([], "events", None):
        with pytest.raises(SETRejected, match="events must be a JSON object"):
            SCHEMAS.check_events(bad)  # type: ignore[arg-type]
    assert not accepted(examples.CAEP + "session-revoked", [])


def test_deeply_nested_values_end_in_set_rejected() -> None:
    """A failing value nested past the interpreter's recursion limit still ends typed."""
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(SETRejected, match="nests too deeply"):
        SCHEMAS.check_events({examples.CAEP + "session-revoked": {"reason_admin": {"en": deep}}})
    # An extra member is never walked, however deep.
    SCHEMAS.check_events({examples.CAEP + "session-revoked": {"x-vendor": deep}})


def test_fast_path_refuses_unknown_keywords(tmp_path: Path) -> None:
    """A schema keyword outside the compiled subset fails at load time, never silently."""
    with pytest.raises(ValueError, match="uniqueItems"):
        EventSchemas({"urn:example:event": {"type": "array", "uniqueItems": True}})
    events = tmp_path / "events"
    events.mkdir()
    for name in ("a", "b"):
        (events / f"{name}.json").write_text(json.dumps({"$id": "urn:example:event"}))
    with pytest.raises(ValueError, match="used twice"):
        EventSchemas.from_directory(tmp_path)


MEMBERS = [
    "subject",
    "event_timestamp",
    "initiating_entity",
    "reason_admin",
    "reason_user",
    "claims",
    "credential_type",
    "change_type",
    "namespace",
    "current_level",
    "previous_level",
    "change_direction",
    "previous_status",
    "current_status",
    "amr",
    "principal",
    "reason",
    "new-value",
    "state",
    "status",
    "format",
    "email",
    "user",
    "en",
]
LEAVES = st.sampled_from(
    [
        "admin",
        "robot",
        "create",
        "LOW",
        "low",
        "compliant",
        "paused",
        "hijacking",
        "",
        "en",
        "password",
        "email",
        "complex",
        "a@b",
        "increase",
    ]
)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(MEMBERS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(uri=st.sampled_from(ALL_TYPES), payload=values)
def test_hypothesis_fast_path_agrees_with_jsonschema(uri: str, payload: object) -> None:
    """Random, type-confused payloads: check_events and the reference validator agree,
    and nothing but SETRejected is raised."""
    accepted(uri, payload)


@settings(max_examples=200, deadline=None)
@given(events=values | st.dictionaries(st.sampled_from(ALL_TYPES) | st.text(max_size=4), values))
def test_hypothesis_events_claim(events: object) -> None:
    """Any value as the events claim ends in None or SETRejected."""
    try:
        SCHEMAS.check_events(events)  # type: ignore[arg-type]
    except SETRejected as exc:
        assert exc.err == "invalid_request"


@settings(max_examples=400, deadline=None)
@given(subject=test_subjects.subjects)
def test_hypothesis_in_payload_subject(subject: object) -> None:
    """SSF-2: the compiled subject schema agrees with jsonschema and with the lax
    checker on random, type-confused subjects."""
    verdict = accepted(examples.CAEP + "session-revoked", {"subject": subject})
    assert verdict == test_subjects.lax_ok(subject)


# Edge schemas for the compiled fast path: keyword semantics on values of every type.
EDGE_SCHEMAS: dict[str, dict[str, Any]] = {
    "urn:edge:switch": {
        "allOf": [
            {
                "if": {"required": ["k"], "properties": {"k": {"const": "a"}}},
                "then": {"type": "string"},
            },
            {
                "if": {"required": ["k"], "properties": {"k": {"const": "b"}}},
                "then": {"minProperties": 2},
            },
            {"not": {"required": ["forbidden"]}},
        ]
    },
    "urn:edge:keywords": {
        "$defs": {"short": {"type": "string", "maxLength": 2}},
        "properties": {
            "s": {"$ref": "#/$defs/short", "pattern": "^a"},
            "ip": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            "n": {"type": "number"},
            "list": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"enum": ["x", "y"]}},
        },
        "additionalProperties": {"not": {"type": "null"}},
        "propertyNames": {"maxLength": 3},
        "maxProperties": 3,
        "if": {"required": ["n"]},
        "then": {"required": ["s"]},
        "else": {"properties": {"s": False}},
    },
}
EDGE = EventSchemas(EDGE_SCHEMAS)
EDGE_REFERENCE = {
    uri: Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for uri, s in EDGE_SCHEMAS.items()
}
edge_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["a", "ab", "abc", "b", "x", "y", "10.0.0.1", "::1", "1.2.3"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["k", "s", "ip", "n", "list", "forbidden", "long"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(uri=st.sampled_from(sorted(EDGE_SCHEMAS)), value=edge_values)
def test_hypothesis_compiled_keywords_match_jsonschema(uri: str, value: object) -> None:
    """The fast path's keyword semantics (if/then on non-objects, $ref with siblings,
    formats, sizes, bool-is-no-number) match jsonschema's."""
    try:
        EDGE.check_events({uri: value})
        verdict = True
    except SETRejected:
        verdict = False
    assert verdict == EDGE_REFERENCE[uri].is_valid(value)
