"""SETs: build, sign and verify (RFC 8417), keys, subject identifiers, event schemas."""
