"""Subject identifiers: RFC 9493 formats plus the SSF 1.0 ones, checked as data.

Lax by default (decision 11): members a format does not describe are ignored
(SSF §4.2.3) and the legacy shapes still in circulation are accepted
(``subject_type`` for ``format``, ``iss-sub``, ``phone``, ``phone-number``).
``strict=True`` applies RFC 9493 as written (SUBID-5): no extra members, no legacy
shapes, no unknown formats.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from ..errors import SETRejected

__all__ = ["FORMATS", "check_subject_id", "subject_format"]

_MAX_DEPTH = 4  # complex -> aliases -> identifier is 3; nothing legitimate is deeper
_MAX_MEMBERS = 64
_FORMAT_NAME = re.compile(r"[a-z0-9_-]{1,64}")  # RFC 9493 §8.1.2 registry syntax
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.+", re.DOTALL)


def _string(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _acct(value: object) -> bool:  # SUBID-8
    return _string(value) and str(value).startswith("acct:") and "@" in str(value)


def _email(value: object) -> bool:  # SUBID-9: addr-spec, checked only for shape
    if not _string(value):
        return False
    local, at, domain = str(value).rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in str(value))


def _e164(value: object) -> bool:  # SUBID-13
    return isinstance(value, str) and _E164.fullmatch(value) is not None


def _uri(value: object) -> bool:  # SUBID-15
    return isinstance(value, str) and _SCHEME.fullmatch(value) is not None


def _did(value: object) -> bool:  # SUBID-14
    return isinstance(value, str) and value.startswith("did:") and value.count(":") >= 2


def _ips(value: object) -> bool:  # SSF 3.5.3
    if not isinstance(value, list) or not value or len(value) > _MAX_MEMBERS:
        return False
    for item in value:
        try:
            ipaddress.ip_address(item)
        except (ValueError, TypeError):
            return False
    return True


Check = Callable[[object], bool]

# format -> required member -> check. Members are REQUIRED, non-null, non-empty.
FORMATS: dict[str, dict[str, Check]] = {
    "account": {"uri": _acct},
    "email": {"email": _email},
    "iss_sub": {"iss": _string, "sub": _string},
    "opaque": {"id": _string},
    "phone_number": {"phone_number": _e164},
    "did": {"url": _did},
    "uri": {"uri": _uri},
    "jwt_id": {"iss": _string, "jti": _string},
    "saml_assertion_id": {"issuer": _string, "assertion_id": _string},
    "ip-addresses": {"ip-addresses": _ips},
}
# Legacy names in circulation (RFC 8417 fig. 4, Google RISC, SSF's own example).
_LEGACY = {"iss-sub": "iss_sub", "phone": "phone_number", "phone-number": "phone_number"}
COMPLEX_MEMBERS = ("user", "device", "session", "application", "tenant", "org_unit", "group")


def _bad(path: str, message: str) -> SETRejected:
    return SETRejected("invalid_request", f"{path}: {message}")


def subject_format(value: object, *, strict: bool = False) -> str:
    """The canonical format name of a subject identifier (legacy names mapped).

    Raises:
        SETRejected: no usable format member.
    """
    if not isinstance(value, Mapping):
        raise _bad("sub_id", "a subject identifier is a JSON object")
    name = value.get("format")
    if name is None and not strict:
        name = value.get("subject_type")
    if not isinstance(name, str) or not name:
        raise _bad("sub_id", "format is required (SUBID-1)")
    if not strict:
        name = _LEGACY.get(name, name)
    return name


def check_subject_id(value: object, *, strict: bool = False, path: str = "sub_id") -> None:
    """Check a subject identifier (SUBID-1..17, SSF 3.2-3.5).

    Raises:
        SETRejected: ``invalid_request`` naming the path and the problem.
    """
    _check(value, strict=strict, path=path, depth=0, in_aliases=False)


def _check(value: object, *, strict: bool, path: str, depth: int, in_aliases: bool) -> None:
    if depth > _MAX_DEPTH:
        raise _bad(path, "subject identifiers nest too deeply")
    if not isinstance(value, Mapping):
        raise _bad(path, "a subject identifier is a JSON object")
    if len(value) > _MAX_MEMBERS:
        raise _bad(path, "too many members")
    name = value.get("format")
    legacy_key = False
    if name is None and not strict and "subject_type" in value:
        name, legacy_key = value.get("subject_type"), True
    if not isinstance(name, str) or not name:
        raise _bad(path, "format is required (SUBID-1)")
    if strict and name in _LEGACY:
        raise _bad(path, f"format {name!r} is a legacy name; use {_LEGACY[name]!r}")
    canonical = _LEGACY.get(name, name)
    known = {"format", "subject_type"} if legacy_key else {"format"}
    if canonical == "aliases":
        identifiers = value.get("identifiers")
        if not isinstance(identifiers, list) or not identifiers:
            raise _bad(path, "aliases needs a non-empty identifiers array (SUBID-16)")
        if len(identifiers) > _MAX_MEMBERS:
            raise _bad(path, "too many aliases")
        for index, item in enumerate(identifiers):
            if isinstance(item, Mapping) and item.get("format") == "aliases":
                raise _bad(f"{path}.identifiers[{index}]", "aliases may not nest (SUBID-17)")
            _check(
                item,
                strict=strict,
                path=f"{path}.identifiers[{index}]",
                depth=depth + 1,
                in_aliases=True,
            )
        known.add("identifiers")
    elif canonical == "complex":
        members = [k for k in value if k not in ("format", "subject_type")]
        if not members:
            raise _bad(path, "a complex subject needs at least one member (SSF 3.3)")
        for member in members:
            _check(
                value[member],
                strict=strict,
                path=f"{path}.{member}",
                depth=depth + 1,
                in_aliases=in_aliases,
            )
        known.update(members)
    elif canonical in FORMATS:
        for member, check in FORMATS[canonical].items():
            if member not in value:
                raise _bad(path, f"{canonical} needs member {member} (SUBID-5)")
            if not check(value[member]):
                raise _bad(f"{path}.{member}", f"not a valid {canonical} value")
        known.update(FORMATS[canonical])
    else:
        if strict:
            raise _bad(path, f"unknown format {name[:32]!r}")
        if _FORMAT_NAME.fullmatch(name) is None:
            raise _bad(path, "format name has invalid syntax (RFC 9493 §8.1.2)")
        return  # proprietary format agreed out of band (SSF 3.4): members not ours to check
    if strict:
        extra = [k for k in value if k not in known]
        if extra:
            raise _bad(path, f"member {str(extra[0])[:32]!r} is not part of {canonical}")
