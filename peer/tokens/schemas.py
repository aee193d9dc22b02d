"""Event payload schemas (CAEP 1.0, RISC 1.0, SSF 1.0): compiled once, checked per SET.

Each file in ``schemas/events/`` is a JSON Schema (draft 2020-12) whose ``$id`` is the
event-type URI it describes, i.e. the key of the SET's ``events`` claim. A payload
under a known URI must match its schema; unknown URIs pass (SETs are statements, and
SSF §4.2.3 has receivers ignore what they do not understand). Schemas allow members
they do not describe for the same reason.

The schemas may refer to ``schemas/subjects/subject-identifier.json`` (the in-payload
``subject`` of CAEP/RISC events, SSF §3.1.1); every file under ``schemas/`` is put in
one :mod:`referencing` registry, so nothing is ever fetched over the network.

Speed: ``jsonschema`` spends 40-130 µs on a typical CAEP payload and ~1.8 ms on one
with a complex ``subject``, as much as the signature check itself (measured).
So each schema is also compiled into plain predicates (:class:`_Compiler`, the subset
of keywords our schemas use; any other keyword refuses to compile). The predicate
answers "valid?"; only a payload it refuses goes through ``jsonschema``, which stays
the reference: it finds the error we report, and if it finds none the payload passes.
The tests check both agree.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import numbers
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from ..errors import SETRejected

__all__ = ["EventSchemas", "schema_dir"]

Check = Callable[[object], bool]
_FORMATS = Draft202012Validator.FORMAT_CHECKER
_ANNOTATIONS = frozenset({"$schema", "$defs", "$comment", "title", "description", "examples"})
_TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "number": lambda x: isinstance(x, numbers.Number) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def schema_dir() -> Path:
    """The ``schemas/`` folder: ``peer/_schemas`` in a wheel, else the checkout's top level."""
    packaged = importlib.resources.files("peer") / "_schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas"


