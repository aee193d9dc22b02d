"""The local side: how the identity service beside the node reaches it.

- the local application interface (JSON over HTTP on a Unix socket or loopback TCP,
  never on the partner listener): publish, forward, received SETs, done, failures,
  status;
- webhook delivery of received SETs, for services that would rather be called.

The Python client of the interface is :class:`peer.Client`.
"""
