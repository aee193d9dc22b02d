"""OAuth metadata documents: RFC 9728 (protected resource) and RFC 8414 (authorization server).

Both are attacker-influenced input (a partner or its authorization server writes
them), so every fetch is bounded in size and time, never follows redirects, needs a
verified TLS certificate (OPRM-26) and is checked field by field before use. A
document that does not name exactly the URL we asked about is not used (OPRM-15,
RFC 8414 §3.3).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..errors import ConnectError, WireError
from ..protocol.jsonio import loads_strict
from ..protocol.media import media_type
from .bounded_read import ResponseCut, bounded_request, read_capped

__all__ = [
    "FETCH_DEADLINE",
    "AuthorizationServerMetadata",
    "DiscoveryError",
    "MetadataAbsent",
    "ResourceMetadata",
    "as_metadata_urls",
    "fetch_as_metadata",
    "fetch_json",
    "fetch_resource_metadata",
    "https_url",
    "read_capped",
    "resource_metadata_url",
]

# RFC 9728 §3 / RFC 8414 §3: the registered well-known suffixes (OPRM-9, OPRM-10).
WELL_KNOWN_RESOURCE: Final = "/.well-known/oauth-protected-resource"
WELL_KNOWN_AS: Final = "/.well-known/oauth-authorization-server"
WELL_KNOWN_OIDC: Final = "/.well-known/openid-configuration"
# Real metadata documents are 1-5 KiB; 64 KiB bounds what a hostile server can make us read.
MAX_METADATA_BYTES: Final = 64 * 1024
# Each read has its own timeout; this bounds a whole fetch (a body that trickles).
FETCH_DEADLINE: Final = 20.0
_MAX_DEPTH: Final = 16


class DiscoveryError(ConnectError):
    """A metadata document could not be fetched or cannot be used."""


class MetadataAbsent(DiscoveryError):
    """The server has no such document (HTTP 404 or 410: decision 12)."""


def https_url(value: object, what: str) -> str:
    """``value`` if it is an absolute ``https`` URL without fragment (OPRM-1, OPRM-3).

    Raises:
        DiscoveryError: it is not.
    """
    if not isinstance(value, str) or len(value) > 2048:
        raise DiscoveryError(f"{what} must be an https URL")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise DiscoveryError(f"{what} is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.fragment or "#" in value:
        raise DiscoveryError(f"{what} must be an https URL without fragment")
    return value


def _insert_well_known(url: str, suffix: str) -> str:
    """RFC 9728 §3 / RFC 8414 §3: ``suffix`` goes between the host and the path.

    OPRM-11: a lone terminating ``/`` after the host is dropped first.
    """
    parts = urlsplit(url)
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((parts.scheme, parts.netloc, suffix + path, parts.query, ""))


def resource_metadata_url(resource: str) -> str:
    """The RFC 9728 metadata URL of ``resource`` (OPRM-9).

    ``https://b.example/pushpull`` -> ``https://b.example/.well-known/oauth-protected-resource/pushpull``.
    """
    return _insert_well_known(resource, WELL_KNOWN_RESOURCE)


def as_metadata_urls(issuer: str) -> tuple[str, str]:
    """Where an authorization server's metadata may be: RFC 8414 first, then OIDC.

    OIDC Discovery appends its suffix to the issuer instead of inserting it.
    """
    return _insert_well_known(issuer, WELL_KNOWN_AS), issuer.rstrip("/") + WELL_KNOWN_OIDC


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    what: str,
    media_types: tuple[str, ...] = ("application/json",),
    max_bytes: int = MAX_METADATA_BYTES,
    deadline: float = FETCH_DEADLINE,
) -> dict[str, Any]:
    """GET ``url`` and return its JSON object (OPRM-12, OPRM-14).

    Args:
        client: the HTTP client (its TLS context verifies the server).
        url: the document's URL.
        what: what the document is, for error messages.
        media_types: Content-Types accepted (a JWK Set may be
            ``application/jwk-set+json``, RFC 7517 §8.5).
        max_bytes: the largest body accepted, counted while it arrives.
        deadline: seconds for the whole fetch, to the last byte of the body.

    Raises:
        MetadataAbsent: 404 or 410.
        DiscoveryError: any other failure: TLS, network, status, media type, size,
            time, not a JSON object. The message names ``what`` and the URL.
    """
    try:
        response = await bounded_request(
            client,
            "GET",
            url,
            headers={"accept": ", ".join(media_types)},
            max_bytes=max_bytes,
            deadline=deadline,
            body_of=(200,),
        )
    except ResponseCut as exc:
        raise DiscoveryError(f"{what}: {exc}") from None
    except httpx.HTTPError as exc:
        # The TLS verification reason (expired, wrong host, unknown CA) is in str(exc).
        raise DiscoveryError(f"{what} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in (404, 410):
        raise MetadataAbsent(f"{what} {url}: HTTP {response.status_code}")
    if response.status_code != 200:
        raise DiscoveryError(f"{what} {url}: HTTP {response.status_code}")
    if media_type(response.headers.get("content-type")) not in media_types:
        raise DiscoveryError(f"{what} {url}: Content-Type is not {media_types[0]}")
    body = response.content
    try:
        document = loads_strict(body, max_bytes=max_bytes, max_depth=_MAX_DEPTH)
    except WireError as exc:
        raise DiscoveryError(f"{what} {url}: {exc.description}") from None
    if not isinstance(document, dict):
        raise DiscoveryError(f"{what} {url}: not a JSON object")
    return document


def _strings(document: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    """A multi-valued parameter: an array of strings (OPRM-13); absent is empty."""
    value = document.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DiscoveryError(f"{what}: {key} must be an array of strings")
    return tuple(value)


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceMetadata:
    """The parts of an RFC 9728 document setpeer uses (OPRM-2); unknown ones are ignored."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...]
    bearer_methods_supported: tuple[str, ...] | None


