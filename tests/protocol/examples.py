"""Published wire examples of the delivery specs, as data (shapes only).

The example SETs in these documents are unsigned (``alg: none``) or HS256 with an
unpublished secret (decision 9): they are used here for their shape, never verified.
"""

from __future__ import annotations

# Compact SETs standing in for the documents' (long) example tokens: same shape.
SET_A = "eyJhbGciOiJub25lIn0.eyJqdGkiOiI0ZDM1NTllYzY3NTA0YWFiYTY1ZDQwYjAzNjNmYWFkOCJ9."
SET_B = "eyJhbGciOiJub25lIn0.eyJqdGkiOiIzZDBjM2NmNzk3NDY0MzRmOTY0YTk3NzdkN2JmM2JjMyJ9."

# RFC 8936 §2.4.1 Figure 2: poll-only request.
POLL_ONLY = b'{"returnImmediately": true}'
# RFC 8936 §2.4.2 Figure 3: acknowledge-only request.
ACK_ONLY = (
    b'{"ack": ["4d3559ec67504aaba65d40b0363faad8", "3d0c3cf797584bd193bd0fb1bd4e7d30"],'
    b' "returnImmediately": true, "maxEvents": 0}'
)
# RFC 8936 §2.4.3 Figure 4: acknowledge-and-poll request.
ACK_AND_POLL = (
    b'{"maxEvents": 10, "returnImmediately": false,'
    b' "ack": ["4d3559ec67504aaba65d40b0363faad8", "3d0c3cf797584bd193bd0fb1bd4e7d30"]}'
)
# RFC 8936 §2.4.4 Figure 5: a poll reporting an error for an earlier SET.
POLL_WITH_ERRORS = (
    b'{"maxEvents": 10, "returnImmediately": false,'
    b' "setErrs": {"4d3559ec67504aaba65d40b0363faad8":'
    b' {"err": "authentication_failed", "description": "The SET could not be authenticated"}}}'
)
# RFC 8936 §2.3 Figure 1 (shape): a poll response with two SETs and moreAvailable.
POLL_RESPONSE = (
    '{"sets": {"4d3559ec67504aaba65d40b0363faad8": "' + SET_A + '",'
    ' "3d0c3cf797464d3f964a9777d7bf3bc3": "' + SET_B + '"}, "moreAvailable": true}'
).encode()
# RFC 8936 §2.4.1 Figure 6 (shape): an empty poll response.
POLL_RESPONSE_EMPTY = b'{"sets": {}}'

# multi-set-push-02 §4.3 Figure 1 (shape): two SETs in one request.
MULTIPUSH_REQUEST = POLL_RESPONSE.replace(b', "moreAvailable": true', b"")
# multi-set-push-02 Figure 2 as published: a trailing comma makes it invalid JSON.
MULTIPUSH_EMPTY_AS_PUBLISHED = b'{"sets": {},}'
MULTIPUSH_EMPTY_INTENDED = b'{"sets": {}}'
# multi-set-push-02 §4.4 Figure 4 (shape): ack plus setErrs; ack values are not UUIDs.
MULTIPUSH_RESPONSE = (
    b'{"ack": ["f52901c4-5e89-4a0f-a1c2-c1d3e28fa8b1e", "a1b2c3d4"],'
    b' "setErrs": {"3d0c3cf797464d3f964a9777d7bf3bc3":'
    b' {"err": "invalid_key", "description": "Key ID 12345 has been revoked."}}}'
)

# push-pull -03 §5.1 (shape): sets, ack and setErrs together; the example pairs key
# d93341ad-... with a SET whose jti differs (decision 10: the codec keeps the key).
PUSHPULL_OBJECT = (
    '{"sets": {"d93341ad-1ad7-4e4b-bd70-7d8f2e4c2e0a": "' + SET_B + '"},'
    ' "ack": ["c6fb3d4f-0e89-4e1b-8b7e-3b0c7c3c3d8a"],'
    ' "setErrs": {"1dcb9e52-1e7b-4c9b-a4c4-4c7d7c1ef1c1":'
    ' {"err": "invalid_request", "description": "The SET could not be parsed"}}}'
).encode()

# RFC 8935 §2.3 Figure 4 (shape): the error body.
PUSH_ERROR_BODY = b'{"err": "invalid_key", "description": "Key ID 12345 has been revoked."}'
