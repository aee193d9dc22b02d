"""Subject identifiers (RFC 9493, SSF 1.0 §3): formats kept as data, checked per SET.

Two policies (decision 11):

- **lax** (default): what SSF §4.2.3 asks of a receiver. Members a format does not
  describe are ignored; the legacy shapes still in circulation are accepted
  (``subject_type`` for ``format``, ``iss-sub``, ``phone``, ``phone-number``); a phone
  number may carry E.123 visual separators (``"+1 206 555 0123"``, SSF's own example);
  formats we do not know pass when their name is well formed (SSF §3.4, SUBID-2).
- **strict**: RFC 9493 as written (SUBID-5): no extra members, no legacy shapes, no
  unknown formats, E.164 digits only, ``iss``/``sub`` are StringOrURI (RFC 7519 §2),
  no exact duplicates inside ``aliases`` (SUBID-16).

The lax policy is also written down as JSON Schema in
``schemas/subjects/subject-identifier.json``; both use the very same regular
expressions (:data:`FORMATS`), applied the way ``jsonschema`` applies ``pattern``
(``re.search``). Nothing here ever rewrites a value (SUBID-10: matching is exact).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Mapping

from ..errors import SETRejected

__all__ = [
    "COMPLEX_MEMBERS",
    "FORMATS",
    "FORMAT_NAME_PATTERNS",
    "LEGACY_FORMATS",
    "LIMITS",
    "Format",
    "Member",
    "check_subject_id",
    "subject_format",
]

# Bounds that keep hostile input cheap; no real subject comes near them.
LIMITS = {
    "members": 64,  # members of one identifier object (complex subjects included)
    "aliases": 64,  # entries of an aliases "identifiers" array
    "ip_addresses": 256,  # entries of an "ip-addresses" array
    "value_chars": 4096,  # characters of one string member
}

# A pattern ends in "$(?!\n)": Python's "$" also matches before a final newline,
# ECMA-262's does not; the look-ahead makes both dialects mean "end of string".
_END = r"$(?!\n)"
_CTL = r"\x00-\x1f\x7f"
# RFC 9493 §8.1.2 registry syntax (64 is our cap; the registry says SHOULD <= 20), or
# a Collision-Resistant Name (RFC 7519 §2), i.e. an absolute URI (SUBID-2).
FORMAT_NAME_PATTERNS = (
    r"^[a-z0-9_-]{1,64}" + _END,
    r"^[A-Za-z][A-Za-z0-9+.-]*:[!-~]{1,255}" + _END,
)
_URI = rf"^[A-Za-z][A-Za-z0-9+.-]*:[^\s{_CTL}]*" + _END  # RFC 3986 §3.1 scheme ":" ...
_ID_CHAR = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"  # DID Core §3.1 idchar


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One REQUIRED member of an identifier format and the rules for its value.

    Attributes:
        name: the member name.
        what: what the value must be, for error messages.
        pattern: regular expression the value must contain a match of (lax and strict).
        strict_pattern: tighter expression used instead in strict mode.
        string_or_uri: in strict mode, a value with ``:`` must be a URI (RFC 7519 §2).
        ip_list: the value is a non-empty array of IP address strings (SSF §3.5.3).
    """

    name: str
    what: str = "a non-empty string"
    pattern: str | None = None
    strict_pattern: str | None = None
    string_or_uri: bool = False
    ip_list: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Format:
    """A simple identifier format: its name, REQUIRED members and defining section."""

    name: str
    members: tuple[Member, ...]
    spec: str


_LAX_PHONE = r"^\+[ .()-]*[1-9](?:[ .()-]*[0-9]){0,14}" + _END  # E.123 separators
_E164 = r"^\+[1-9][0-9]{0,14}" + _END

