"""Services that do not answer, simulated on 127.0.0.1 for the fail-fast tests (no network needed)."""

from __future__ import annotations

import socket

KINDS = ("refusing", "silent", "dropping")


class Unreachable:
    """A port on 127.0.0.1 where a service does not answer, of one of three kinds:

    ``refusing``: nothing listens, connections are refused at once (a server that is not running, a mistyped port);
    ``silent``: connections are accepted by the kernel and then nothing is ever sent (a hung server);
    ``dropping``: the accept queue is full, so the kernel drops the handshake (a host behind a dropping firewall).
    Close it after use.
    """

    def __init__(self, kind: str) -> None:
        assert kind in KINDS, kind
        self._sockets: list[socket.socket] = []
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port: int = listener.getsockname()[1]
        if kind == "refusing":
            listener.close()
            return
        listener.listen(0 if kind == "dropping" else 16)
        self._sockets.append(listener)
        if kind == "dropping":  # one completed connection fills a backlog of 0
            self._sockets.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
