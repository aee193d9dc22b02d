"""RFC 9728 Protected Resource Metadata for our routes, served when OAuth is configured.

Each route is its own resource: the metadata of ``https://b.example/pushpull`` is at
``https://b.example/.well-known/oauth-protected-resource/pushpull`` (path insertion,
OPRM-9) and names exactly that ``resource`` (OPRM-15), so a partner's client that
derives the URL from its configured endpoint finds a document it can accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..auth.discovery import WELL_KNOWN_RESOURCE
from ..auth.inbound import RESOURCE_PATHS

if TYPE_CHECKING:
    from ..auth.inbound import InboundAuthenticator

__all__ = ["METADATA_MAX_AGE", "metadata_document", "resource_metadata_routes"]

# OPRM-30: clients may cache; five minutes keeps an AS change visible soon.
METADATA_MAX_AGE: Final = 300


def metadata_document(
    *, resource: str, authorization_servers: list[str], scopes: list[str]
) -> dict[str, Any]:
    """The metadata of one resource (OPRM-2, OPRM-13: empty lists are left out).

    Args:
        resource: the resource identifier, an https URL without fragment (OPRM-1).
        authorization_servers: issuers whose access tokens we accept.
        scopes: scopes partners' tokens are required to carry.
    """
    document: dict[str, Any] = {
        "resource": resource,
        # Access tokens are read from the Authorization header only (RFC 6750 §2.1);
        # body and query tokens end up in logs.
        "bearer_methods_supported": ["header"],
        "resource_name": "setpeer Security Event Token peer",
    }
    if authorization_servers:
        document["authorization_servers"] = authorization_servers
    if scopes:
        document["scopes_supported"] = scopes
    return document


def resource_metadata_routes(auth: InboundAuthenticator[Any]) -> list[Route]:
    """One GET route per resource; none when no partner uses OAuth (so no route is served for it).

    Args:
        auth: the node's authenticator (knows our base URL, the issuers we trust and
            the scopes partners must present).
    """
    if not auth.uses_oauth:
        return []

    def endpoint(path: str) -> Any:
        async def metadata(request: Request) -> Response:
            resource = auth.resources()[RESOURCE_PATHS.index(path)]
            document = metadata_document(
                resource=resource,
                authorization_servers=auth.authorization_servers,
                scopes=auth.required_scopes,
            )
            return JSONResponse(
                document, headers={"cache-control": f"public, max-age={METADATA_MAX_AGE}"}
            )

        return metadata

    return [
        Route(WELL_KNOWN_RESOURCE + path, endpoint(path), methods=["GET"])
        for path in RESOURCE_PATHS
    ]
