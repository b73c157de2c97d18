"""The TCP socket an HTTP process (the counter, the gateway) listens on, bound before the
process prints its URL.

uvicorn binds the port itself, after the command has said "counter API on http://...":
a port in use was then uvicorn's own error line and exit status 3, under a URL that
answered nothing (or another program's pages). Bound here first, a port that cannot be
had stops the command in one line with exit status 2, like any other refused setting,
and uvicorn serves on the socket it is given (``uvicorn.Server.run(sockets=...)``).
"""

from __future__ import annotations

import socket

from onewindow.errors import ConfigError

__all__ = ["listening_socket", "shown_address"]


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``SO_REUSEADDR``, as uvicorn
    binds: a restart does not wait for the old connections' TIME_WAIT). Listening here,
    not only bound: two sockets with ``SO_REUSEADDR`` may both bind a port until one
    listens, so a second server starting at the same moment got past a bound-only check
    and failed in uvicorn after all (a traceback under the printed URL). Connections
    that come before the app serves wait in the backlog.

    Raises `ConfigError` naming the address and the system's reason (in use, not this
    machine's address, a privileged port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: "
                          f"{exc.strerror or exc}") from None
    return sock


def shown_address(host: str, port: int) -> str:
    """``host:port`` as a URL holds it: an IPv6 address in brackets (``[::1]:8000``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
