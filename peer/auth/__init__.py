"""Authentication between partners, both ways.

Inbound (``inbound.py``): bearer, mTLS and OAuth access tokens (``access_tokens.py``)
map every request to one partner. Outbound (``outbound.py``): the credentials we
present, OAuth client credentials included (``client_credentials.py``). Metadata
discovery (RFC 9728, RFC 8414: ``discovery.py``) and partner signing keys fetched
from a ``jwks_uri`` (``partner_keys.py``) serve both.
"""
