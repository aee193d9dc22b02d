"""``[partners.dialect]`` and ``receive_via = "none"`` (docs/configuration.md,
docs/dialects.md): defaults, every key, bad values with their key paths, and the
inbound credential a partner that never connects to us does not need."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from peer.config import Dialect, Partner, PeerConfig
from tests.test_config import DELETE, base, keys, load, mutate, problems

pytest_plugins = ["tests.test_config"]  # its ``folder`` fixture


def test_dialect_defaults_and_every_key(folder: Path) -> None:
    """Without the table: auto polling every 5 s when short, ``ack``, strict payloads."""
    partner = load(folder, base()).partner("b")
    assert partner.dialect == Dialect()
    assert (partner.dialect.poll_mode, partner.dialect.poll_interval) == ("auto", 5.0)
    assert (partner.dialect.ack_member, partner.dialect.payload_check) == ("ack", "strict")
    assert partner.dialect.lax_subjects is False
    table = {
        "poll_mode": "short",
        "poll_interval": 2,
        "ack_member": "acks",
        "payload_check": "warn",
        "legacy_subjects": True,
    }
    dialect = load(folder, mutate(base(), "partners[0].dialect", table)).partner("b").dialect
    assert dialect == Dialect(
        poll_mode="short",
        poll_interval=2.0,
        ack_member="acks",
        payload_check="warn",
        legacy_subjects=True,
    )
    assert isinstance(dialect.poll_interval, float)
    for check, lax in (("strict", False), ("warn", True), ("off", True)):
        assert Dialect(payload_check=check).lax_subjects is lax  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("poll_mode", "longer", "must be one of auto, long, short"),
        ("poll_mode", 1, "must be one of auto, long, short"),
        ("ack_member", "acknowledgements", "must be one of ack, acks"),
        ("payload_check", "lenient", "must be one of strict, warn, off"),
        ("poll_interval", 0, "greater than 0"),
        ("poll_interval", -1.5, "greater than 0"),
        ("poll_interval", float("inf"), "greater than 0"),
        ("poll_interval", float("nan"), "greater than 0"),
        ("poll_interval", 86401, "at most 86400"),
        ("poll_interval", True, "must be seconds"),
        ("poll_interval", "5", "must be seconds"),
        ("legacy_subjects", "yes", "must be true or false"),
    ],
)
def test_bad_dialect_values(folder: Path, key: str, value: Any, message: str) -> None:
    """Each bad value is one problem at its key path; a misspelt key is refused."""
    found = problems(folder, mutate(base(), f"partners[0].dialect.{key}", value))
    assert keys(found) == [f"partners[0].dialect.{key}"]
    assert message in found[0][1]


def test_unknown_dialect_key_and_wrong_shape(folder: Path) -> None:
    found = problems(folder, mutate(base(), "partners[0].dialect", {"poll_mod": "short"}))
    assert found == [("partners[0].dialect.poll_mod", "unknown key")]
    found = problems(folder, mutate(base(), "partners[0].dialect", "short"))
    assert found == [("partners[0].dialect", "must be a table")]
    built = dataclasses.replace(load(folder, base()), partners=())
    partner = Partner(
        name="b",
        issuer="https://b.example",
        audience="https://b.example",
        jwks=folder / "b.public.json",
        receive_via="none",
        send_via="push",
        push_endpoint="https://b.example/events",
        dialect="short",  # type: ignore[arg-type]
        auth=load(folder, base()).partner("b").auth,
    )
    found = PeerConfig.problems(dataclasses.replace(built, partners=(partner,)))
    assert found == [("partners[0].dialect", "must be a [partners.dialect] table (Dialect)")]


def only_receives(document: dict[str, Any], **keys: Any) -> dict[str, Any]:
    document = mutate(document, "partners[0].inbound", DELETE)
    for key, value in keys.items():
        document = mutate(document, f"partners[0].{key}", value)
    return document


def test_partner_that_only_receives_needs_no_inbound(folder: Path) -> None:
    """A partner that never connects to us needs no ``[partners.inbound]``: we push to
    it and receive nothing from it (``receive_via = "none"``), or we dial its push-pull
    endpoint, or we push to it and poll it."""
    push = {"send_via": "push", "push_endpoint": "https://b.example/events"}
    for document in (
        only_receives(base(), receive_via="none", **push),
        only_receives(
            base(),
            send_via="multipush",
            receive_via="none",
            multipush_endpoint="https://b.example/mp",
        ),
        only_receives(base()),  # initiate = true: we dial, it answers on our session
        only_receives(base(), receive_via="poll", poll_endpoint="https://b.example/poll", **push),
    ):
        assert load(folder, document).partner("b").inbound.configured is False
    assert (
        load(folder, only_receives(base(), receive_via="none", **push)).partner("b").receive_via
        == "none"
    )


def test_partner_that_connects_still_needs_inbound(folder: Path) -> None:
    """``receive_via = "none"`` does not waive the credential of a partner that does
    connect: one that polls us (``send_via = "poll"``), or one whose push-pull
    sessions it dials (``initiate = false``); ``none`` is no ``send_via``."""
    for document in (
        only_receives(base(), receive_via="none", send_via="poll"),
        only_receives(base(), receive_via="none", initiate=False, endpoint=DELETE),
    ):
        found = problems(folder, document)
        assert keys(found) == ["partners[0].inbound"] and "is required" in found[0][1]
    # An SSF receiver only receives SETs, but it calls our stream management endpoints.
    push = {"send_via": "push", "push_endpoint": "https://b.example/events"}
    found = problems(folder, only_receives(base(), receive_via="none", ssf="receiver", **push))
    assert keys(found) == ["partners[0].inbound"] and "is required" in found[0][1]
    found = problems(folder, mutate(base(), "partners[0].send_via", "none"))
    assert keys(found) == ["partners[0].send_via"]
    assert "none" in problems(folder, mutate(base(), "partners[0].receive_via", "nil"))[0][1]
