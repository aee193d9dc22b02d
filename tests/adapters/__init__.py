"""Wire-level and fault tests of the compatibility adapters.

Plain httpx clients against a real node for the inbound routes (``/events``,
``/multipush``, ``/poll``), and a scripted partner (a small Starlette app under
uvicorn) for the outbound loops (push, multi-push, poll). Items cited: PUSH-n
(RFC 8935), MP-n (multi-push), POLL-n (RFC 8936).
"""

from __future__ import annotations

__all__: list[str] = []
