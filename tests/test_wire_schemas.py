"""JSON Schemas (draft 2020-12) of the delivery wire shapes, checked three ways.

1. Every published example meant to be valid validates; the broken ones fail (they
   are not even JSON) or, where a schema cannot see the fault, are shown to pass.
2. What our serializers emit validates (hypothesis over random objects).
3. Schema and codec agree: anything a schema accepts, the codec parses without error
   or per-SET rejection (the codec is more lenient, never stricter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from jsonschema import Draft202012Validator

from peer.errors import (
    AccessDenied,
    AuthenticationFailed,
    FrameTooLarge,
    MalformedFrame,
    UnsupportedMediaType,
    WireError,
)
from peer.protocol import CommunicationObject, FrameLimits, SetErr
from peer.protocol.codes import ERROR_CODES
from peer.protocol.multipush import MultiPushRequest, MultiPushResponse
from peer.protocol.poll import PollRequest, PollResponse
from peer.protocol.push import error_response_body
from tests.protocol import spec_examples as ex
from tests.protocol.test_communication import jtis, set_errs, tokens

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
SHAPES = (
    "communication-object",
    "poll-request",
    "poll-response",
    "multipush-request",
    "multipush-response",
    "error-response",
)


def validator(shape: str) -> Any:
    schema = json.loads((SCHEMAS / f"{shape}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


VALIDATORS = {shape: validator(shape) for shape in SHAPES}
LIMITS = FrameLimits()
CODECS: dict[str, Callable[[bytes], Any]] = {
    "communication-object": lambda b: CommunicationObject.parse(b, limits=LIMITS),
    "poll-request": lambda b: PollRequest.parse(b, limits=LIMITS),
    "poll-response": lambda b: PollResponse.parse(b, limits=LIMITS),
    "multipush-request": lambda b: MultiPushRequest.parse(b, limits=LIMITS),
    "multipush-response": lambda b: MultiPushResponse.parse(b, limits=LIMITS),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_schemas_are_valid_draft_2020_12(shape: str) -> None:
    """Each schema is itself a valid draft 2020-12 schema with an $id and a title."""
    schema = VALIDATORS[shape].schema
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{shape}.json") and schema["title"]


SCHEMA_EXAMPLES = [e for e in ex.EXAMPLES if e.shape in VALIDATORS]


def test_every_schema_has_published_examples() -> None:
    """No schema goes untested against the documents."""
    assert {e.shape for e in SCHEMA_EXAMPLES if e.valid} == set(SHAPES)


@pytest.mark.parametrize("example", SCHEMA_EXAMPLES, ids=lambda e: e.name)
def test_published_examples(example: ex.Example) -> None:
    """Valid published examples validate; the broken ones are not even JSON."""
    if not example.valid:
        with pytest.raises(json.JSONDecodeError):
            json.loads(example.body)
        return
    errors = list(VALIDATORS[example.shape].iter_errors(json.loads(example.body)))
    assert not errors, [e.message for e in errors]


def test_key_jti_mismatch_is_beyond_a_schema() -> None:
    """Pitfall 9: push-pull §5.1 is schema-valid; only the verifier sees key != jti."""
    example = ex.by_name("pushpull-03-5.1-communication-object")
    assert VALIDATORS["communication-object"].is_valid(json.loads(example.body))


def test_rfc8935_figure5_caption_mismatch() -> None:
    """RFC 8935 Figure 5 is captioned access_denied; its body (invalid_issuer) validates."""
    body = json.loads(ex.by_name("rfc8935-fig5-access-denied").body)
    assert body["err"] == "invalid_issuer"
    assert VALIDATORS["error-response"].is_valid(body)


# (shape, instance, does the codec refuse it too?) — each must fail its schema.
INVALID: list[tuple[str, Any, bool | None]] = [
    ("communication-object", [], True),
    ("communication-object", {"sets": []}, True),
    ("communication-object", {"sets": {"": "a.b.c"}}, True),
    ("communication-object", {"sets": {"j": 5}}, False),  # decision 10: a per-SET error
    ("communication-object", {"sets": {"j": "not a jws"}}, False),
    ("communication-object", {"ack": "j"}, True),
    ("communication-object", {"ack": [""]}, True),
    ("communication-object", {"ack": [1]}, True),
    ("communication-object", {"setErrs": {"j": {"description": "x"}}}, True),
    ("communication-object", {"setErrs": {"j": {"err": "x"}}}, False),  # decision 8
    ("communication-object", {"maxResponseEvents": -1}, True),
    ("communication-object", {"maxResponseEvents": 1.5}, True),
    ("communication-object", {"maxResponseEvents": True}, True),
    ("communication-object", {"maxResponseEvents": "10"}, True),
    ("poll-request", {"maxEvents": -1}, True),
    ("poll-request", {"maxEvents": None}, True),
    ("poll-request", {"returnImmediately": "true"}, True),
    ("poll-request", {"returnImmediately": 1}, True),
    ("poll-request", {"ack": [1]}, True),
    ("poll-request", {"setErrs": {"j": {}}}, True),
    ("poll-response", {}, True),
    ("poll-response", {"sets": None}, True),
    ("poll-response", {"sets": {}, "moreAvailable": "yes"}, True),
    ("multipush-request", {}, True),
    ("multipush-request", {"sets": []}, True),
    ("multipush-response", {}, False),  # multi-push-00 delta: a missing ack reads as []
    ("multipush-response", {"ack": "j"}, True),
    ("multipush-response", {"ack": [], "setErrs": {"j": {}}}, True),
    ("error-response", {"description": "x"}, None),
    ("error-response", {"err": "invalid_key"}, None),
    ("error-response", {"err": "invalid subject", "description": "x"}, None),
    ("error-response", {"err": "", "description": "x"}, None),
]


@pytest.mark.parametrize(("shape", "instance", "codec_refuses"), INVALID)
def test_invalid_instances_fail_and_the_codec_agrees(
    shape: str, instance: Any, codec_refuses: bool | None
) -> None:
    """Schemas are not vacuous; where the codec is lenient it says so (decisions 8, 10)."""
    assert not VALIDATORS[shape].is_valid(instance)
    if codec_refuses is None:
        return  # error bodies have no parser of their own (classify_push_response reads them)
    body = json.dumps(instance).encode()
    if codec_refuses:
        with pytest.raises(MalformedFrame):
            CODECS[shape](body)
    else:
        CODECS[shape](body)


def emitted(shape: str) -> Callable[[Any], None]:
    def check(message: Any) -> None:
        instance = json.loads(message.serialize())
        errors = list(VALIDATORS[shape].iter_errors(instance))
        assert not errors, [e.message for e in errors]

    return check


some_set_errs = st.dictionaries(jtis, set_errs | st.builds(SetErr, st.text(min_size=1)))
emit = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@emit
@given(
    sets=st.dictionaries(jtis, tokens, max_size=5),
    ack=st.lists(jtis, max_size=5),
    errs=some_set_errs,
    mre=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
)
def test_emitted_communication_objects_validate(
    sets: dict[str, str], ack: list[str], errs: dict[str, SetErr], mre: int | None
) -> None:
    """What CommunicationObject.serialize emits satisfies communication-object.json."""
    emitted("communication-object")(CommunicationObject(sets, ack, errs, mre))


@emit
@given(
    max_events=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    immediately=st.booleans(),
    ack=st.lists(jtis, max_size=5),
    errs=some_set_errs,
    sets=st.dictionaries(jtis, tokens, max_size=5),
    more=st.booleans(),
)
def test_emitted_poll_messages_validate(
    max_events: int | None,
    immediately: bool,
    ack: list[str],
    errs: dict[str, SetErr],
    sets: dict[str, str],
    more: bool,
) -> None:
    """PollRequest and PollResponse output satisfies poll-request.json / poll-response.json."""
    emitted("poll-request")(PollRequest(max_events, immediately, ack, errs))
    emitted("poll-response")(PollResponse(sets, more))


@emit
@given(
    sets=st.dictionaries(jtis, tokens, max_size=5),
    ack=st.lists(jtis, max_size=5),
    errs=some_set_errs,
)
def test_emitted_multipush_messages_validate(
    sets: dict[str, str], ack: list[str], errs: dict[str, SetErr]
) -> None:
    """MultiPushRequest and MultiPushResponse output satisfies the multi-push schemas."""
    emitted("multipush-request")(MultiPushRequest(sets))
    emitted("multipush-response")(MultiPushResponse(ack, errs))


@pytest.mark.parametrize(
    "error",
    [
        MalformedFrame("bad"),
        FrameTooLarge("big"),
        UnsupportedMediaType("type"),
        AuthenticationFailed("who"),
        AccessDenied("no"),
        *(SetErr(code, "why") for code in sorted(ERROR_CODES)),
        SetErr("invalid_key"),
    ],
)
def test_emitted_error_bodies_validate(error: WireError | SetErr) -> None:
    """PUSH-15: every error body we emit satisfies error-response.json."""
    assert VALIDATORS["error-response"].is_valid(json.loads(error_response_body(error)))


# Instances near the schemas: right members, values sometimes of the wrong type. Strings
# never end in "\n": Python's re (used by jsonschema) lets "$" match before a final
# newline, where ECMA-262 (which JSON Schema patterns follow) and the codec do not.
junk = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3)
    | st.text(st.characters(exclude_characters="\n"), max_size=4)
)
values = st.one_of(
    junk,
    st.dictionaries(jtis, tokens | junk, max_size=3),
    st.lists(jtis | junk, max_size=3),
    st.dictionaries(
        jtis,
        st.fixed_dictionaries({"err": st.text(max_size=5)}, optional={"description": junk}),
        max_size=3,
    ),
)
near_instances = st.dictionaries(
    st.sampled_from(
        [
            "sets",
            "ack",
            "setErrs",
            "maxResponseEvents",
            "maxEvents",
            "returnImmediately",
            "moreAvailable",
            "acks",
        ]
    ),
    values,
    max_size=4,
)


@pytest.mark.parametrize("shape", sorted(CODECS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=near_instances)
def test_schema_valid_implies_codec_accepts(shape: str, instance: dict[str, Any]) -> None:
    """Anything a schema accepts, the codec parses with no error and no per-SET rejection."""
    if not VALIDATORS[shape].is_valid(instance):
        return
    parsed = CODECS[shape](json.dumps(instance).encode())
    assert not getattr(parsed, "rejected", {})
    if hasattr(parsed, "sets"):
        assert dict(parsed.sets) == instance.get("sets", {})
