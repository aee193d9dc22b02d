"""SSF 1.0 stream management with partners (docs/ssf.md).

Transmitter role (a partner with ``ssf = "receiver"`` manages its stream with us):
``transmitter.py`` keeps the partner's stream (delivery, status, subjects,
verification), ``routes.py`` serves the discovery document and the management
endpoints.

Receiver role (a partner with ``ssf = "transmitter"``): ``client.py`` talks stream
management with the transmitter, ``receiver.py`` keeps our stream there in the store
and checks the verification SETs that arrive, ``runner.py`` keeps it going inside a
running node (restored after a restart, polled when it is a poll stream, the
transmitter's keys from its metadata), ``status.py`` is the ``stream`` entry of
``setpeer status``. Nothing is imported here, so ``setpeer status`` stays light.
"""
