"""The one way tests pick a free loopback TCP port."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on loopback; free until someone else binds it, so
    servers that start on it retry when it was taken in between."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
