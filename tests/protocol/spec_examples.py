"""Published wire examples of the delivery specs, as data, each naming its source.

Documents and versions: RFC 8935 (read from
draft-ietf-secevent-http-push-14), RFC 8936 (draft-ietf-secevent-http-poll-12),
draft-deshpande-secevent-http-multi-set-push-02 (tag -02, commit d6ab824),
draft-deshpande-secevent-http-multi-push-00 (aaronpk/draft-deshpande-secevent-http-multi-push)
and draft-tulshibagwale-saag-pushpull-delivery-03 (SGNL-ai/pushpull 33f5b709; its
examples are the same as -02's).

The documents fold long tokens over several lines, inside JSON strings, to fit the
page; that folding is presentation only, so the SETs below are joined. Everything else
(members, order, whitespace of the JSON around them) is as printed. Examples that are
broken as published are kept as printed and flagged ``valid=False`` or described in
``note``; the tests check that each gets the documented error or behaviour.

The example SETs are unsigned (``alg: none``) or HS256 with an unpublished secret
(decision 9): shape examples only, never verified.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "EXAMPLES",
    "PP_SET_3F1C",
    "PP_SET_9DEB",
    "PP_SET_D933",
    "PP_SET_DFC3",
    "PUSH_BODY_AS_PRINTED",
    "PUSH_SET",
    "SET_3D0C",
    "SET_4D35",
    "Example",
    "by_name",
]

# RFC 8936 §2.5 Figure 6, first SET: header {"alg":"none"}, jti 4d3559ec67504aaba65d40b0363faad8.
# multi-set-push-02 §4.3.1 Figure 1 and multi-push-00 Figure 1 reuse it verbatim.
SET_4D35 = (
    "eyJhbGciOiJub25lIn0.eyJqdGkiOiI0ZDM1NTllYzY3NTA0YWFiYTY1ZDQwYjAzNjNmYWFkOCIsImlhdCI6"
    "MTQ1ODQ5NjQwNCwiaXNzIjoiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29tIiwiYXVkIjpbImh0dHBzOi8vc2Np"
    "bS5leGFtcGxlLmNvbS9GZWVkcy85OGQ1MjQ2MWZhNWJiYzg3OTU5M2I3NzU0IiwiaHR0cHM6Ly9zY2ltLmV4"
    "YW1wbGUuY29tL0ZlZWRzLzVkNzYwNDUxNmIxZDA4NjQxZDc2NzZlZTciXSwiZXZlbnRzIjp7InVybjppZXRm"
    "OnBhcmFtczpzY2ltOmV2ZW50OmNyZWF0ZSI6eyJyZWYiOiJodHRwczovL3NjaW0uZXhhbXBsZS5jb20vVXNl"
    "cnMvNDRmNjE0MmRmOTZiZDZhYjYxZTc1MjFkOSIsImF0dHJpYnV0ZXMiOlsiaWQiLCJuYW1lIiwidXNlck5h"
    "bWUiLCJwYXNzd29yZCIsImVtYWlscyJdfX19."
)

# RFC 8936 §2.5 Figure 6, second SET: {"alg":"none"}, jti 3d0c3cf797584bd193bd0fb1bd4e7d30.
# Reused verbatim by multi-set-push-02 Figure 1 and by push-pull -03 §5.1, where it sits
# under the key d93341ad-7329-4d1b-ba4a-9ff6f9f34003 (pushpull.md pitfall 9).
SET_3D0C = (
    "eyJhbGciOiJub25lIn0.eyJqdGkiOiIzZDBjM2NmNzk3NTg0YmQxOTNiZDBmYjFiZDRlN2QzMCIsImlhdCI6"
    "MTQ1ODQ5NjAyNSwiaXNzIjoiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29tIiwiYXVkIjpbImh0dHBzOi8vamh1"
    "Yi5leGFtcGxlLmNvbS9GZWVkcy85OGQ1MjQ2MWZhNWJiYzg3OTU5M2I3NzU0IiwiaHR0cHM6Ly9qaHViLmV4"
    "YW1wbGUuY29tL0ZlZWRzLzVkNzYwNDUxNmIxZDA4NjQxZDc2NzZlZTciXSwic3ViIjoiaHR0cHM6Ly9zY2lt"
    "LmV4YW1wbGUuY29tL1VzZXJzLzQ0ZjYxNDJkZjk2YmQ2YWI2MWU3NTIxZDkiLCJldmVudHMiOnsidXJuOmll"
    "dGY6cGFyYW1zOnNjaW06ZXZlbnQ6cGFzc3dvcmRSZXNldCI6eyJpZCI6IjQ0ZjYxNDJkZjk2YmQ2YWI2MWU3"
    "NTIxZDkifSwiaHR0cHM6Ly9leGFtcGxlLmNvbS9zY2ltL2V2ZW50L3Bhc3N3b3JkUmVzZXRFeHQiOnsicmVz"
    "ZXRBdHRlbXB0cyI6NX19fQ."
)

# push-pull -03 §5.1 "Example of a Communication Object", first SET: HS256, jti dfc38da2-...
PP_SET_DFC3 = (
    "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJkZmMzOGRhMi05MzllLTQ1MzYtYmVjOS1iOGExNmVkNDVjNGUiLCJ"
    "pYXQiOjE0NTg0OTY0MDQsImlzcyI6Imh0dHBzOi8vc2NpbS5leGFtcGxlLmNvbSIsImF1ZCI6WyJodHRwczo"
    "vL3NjaW0uZXhhbXBsZS5jb20vRmVlZHMvOThkNTI0NjFmYTViYmM4Nzk1OTNiNzc1NCIsImh0dHBzOi8vc2N"
    "pbS5leGFtcGxlLmNvbS9GZWVkcy81ZDc2MDQ1MTZiMWQwODY0MWQ3Njc2ZWU3Il0sImV2ZW50cyI6eyJ1cm4"
    "6aWV0ZjpwYXJhbXM6c2NpbTpldmVudDpjcmVhdGUiOnsicmVmIjoiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29"
    "tL1VzZXJzLzQ0ZjYxNDJkZjk2YmQ2YWI2MWU3NTIxZDkiLCJhdHRyaWJ1dGVzIjpbImlkIiwibmFtZSIsInV"
    "zZXJOYW1lIiwicGFzc3dvcmQiLCJlbWFpbHMiXX19fQ.XuVUJWrU6l80dcJ8bTRf-erMzFtQFYokZLN--Kzd"
    "98o"
)

# push-pull -03 §6.3 "Example Pushpull request", first SET: HS256, jti 9deb50b0-...
PP_SET_9DEB = (
    "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiI5ZGViNTBiMC1kMmY4LTQ3OTMtYTQyMC01ZTU2NzhjZjI1YTgiLCJ"
    "pYXQiOjE0NTg0OTY0MDQsImlzcyI6Imh0dHBzOi8vc2NpbS5leGFtcGxlLmNvbSIsImF1ZCI6WyJodHRwczo"
    "vL3NjaW0uZXhhbXBsZS5jb20vRmVlZHMvOThkNTI0NjFmYTViYmM4Nzk1OTNiNzc1NCIsImh0dHBzOi8vc2N"
    "pbS5leGFtcGxlLmNvbS9GZWVkcy81ZDc2MDQ1MTZiMWQwODY0MWQ3Njc2ZWU3Il0sImV2ZW50cyI6eyJ1cm4"
    "6aWV0ZjpwYXJhbXM6c2NpbTpldmVudDpjcmVhdGUiOnsicmVmIjoiaHR0cHM6Ly9zY2ltLmV4YW1wbGUuY29"
    "tL1VzZXJzLzQ0ZjYxNDJkZjk2YmQ2YWI2MWU3NTIxZDkiLCJhdHRyaWJ1dGVzIjpbImlkIiwibmFtZSIsInV"
    "zZXJOYW1lIiwicGFzc3dvcmQiLCJlbWFpbHMiXX19fQ.KAaZj082ge8I1AiXfnmYw49ILFc5hEAtTZC9LkGg"
    "7IA"
)

# push-pull -03 §6.3 "Example Pushpull request", second SET: HS256, jti d93341ad-...
PP_SET_D933 = (
    "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJkOTMzNDFhZC03MzI5LTRkMWItYmE0YS05ZmY2ZjlmMzQwMDMiLCJ"
    "pYXQiOjE0NTg0OTYwMjUsImlzcyI6Imh0dHBzOi8vc2NpbS5leGFtcGxlLmNvbSIsImF1ZCI6WyJodHRwczo"
    "vL2podWIuZXhhbXBsZS5jb20vRmVlZHMvOThkNTI0NjFmYTViYmM4Nzk1OTNiNzc1NCIsImh0dHBzOi8vamh"
    "1Yi5leGFtcGxlLmNvbS9GZWVkcy81ZDc2MDQ1MTZiMWQwODY0MWQ3Njc2ZWU3Il0sInN1YiI6Imh0dHBzOi8"
    "vc2NpbS5leGFtcGxlLmNvbS9Vc2Vycy80NGY2MTQyZGY5NmJkNmFiNjFlNzUyMWQ5IiwiZXZlbnRzIjp7InV"
    "ybjppZXRmOnBhcmFtczpzY2ltOmV2ZW50OnBhc3N3b3JkUmVzZXQiOnsiaWQiOiI0NGY2MTQyZGY5NmJkNmF"
    "iNjFlNzUyMWQ5In0sImh0dHBzOi8vZXhhbXBsZS5jb20vc2NpbS9ldmVudC9wYXNzd29yZFJlc2V0RXh0Ijp"
    "7InJlc2V0QXR0ZW1wdHMiOjV9fX0.IGbGOmSBtyS8wOGyMhWHe83vYgbGjUoezk-cIpYzVeY"
)

# push-pull -03 §6.3 "Example Pushpull response": typ secevent+jwt, HS256, jti 3f1c5fc7-...
PP_SET_3F1C = (
    "eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGx"
    "lLmNvbS8iLCJqdGkiOiIzZjFjNWZjNy05OWM1LTRjMmItYTlhMy02OGVhOTBiZTljYTkiLCJpYXQiOjE1MDg"
    "xODQ4NDUsImF1ZCI6IjYzNkM2OTY1NkU3NDVGNjk2NCIsImV2ZW50cyI6eyJodHRwczovL3NjaGVtYXMub3B"
    "lbmlkLm5ldC9zZWNldmVudC9yaXNjL2V2ZW50LXR5cGUvYWNjb3VudC1kaXNhYmxlZCI6eyJzdWJqZWN0Ijp"
    "7InN1YmplY3RfdHlwZSI6Imlzcy1zdWIiLCJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbS8iLCJzdWI"
    "iOiI3Mzc1NjI2QTY1NjM3NCJ9LCJyZWFzb24iOiJoaWphY2tpbmcifX19._Jwjs2M2AbxvPRRJJi5Kjl_Xep"
    "veugdd9Wb_Bh2Jj8s"
)

# RFC 8935 §2.1 Figure 1, the SET as it travels: its header is base64url of
# {"typ":"secevent+jwt","alg":"HS256"} plus a newline (segment ends in "Cg").
PUSH_SET = (
    "eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJIUzI1NiJ9Cg.eyJpc3MiOiJodHRwczovL2lkcC5leGFtc"
    "GxlLmNvbS8iLCJqdGkiOiI3NTZFNjk3MTc1NjUyMDY5NjQ2NTZFNzQ2OTY2Njk2NTcyIiwiaWF0IjoxNTA4M"
    "Tg0ODQ1LCJhdWQiOiI2MzZDNjk2NTZFNzQ1RjY5NjQiLCJldmVudHMiOnsiaHR0cHM6Ly9zY2hlbWFzLm9wZ"
    "W5pZC5uZXQvc2VjZXZlbnQvcmlzYy9ldmVudC10eXBlL2FjY291bnQtZGlzYWJsZWQiOnsic3ViamVjdCI6e"
    "yJzdWJqZWN0X3R5cGUiOiJpc3Mtc3ViIiwiaXNzIjoiaHR0cHM6Ly9pZHAuZXhhbXBsZS5jb20vIiwic3ViI"
    "joiNzM3NTYyNkE2NTYzNzQifSwicmVhc29uIjoiaGlqYWNraW5nIn19fQ.Y4rXxMD406P2edv00cr9Wf3_Xw"
    "NtLjB9n-jTqN1_lLc"
)

# RFC 8935 §2.1 Figure 1 as printed: the token folded over lines, with the dots on lines
# of their own. Not a compact JWS: parse_push_request refuses it (invalid_request);
# the wire body is PUSH_SET (push.md pitfalls: "shown wrapped over many lines").
PUSH_BODY_AS_PRINTED = (
    b"     eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJIUzI1NiJ9Cg\n"
    b"     .\n"
    b"     eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbS8iLCJqdGkiOiI3NTZFNjk\n"
    b"     3MTc1NjUyMDY5NjQ2NTZFNzQ2OTY2Njk2NTcyIiwiaWF0IjoxNTA4MTg0ODQ1LC\n"
    b"     JhdWQiOiI2MzZDNjk2NTZFNzQ1RjY5NjQiLCJldmVudHMiOnsiaHR0cHM6Ly9zY\n"
    b"     2hlbWFzLm9wZW5pZC5uZXQvc2VjZXZlbnQvcmlzYy9ldmVudC10eXBlL2FjY291\n"
    b"     bnQtZGlzYWJsZWQiOnsic3ViamVjdCI6eyJzdWJqZWN0X3R5cGUiOiJpc3Mtc3V\n"
    b"     iIiwiaXNzIjoiaHR0cHM6Ly9pZHAuZXhhbXBsZS5jb20vIiwic3ViIjoiNzM3NT\n"
    b"     YyNkE2NTYzNzQifSwicmVhc29uIjoiaGlqYWNraW5nIn19fQ\n"
    b"     .\n"
    b"     Y4rXxMD406P2edv00cr9Wf3_XwNtLjB9n-jTqN1_lLc"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Example:
    """One published example.

    Attributes:
        name: short identifier, used as the pytest id.
        source: document, section and figure.
        shape: which wire shape (and schema) it is: ``push-request``, ``error-response``,
            ``poll-request``, ``poll-response``, ``multipush-request``,
            ``multipush-response`` or ``communication-object``.
        body: the body as bytes.
        valid: False when the example is broken as published.
        status: the HTTP status the figure shows for a response, if any.
        note: what is odd about it.
    """

    name: str
    source: str
    shape: str
    body: bytes
    valid: bool = True
    status: int | None = None
    note: str = ""


_SETS = {
    "SET_4D35": SET_4D35,
    "SET_3D0C": SET_3D0C,
    "PP_SET_DFC3": PP_SET_DFC3,
    "PP_SET_9DEB": PP_SET_9DEB,
    "PP_SET_D933": PP_SET_D933,
    "PP_SET_3F1C": PP_SET_3F1C,
}


def _figure(text: str) -> bytes:
    """The JSON of a figure, with ``<NAME>`` standing for a (joined) SET above."""
    for name, token in _SETS.items():
        text = text.replace(f"<{name}>", token)
    return text.encode()


EXAMPLES: tuple[Example, ...] = (
    # ---------------------------------------------------------------- RFC 8935
    Example(
        "rfc8935-fig1-set",
        "RFC 8935 §2.1 Figure 1 (Example SET Transmission Request), token joined",
        "push-request",
        PUSH_SET.encode(),
    ),
    Example(
        "rfc8935-fig1-as-printed",
        "RFC 8935 §2.1 Figure 1, body exactly as printed (folded)",
        "push-request",
        PUSH_BODY_AS_PRINTED,
        valid=False,
        note="folded over lines; the wire form has no whitespace inside the token",
    ),
    Example(
        "rfc8935-fig2-accepted",
        "RFC 8935 §2.2 Figure 2 (Example Successful Delivery Response)",
        "push-response",
        b"",
        status=202,
    ),
    Example(
        "rfc8935-fig3-invalid-key",
        "RFC 8935 §2.3 Figure 3 (Example Error Response (invalid_key))",
        "error-response",
        _figure(
            """{
       "err": "invalid_key",
       "description": "Key ID 12345 has been revoked."
     }"""
        ),
        status=400,
    ),
    Example(
        "rfc8935-fig4-authentication-failed",
        "RFC 8935 §2.3 Figure 4 (Example Error Response (authentication_failed))",
        "error-response",
        _figure(
            """{
       "err": "authentication_failed",
       "description": "Access token has expired."
     }"""
        ),
        status=400,
        note="a 400 for an expired token; decision 7 answers 401, reads both",
    ),
    Example(
        "rfc8935-fig5-access-denied",
        "RFC 8935 §2.3 Figure 5 (Example Error Response (access_denied))",
        "error-response",
        _figure(
            """{
    "err": "invalid_issuer",
    "description": "Not authorized for issuer https://iss.example.com/."
  }"""
        ),
        status=400,
        note="captioned access_denied, but the body says invalid_issuer",
    ),
    # ---------------------------------------------------------------- RFC 8936
    Example(
        "rfc8936-fig1-initial-poll",
        "RFC 8936 §2.4.1 Figure 1 (Example Initial Poll Request)",
        "poll-request",
        _figure(
            """{
      "returnImmediately": true
     }"""
        ),
    ),
    Example(
        "rfc8936-fig2-default-poll",
        "RFC 8936 §2.4.1 Figure 2 (Example Default Poll Request)",
        "poll-request",
        b"{}",
    ),
    Example(
        "rfc8936-fig3-ack-only",
        "RFC 8936 §2.4.2 Figure 3 (Example Acknowledge-Only Request)",
        "poll-request",
        _figure(
            """{
       "ack": [
         "4d3559ec67504aaba65d40b0363faad8",
         "3d0c3cf797584bd193bd0fb1bd4e7d30"
       ],
       "maxEvents": 0,
       "returnImmediately": true
     }"""
        ),
    ),
    Example(
        "rfc8936-fig4-ack-and-poll",
        "RFC 8936 §2.4.3 Figure 4 (Example Poll with Acknowledgement and No Errors)",
        "poll-request",
        _figure(
            """{
       "ack": [
         "4d3559ec67504aaba65d40b0363faad8",
         "3d0c3cf797584bd193bd0fb1bd4e7d30"
       ],
       "returnImmediately": false
     }"""
        ),
    ),
    Example(
        "rfc8936-fig5-ack-with-error",
        "RFC 8936 §2.4.4 Figure 5 (Example Poll Acknowledgement with Error)",
        "poll-request",
        _figure(
            """{
       "ack": ["3d0c3cf797584bd193bd0fb1bd4e7d30"],
       "setErrs": {
         "4d3559ec67504aaba65d40b0363faad8": {
           "err": "authentication_failed",
           "description": "The SET could not be authenticated"
         }
       },
       "returnImmediately": true
     }"""
        ),
        note='introduced as "a response" but it is a request (poll.md pitfalls)',
    ),
    Example(
        "rfc8936-fig6-poll-response",
        "RFC 8936 §2.5 Figure 6 (Example Poll Response), SETs joined",
        "poll-response",
        _figure(
            """{
  "sets": {
    "4d3559ec67504aaba65d40b0363faad8":
     "<SET_4D35>",
    "3d0c3cf797584bd193bd0fb1bd4e7d30":
     "<SET_3D0C>"
   }
  }"""
        ),
        status=200,
    ),
    Example(
        "rfc8936-fig7-no-sets",
        "RFC 8936 §2.5 Figure 7 (Example No SETs Poll Response)",
        "poll-response",
        _figure(
            """{
      "sets": {}
     }"""
        ),
        status=200,
    ),
    # ------------------------------------------------- multi-set-push-02
    Example(
        "multi-set-push-02-fig1-request",
        "multi-set-push-02 §4.3.1 Figure 1 (Example of SET Transmission), SETs joined",
        "multipush-request",
        _figure(
            """{
        "sets": {
          "4d3559ec67504aaba65d40b0363faad8":
          "<SET_4D35>",
          "3d0c3cf797584bd193bd0fb1bd4e7d30":
          "<SET_3D0C>"
        }
      }"""
        ),
    ),
    Example(
        "multi-set-push-02-fig2-as-printed",
        "multi-set-push-02 §4.3.1 Figure 2 (Example of empty SET transmission), as printed",
        "multipush-request",
        _figure(
            """{
        "sets": {},
      }"""
        ),
        valid=False,
        note="trailing comma: invalid JSON in every revision up to -02",
    ),
    Example(
        "multi-set-push-02-fig2-intended",
        "multi-set-push-02 §4.3.1 Figure 2, the intended message (comma removed)",
        "multipush-request",
        b'{"sets": {}}',
    ),
    Example(
        "multi-set-push-02-fig3-ack",
        "multi-set-push-02 §4.4.1 Figure 3 (Example of SET Transmission response with ack)",
        "multipush-response",
        _figure(
            """{
        "ack": [
          "3d0c3cf797584bd193bd0fb1bd4e7d30"
        ]
      }"""
        ),
        status=202,
    ),
    Example(
        "multi-set-push-02-fig4-ack-and-errors",
        "multi-set-push-02 §4.4.1 Figure 4 (Example of SET Transmission response, ack and errors)",
        "multipush-response",
        _figure(
            """{
         "ack": [
          "f52901c499611ef94540242ac12000322",
          "0636e274399711ef9454-0242ac120002",
          "d563c72479a04ff0ba415657fa5e2cb11"
         ],
         "setErrs": {
          "4d3559ec67504aaba65d40b0363faad8" : {
            "err": "invalid_key",
            "description": "Failed validation"
          }
         }
      }"""
        ),
        status=202,
        note="ack values are not UUIDs (33 hex digits, misplaced hyphen): jtis are opaque",
    ),
    Example(
        "multi-set-push-02-fig5-error",
        "multi-set-push-02 §4.4.2 Figure 5 (Example Error Response (authentication_failed))",
        "error-response",
        _figure(
            """{
        "err": "authentication_failed",
        "description": "Access token has expired."
      }"""
        ),
        status=400,
    ),
    # ------------------------------------------------- multi-push-00
    Example(
        "multi-push-00-fig4-ack-and-errors",
        "multi-push-00 §Success Response Figure 4 (response, ack and errors)",
        "multipush-response",
        _figure(
            """{
         "ack": [
          "f52901c499611ef94540242ac12000322",
          "0636e274399711ef9454-0242ac120002",
          "d563c72479a04ff0ba415657fa5e2cb11"
         ],
         "setErrs": {
          "4d3559ec67504aaba65d40b0363faad8" : {
            "err": "invalid subject",
            "description": "subject format not supported"
          }
         }
      }"""
        ),
        status=200,
        note='200, not 202; err "invalid subject" is not even a legal code name',
    ),
    # ------------------------------------------------- push-pull -03
    Example(
        "pushpull-03-5.1-communication-object",
        "push-pull -03 §5.1 (Example of a Communication Object), SETs joined",
        "communication-object",
        _figure(
            """{
  "sets": {
    "dfc38da2-939e-4536-bec9-b8a16ed45c4e":
    "<PP_SET_DFC3>",
    "d93341ad-7329-4d1b-ba4a-9ff6f9f34003":
    "<SET_3D0C>"
  },
  "ack": [
    "f52901c4-3996-11ef-9454-0242ac120002",
    "50924f49-55a9-47ca-820d-b1161cb0a602",
    "d563c724-79a0-4ff0-ba41-657fa5e2cb11"
  ],
  "setErrs": {
    "5c436b19-0958-4367-b408-2dd542606d3b" : {
      "err": "invalid subject",
      "description": "subject format not supported"
    }
  }
}"""
        ),
        note="key d93341ad-... holds a SET whose jti is 3d0c3cf7... (alg none): pitfall 9",
    ),
    Example(
        "pushpull-03-6.3-request",
        "push-pull -03 §6.3 (Example Pushpull request), SETs joined",
        "communication-object",
        _figure(
            """{
  "ack": [],
  "sets": {
    "9deb50b0-d2f8-4793-a420-5e5678cf25a8":
    "<PP_SET_9DEB>",
    "d93341ad-7329-4d1b-ba4a-9ff6f9f34003":
    "<PP_SET_D933>"
  },
  "setErrs": {
    "5c436b19-0958-4367-b408-2dd542606d3b" : {
      "err": "invalid subject",
      "description": "subject format not supported"
    }
  },
  "maxResponseEvents": 10
}"""
        ),
    ),
    Example(
        "pushpull-03-6.3-response",
        "push-pull -03 §6.3 (Example Pushpull response), SETs joined",
        "communication-object",
        _figure(
            """{
  "ack": [
    "d8d439e6-b103-47c7-86d9-d5951ce774d1"
  ],
  "sets": {
    "3f1c5fc7-99c5-4c2b-a9a3-68ea90be9ca9":
    "<PP_SET_3F1C>"
  }
}"""
        ),
        status=200,
    ),
)


def by_name(name: str) -> Example:
    """The example called ``name``."""
    for example in EXAMPLES:
        if example.name == name:
            return example
    raise KeyError(name)