class EventSchemas:
    """Payload validators by event-type URI.

    Args:
        schemas: event-type URI -> JSON Schema of its payload.
        resources: further schemas the event schemas refer to, by ``$id``.
        check: check every schema against the 2020-12 metaschema first.
    """

    def __init__(
        self,
        schemas: Mapping[str, Mapping[str, Any]],
        *,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
        check: bool = True,
    ) -> None:
        documents = {**(resources or {}), **schemas}
        if check:  # a broken schema fails here
            for schema in documents.values():
                Draft202012Validator.check_schema(schema)
        registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT202012.create_resource(schema)) for uri, schema in documents.items()
        )
        compiler = _Compiler(documents)
        self._checks: dict[str, tuple[Check, Any]] = {
            uri: (
                compiler.compile(schema, uri),
                Draft202012Validator(schema, registry=registry, format_checker=_FORMATS),
            )
            for uri, schema in schemas.items()
        }
        self._known = frozenset(self._checks)

    @classmethod
    def default(cls) -> EventSchemas:
        """Every schema shipped in ``schemas/``, loaded and compiled once per process."""
        return _default()

    @classmethod
    def from_directory(cls, folder: Path, *, check: bool = True) -> EventSchemas:
        """Event schemas from ``folder/events``, the schemas they refer to from ``folder/subjects``.

        The wire schemas at the top of ``schemas/`` belong to other checks and are not read.

        Raises:
            ValueError: a file is not a schema with an ``$id``, or two share one.
        """
        events: dict[str, Mapping[str, Any]] = {}
        resources: dict[str, Mapping[str, Any]] = {}
        paths = sorted((folder / "events").glob("*.json"))
        for path in paths + sorted((folder / "subjects").glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            uri = schema.get("$id") if isinstance(schema, dict) else None
            if not isinstance(uri, str):
                raise ValueError(f"{path}: a schema object with an $id is expected")
            if uri in events or uri in resources:
                raise ValueError(f"{path}: $id {uri} is used twice")
            (events if path in paths else resources)[uri] = schema
        return cls(events, resources=resources, check=check)

    def known_event_types(self) -> frozenset[str]:
        """The event-type URIs that have a schema."""
        return self._known

    def check_events(self, events: Mapping[str, object]) -> None:
        """Check the payload of every event whose type has a schema.

        Args:
            events: the SET's ``events`` claim.

        Raises:
            SETRejected: ``invalid_request`` naming the event type and the first problem.
        """
        if not isinstance(events, Mapping):
            raise SETRejected("invalid_request", "events must be a JSON object (SET-1)")
        for uri, payload in events.items():
            found = self._checks.get(uri) if isinstance(uri, str) else None
            if found is None or found[0](payload):
                continue
            try:
                error = best_match(found[1].iter_errors(payload))
            except RecursionError:
                # jsonschema repr()s a failing value for its message; a value nested
                # deeper than the interpreter's limit ends here (orjson stops at 1024).
                raise SETRejected("invalid_request", f"event {uri}: nests too deeply") from None
            if error is not None:
                raise SETRejected("invalid_request", f"event {uri}: {_describe(error)}")


@functools.cache
def _default() -> EventSchemas:
    # The shipped schemas are checked against the metaschema by the test suite
    # (tests/tokens/test_event_schemas.py); checking them again costs every process
    # ~0.1 s of CPU at start-up.
    return EventSchemas.from_directory(schema_dir(), check=False)


def _describe(error: ValidationError) -> str:
    """Where and what, in words of our own: jsonschema's messages quote the value."""
    where = "/".join(str(part)[:32] for part in error.absolute_path) or "(payload)"
    keyword, expected = error.validator, error.validator_value
    if keyword == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [str(n) for n in expected if n not in present]
        if missing == ["subject_type"] and "format" not in present:
            # The subject schemas take the legacy subject_type only when format is
            # absent; what is missing is format (SUBID-1), not its legacy name.
            return (
                f'{where}: missing REQUIRED member format (SUBID-1; complex: "format": "complex")'
            )
        what = "missing REQUIRED member " + ", ".join(missing)
    elif keyword == "enum":
        what = "must be one of " + ", ".join(map(str, expected))
    elif keyword == "type":
        what = f"must be of JSON type {expected}"
    elif keyword == "minProperties":
        what = f"must have at least {expected} member(s)"
    elif keyword == "minLength":
        what = "must not be empty"
    elif keyword in ("maxLength", "maxItems", "maxProperties"):
        what = f"is over the limit ({keyword} {expected})"
    elif keyword in ("pattern", "format", "propertyNames"):
        what = "has the wrong syntax"
    elif keyword in ("anyOf", "oneOf"):
        what = "matches none of the allowed forms"
    else:  # false schemas, "not", and anything else
        what = "is not allowed here"
    return f"{where}: {what}"


def _accept(x: object) -> bool:
    return True


def _refuse(x: object) -> bool:
    return False


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)

    def check(x: object) -> bool:
        for one in checks:
            if not one(x):
                return False
        return True

    return check


