"""The listening sockets of ``trayecto serve --workers N``: one per server process.

uvicorn's ``--workers`` binds one socket and hands it to every process. Each process's
event loop then accepts from it, and the first to wake takes every connection waiting:
with a client that opens its keep-alive connections at once, one process can end up with
nearly all of them (wrk's 32 connections split 30/2 or 24/8 in some runs of
``benchmarks/bench_orders.py``). That process is then bound by its one interpreter lock
while the other idles, and its few requests make small, costly batches of orders.

On Linux each process listens on a socket of its own, all bound to the same address with
``SO_REUSEPORT``: the kernel spreads new connections over them by a hash of the client's
address and port. The parent first checks that nothing listens on the port (a second server would
otherwise join the group and take half the connections), then keeps one more socket
bound to it, never listening, that names the port to the processes (the one the kernel
picked, with ``--port 0``).
Elsewhere, the shared socket as uvicorn makes it.

uvicorn's process supervisor is kept (it restarts a process that dies, and stops them
all): the parent's socket is a ``PerProcessSocket``, which the ``spawn`` start method
pickles for each process as "a new listening socket on this address", not as the parent's
own.
"""

from __future__ import annotations

import socket
import sys
from typing import Any, TypeVar

__all__ = ["PerProcessSocket", "listening_socket", "reuse_port_supported"]

_Socket = TypeVar("_Socket", bound=socket.socket)


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections over sockets sharing a port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bound(kind: type[_Socket], host: str, port: int) -> _Socket:
    """A new ``kind`` socket bound to ``(host, port)`` in the port's ``SO_REUSEPORT``
    group."""
    sock = kind(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of this process on ``(host, port)``, in the port's ``SO_REUSEPORT`` group
    (uvicorn's server calls ``listen`` on it)."""
    return _bound(socket.socket, host, port)


class PerProcessSocket(socket.socket):
    """The parent's socket on ``(host, port)``: bound with ``SO_REUSEPORT``, never
    listening, it holds the port. Pickled for a worker process it becomes a
    ``listening_socket`` of that process on the same address."""

    @classmethod
    def bind_to(cls, host: str, port: int) -> PerProcessSocket:
        """Raises ``OSError`` (``EADDRINUSE``) when something listens on the port already,
        as uvicorn's one socket would: ``SO_REUSEPORT`` alone would let a second server
        join the first and split its connections without a word. (``--port 0``: the port
        the kernel picks.)"""
        probe = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
        finally:
            probe.close()
        return _bound(cls, host, port)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return listening_socket, (host, port)