async def fetch_resource_metadata(client: httpx.AsyncClient, resource: str) -> ResourceMetadata:
    """Fetch and check the RFC 9728 metadata of ``resource`` (push-pull PP-19).

    Raises:
        MetadataAbsent: the partner publishes none (404/410).
        DiscoveryError: unreachable, malformed, or about another resource (OPRM-15).
    """
    url = resource_metadata_url(resource)
    what = "protected resource metadata"
    document = await fetch_json(client, url, what=what)
    # OPRM-15, OPRM-23: code-point equality, no normalisation; otherwise unusable
    # (impersonation defence, OPRM-26).
    if document.get("resource") != resource:
        raise DiscoveryError(f"{what} {url}: resource is not {resource!r}")
    servers = _strings(document, "authorization_servers", what)
    for server in servers:
        https_url(server, f"{what}: authorization server")
    methods = document.get("bearer_methods_supported")
    return ResourceMetadata(
        resource=resource,
        authorization_servers=servers,
        scopes_supported=_strings(document, "scopes_supported", what),
        bearer_methods_supported=None
        if methods is None
        else _strings(document, "bearer_methods_supported", what),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationServerMetadata:
    """The parts of RFC 8414 metadata setpeer uses."""

    issuer: str
    token_endpoint: str | None
    jwks_uri: str | None
    token_endpoint_auth_methods: tuple[str, ...] | None


async def fetch_as_metadata(client: httpx.AsyncClient, issuer: str) -> AuthorizationServerMetadata:
    """Fetch the metadata of the authorization server ``issuer`` (RFC 8414, else OIDC).

    Raises:
        DiscoveryError: neither document exists, or one names another issuer
            (RFC 8414 §3.3: mix-up defence), or its endpoints are not https.
    """
    https_url(issuer, "authorization server issuer")
    rfc8414, oidc = as_metadata_urls(issuer)
    what = "authorization server metadata"
    try:
        document = await fetch_json(client, rfc8414, what=what)
    except MetadataAbsent:
        document = await fetch_json(client, oidc, what=what)
    if document.get("issuer") != issuer:
        raise DiscoveryError(f"{what} of {issuer}: issuer does not match exactly")
    token_endpoint = document.get("token_endpoint")
    jwks_uri = document.get("jwks_uri")
    methods = document.get("token_endpoint_auth_methods_supported")
    return AuthorizationServerMetadata(
        issuer=issuer,
        token_endpoint=None
        if token_endpoint is None
        else https_url(token_endpoint, f"{what}: token_endpoint"),
        jwks_uri=None if jwks_uri is None else https_url(jwks_uri, f"{what}: jwks_uri"),
        token_endpoint_auth_methods=None
        if methods is None
        else _strings(document, "token_endpoint_auth_methods_supported", what),
    )
