"""Verify SETs as a receiver: the one verifier the node and ``setpeer verify`` share.

Every failure is a :class:`~peer.errors.SETRejected` with an RFC 8935 §2.4 code,
never another exception (JSON, base64 and signature errors are all mapped here):

====================  =========================================================
``invalid_request``   not a compact JWS, header or claims not strict JSON
                      (duplicate member names: SET-2), wrong or missing ``typ``
                      (SET-14), ``crit`` (we understand no extension), missing or
                      mistyped claims (SET-1, SET-6..SET-13), ``iat``/``nbf`` in the
                      future, ``exp`` passed, SSF profile breaches, key/jti mismatch
                      (decision 10), subject or event payload invalid
``invalid_key``       disallowed ``alg`` (``none``: SET-15; HMAC; anything not in
                      :data:`~peer.tokens.keys.ALGORITHMS`), embedded key headers
                      (``jwk``, ``jku``, ``x5u``, ``x5c``), unknown ``kid``, no key
                      of the header's algorithm, bad signature
``invalid_issuer``    ``iss`` is not the partner's issuer (SET-6, SSF-12; checked
                      before the key, so another partner's valid signature cannot
                      speak for this one)
``invalid_audience``  ``aud`` absent or without our audience (SET-9)
====================  =========================================================

Numbers: a NumericDate (``iat``, ``exp``, ``nbf``, ``toe``) must lie within
±:data:`~peer.tokens.jws.MAX_NUMERIC_DATE` (I-JSON's integer range); the bound is
checked before any arithmetic, so ``"iat": 10**400`` is refused with
``invalid_request`` like any other bad claim, never raised out of the frame.

Time: SETs are never refused for age, only for an ``iat`` (or ``nbf``) more than
``max_future_skew`` ahead of ``now``: a SET describes a past fact and may be
redelivered hours later (SET-24, SET-25). An ``exp`` that has passed is honoured
(RFC 7519 §4.1.4) outside the SSF profile, which forbids ``exp`` altogether.

One event per SET (SET-3, SSF-16) is not enforced: several event URIs are accepted
as facets of one event, since a receiver cannot tell facets from a batch.

Form, size and header rules are :mod:`peer.tokens.jws`'s, shared with OAuth access
tokens; the claims rules are this module's.

Speed (verification is the receiver's bottleneck): keys are imported once
(``KeyStore``), a partner's header segment is decoded and checked once and then
served from a small cache (``jws.JWSReader``), and the signature is checked with the cached
``cryptography`` key (``jose.verify_bytes``) rather than through joserfc per token,
which measured as slow as this whole function while doing less.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SETRejected
from .jws import JWSError, JWSReader, is_numeric_date, json_segment, split
from .keys import KeyStore

__all__ = ["UnknownKey", "VerifiedSET", "Verifier", "unverified_jti"]

# Our own header is ~100 bytes; 4 KiB leaves room for a partner's extra members.
_MAX_HEADER = 4096
# Nesting limit for header and claims: real SETs nest 4-6 levels (complex subjects).
_MAX_DEPTH = 32
# unverified_jti serves forwarding of tokens of any partner limit (max_set_bytes cap).
_MAX_TOKEN = 256 * 1024
# Distinct header segments remembered per partner (one per kid/alg in practice).
_HEADER_CACHE = 32
_TYP = "secevent+jwt"
# An absolute URI: a scheme, a colon, something after it (RFC 3986 §3; SET-1, SET-12).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:.+", re.DOTALL)


class UnknownKey(SETRejected):
    """No key of the partner matches the SET's ``kid`` and ``alg`` (``invalid_key``).

    With a ``jwks_uri`` the Link fetches the partner's keys once more and checks the
    SET again before answering: the partner may have just rotated its keys.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedSET:
    """A SET that passed every check.

    Attributes:
        claims: the decoded claims set.
        header: the decoded JOSE header.
        jti: the SET's ``jti`` (SET-8).
        iss: the SET's ``iss`` (SET-6); with ``jti`` the dedupe key (decision 15).
        warnings: what SSF/CAEP/RISC 1.0 would have refused in it, accepted under a
            lax setting (``payload_check = "warn"``, ``legacy_subjects``).
    """

    claims: dict[str, Any]
    header: dict[str, Any]
    jti: str
    iss: str
    warnings: tuple[str, ...] = ()


def unverified_jti(token: str) -> str:
    """The ``jti`` of a token we only forward (never trusted for anything else).

    Raises:
        SETRejected: not a SET with a string ``jti``.
    """
    try:
        _, payload, _ = split(token, _MAX_TOKEN, "SET")
        claims = json_segment(payload, "claims", max_bytes=_MAX_TOKEN, max_depth=_MAX_DEPTH)
    except JWSError as exc:
        raise SETRejected(exc.code, exc.description) from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise SETRejected("invalid_request", "jti must be a non-empty string")
    return jti