class _Compiler:
    """JSON Schema 2020-12 -> predicate, for the keywords our schemas use.

    Semantics follow ``jsonschema``: the same type checks (``bool`` is no number),
    ``re.search`` for ``pattern``, the same format checker. A keyword outside the
    subset raises ``ValueError`` at load time, never a silent pass.
    """

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        self._refs: dict[str, Check] = {}

    def compile(self, schema: object, base: str) -> Check:
        if schema is True or schema is False:
            return _accept if schema else _refuse
        if not isinstance(schema, Mapping):
            raise ValueError(f"{base}: a schema is an object or a boolean")
        checks = [self._keyword(schema, key, base) for key in schema if key not in _ANNOTATIONS]
        return _all([c for c in checks if c is not None])

    def _ref(self, ref: str, base: str) -> Check:
        # urljoin leaves a fragment alone against a URN base: join those by hand.
        target = base.partition("#")[0] + ref if ref.startswith("#") else urljoin(base, ref)
        if target not in self._refs:  # a cell first, so a cycle would resolve lazily
            cell: list[Check] = []
            self._refs[target] = lambda x: cell[0](x)
            uri, _, pointer = target.partition("#")
            if uri not in self._documents:
                raise ValueError(f"{base}: $ref {ref} names no loaded schema")
            node: Any = self._documents[uri]
            for part in filter(None, pointer.split("/")):
                node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
            cell.append(self.compile(node, uri))
        return self._refs[target]

    def _all_of(self, parts: list[Any], base: str) -> Check:
        """``allOf``, with runs of ``if {key: const NAME} then ...`` turned into one lookup.

        Such a branch can only apply when ``x[key] == NAME``: the others hold vacuously.
        """
        switches: dict[str, dict[str, Check]] = {}
        rest: list[Check] = []
        for part in parts:
            found = _const_branch(part)
            if found is None:
                rest.append(self.compile(part, base))
            else:
                key, name, then = found
                table = switches.setdefault(key, {})
                compiled = self.compile(then, base)
                table[name] = _all([table[name], compiled]) if name in table else compiled
        for key, table in switches.items():

            def switch(x: object, key: str = key, table: dict[str, Check] = table) -> bool:
                if not isinstance(x, dict):  # "required" and "properties" hold vacuously
                    return all(then(x) for then in table.values())
                name = x.get(key)
                branch = table.get(name) if isinstance(name, str) else None
                return branch is None or branch(x)

            rest.append(switch)
        return _all(rest)

    def _keyword(self, s: Mapping[str, Any], key: str, base: str) -> Check | None:
        v = s[key]
        sub = functools.partial(self.compile, base=base)
        if key == "$id":
            return None if v == base else _unsupported(key, base)
        if key == "$ref":
            return self._ref(v, base)
        if key == "type":
            return _TYPES[v] if isinstance(v, str) and v in _TYPES else _unsupported(key, base)
        if key in ("enum", "const"):
            listed = v if key == "enum" else [v]
            if not all(isinstance(value, str) for value in listed):
                _unsupported(f"{key} with non-string values", base)
            values = frozenset(listed)
            return lambda x: isinstance(x, str) and x in values
        if key == "required":
            return lambda x: not isinstance(x, dict) or all(n in x for n in v)
        if key == "properties":
            props = [(name, sub(schema)) for name, schema in v.items()]

            def properties(x: object) -> bool:
                if isinstance(x, dict):
                    for name, check in props:
                        if name in x and not check(x[name]):
                            return False
                return True

            return properties
        if key == "additionalProperties":
            extra, known = sub(v), frozenset(s.get("properties", ()))
            return lambda x: (
                not isinstance(x, dict) or all(extra(val) for k, val in x.items() if k not in known)
            )
        if key == "propertyNames":
            names = sub(v)
            return lambda x: not isinstance(x, dict) or all(names(k) for k in x)
        if key == "items":
            item = sub(v)
            return lambda x: not isinstance(x, list) or all(item(i) for i in x)
        if key in _SIZES:
            applies, within = _SIZES[key]
            return lambda x: not applies(x) or within(len(x), v)  # type: ignore[arg-type]
        if key == "pattern":
            search = re.compile(v).search
            return lambda x: not isinstance(x, str) or search(x) is not None
        if key == "format" and v in ("ipv4", "ipv6"):
            return lambda x: _FORMATS.conforms(x, v)
        if key == "allOf":
            return self._all_of(v, base)
        if key == "anyOf":
            parts = [sub(p) for p in v]
            return lambda x: any(p(x) for p in parts)
        if key == "not":
            negated = sub(v)
            return lambda x: not negated(x)
        if key == "if":
            cond, then = sub(v), sub(s.get("then", True))
            other = sub(s.get("else", True))
            return lambda x: then(x) if cond(x) else other(x)
        if key in ("then", "else"):
            return None  # compiled with "if"
        return _unsupported(key, base)


def _const_branch(part: object) -> tuple[str, str, object] | None:
    """``(key, NAME, then)`` for ``{"if": {"required": [key], "properties": {key:
    {"const": NAME}}}, "then": then}`` exactly, else None."""
    if not isinstance(part, dict) or part.keys() != {"if", "then"}:
        return None
    cond = part["if"]
    if not isinstance(cond, dict) or cond.keys() != {"required", "properties"}:
        return None
    required, props = cond["required"], cond["properties"]
    if not (isinstance(required, list) and len(required) == 1 and isinstance(props, dict)):
        return None
    key = required[0]
    if props.keys() != {key} or not isinstance(props[key], dict) or props[key].keys() != {"const"}:
        return None
    name = props[key]["const"]
    return (key, name, part["then"]) if isinstance(name, str) else None


_SIZES: dict[str, tuple[Check, Callable[[int, int], bool]]] = {
    "minLength": (_TYPES["string"], int.__ge__),
    "maxLength": (_TYPES["string"], int.__le__),
    "minItems": (_TYPES["array"], int.__ge__),
    "maxItems": (_TYPES["array"], int.__le__),
    "minProperties": (_TYPES["object"], int.__ge__),
    "maxProperties": (_TYPES["object"], int.__le__),
}


def _unsupported(key: str, base: str) -> Check:
    raise ValueError(f"{base}: keyword {key!r} is not supported by the fast path")
