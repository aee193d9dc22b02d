"""Event payload schemas (CAEP 1.0, RISC 1.0, SSF), compiled once, checked per SET.

Each file in ``schemas/events/`` is a JSON Schema (2020-12) whose ``$id`` is the
event type URI it describes. A payload for a known URI must match; unknown URIs
pass (SETs are not commands: receivers may ignore what they do not know).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..errors import SETRejected

__all__ = ["EventSchemas", "schema_dir"]


def schema_dir() -> Path:
    """The ``schemas/`` folder: inside the wheel, or at the top of a checkout."""
    packaged = importlib.resources.files("peer") / "_schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas"


class EventSchemas:
    """Compiled validators by event type URI."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        self._validators: dict[str, Any] = {}
        for uri, schema in schemas.items():
            Draft202012Validator.check_schema(schema)
            self._validators[uri] = Draft202012Validator(schema)

    @classmethod
    @functools.cache
    def default(cls) -> EventSchemas:
        """Every schema in ``schemas/events/``, loaded and compiled once per process."""
        schemas: dict[str, Mapping[str, Any]] = {}
        folder = schema_dir() / "events"
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                schema = json.loads(path.read_text())
                schemas[schema["$id"]] = schema
        return cls(schemas)

    def known_event_types(self) -> frozenset[str]:
        return frozenset(self._validators)

    def check_events(self, events: Mapping[str, object]) -> None:
        """Check each known event's payload.

        Raises:
            SETRejected: ``invalid_request`` naming the event and the first problem.
        """
        for uri, payload in events.items():
            validator = self._validators.get(uri)
            if validator is None:
                continue
            error = next(iter(validator.iter_errors(payload)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(payload)"
                raise SETRejected("invalid_request", f"event {uri}: {where}: {error.message[:200]}")
