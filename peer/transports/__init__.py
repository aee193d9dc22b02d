"""Thin I/O around the protocol core: WebSocket, HTTP push-pull, push, multi-push, poll."""