FORMATS: Mapping[str, Format] = {
    f.name: f
    for f in (
        Format(
            "account",
            (
                Member(
                    "uri", "an acct: URI", rf"^[Aa][Cc][Cc][Tt]:[^@\s{_CTL}]+@[^@\s{_CTL}]+{_END}"
                ),
            ),
            "SUBID-8, RFC 9493 §3.2.1",
        ),
        Format(
            "email",
            (
                Member(
                    "email",
                    "an addr-spec with one @ outside a quoted local part",
                    rf'^(?:"(?:[^"\\{_CTL}]|\\[ -~])+"|[^@\s"{_CTL}]+)@[^@\s{_CTL}]+{_END}',
                ),
            ),
            "SUBID-9, RFC 9493 §3.2.2",
        ),
        Format(
            "iss_sub",
            (Member("iss", string_or_uri=True), Member("sub", string_or_uri=True)),
            "SUBID-11, RFC 9493 §3.2.3",
        ),
        Format("opaque", (Member("id"),), "SUBID-12, RFC 9493 §3.2.4"),
        Format(
            "phone_number",
            (Member("phone_number", "an E.164 number: + and up to 15 digits", _LAX_PHONE, _E164),),
            "SUBID-13, RFC 9493 §3.2.5",
        ),
        Format(
            "did",
            (
                Member(
                    "url",
                    "a DID URL",
                    rf"^did:[a-z0-9]+:(?:{_ID_CHAR}*:)*{_ID_CHAR}+"
                    rf"(?:/[^?#\s{_CTL}]*)?(?:\?[^#\s{_CTL}]*)?(?:#[^\s{_CTL}]*)?{_END}",
                ),
            ),
            "SUBID-14, RFC 9493 §3.2.6",
        ),
        Format("uri", (Member("uri", "a URI with a scheme", _URI),), "SUBID-15, RFC 9493 §3.2.7"),
        Format(
            "jwt_id",
            (Member("iss", string_or_uri=True), Member("jti")),
            "SSF §3.5.1",
        ),
        Format(
            "saml_assertion_id",
            (Member("issuer"), Member("assertion_id")),
            "SSF §3.5.2",
        ),
        Format(
            "ip-addresses",
            (Member("ip-addresses", "a non-empty array of IP addresses", ip_list=True),),
            "SSF §3.5.3",
        ),
    )
}
# Pre-RFC names still sent (RFC 8417 Fig. 4, Google RISC, SSF §8.1.3.3's example).
LEGACY_FORMATS: Mapping[str, str] = {
    "iss-sub": "iss_sub",
    "phone": "phone_number",
    "phone-number": "phone_number",
}
# Early drafts named the phone member "phone" (draft-backman-...-00 to -04).
_LEGACY_MEMBER = {"phone_number": "phone"}
# SSF §3.3's member names; other names are allowed too.
COMPLEX_MEMBERS = ("user", "device", "session", "application", "tenant", "org_unit", "group")

_SEARCH = {
    p: re.compile(p).search
    for f in FORMATS.values()
    for m in f.members
    for p in (m.pattern, m.strict_pattern, _URI)
    if p is not None
}
_NAME_SEARCH = tuple(re.compile(p).search for p in FORMAT_NAME_PATTERNS)


class _Where(enum.Enum):
    """Where an identifier sits; bounds the recursion to three levels."""

    TOP = "a subject member"
    COMPLEX = "a complex subject member"
    ALIASES = "an aliases entry"


def _bad(path: str, problem: str) -> SETRejected:
    return SETRejected("invalid_request", f"{path}: {problem}")


def _clip(name: object) -> str:
    return repr(str(name)[:32])


def subject_format(value: object) -> str:
    """The canonical format name of a subject identifier, legacy names mapped.

    Reads ``format`` (or the legacy ``subject_type``); does not validate the members.

    Args:
        value: a decoded subject identifier.

    Returns:
        ``"email"``, ``"complex"``, ``"iss_sub"`` (for ``iss-sub``), or the proprietary
        name as sent.

    Raises:
        SETRejected: ``invalid_request`` when there is no usable format name.
    """
    if not isinstance(value, Mapping):
        raise _bad("sub_id", "a subject identifier is a JSON object (SUBID-1)")
    _, name = _name(value, strict=False, path="sub_id")
    return LEGACY_FORMATS.get(name, name)


def check_subject_id(value: object, *, strict: bool = False, path: str = "sub_id") -> None:
    """Check one subject member: a simple subject identifier or a complex subject.

    Args:
        value: the decoded JSON value (``sub_id``, an in-payload ``subject`` ...).
        strict: apply RFC 9493 as written instead of the lax receive policy.
        path: where the value sits, for the error message.

    Raises:
        SETRejected: ``invalid_request`` naming the path and the problem.
    """
    _check(value, strict=strict, path=path, where=_Where.TOP)


def _name(value: Mapping[object, object], *, strict: bool, path: str) -> tuple[str, str]:
    """The member naming the format (``format``, or lax ``subject_type``) and its value."""
    key = "format"
    if key not in value and "subject_type" in value:
        if strict:
            raise _bad(path, "format is required; subject_type is a legacy name (SUBID-1, RISC-3)")
        key = "subject_type"
    if key not in value:
        raise _bad(path, "format is required (SUBID-1)")
    name = value[key]
    if not isinstance(name, str) or not name:
        raise _bad(f"{path}.{key}", "must be a non-empty string (SUBID-1)")
    return key, name


