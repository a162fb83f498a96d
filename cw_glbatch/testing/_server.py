"""The simulator over real HTTP: a threaded server on loopback with a clean shutdown."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from cw_glbatch._client import ConnectWiseClient

from ._wire import Dropped, SimRequest

if TYPE_CHECKING:
    from ._fake import FakeConnectWise

__all__ = ["SimulatorServer"]

_IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may sit unused
# What a client that hangs up, stays silent or fails its TLS handshake raises in a handler.
_CLIENT_GONE = (ConnectionError, ssl.SSLError, TimeoutError)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], fake: FakeConnectWise, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.fake = fake
        self.origin = ""
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept; with TLS, leave the handshake to the connection's own thread (``setup``).

        Wrapping the listening socket instead would shake hands in the accepting thread, where
        one client that connects and says nothing stops every other from being served.
        """
        connection, address = self.socket.accept()
        if self.ssl_context is not None:
            connection = self.ssl_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up; report anything else as the base class does."""
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections alive, as ConnectWise does
    timeout = _IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()  # sets the idle timeout, which bounds the TLS handshake too
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()
        # Small answers must not wait for Nagle's algorithm and the peer's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET  # noqa: N815

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        outcome = self.server.fake.handle(
            SimRequest(
                self.command,
                url.path,
                dict(parse_qsl(url.query, keep_blank_values=True)),
                {k.lower(): v for k, v in self.headers.items()},
                body,
                self.server.origin,
            )
        )
        if isinstance(outcome, Dropped):
            # Close with a reset: the client gets no answer at all.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        content = outcome.content()
        headers = {"Content-Type": "application/json; charset=utf-8"} if content else {}
        headers.update(outcome.headers)
        headers["Content-Length"] = str(len(content))
        head = f"HTTP/1.1 {outcome.status} {_phrase(outcome.status)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        message = head.encode("latin-1") + b"\r\n" + content
        body_starts = len(message) - len(content)
        if outcome.truncated:  # half the body, or half the head when there is no body
            self.close_connection = True
            self.wfile.write(
                message[: body_starts + len(content) // 2 if content else len(head) // 2]
            )
        elif outcome.chunk:
            self._trickle(message, body_starts, outcome.chunk, outcome.delay)
        else:
            self.wfile.write(message)  # one write, one segment

    def _trickle(self, message: bytes, head: int, chunk: int, delay: float) -> None:
        self.wfile.write(message[:head])
        for start in range(head, len(message), chunk):
            self.server.fake.faults.pause(delay)
            self.wfile.write(message[start : start + chunk])

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the simulator keeps its own request log."""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class SimulatorServer:
    """A `FakeConnectWise` served over HTTP on loopback, in background threads.

    With ``ssl_context`` (a server-side context holding a certificate), it serves HTTPS, for
    testing an integration's TLS settings (``trustme`` makes such certificates).

    Attributes:
        fake: The simulator behind the server.
        url: The server's origin, e.g. ``http://127.0.0.1:50123``.
        base_url: The API root, e.g. ``http://127.0.0.1:50123/v2025_1/apis/3.0``.
    """

    def __init__(
        self,
        fake: FakeConnectWise,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.fake = fake
        self._server = _Server((host, port), fake, ssl_context)
        bound_host, bound_port = self._server.server_address[:2]
        if isinstance(bound_host, bytes):
            bound_host = bound_host.decode()
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{shown}:{bound_port}"
        self._server.origin = self.url
        self.base_url = self.url + fake.api_path
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how soon close() is noticed
            name="cw-glbatch-simulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def environ(self) -> dict[str, str]:
        """The ``CW_*`` variables that point `ConnectWiseClient.from_env` (or the CLI) here."""
        return {
            "CW_SITE": self.url,
            **{f"CW_{name.upper()}": value for name, value in self.fake.credentials.items()},
        }

    def client(self, **options: Any) -> ConnectWiseClient:
        """A `ConnectWiseClient` for this server, with the simulator's credentials."""
        settings: dict[str, Any] = {"base_url": self.base_url, **self.fake.credentials}
        settings.update(options)
        return ConnectWiseClient(**settings)

    def close(self) -> None:
        """Stop serving, close every open connection, and wait for the threads."""
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:
            open_connections = list(self._server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join()

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SimulatorServer({self.url!r})"
