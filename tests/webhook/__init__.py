"""Webhook delivery of received SETs (``[peer.app] deliver``, docs/webhook.md).

A real node ``b`` takes SETs from its partners over RFC 8935 push (plain httpx with
the partners' keys and tokens) and POSTs them to a scripted receiver: a small
Starlette app under uvicorn on 127.0.0.1 that can fail, stall, go away and come back.
"""

from __future__ import annotations

__all__: list[str] = []