def _check(value: object, *, strict: bool, path: str, where: _Where) -> None:
    if not isinstance(value, Mapping):
        raise _bad(path, "a subject identifier is a JSON object (SUBID-1)")
    if len(value) > LIMITS["members"]:
        raise _bad(path, f"more than {LIMITS['members']} members")
    key, name = _name(value, strict=strict, path=path)
    if name in LEGACY_FORMATS and strict:
        raise _bad(path, f"format {name!r} is a legacy name for {LEGACY_FORMATS[name]!r}")
    canonical = LEGACY_FORMATS.get(name, name)
    if canonical in ("complex", "aliases"):
        if key != "format":
            raise _bad(path, f"a legacy subject_type cannot name {canonical}")
        if canonical == "complex":
            # Every member of a complex subject is a subject member: none is "extra".
            _check_complex(value, strict=strict, path=path, where=where)
            return
        _check_aliases(value, strict=strict, path=path, where=where)
        described = {"format", "identifiers"}
    elif canonical in FORMATS:
        spec = FORMATS[canonical]
        for member in spec.members:
            name_used = member.name
            if name != canonical and name_used not in value and _LEGACY_MEMBER.get(name_used):
                name_used = _LEGACY_MEMBER[name_used]
            if name_used not in value:
                raise _bad(path, f"{canonical} needs member {member.name!r} ({spec.spec})")
            problem = _member_problem(member, value[name_used], strict=strict)
            if problem is not None:
                raise _bad(f"{path}.{name_used}", f"{problem} ({spec.spec})")
        described = {"format", *(m.name for m in spec.members)}
    else:
        if strict:
            raise _bad(path, f"unknown format {_clip(name)} (strict mode)")
        if not any(search(name) for search in _NAME_SEARCH):
            raise _bad(f"{path}.{key}", "not a registry name or a URI (SUBID-2)")
        return  # proprietary, agreed out of band (SSF §3.4): its members are not ours
    if strict:
        for member_name in value:
            if member_name not in described:
                raise _bad(
                    path, f"member {_clip(member_name)} is not part of {canonical} (SUBID-5)"
                )


def _member_problem(member: Member, value: object, *, strict: bool) -> str | None:
    if member.ip_list:
        return _ip_list_problem(value)
    problem = _string_problem(value)
    if problem is not None or not isinstance(value, str):
        return problem
    pattern = (member.strict_pattern if strict else None) or member.pattern
    if pattern is not None and not _SEARCH[pattern](value):
        return f"must be {member.what}"
    if strict and member.string_or_uri and ":" in value and not _SEARCH[_URI](value):
        return "contains ':' so must be a URI (StringOrURI, RFC 7519 §2)"
    return None


def _string_problem(value: object) -> str | None:
    if value is None:
        return "must not be null"
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if len(value) > LIMITS["value_chars"]:
        return f"longer than {LIMITS['value_chars']} characters"
    return None


def _ip_list_problem(value: object) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty array of IP address strings"
    if len(value) > LIMITS["ip_addresses"]:
        return f"more than {LIMITS['ip_addresses']} addresses"
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 2 <= len(item) <= 45:
            return f"entry {index} is not an IP address string"
        try:
            address = ipaddress.ip_address(item)
        except ValueError:
            return f"entry {index} is not an IPv4 or IPv6 address (RFC 4001)"
        # A zone index (fe80::1%eth0) means nothing to another party.
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            return f"entry {index} carries a zone index"
    return None


def _check_complex(
    value: Mapping[object, object], *, strict: bool, path: str, where: _Where
) -> None:
    # SSF §3.3: a complex subject is a subject member, never nested in another one.
    if where is not _Where.TOP:
        raise _bad(path, f"a complex subject cannot be {where.value} (SSF §3.3)")
    members = [k for k in value if k != "format"]
    if not members:
        raise _bad(path, "a complex subject needs at least one member (SSF §3.3)")
    # SSF §3.3: every other member, whatever its name, is a subject identifier.
    for member in members:
        _check(
            value[member], strict=strict, path=f"{path}.{str(member)[:32]}", where=_Where.COMPLEX
        )


def _check_aliases(
    value: Mapping[object, object], *, strict: bool, path: str, where: _Where
) -> None:
    if where is _Where.ALIASES:
        raise _bad(path, "aliases may not contain aliases (SUBID-17)")
    identifiers = value.get("identifiers")
    if not isinstance(identifiers, list) or not identifiers:
        raise _bad(path, "aliases needs a non-empty identifiers array (SUBID-16)")
    if len(identifiers) > LIMITS["aliases"]:
        raise _bad(path, f"more than {LIMITS['aliases']} aliases")
    for index, item in enumerate(identifiers):
        _check(item, strict=strict, path=f"{path}.identifiers[{index}]", where=_Where.ALIASES)
        # SUBID-16 SHOULD NOT: tolerated when lax. Strict entries hold strings only, so
        # Python equality is exact JSON equality here (no 1 == True confusion).
        if strict and item in identifiers[:index]:
            raise _bad(
                f"{path}.identifiers[{index}]", "exact duplicate of an earlier alias (SUBID-16)"
            )
