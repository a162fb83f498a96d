"""A loopback server that answers byte by byte, for clients facing hostile servers."""

from __future__ import annotations

import functools
import gzip
import socket
import threading
from collections.abc import Callable

__all__ = ["RawServer", "gzip_bomb"]


class RawServer:
    """A loopback server that answers each request with ``reply(connection)``, byte by byte."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self._reply = reply
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v4_6_release/apis/3.0"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self._reply(conn)
            except OSError:
                pass  # the client hung up: what these tests expect

    def trickle(self, conn: socket.socket, data: bytes, every: float = 0.02) -> None:
        """Send ``data`` one byte at a time, unless told to stop."""
        for byte in data:
            if self._stop.wait(every):
                return
            conn.sendall(bytes([byte]))

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of JSON in about 64 KiB of gzip."""
    return gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)
