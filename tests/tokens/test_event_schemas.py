"""Event payload schemas (schemas/events/): CAEP 1.0, RISC 1.0, SSF events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from jsonschema import Draft202012Validator

from peer.errors import SETRejected
from peer.tokens.schemas import EventSchemas, schema_dir
from tests.tokens import examples

CAEP_EVENTS = {
    "session-revoked",
    "token-claims-change",
    "credential-change",
    "assurance-level-change",
    "device-compliance-change",
    "session-established",
    "session-presented",
    "risk-level-change",
}
RISC_EVENTS = {
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
}


def test_every_caep_and_risc_event_has_a_schema() -> None:
    known = EventSchemas.default().known_event_types()
    assert {examples.CAEP + e for e in CAEP_EVENTS} <= known
    assert {examples.RISC + e for e in RISC_EVENTS} <= known


def test_schemas_are_valid_and_compiled_once() -> None:
    for path in sorted((schema_dir()).rglob("*.json")):
        Draft202012Validator.check_schema(json.loads(path.read_text()))
    assert EventSchemas.default() is EventSchemas.default()


@pytest.mark.parametrize("uri, payload", examples.EVENT_PAYLOADS)
def test_examples_pass(uri: str, payload: dict[str, Any]) -> None:
    """CAEP/RISC/SSF example payloads match their schemas."""
    EventSchemas.default().check_events({uri: payload})


@pytest.mark.parametrize("uri, payload", examples.INVALID_EVENT_PAYLOADS)
def test_invalid_payloads_fail(uri: str, payload: dict[str, Any]) -> None:
    """Missing REQUIRED members and values outside the enumerations: invalid_request."""
    with pytest.raises(SETRejected) as info:
        EventSchemas.default().check_events({uri: payload})
    assert info.value.err == "invalid_request"


def test_extra_members_allowed_and_unknown_events_pass() -> None:
    """SSF-17: receivers ignore what they do not understand."""
    schemas = EventSchemas.default()
    schemas.check_events({examples.CAEP + "session-revoked": {"vendor_extension": [1, 2]}})
    schemas.check_events({"https://example.com/unknown-event": {"anything": True}})


@settings(max_examples=300, deadline=None)
@given(
    payload=st.recursive(
        st.none() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        max_leaves=20,
    ),
    uri=st.sampled_from(sorted(examples.CAEP + e for e in CAEP_EVENTS)),
)
def test_hostile_payloads(payload: object, uri: str) -> None:
    """Type-confused payloads end valid or in SETRejected."""
    try:
        EventSchemas.default().check_events({uri: payload})
    except SETRejected:
        pass
