"""The public names stay put: ``peer.__all__`` and ``peer.errors.__all__`` against drift.

An application catches what the facade raises by importing it from ``peer``; a name
that slips out of ``__all__`` (or was never added) breaks it silently, so the list is
pinned here and checked against the source of truth: the classes in ``peer/errors.py``
and the ``Raises:`` sections of the facade's docstrings.
"""

from __future__ import annotations

import builtins
import inspect
import re

import peer
import peer.errors

# Removing a name breaks applications: it fails here. Adding one: add it here too.
PEER_ALL = [
    "Backpressure",
    "Client",
    "ConfigError",
    "DuplicateJti",
    "Facade",
    "Failure",
    "Limits",
    "NodeUnavailable",
    "NotAuthorized",
    "Partner",
    "PartnerStats",
    "Peer",
    "PeerConfig",
    "PeerError",
    "Received",
    "SETTooLarge",
    "StoreError",
    "StreamDisabled",
    "UnknownPartner",
    "WebhookConfigured",
    "load_config",
]

# The classes whose public methods make up the facade.
FACADE = ("Peer", "Client", "Received")

_SECTION = re.compile(r"^(?P<indent>\s*)Raises:\s*$")
_ENTRY = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*):")
_RAISES_AS = re.compile(r"Raises as :meth:`(?P<method>\w+)`")
_RAISES_WORD = re.compile(r"\braises (?P<name>[A-Z]\w+)")


def raised_in(doc: str) -> set[str]:
    """Exception names a Google-style docstring says are raised: the entries of its
    ``Raises:`` section and any "raises Name" in its prose."""
    names: set[str] = set(_RAISES_WORD.findall(doc))
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        section = _SECTION.match(line)
        if section is None:
            continue
        indent = len(section["indent"])
        entry_indent: int | None = None
        for body in lines[i + 1 :]:
            if not body.strip():
                continue
            depth = len(body) - len(body.lstrip())
            if depth <= indent:
                break
            entry_indent = depth if entry_indent is None else entry_indent
            entry = _ENTRY.match(body)
            if depth == entry_indent and entry is not None:
                names.add(entry["name"])
    return names


def facade_raises() -> dict[str, set[str]]:
    """``{"Peer.publish": {...}, ...}``: what each public facade method documents."""
    docs: dict[str, str] = {}
    for cls_name in FACADE:
        cls = getattr(peer, cls_name)
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") or name in ("__aenter__", "__init__"):
                docs[f"{cls_name}.{name}"] = inspect.getdoc(member) or ""
    found: dict[str, set[str]] = {}
    for qualified, doc in docs.items():
        names = raised_in(doc)
        cls_name = qualified.split(".")[0]
        for method in _RAISES_AS.findall(doc):
            names |= raised_in(docs[f"{cls_name}.{method}"])
        found[qualified] = names
    return found


def test_peer_all_is_pinned() -> None:
    assert sorted(peer.__all__) == PEER_ALL


def test_every_exported_name_exists() -> None:
    for module in (peer, peer.errors):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], f"{module.__name__}.__all__ names missing attributes"
        assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"


def test_every_error_class_is_exported_from_peer_errors() -> None:
    defined = {
        name
        for name, value in vars(peer.errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == peer.errors.__name__
    }
    assert defined - set(peer.errors.__all__) == set()


def test_facade_errors_are_exported_from_peer() -> None:
    documented = facade_raises()
    # The parser must see the facade's documented errors, or this test checks nothing.
    assert {"UnknownPartner", "Backpressure", "StoreError"} <= documented["Peer.publish"]
    assert "DuplicateJti" in documented["Peer.forward"]
    for method, names in sorted(documented.items()):
        ours = {name for name in names if not hasattr(builtins, name)}
        missing = sorted(ours - set(peer.__all__))
        assert missing == [], f"{method} documents raising {missing}, not exported from peer"
        for name in ours:
            error = getattr(peer, name)
            assert isinstance(error, type) and issubclass(error, peer.PeerError), name
            assert getattr(peer.errors, name) is error, f"peer.{name} is not peer.errors.{name}"


def test_raises_parser() -> None:
    doc = """Do a thing.

    Raises:
        FooError: when foo.
            Continued: not an entry.
        ValueError: bad value.

    Returns:
        Nothing: not an error.

    It raises BarError on a Tuesday.
    """
    assert raised_in(inspect.cleandoc(doc)) == {"FooError", "ValueError", "BarError"}