class Verifier:
    """Checks SETs from one partner; built once per partner, used for every SET.

    Args:
        issuer: the only ``iss`` this partner may use (SET-6, SSF-12).
        audience: our audience value(s); ``aud`` must contain one (SET-9).
        keys: the partner's verification keys.
        ssf: apply the SSF 1.0 SET profile: ``typ`` MUST (SSF-10), top-level
            ``sub_id`` required (SSF-1), no ``sub`` (SSF-11), no ``exp`` (SSF-13).
        require_typ: require ``typ: secevent+jwt`` (SET-14, SET-20; decision 9).
            A ``typ`` that is present is always checked.
        max_future_skew: seconds ``iat`` (and ``nbf``) may lie in the future. SETs
            are never refused for age: they may be redelivered late (SET-24).
        strict_subjects: RFC 9493's rule against extra members (decision 11).
        check_payloads: validate known event payloads against ``schemas/``; False is
            ``payload_check = "off"``.
        payload_check: a known event's payload that breaks its schema is refused
            (``"strict"``), accepted with a warning (``"warn"``), or not looked at
            (``"off"``). Signature, ``iss``, ``aud``, ``typ`` and size: always.
        legacy_subjects: accept the 2021 drafts' complex subject inside an event
            (no ``format``), and under ``ssf`` a SET without ``sub_id`` whose event
            carries a ``subject`` (each with a warning). ``"warn"`` and ``"off"``
            imply it.
        max_token_bytes: longest SET accepted (a partner's ``max_set_bytes``).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        keys: KeyStore,
        ssf: bool = False,
        require_typ: bool = True,
        max_future_skew: float = 300.0,
        strict_subjects: bool = False,
        check_payloads: bool = True,
        payload_check: str = "strict",
        legacy_subjects: bool = False,
        max_token_bytes: int = 64 * 1024,
    ) -> None:
        # Imported here, not at module level: the subject and schema modules load
        # JSON Schemas, which `import peer.tokens.verify` alone should not pay for.
        from .schemas import EventSchemas
        from .subjects import check_subject_id

        self.issuer = issuer
        self.audiences = frozenset([audience] if isinstance(audience, str) else audience)
        self.keys = keys
        self.ssf = ssf
        self.max_future_skew = max_future_skew
        self.strict_subjects = strict_subjects
        self._check_subject_id = check_subject_id
        if payload_check not in ("strict", "warn", "off"):
            raise ValueError("payload_check must be strict, warn or off")
        checked = check_payloads and payload_check != "off"
        self.payload_check = payload_check if checked else "off"
        self.legacy_subjects = legacy_subjects or self.payload_check != "strict"
        self._schemas = EventSchemas.default() if checked else None
        # Form, size and header rules (shared with OAuth access tokens); header
        # segments that passed are remembered.
        self.reader = JWSReader(
            media_type=_TYP,
            require_typ=require_typ or ssf,
            max_token_bytes=max_token_bytes,
            max_header_bytes=_MAX_HEADER,
            max_depth=_MAX_DEPTH,
            what="SET",
            cache_size=_HEADER_CACHE,
        )

    @property
    def require_typ(self) -> bool:
        """A header without ``typ`` is refused (always so under the SSF profile)."""
        return self.reader.require_typ

    @property
    def max_token_bytes(self) -> int:
        """Longest SET accepted."""
        return self.reader.max_token_bytes

    def verify(self, token: object, *, now: float, expected_jti: str | None = None) -> VerifiedSET:
        """Check ``token`` completely: form, header, issuer, key, signature, claims.

        Args:
            token: the compact SET.
            now: the current time (seconds since the epoch).
            expected_jti: the key the SET arrived under in a ``sets`` map; it must
                equal the ``jti`` (decision 10).

        Returns:
            The verified SET.

        Raises:
            SETRejected: with the RFC 8935 code of the first problem found.
        """
        try:
            jws = self.reader.read(token)
            claims = jws.claims(max_bytes=self.reader.max_token_bytes, max_depth=_MAX_DEPTH)
        except JWSError as exc:
            raise SETRejected(exc.code, exc.description) from None
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise SETRejected("invalid_request", "iss must be a string (SET-6)")
        if iss != self.issuer:
            raise SETRejected("invalid_issuer", "iss is not the issuer of this partner")
        key = self.keys.get(jws.kid, jws.alg)
        if key is None:
            what = "no key with this kid" if jws.kid is not None else "kid required"
            raise UnknownKey("invalid_key", f"{what} for {jws.alg}")
        try:
            jws.verify(key)
        except JWSError as exc:
            raise SETRejected(exc.code, exc.description) from None
        warnings: list[str] = []
        try:
            jti = self._check_claims(claims, now=now, expected_jti=expected_jti, warnings=warnings)
        except OverflowError:
            # A number too large for a float met arithmetic (a schema's multipleOf, say):
            # this SET is refused, never the frame it came in.
            raise SETRejected("invalid_request", "a number in the claims is out of range") from None
        return VerifiedSET(
            claims=claims, header=dict(jws.header), jti=jti, iss=iss, warnings=tuple(warnings)
        )

    def _check_claims(
        self,
        claims: Mapping[str, Any],
        *,
        now: float,
        expected_jti: str | None,
        warnings: list[str],
    ) -> str:
        """Check the claims of a SET whose signature verified; returns its jti.

        What a lax setting lets through is added to ``warnings``."""
        iat = claims.get("iat")
        if not is_numeric_date(iat):
            raise SETRejected("invalid_request", "iat must be a NumericDate (SET-7)")
        if iat > now + self.max_future_skew:
            raise SETRejected("invalid_request", "iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise SETRejected("invalid_request", "jti must be a non-empty string (SET-8)")
        if expected_jti is not None and jti != expected_jti:
            raise SETRejected("invalid_request", "the sets key is not the SET's jti")
        self._check_audience(claims)
        events = claims.get("events")
        if not isinstance(events, dict) or not events:
            raise SETRejected("invalid_request", "events must be an object with a member (SET-1)")
        for uri, payload in events.items():
            if _URI.fullmatch(uri) is None:
                raise SETRejected("invalid_request", "event identifiers must be URIs (SET-1)")
            if not isinstance(payload, dict):
                raise SETRejected("invalid_request", "event payloads must be objects (SET-1)")
        if "txn" in claims and not isinstance(claims["txn"], str):
            raise SETRejected("invalid_request", "txn must be a string (SET-13)")
        if "toe" in claims and not is_numeric_date(claims["toe"]):
            raise SETRejected("invalid_request", "toe must be a NumericDate (SET-13)")
        self._check_time_claims(claims, now)
        if self.ssf:
            if "sub" in claims:
                raise SETRejected("invalid_request", "SSF SETs carry no sub claim (SSF-11)")
            if "sub_id" not in claims:
                if not (self.legacy_subjects and _in_event_subject(events)):
                    raise SETRejected("invalid_request", "SSF SETs need a top-level sub_id (SSF-1)")
                warnings.append("no top-level sub_id (SSF-1); the event's subject names it")
        if "sub" in claims and not isinstance(claims["sub"], str):
            raise SETRejected("invalid_request", "sub must be a string (SET-10)")
        if "sub_id" in claims:
            self._check_subject_id(claims["sub_id"], strict=self.strict_subjects, path="sub_id")
        if self._schemas is not None:
            if self.legacy_subjects:
                events = _legacy_subjects_marked(events, warnings)
            try:
                self._schemas.check_events(events)
            except SETRejected as exc:
                if self.payload_check != "warn":
                    raise
                warnings.append(exc.description)
        return jti

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        aud = claims.get("aud")
        if aud is None:
            raise SETRejected("invalid_audience", "aud must name this recipient (SET-9)")
        if isinstance(aud, str):
            if aud in self.audiences:
                return
        elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
            if not self.audiences.isdisjoint(aud):
                return
        else:
            raise SETRejected("invalid_request", "aud must be a string or array of strings")
        raise SETRejected("invalid_audience", "aud does not name this recipient")

    def _check_time_claims(self, claims: Mapping[str, Any], now: float) -> None:
        if "exp" in claims:
            if self.ssf:
                raise SETRejected("invalid_request", "SSF SETs carry no exp (SSF-13, SET-19)")
            exp = claims["exp"]
            if not is_numeric_date(exp):
                raise SETRejected("invalid_request", "exp must be a NumericDate")
            if exp < now - self.max_future_skew:
                raise SETRejected("invalid_request", "the SET expired (exp)")
        if "nbf" in claims:
            nbf = claims["nbf"]
            if not is_numeric_date(nbf):
                raise SETRejected("invalid_request", "nbf must be a NumericDate")
            if nbf > now + self.max_future_skew:
                raise SETRejected("invalid_request", "the SET is not valid yet (nbf)")


def _in_event_subject(events: Mapping[str, Any]) -> bool:
    """Whether an event names its subject inside its payload (the older drafts' way)."""
    return any(isinstance(payload.get("subject"), dict) for payload in events.values())


def _is_legacy_complex(subject: object) -> bool:
    """A complex subject the 2021 drafts' way: members only, each a subject
    identifier object, and no ``format`` (nor ``subject_type``) naming it."""
    return (
        isinstance(subject, dict)
        and bool(subject)
        and "format" not in subject
        and "subject_type" not in subject
        and all(isinstance(member, dict) for member in subject.values())
    )


def _legacy_subjects_marked(events: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``events`` as the 1.0 schemas expect them: an in-event complex subject of the
    older drafts checked as ``"format": "complex"`` (on a copy: the claims stored and
    handed out stay exactly as sent)."""
    marked = events
    for uri, payload in events.items():
        subject = payload.get("subject")
        if _is_legacy_complex(subject):
            if marked is events:
                marked = dict(events)
            marked[uri] = {**payload, "subject": {"format": "complex", **subject}}
            warnings.append(f"event {uri}: subject: a complex subject without format")
    return marked
