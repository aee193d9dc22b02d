"""Wire-level and fault tests of the compatibility adapters (issue 5).

Plain httpx clients against a real node for the inbound routes (``/events``,
``/multipush``, ``/poll``), and a scripted partner (a small Starlette app under
uvicorn) for the outbound loops (push, multi-push, poll). Items cited: PUSH-n
(spec/push.md), MP-n (spec/multipush.md), POLL-n (spec/poll.md).
"""

from __future__ import annotations

__all__: list[str] = []
